"""A tiny run evaluated end to end: JSON, CSV, predictions, figures and tables that agree."""

import csv
import json
import re
from pathlib import Path

import pytest

from conftest import run_cli

from farense_guide.pt_format import pt

FIGURES = {"loss_curves.png", "throughput_memory.png", "metrics_overview.png", "paired_differences.png", "epoch_analysis.png", "confusion_matrix.png",
           "roc_curve.png", "token_lengths.png"}


def test_report_json_csv_and_predictions_agree(evaluated_run):
    run, stdout = evaluated_run
    folder = run / "evaluation"
    report = json.loads((folder / "evaluation_report.json").read_text())
    assert report["items"] == 6 and set(report["epochs"]) == {"1", "2"}
    for name in ("base", "tuned", *(report["epochs"][e] for e in report["epochs"])):
        summary = report[name] if isinstance(name, str) else name
        assert 0 <= summary["auc"] <= 1 and summary["perplexity"] > 1
        interval = summary["auc_interval"]
        assert interval["mean"] == summary["auc"] and interval["ci_low"] <= summary["auc"] <= interval["ci_high"]
        assert summary["f1"]["ci_low"] <= summary["f1"]["mean"] <= summary["f1"]["ci_high"]
        assert summary["confusion"]["tp"] + summary["confusion"]["fn"] == 6
        assert sum(summary["confusion"][k] for k in ("tp", "fp", "tn", "fn")) == 6 * 5
    predictions = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 6 and {"question", "reference", "base_answer", "tuned_answer"} <= set(predictions[0])
    assert sum(p["tuned_scores"]["f1"] for p in predictions) / 6 == pytest.approx(report["tuned"]["f1"]["mean"], abs=1e-12)
    for variant in ("base", "tuned"):  # each question keeps what a paired comparison needs
        scores = [p[f"{variant}_scores"] for p in predictions]
        assert all(len(s["candidates"]) == 5 and s["top1"] == float(s["candidates"][0] == max(s["candidates"])) for s in scores)
        assert sum(s["top1"] for s in scores) / 6 == pytest.approx(report[variant]["top1_accuracy"]["mean"], abs=1e-12)
    from farense_guide import paired

    # The paired comparison comes from the per-question scores alone: predictions.jsonl re-makes it.
    assert paired.paired_report([p["base_scores"] for p in predictions], [p["tuned_scores"] for p in predictions],
                                [p["kind"] for p in predictions], "base", "tuned") == report["paired"]
    rows = {row["metric"]: row for row in csv.DictReader((folder / "evaluation_summary.csv").open())}
    assert float(rows["f1"]["paired_difference"]) == report["paired"]["metrics"]["f1"]["difference"]
    assert rows["top1_accuracy"]["paired_test"] == "McNemar exato" and rows["perplexity"]["paired_p_value"] == ""
    assert float(rows["auc"]["tuned"]) == report["tuned"]["auc"]
    assert float(rows["f1"]["base"]) == report["base"]["f1"]["mean"]
    assert f"F1 {report['tuned']['f1']['mean']:.3f}" in stdout


def numbers(text):
    """The numbers of a pt-PT table: «1 234,56» -> 1234.56."""
    found = re.findall(r"[-+−]?\d{1,3}(?: \d{3})*,\d+", text)
    return [float(n.replace(" ", "").replace(",", ".").replace("−", "-")) for n in found]


def test_every_number_in_the_tables_is_the_json(evaluated_run):
    run, _ = evaluated_run
    report = json.loads((run / "evaluation" / "evaluation_report.json").read_text())
    table = (run / "tables" / "evaluation.md").read_text()
    expected = []
    for key in ("exact_match", "precision", "recall", "f1", "rouge_l", "top1_accuracy", "refusal_rate_out_of_scope"):
        for variant in ("base", "tuned"):
            interval = report[variant][key]
            if interval["mean"] is not None:
                expected += [interval["mean"], interval["ci_low"], interval["ci_high"]]
    for variant in ("base", "tuned"):
        expected += [report[variant]["auc_interval"][key] for key in ("mean", "ci_low", "ci_high")]
    expected += [report["base"]["perplexity"], report["tuned"]["perplexity"]]
    for key in ("precision", "recall", "f1"):
        expected += [report["base"]["confusion"][key], report["tuned"]["confusion"][key]]
    for difference in report["paired"]["metrics"].values():  # tuned - base, its interval and p-value
        expected += [difference["difference"], difference["ci_low"], difference["ci_high"], max(difference["p_value"], 0.001)]
    found = numbers(table.split("\n\n")[0])
    assert sorted(found) == pytest.approx(sorted(expected), abs=0.006)  # printed to 3 (perplexity: 2) decimals
    epochs = numbers((run / "tables" / "epochs.md").read_text())
    assert epochs[:4] == pytest.approx([report["base"]["f1"]["mean"], report["base"]["rouge_l"]["mean"],
                                        report["base"]["top1_accuracy"]["mean"], report["base"]["auc"]], abs=5e-4)
    training = (run / "tables" / "training.md").read_text()
    info = json.loads((run / "run.json").read_text())
    assert pt(info["best"]["val_loss"], 3) in training and pt(info["throughput"]["tokens_per_second"], 1) in training
    assert (run / "evaluation" / "EVALUATION_REPORT.md").read_text().count("![") == len(FIGURES)


