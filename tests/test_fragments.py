"""guide/_generated from a run: values equal the run's JSON, pt-PT formatting, skip when unchanged."""

import json

import pytest

from conftest import ROOT

from farense_guide.book import fragments
from farense_guide.errors import FarenseError
from farense_guide.book.markdown_values import substitute
from farense_guide.pt_format import pt_interval, pt_mean_interval


def test_numbers_are_written_the_portuguese_way():
    assert fragments.pt(1234.5, 1) == "1 234,5"
    assert fragments.pt(0.4567, 3) == "0,457"
    assert fragments.pt(None) == "—"
    assert fragments.pt_scientific(2.8e10) == "2,8 × 10¹⁰"
    assert fragments.pt_date("2026-11-25T15:46:24+0000") == "25 de novembro de 2026"
    assert fragments.duration(30) == "1 min" and fragments.duration(6300) == "1 h 45 min"
    interval = {"mean": 0.5734, "ci_low": 0.5123, "ci_high": 0.6}
    assert pt_interval(interval) == "[0,512; 0,600]" and pt_mean_interval(interval) == "0,573 [0,512; 0,600]"


def test_placeholders_are_replaced_and_unknown_names_name_the_line():
    values = {"run.name": "ref", "eval.tuned.f1": "0,500"}
    assert substitute(["O run [[run.name]] tem F1 [[eval.tuned.f1]].", "[1, [2]]"], values) == ["O run ref tem F1 0,500.", "[1, [2]]"]
    with pytest.raises(FarenseError, match=r"cap\.md:2: valor desconhecido \[\[run\.nada\]\]"):
        substitute(["ok", "o [[run.nada]]"], values, "cap.md")


def test_compute_bound_of_a_7b_model_on_an_m1():
    values = fragments.compute_values(ROOT / "data" / "stats" / "stats.json")
    assert values["compute.max_tokens_per_second"] == fragments.pt(2.6e12 / (4 * 7e9), 0)
    stats = json.loads((ROOT / "data" / "stats" / "stats.json").read_text())
    assert values["compute.train_tokens"] == fragments.pt(stats["splits"]["train"]["tokens_total"], 0)


def test_memory_table_is_the_estimator_for_the_m1_profile():
    from farense_guide.memory import GB, ModelShape
    from farense_guide.memory import estimate_for
    from farense_guide.config import load_profile

    table, values = fragments.memory_table()
    profile = load_profile("m1-16gb")
    estimate, _ = estimate_for(profile, ModelShape.from_config(profile.model_shape), True)
    assert values["memory.profile.total_gb"] == fragments.pt(estimate.total / GB, 1)
    assert fragments.pt(estimate.total / GB, 2) in table.splitlines()[2]


def test_generate_takes_every_value_from_the_run_and_skips_when_unchanged(evaluated_run, tmp_path):
    run, _ = evaluated_run
    output = tmp_path / "_generated"
    written = fragments.generate(run, output)
    assert {p.name for p in written} >= {"values.json", "run_banner.md", "evaluation.md", "memory_m1.md", "loss_curves.png"}
    values = json.loads((output / "values.json").read_text(encoding="utf-8"))
    info = json.loads((run / "run.json").read_text())
    report = json.loads((run / "evaluation" / "evaluation_report.json").read_text())
    assert values["run.steps_done"] == str(info["steps_done"])
    assert values["run.kind"] == "demonstração"
    assert values["eval.tuned.f1"] == fragments.pt(report["tuned"]["f1"]["mean"], 3)
    assert values["eval.base.auc"] == fragments.pt(report["base"]["auc"], 3)
    assert (output / "evaluation.md").read_text() == (run / "tables" / "evaluation.md").read_text()
    assert "demonstração" in (output / "run_banner.md").read_text()
    assert fragments.generate(run, output) == []
    assert len(fragments.generate(run, output, force=True)) == len(written)


def test_without_a_reference_run_the_error_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FarenseError, match="runs/reference"):
        fragments.choose_run(None)
    with pytest.raises(FarenseError, match="run.json"):
        fragments.choose_run(tmp_path)


def test_the_fuse_fragment_quotes_the_run_check_or_says_there_is_none(tmp_path):
    run = tmp_path / "r"
    assert "farense-guide fuse" in fragments.fuse_fragment(run)[0] and fragments.fuse_fragment(run)[1] == {}
    check = {"max_tokens": 96, "dtype": "float32", "passed": True, "tolerance": {"min_match": 0.9, "max_f1_drop": 0.02},
             "comparison": {"items": 130, "identical": 127, "match_share": 127 / 130, "f1_drop": 0.004,
                            "f1_adapter": {"mean": 0.4567}, "f1_fused": {"mean": 0.4527}}}
    (run / "fuse_check").mkdir(parents=True)
    (run / "fuse_check" / "fuse_check.json").write_text(json.dumps(check))
    table, values = fragments.fuse_fragment(run)
    assert "| em float32 | 127 de 130 (97,7 %) | 0,457 | 0,453 | 0,004 | passou |" in table
    assert values["fuse.identical"] == "127" and values["fuse.match_share"] == "97,7"
    (run / "fuse_check-4bit").mkdir()
    (run / "fuse_check-4bit" / "fuse_check.json").write_text(json.dumps({**check, "passed": False}))
    table, values = fragments.fuse_fragment(run)
    assert "| re-quantizado a 4 bits | 127 de 130" in table and table.rstrip().count("| falhou |") == 1
    assert values["fuse4.items"] == "130"


def test_a_run_is_compared_with_the_reference_question_by_question(evaluated_run, tmp_path):
    import shutil

    run, _ = evaluated_run
    reference = tmp_path / "reference"
    shutil.copytree(run, reference)
    lines = fragments.reference_comparison(run, reference)
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| métrica") and not line.startswith("| ---")]
    assert len(rows) >= 7 and all(row.endswith("| sem diferença detetável |") for row in rows)  # a run against itself
    assert "| F1 (tokens) |" in "\n".join(rows) and f"`{run.name}`" in lines[1]
    predictions = reference / "evaluation" / "predictions.jsonl"
    perfect = [{**row, "tuned_scores": {**row["tuned_scores"], "f1": 1.0}} for row in map(json.loads, predictions.read_text().splitlines())]
    predictions.write_text("".join(json.dumps(row) + "\n" for row in perfect))
    row = next(line for line in fragments.reference_comparison(run, reference) if line.startswith("| F1 (tokens) |"))
    mean_f1 = json.loads((run / "evaluation" / "evaluation_report.json").read_text())["tuned"]["f1"]["mean"]
    assert row.startswith(f"| F1 (tokens) | 1,000 | {fragments.pt(mean_f1, 3)} | {fragments.pt_signed(mean_f1 - 1, 3)} [")
    assert fragments.reference_comparison(run, tmp_path / "absent") == []


def test_the_gpu_table_has_one_row_per_id_with_both_runs():
    reference, gpu = ROOT / "runs" / "reference", ROOT / "runs" / "reference-cuda"
    table, values = fragments.gpu_comparison(reference, gpu)
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    assert len(rows) == 1 + len(fragments.GPU_ROWS)
    mine, theirs = (json.loads((run / "run.json").read_text()) for run in (reference, gpu))
    steps = next(row for row in rows if row.startswith("| passos |"))
    assert steps == (f"| passos | {mine['steps_done']} de {mine['iterations']['full_steps']} "
                     f"| {theirs['steps_done']} de {theirs['iterations']['full_steps']} |")
    assert values["gpu.run.name"] == "reference-cuda" and values["gpu.eval.tuned.f1"] in next(r for r in rows if "F1 do modelo afinado" in r)
