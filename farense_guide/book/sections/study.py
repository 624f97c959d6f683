"""Chapter 14's «Escolher os hiperparâmetros»: the recipe study (runs/study, farense_guide/study.py) as tables and values.

It reads the study that `farense-guide study runs/study --with runs/reference` wrote (study.json, study.png), the paired
comparisons saved in runs/study/comparisons/ (`farense-guide compare --json`), and each run's evaluation report for the
number of out-of-scope questions. It does not depend on the run the pages show: the study is the same for every run.

    study_table.md     the evaluated recipes by CPU minutes, each described by what it changes from the chosen recipe
    study_effects.md   one row per paired comparison between two recipes of the study: what changes, B − A, p, verdict
    values             study.run.<name>.* (a recipe), study.cmp.<A>__<B>.* (a comparison), and the study's counts;
                       names in lower case, as the guide's [[name]] placeholders are (e3-lr5e-4-L8 -> e3-lr5e-4-l8)
"""

from __future__ import annotations

import re
from pathlib import Path

from farense_guide.errors import FarenseError
from farense_guide.paired import holm_rejections
from farense_guide.pt_format import (pt, pt_difference, pt_interval, pt_learning_rate, pt_mean_interval, pt_p_value, pt_signed,
                                     pt_signed_interval)
from farense_guide.runs import read_json
from farense_guide.steps.compare import markdown_table, verdict as compare_verdict
from farense_guide.study import difference_cell, minutes_cell

STUDY = Path("runs/study")
RUNS = Path("runs")  # where the recipes added with `--with` live (runs/reference)
CHOSEN = "reference"  # the chosen recipe, trained on the CPU: every recipe of the table is described against it
FIGURES = [(STUDY / "study.png", "study.png")]

# What a recipe can change, in the profile's own words and in the order the chapter discusses them.
CHANGES = (("device", "dispositivo", str.upper), ("learning_rate", "`learning_rate`", pt_learning_rate),
           ("lr_schedule", "`lr_schedule`", str), ("warmup_steps", "`warmup_steps`", str),
           ("epochs", "`epochs`", lambda v: pt(v, 2).removesuffix(",00")),
           ("lora_rank", "`lora.rank`", str), ("lora_scale", "`lora.scale`", lambda v: f"{v:g}".replace(".", ",")),
           ("lora_layers", "`lora.num_layers`", str), ("lora_dropout", "`lora.dropout`", lambda v: pt(v, 2)),
           ("batch_size", "`batch_size`", str), ("grad_accumulation", "`grad_accumulation`", str),
           ("mask_prompt", "`mask_prompt`", lambda v: str(v).lower()),
           ("loss_every_turn", "`loss_every_turn`", lambda v: str(v).lower()), ("seed", "`seed`", str))
METRICS = (("f1", "F1"), ("auc", "AUC"))


def study_rows() -> dict[str, dict]:
    path = STUDY / "study.json"
    if not path.exists():
        raise FarenseError(f"{path}: falta o estudo da receita, que o capítulo 14 mostra.",
                           hint="vem com o repositório; refaz-se com `farense-guide study runs/study --with runs/reference`")
    return {row["name"]: row for row in read_json(path)["rows"]}


def comparisons(rows: dict[str, dict]) -> list[dict]:
    """The saved paired comparisons whose two runs are recipes of the study (the others compare runs outside it)."""
    found = [read_json(path) for path in sorted((STUDY / "comparisons").glob("*.json"))]
    for result in found:
        result["a"], result["b"] = Path(result["first"]).name, Path(result["second"]).name
    return [result for result in found if result["a"] in rows and result["b"] in rows]


def run_folder(name: str) -> Path:
    """A recipe's run folder: runs/study/<name>, or runs/<name> for those added with `--with`."""
    return STUDY / name if (STUDY / name / "run.json").exists() else RUNS / name


def report_path(name: str) -> Path:
    return run_folder(name) / "evaluation" / "evaluation_report.json"


def machine(run_json: Path) -> dict:
    """run.json's machine, the processor's name without «(R)» and «Processor»: «Intel Xeon», «AMD EPYC»."""
    found = read_json(run_json)["machine"]
    processor = re.sub(r"\((R|TM)\)|\bProcessor\b|\bCPU\b", "", found.get("processor") or "?")
    return {**found, "processor": " ".join(processor.split())}


def changes(first: dict, second: dict, keys=tuple(key for key, _, _ in CHANGES)) -> list[str]:
    """What `second` changes from `first`: «learning_rate 2e-4 → 5e-4», in CHANGES' order."""
    return [f"{label} {show(first[key])} → {show(second[key])}" for key, label, show in CHANGES
            if key in keys and first[key] != second[key]]