def test_every_figure_is_made_and_a_second_report_does_nothing(evaluated_run):
    from PIL import Image

    run, _ = evaluated_run
    assert {p.name for p in (run / "figures").glob("*.png")} == FIGURES
    for path in (run / "figures").glob("*.png"):
        width, height = Image.open(path).size
        assert 600 <= width <= 1400 and 400 <= height <= 1000, (path.name, width, height)
    before = {p: p.stat().st_mtime_ns for p in (run / "figures").glob("*.png")}
    forced = run_cli("report", str(run), "--force")
    assert forced.returncode == 0 and "ficheiros gerados" in forced.stdout
    assert all(p.stat().st_mtime_ns > before[p] for p in before)


def test_each_variant_is_kept_as_it_is_done_and_not_scored_again(evaluated_run, tmp_path, monkeypatch):
    import shutil

    from farense_guide import scoring
    from farense_guide.steps import evaluate

    run, _ = evaluated_run
    copy = tmp_path / "ev"
    shutil.copytree(run, copy)
    assert {p.name for p in (copy / "evaluation" / "variants").glob("*.json")} >= {"base.json", "tuned.json", "epoch-1.json"}

    def no_model(*args):
        raise AssertionError("a variant already evaluated was loaded again")

    monkeypatch.setattr(scoring, "load_run_model", no_model)
    before = json.loads((run / "evaluation" / "evaluation_report.json").read_text())
    assert evaluate.evaluate_run(copy, max_tokens=8) == before
    with pytest.raises(AssertionError, match="loaded again"):  # other settings: the saved variants do not count
        evaluate.evaluate_run(copy, max_tokens=9)


def single_turn_items(run):
    """The test questions the evaluation answered that are one question after the system prompt, with their predictions."""
    from farense_guide.scoring import load_items

    info = json.loads((run / "run.json").read_text())
    predictions = [json.loads(line) for line in (run / "evaluation" / "predictions.jsonl").read_text().splitlines()]
    items = load_items(Path(info["profile"]["data"]) / "test.jsonl", len(predictions))
    pairs = [(item, p) for item, p in zip(items, predictions) if [m["role"] for m in item.messages] == ["system", "user"]]
    assert len(pairs) >= 3 and all(item.item_id == p["id"] for item, p in pairs)
    return pairs


def test_chat_answers_as_the_evaluated_model_did(evaluated_run, capsys):
    """`chat --adapter <run>` gives, word for word, the answers evaluate scored (same model, prompt and greedy generation)."""
    from farense_guide.inference import stream_answer
    from farense_guide.steps.chat import chat, chat_models

    run, _ = evaluated_run
    max_tokens = json.loads((run / "evaluation" / "evaluation_report.json").read_text())["max_tokens"]
    pairs = single_turn_items(run)
    for item, prediction in pairs:
        system, question = (m["content"] for m in item.messages)
        chat("smollm2", run, question, system, max_tokens, compare_base=False)
        assert capsys.readouterr().out.strip() == prediction["tuned_answer"], item.item_id
    (_, (base, tokenizer)), _ = chat_models("smollm2", run / "adapters", compare_base=True)
    for item, prediction in pairs:
        assert stream_answer(base, tokenizer, item.messages, max_tokens).strip() == prediction["base_answer"], item.item_id


def quantized_layers(model) -> int:
    import mlx.nn as nn

    return sum(isinstance(m, nn.QuantizedLinear) for _, m in model.named_modules())


