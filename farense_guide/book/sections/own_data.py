"""Values for chapter 5's «Os seus dados» section (prefix own_data.).

The example CSV and its split (computed by the snippet's own functions, snippets/05_dados_proprios.py), how many
items and questions per item the Farense data has, what the recipe study trained on (one training file for every
run: it never varied the data), and, from the run, the first epoch's F1 and how many out-of-scope test questions
the fine-tuned model refused. A value that a run or folder lacks is «—».
"""

from __future__ import annotations

import importlib.util
import json
import statistics
from collections import Counter
from pathlib import Path

from farense_guide.pt_format import pt
from farense_guide.runs import RunFolder, read_json

SNIPPET = Path("snippets/05_dados_proprios.py")
DATA = Path("data")
STUDY = Path("runs/study")
PREFIX = "own_data."


def snippet_module():
    spec = importlib.util.spec_from_file_location("dados_proprios", SNIPPET)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def csv_values() -> dict[str, str]:
    snippet = snippet_module()
    table = snippet.ler_tabela(snippet.CSV)
    splits = snippet.dividir(table, snippet.SEMENTE)
    kinds = table.drop_duplicates("item")["tipo"]
    values = {"csv.rows": len(table), "csv.items": len(kinds), "csv.out_of_scope_items": int((kinds == "out_of_scope").sum())}
    values.update({f"csv.{name}": len(examples) for name, examples in splits.items()})
    return {key: str(value) for key, value in values.items()}


def farense_values() -> dict[str, str]:
    ids = Counter(json.loads(line)["meta"]["id"] for name in ("train", "valid", "test")
                  for line in (DATA / f"{name}.jsonl").read_text(encoding="utf-8").splitlines() if line.strip())
    return {"farense.items": pt(len(ids), 0), "farense.questions_per_item": pt(statistics.median(ids.values()), 0)}


def study_runs() -> list[Path]:
    return sorted(STUDY.glob("*/run.json"))


def study_values() -> dict[str, str]:
    runs = study_runs()
    if not runs:
        return {"study.runs": "—", "study.train_files": "—"}
    train_files = {read_json(path)["data"]["train"]["sha256"] for path in runs}
    distinct = "um só valor" if len(train_files) == 1 else f"{len(train_files)} valores diferentes"
    return {"study.runs": pt(len(runs), 0), "study.train_files": distinct}


def run_values(run_path: Path) -> dict[str, str]:
    report = read_json(RunFolder(run_path).evaluation_report)
    epoch1 = report.get("epochs", {}).get("1", {}).get("f1", {}).get("mean")
    share = report["tuned"]["refusal_rate_out_of_scope"]["mean"]
    refusals = None if share is None else round(share * report["out_of_scope_items"])
    return {"run.epoch1_f1": pt(epoch1, 3), "run.refusals": "—" if refusals is None else str(refusals)}


def fragment(run_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    values = {**csv_values(), **farense_values(), **study_values(), **run_values(run_path)}
    return {}, {PREFIX + key: value for key, value in values.items()}


def sources(run_path: Path) -> list[Path]:
    return [SNIPPET, snippet_module().CSV, *(DATA / f"{name}.jsonl" for name in ("train", "valid", "test")), *study_runs(),
            RunFolder(run_path).evaluation_report]