def refusals(row: dict) -> str:
    """«3 de 12» from the rate and the run's count of out-of-scope questions; the rate alone where no report is at hand."""
    path = report_path(row["name"])
    if not path.exists():
        return pt(row["refusals_out_of_scope"], 2)
    total = read_json(path)["out_of_scope_items"]
    return f"{round(row['refusals_out_of_scope'] * total)} de {total}"


def listing(items: list[str]) -> str:
    """«a», «a e b», «a, b e c»; «—» for none."""
    return " e ".join([", ".join(items[:-1]), items[-1]] if len(items) > 1 else items) or "—"


def recipe_table(rows: dict[str, dict], chosen: dict) -> str:
    header = ["run", "dispositivo", f"o que muda em relação a `{CHOSEN}`", "F1 no teste [IC 95%]", "AUC [IC 95%]",
              "recusas fora do âmbito", "min de CPU"]
    table = [header]
    for row in (r for r in rows.values() if r["test_f1"] is not None):
        different = changes(chosen, row, keys=[key for key, _, _ in CHANGES if key != "device"])
        f1 = {"mean": row["test_f1"], "ci_low": row["test_f1_low"], "ci_high": row["test_f1_high"]}
        auc = {"mean": row["test_auc"], "ci_low": row["test_auc_low"], "ci_high": row["test_auc_high"]}
        table.append([f"`{row['name']}`", row["device"].upper(), "; ".join(different) or "— (a receita escolhida)",
                      pt_mean_interval(f1), pt_mean_interval(auc) if auc["ci_low"] is not None else pt(row["test_auc"], 3),
                      refusals(row), minutes_cell(row)])
    note = ("\\* estimado: passos × segundos por passo medidos no CPU de dois núcleos com a mesma forma (camadas, rank, batch; "
            "`runs/study/calibration/`); sem \\*, medido no CPU; — forma sem calibração. Fontes: `runs/study/study.json` e a "
            "avaliação de cada run.")
    return "\n".join([*markdown_table(table), "", note]) + "\n"


def verdict(result: dict) -> str:
    """«F1 e AUC melhores», «AUC pior», «sem diferença detetável»: the paired tests' verdict at the comparison's alpha."""
    said = {}
    for key, label in METRICS:
        metric = result["metrics"].get(key)
        if metric and metric["significant"]:
            said.setdefault(compare_verdict(metric), []).append(label)
    parts = [f"{' e '.join(labels)} {word}{'es' if len(labels) > 1 else ''}" for word, labels in said.items()]
    return "; ".join(parts) or "sem diferença detetável"


def refusal_change(result: dict) -> str:
    metric = result["metrics"].get("refusal_rate_out_of_scope")
    if not metric:
        return "—"
    total = metric["items"]
    return f"{round(metric['first'] * total)} → {round(metric['second'] * total)} de {total}, {pt_p_value(metric['p_value'])}"


def change_order(result: dict, rows: dict[str, dict]) -> int:
    """The comparison's place in the table: by the first thing it changes, in CHANGES' order (a seed alone last)."""
    first, second = rows[result["a"]], rows[result["b"]]
    return next((index for index, (key, _, _) in enumerate(CHANGES) if first[key] != second[key]), len(CHANGES))


def effects_table(results: list[dict], rows: dict[str, dict]) -> str:
    table = [["A → B", "o que B muda", "F1: B − A [IC 95%]", "AUC: B − A [IC 95%]", "recusas fora do âmbito", "min de CPU",
              "veredicto"]]
    for result in sorted(results, key=lambda r: change_order(r, rows)):
        first, second = rows[result["a"]], rows[result["b"]]
        table.append([f"`{result['a']}` → `{result['b']}`", "; ".join(changes(first, second)) or "—",
                      difference_cell(result["metrics"], "f1"), difference_cell(result["metrics"], "auc"), refusal_change(result),
                      f"{minutes_cell(first)} → {minutes_cell(second)}", verdict(result)])
    alpha = pt(results[0]["alpha"], 2) if results else "—"
    note = (f"B − A nas mesmas perguntas de teste, cada modelo afinado com uma só semente: intervalo bootstrap emparelhado a "
            f"95 % e o seu p; as recusas com o teste exato de McNemar. «Melhor» ou «pior» só com p < {alpha}. "
            "Fonte: `runs/study/comparisons/` (`farense-guide compare --json`).")
    return "\n".join([*markdown_table(table), "", note]) + "\n"


def seed_spread(rows: dict[str, dict]) -> tuple[float, list[str]]:
    """The widest test-F1 range among runs of one recipe that differ only in the seed, and those runs."""
    groups: dict[tuple, list[dict]] = {}
    for row in (r for r in rows.values() if r["test_f1"] is not None):
        groups.setdefault(tuple(row[key] for key, _, _ in CHANGES if key != "seed"), []).append(row)
    spreads = [(max(r["test_f1"] for r in group) - min(r["test_f1"] for r in group), [r["name"] for r in group])
               for group in groups.values() if len(group) > 1]
    return max(spreads, default=(0.0, []))


