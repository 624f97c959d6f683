"""The recipe study's table and figure (farense_guide/study.py), on real run folders of the tiny model."""

import json
import shutil
import statistics

import pandas as pd
import pytest

from conftest import run_cli
from farense_guide.errors import FarenseError
from farense_guide.study import COLUMNS, build_study


def copy_run(source, target, **changes):
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("checkpoints", "adapters"))
    info = json.loads((target / "run.json").read_text(encoding="utf-8"))
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            info[section][field] = value
        else:
            info[section] = value
    (target / "run.json").write_text(json.dumps(info), encoding="utf-8")
    return info


def test_study_rows_measure_cpu_runs_and_estimate_gpu_runs_from_the_calibration(evaluated_run, tmp_path):
    run, _ = evaluated_run
    study = tmp_path / "study"
    cpu = copy_run(run, study / "on-cpu")
    copy_run(run, study / "on-gpu", backend__device="gpu")
    copy_run(run, study / "unfinished", status="running")
    copy_run(run, study / "calibration" / "shape")

    written = build_study(study)

    rows = json.loads((study / "study.json").read_text(encoding="utf-8"))["rows"]
    by_name = {row["name"]: row for row in rows}
    assert set(by_name) == {"on-cpu", "on-gpu"}  # the unfinished run and the calibration run are not recipes
    assert by_name["on-cpu"]["cpu_minutes"] == round(cpu["throughput"]["train_seconds"] / 60, 2)
    assert by_name["on-cpu"]["cpu_minutes_source"] == "medido"
    reports = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    reports = [r for r in reports if r["type"] == "train"]
    spans = []
    for a, b in zip(reports[1:], reports[2:]):  # a plain loop, the first report (compilation) left out
        spans.append((b["elapsed_s"] - a["elapsed_s"]) / (b["step"] - a["step"]))
    expected = cpu["iterations"]["total_steps"] * statistics.median(spans) / 60
    assert by_name["on-gpu"]["cpu_minutes"] == pytest.approx(expected, abs=0.006)
    assert by_name["on-gpu"]["cpu_minutes_source"] == "estimado"
    report = json.loads((run / "evaluation" / "evaluation_report.json").read_text(encoding="utf-8"))
    assert by_name["on-cpu"]["test_f1"] == report["tuned"]["f1"]["mean"]
    assert by_name["on-cpu"]["test_auc"] == report["tuned"]["auc"]
    last_valid = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert by_name["on-cpu"]["val_loss"] == [r for r in last_valid if r["type"] == "valid"][-1]["val_loss"]
    assert list(pd.read_csv(study / "study.csv").columns) == list(COLUMNS)
    assert (study / "study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [path.name for path in written] == ["study.json", "study.csv", "study.md", "study.png"]
    table = (study / "study.md").read_text(encoding="utf-8")
    f1 = report["tuned"]["f1"]
    cpu_line = next(line for line in table.splitlines() if line.startswith("| `on-cpu` | CPU |"))
    assert f"{f1['mean']:.3f} [{f1['ci_low']:.3f}; {f1['ci_high']:.3f}]".replace(".", ",") in cpu_line
    assert cpu_line.endswith(f"| {by_name['on-cpu']['cpu_minutes']:.0f} |") and "\\* |" in table  # measured; the GPU row estimated
    assert "comparações emparelhadas" not in table  # no comparisons/ folder, no such section


def test_study_markdown_lists_the_saved_paired_comparisons(evaluated_run, tmp_path):
    run, _ = evaluated_run
    study = tmp_path / "study"
    copy_run(run, study / "a")
    copy_run(run, study / "b")
    result = run_cli("compare", str(study / "a"), str(study / "b"), "--json", str(study / "comparisons" / "a__b.json"))
    assert result.returncode == 0, result.stderr

    build_study(study)

    table = (study / "study.md").read_text(encoding="utf-8")
    saved = json.loads((study / "comparisons" / "a__b.json").read_text(encoding="utf-8"))
    assert "| `a` | `b` | " + str(saved["items"]) + " | 0,000 [0,000; 0,000], p = 1,000 |" in table  # a run against itself


def test_every_study_row_and_comparison_is_a_run_folder_in_the_repository():
    """The issue asks that each row be traceable to a run's files: a row or a comparison whose folder was never
    committed (a .gitignore that hides it) fails here, on CI's clean clone."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    study = root / "runs" / "study"
    rows = json.loads((study / "study.json").read_text(encoding="utf-8"))["rows"]
    folders = {row["name"]: [study / row["name"], root / "runs" / row["name"]] for row in rows}
    missing = [name for name, places in folders.items() if not any((place / "run.json").is_file() for place in places)]
    assert not missing, f"linhas de study.json sem pasta de run no repositório: {missing}"
    for path in sorted((study / "comparisons").glob("*.json")):
        saved = json.loads(path.read_text(encoding="utf-8"))
        for run in (saved["first"], saved["second"]):
            assert (root / run / "evaluation" / "predictions.jsonl").is_file(), f"{path.name}: {run} não está no repositório"


def test_study_without_finished_runs_is_a_pt_error(tmp_path):
    with pytest.raises(FarenseError, match="nenhum run terminado"):
        build_study(tmp_path)
    result = run_cli("study", str(tmp_path))
    assert result.returncode == 2 and "nenhum run terminado" in result.stderr


def test_the_half_hour_profile_is_the_recipe_of_the_committed_nox_all_record():
    """nox -s all trains smollm2-30min: the newest timed record of it (tools/time_nox_all.sh, runs/all-smollm2-30min-*)
    must be in the repository and have trained that very recipe, in what decides the model."""
    from pathlib import Path

    from farense_guide.config import load_profile
    from farense_guide.runs import read_json

    records = sorted((Path(__file__).resolve().parents[1] / "runs").glob("all-smollm2-30min-*/timing.txt"))
    assert records, "falta o registo cronometrado do nox -s all: bash tools/time_nox_all.sh"
    measured = read_json(records[-1].parent / "run.json")["profile"]
    profile = load_profile("smollm2-30min")
    decides = ("model", "batch_size", "grad_accumulation", "max_seq_length", "learning_rate", "lr_schedule", "warmup_steps",
               "epochs", "max_steps", "seed", "mask_prompt", "data")
    assert {key: getattr(profile, key) for key in decides} == {key: measured[key] for key in decides}
    assert profile.lora.__dict__ == measured["lora"]
