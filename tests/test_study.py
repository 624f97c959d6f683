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
    assert [path.name for path in written] == ["study.json", "study.csv", "study.png"]


def test_study_without_finished_runs_is_a_pt_error(tmp_path):
    with pytest.raises(FarenseError, match="nenhum run terminado"):
        build_study(tmp_path)
    result = run_cli("study", str(tmp_path))
    assert result.returncode == 2 and "nenhum run terminado" in result.stderr


def test_the_half_hour_profile_is_the_studied_recipe():
    """nox -s all trains smollm2-30min: it must be the recipe the study measured as s130-lr5e-4, in what decides
    the model (the validation and checkpoint cadence and the base's precision on a GPU aside)."""
    from pathlib import Path

    from farense_guide.config import load_profile
    from farense_guide.runs import read_json

    studied = read_json(Path(__file__).resolve().parents[1] / "runs" / "study" / "s130-lr5e-4" / "run.json")["profile"]
    profile = load_profile("smollm2-30min")
    decides = ("model", "batch_size", "grad_accumulation", "max_seq_length", "learning_rate", "lr_schedule", "warmup_steps",
               "epochs", "max_steps", "seed", "mask_prompt", "data")
    assert {key: getattr(profile, key) for key in decides} == {key: studied[key] for key in decides}
    assert profile.lora.__dict__ == studied["lora"]