def row_values(row: dict) -> dict[str, str]:
    values = {key: show(row[key]) for key, _, show in CHANGES}
    values |= {"f1": pt(row["test_f1"], 3), "auc": pt(row["test_auc"], 3), "cpu_minutes": pt(row["cpu_minutes"], 0),
              "val_loss": pt(row["val_loss"], 3)}
    if row["test_f1"] is not None:
        values.update({"f1_ci": pt_interval({"ci_low": row["test_f1_low"], "ci_high": row["test_f1_high"]}),
                       "refusals": refusals(row)})
    return {f"study.run.{row['name'].lower()}.{key}": value for key, value in values.items()}


def comparison_values(result: dict, rows: dict[str, dict]) -> dict[str, str]:
    values = {"verdict": verdict(result), "refusals": refusal_change(result)}
    for key, _ in METRICS:
        if metric := result["metrics"].get(key):
            values.update({key: pt_signed(metric["difference"], 3), f"{key}_ci": pt_signed_interval(metric),
                           f"{key}_p": pt_p_value(metric["p_value"])})
    first, second = rows[result["a"]]["cpu_minutes"], rows[result["b"]]["cpu_minutes"]
    if first and second:
        values["minutes_change"] = f"{pt_signed(100 * (second - first) / first, 0)} %"
    return {f"study.cmp.{result['a']}__{result['b']}.{key}".lower(): value for key, value in values.items()}


def fragment(run_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    rows = study_rows()
    if CHOSEN not in rows:
        raise FarenseError(f"{STUDY / 'study.json'}: falta a receita escolhida, `{CHOSEN}`.",
                           hint="farense-guide study runs/study --with runs/reference")
    chosen, results = rows[CHOSEN], comparisons(rows)
    evaluated = [row for row in rows.values() if row["test_f1"] is not None]
    chosen_report = read_json(report_path(CHOSEN))
    alpha = results[0]["alpha"] if results else 0.05
    tests = [result["metrics"][key] for result in results for key, _ in METRICS if key in result["metrics"]]
    spread, spread_runs = seed_spread(rows)
    calibration = sorted((STUDY / "calibration").glob("*/run.json"))
    gpu = next((row["name"] for row in evaluated if row["device"] != "cpu"), None)
    short = [row["test_auc"] for row in evaluated if row["epochs"] < 1]
    values = {"runs": str(len(rows)), "evaluated": str(len(evaluated)),
              "evaluated_gpu": str(sum(row["device"] != "cpu" for row in evaluated)),
              "evaluated_cpu": str(sum(row["device"] == "cpu" for row in evaluated)),
              "test_items": str(chosen_report["items"]), "out_of_scope": str(chosen_report["out_of_scope_items"]),
              "base_auc": pt(chosen_report["base"]["auc"], 3),
              "short_auc_max": pt(max(short, default=None), 3),
              "comparisons": str(len(results)), "tests": str(len(tests)), "alpha": pt(alpha, 2),
              "detectable": str(sum(metric["significant"] for metric in tests)),
              "holm_detectable": str(holm_rejections([metric["p_value"] for metric in tests], alpha)),
              "refusals_detectable": str(sum(result["metrics"]["refusal_rate_out_of_scope"]["significant"] for result in results
                                             if "refusal_rate_out_of_scope" in result["metrics"])),
              "chosen_processor": machine(run_folder(CHOSEN) / "run.json")["processor"],
              "mlx_lm": read_json(run_folder(CHOSEN) / "run.json")["versions"].get("mlx-lm", "—"),
              "calibration_processor": machine(calibration[0])["processor"] if calibration else "—",
              "gpu": (machine(run_folder(gpu) / "run.json")["accelerator"] or "—") if gpu else "—",
              "chance_findings": pt(alpha * len(tests), 0),
              "seed_spread": pt(spread, 3), "seed_spread_runs": listing([f"`{name}`" for name in spread_runs])}
    values = {f"study.{key}": value for key, value in values.items()}
    for row in rows.values():
        values.update(row_values(row))
    for result in results:
        values.update(comparison_values(result, rows))
    files = {"study_table.md": recipe_table(rows, chosen), "study_effects.md": effects_table(results, rows)}
    return files, values


def sources(run_path: Path) -> list[Path]:
    names = study_rows() if (STUDY / "study.json").exists() else {}
    files = [report_path(name) for name in names] + [run_folder(name) / "run.json" for name in names]
    files += sorted((STUDY / "calibration").glob("*/run.json"))[:1]
    return [STUDY / "study.json", *sorted((STUDY / "comparisons").glob("*.json")), *(path for path in files if path.exists())]