def test_chat_puts_the_adapter_on_the_base_as_the_run_trained_it(evaluated_run, tmp_path):
    """A run trained on a 4-bit base dequantized to float32 (the CPU's LoRA) chats on that float32 base, not on the 4-bit
    folder; a QLoRA run keeps the 4 bits; an adapter without its run.json takes this device's default (float32 on the CPU)."""
    import shutil

    from farense_guide.inference import default_device, trained_base_folder
    from farense_guide.runs import RunFolder
    from farense_guide.steps.chat import chat_models

    run, _ = evaluated_run
    copy = tmp_path / "ev-4bit"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("evaluation", "figures", "tables"))
    info = json.loads((copy / "run.json").read_text())
    info["profile"]["model"] = "tiny-4bit"
    for base_bits, method, expected in ((None, "LoRA (base em float32)", 0), (4, "QLoRA (base a 4 bits)", 14)):  # 2 layers x 7
        info["backend"].update(base_bits=base_bits, method=method)
        (copy / "run.json").write_text(json.dumps(info))
        [(_, (model, _))] = chat_models("smollm2", copy / "adapters" / "epoch-1", compare_base=False)
        assert quantized_layers(model) == expected, base_bits
        # the folder that mlx_lm.server or mlx_lm.generate would load holds the same base
        run_info = RunFolder(copy).read_info()
        folder = trained_base_folder(run_info.profile, run_info.backend)
        assert ("quantization" in json.loads((folder / "config.json").read_text())) == (base_bits is not None)

    alone = tmp_path / "adapter-alone"
    shutil.copytree(run / "adapters", alone, ignore=shutil.ignore_patterns("epoch-*", "last"))
    config = json.loads((alone / "adapter_config.json").read_text())
    (alone / "adapter_config.json").write_text(json.dumps({**config, "model": "tiny-4bit"}))
    [(_, (model, _))] = chat_models("smollm2", alone, compare_base=False)
    assert quantized_layers(model) == (14 if default_device() == "gpu" else 0)


def whole_sequence_log_probs(model, tokenizer, messages, answer):
    """The plain way, one sequence per forward pass: the summed log-probability of the answer's tokens, and their count."""
    import mlx.core as mx

    from farense_guide.inference import answer_sequence

    tokens, offset = answer_sequence(tokenizer, messages, answer)
    logits = model(mx.array(tokens)[None])[0].astype(mx.float32)
    log_probs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
    picked = [log_probs[position - 1, tokens[position]].item() for position in range(offset, len(tokens))]
    return sum(picked), len(picked)


def test_shared_prompt_scoring_and_generation_equal_the_plain_way(evaluated_run):
    """Candidates scored on one shared prompt cache, in length batches across questions, give each sequence's own
    forward pass's numbers (within 1e-4); batch generation on the shared system prompt gives each question's own
    greedy answer."""
    from farense_guide import inference
    from farense_guide.runs import RunFolder
    from farense_guide.scoring import candidate_answers
    from farense_guide.steps.evaluate import evaluation_items

    run, _ = evaluated_run
    info = RunFolder(run).read_info()
    test, valid = evaluation_items(info, None)
    model, tokenizer = inference.load_run_model(info.profile, info.backend, run / "adapters")
    items = test + valid
    candidates = candidate_answers(items)
    scored = inference.answer_log_probs(model, tokenizer, [(item.messages, answers) for item, answers in zip(items, candidates)])
    for item, answers, results in zip(items, candidates, scored):
        for answer, (total, count) in zip(answers, results):
            plain_total, plain_count = whole_sequence_log_probs(model, tokenizer, item.messages, answer)
            assert count == plain_count and total == pytest.approx(plain_total, abs=1e-4), (item.item_id, answer)
    answers = inference.greedy_answers(model, tokenizer, [item.messages for item in items], max_tokens=12)
    alone = [inference.stream_answer(model, tokenizer, item.messages, max_tokens=12).strip() for item in items]
    assert answers == alone


def test_the_base_model_is_evaluated_once_for_every_run_on_the_same_data(evaluated_run, tmp_path, monkeypatch):
    """A second run with the same model, data, settings and code takes the base's result from its neighbour."""
    import shutil

    from farense_guide import scoring
    from farense_guide.steps import evaluate

    run, _ = evaluated_run
    runs = tmp_path / "runs"
    shutil.copytree(run, runs / "first")
    shutil.copytree(run, runs / "second")
    (runs / "second" / "evaluation" / "variants" / "base.json").unlink()
    loaded = []

    def load_run_model(profile, backend, adapter):
        loaded.append(adapter)
        raise AssertionError("loaded")

    monkeypatch.setattr(scoring, "load_run_model", load_run_model)
    evaluate.evaluate_run(runs / "second", max_tokens=8)
    assert loaded == [] and (runs / "second" / "evaluation" / "variants" / "base.json").is_file()
    (runs / "second" / "evaluation" / "variants" / "tuned.json").unlink()
    with pytest.raises(AssertionError, match="loaded"):  # an adapter's result is never taken from another run
        evaluate.evaluate_run(runs / "second", max_tokens=8)
    assert loaded == [runs / "second" / "adapters"]
