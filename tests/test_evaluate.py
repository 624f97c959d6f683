"""End-to-end evaluation of a tiny run: files, consistency between JSON, CSV and predictions."""

import csv
import json

from conftest import run_cli


def test_evaluate_a_tiny_run(tmp_path):
    trained = run_cli("train", "--profile", "tiny", "--runs-dir", str(tmp_path), "--run-name", "ev", "--max-steps", "4",
                      "--set", "val_batches=2", "--set", "steps_per_eval=4")
    assert trained.returncode == 0, trained.stderr
    result = run_cli("evaluate", str(tmp_path / "ev"), "--limit", "4", "--max-tokens", "8")
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "ev" / "evaluation"
    report = json.loads((folder / "evaluation_report.json").read_text())
    assert report["items"] == 4 and report["distractors"] == 4
    for name in ("base", "tuned"):
        summary = report[name]
        assert 0 <= summary["f1"]["mean"] <= 1 and 0 <= summary["auc"] <= 1 and summary["perplexity"] > 1
        assert summary["f1"]["ci_low"] <= summary["f1"]["mean"] <= summary["f1"]["ci_high"]
        # 4 questions, each with its true answer and the answers of the 3 other questions
        assert sum(summary["confusion"][k] for k in ("tp", "fp", "tn", "fn")) == 4 * 4
        assert summary["confusion"]["tp"] + summary["confusion"]["fn"] == 4
    predictions = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 4 and {"question", "reference", "base_answer", "tuned_answer"} <= set(predictions[0])
    mean_f1 = sum(p["tuned_scores"]["f1"] for p in predictions) / 4
    assert abs(mean_f1 - report["tuned"]["f1"]["mean"]) < 1e-12
    rows = {row["metric"]: row for row in csv.DictReader((folder / "evaluation_summary.csv").open())}
    assert float(rows["auc"]["tuned"]) == report["tuned"]["auc"]
    assert float(rows["f1"]["base"]) == report["base"]["f1"]["mean"]
    assert report["loss_gap"]["step"] == 4
    assert f"F1 {report['tuned']['f1']['mean']:.3f}" in result.stdout
