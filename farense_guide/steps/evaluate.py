"""Evaluate a run: the fine-tuned adapter against the base model, on the test split.

Generative: greedy answers (mlx-lm's batch generation), scored against the reference with
exact match, token precision/recall/F1 and ROUGE-L (see metrics.py), macro averages with
bootstrap 95% intervals. Discriminative: the mean per-token log-probability the model gives
each question's true answer and K answers of other questions; from those scores a ROC curve,
its AUC, top-1 accuracy and a confusion matrix at a threshold chosen on the validation split.
Also perplexity of the reference answers and the share of out-of-scope questions refused.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from farense_guide import metrics
from farense_guide.chat_template import render
from farense_guide.data.records import read_jsonl
from farense_guide.errors import FarenseError

DISTRACTORS = 4  # wrong answers scored per question
GENERATION_BATCH = 16
SCORING_BATCH = 8


@dataclass
class Item:
    messages: list[dict]  # the conversation up to the question (system, user[, assistant, user])
    reference: str
    kind: str  # "fact" | "out_of_scope"
    item_id: str

    @property
    def question(self) -> str:
        return self.messages[-1]["content"]


def load_items(path: Path, limit: int | None = None) -> list[Item]:
    items = []
    for record in read_jsonl(path):
        meta = record.get("meta", {})
        items.append(Item(record["messages"][:-1], record["messages"][-1]["content"], meta.get("kind", "fact"), meta.get("id", "")))
    return items[:limit] if limit else items


def prompt_tokens(tokenizer, messages: list[dict]) -> list[int]:
    text = render(tokenizer, messages, add_generation_prompt=True)
    return tokenizer.encode(text, add_special_tokens=False)


def generate_answers(model, tokenizer, items: list[Item], max_tokens: int, progress) -> list[str]:
    """Greedy answers, GENERATION_BATCH prompts at a time."""
    from mlx_lm.generate import batch_generate

    answers = []
    for start in range(0, len(items), GENERATION_BATCH):
        chunk = items[start:start + GENERATION_BATCH]
        response = batch_generate(model, tokenizer, [prompt_tokens(tokenizer, i.messages) for i in chunk], max_tokens=max_tokens)
        answers += [text.strip() for text in response.texts]
        progress(len(chunk))
    return answers


def answer_log_probs(model, tokenizer, pairs: list[tuple[list[dict], str]], progress) -> list[tuple[float, int]]:
    """(sum of log-probabilities, token count) of each answer given its conversation, end-of-turn included."""
    import mlx.core as mx

    sequences = []
    for messages, answer in pairs:
        prompt = prompt_tokens(tokenizer, messages)
        full_text = render(tokenizer, messages + [{"role": "assistant", "content": answer}])
        full = tokenizer.encode(full_text.rstrip("\n"), add_special_tokens=False)
        sequences.append((full, len(prompt)))
    results = []
    for start in range(0, len(sequences), SCORING_BATCH):
        chunk = sequences[start:start + SCORING_BATCH]
        width = max(len(tokens) for tokens, _ in chunk)
        batch = mx.array([tokens + [0] * (width - len(tokens)) for tokens, _ in chunk])
        logits = model(batch[:, :-1]).astype(mx.float32)
        log_probs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
        picked = mx.take_along_axis(log_probs, batch[:, 1:, None], axis=-1).squeeze(-1)
        positions = mx.arange(width - 1)[None, :]
        starts = mx.array([offset - 1 for _, offset in chunk])[:, None]
        ends = mx.array([len(tokens) - 1 for tokens, _ in chunk])[:, None]
        mask = (positions >= starts) & (positions < ends)
        sums = (picked * mask).sum(axis=1)
        counts = mask.sum(axis=1)
        mx.eval(sums, counts)
        results += list(zip(sums.tolist(), counts.tolist()))
        progress(len(chunk))
    return results


def candidate_answers(items: list[Item], seed: int = 0) -> list[list[str]]:
    """For each item: its reference first, then DISTRACTORS references of other items (other ids)."""
    rng = random.Random(seed)
    pool = sorted({(i.item_id, i.reference) for i in items})
    candidates = []
    for item in items:
        others = [answer for item_id, answer in pool if item_id != item.item_id and answer != item.reference]
        candidates.append([item.reference] + rng.sample(others, min(DISTRACTORS, len(others))))
    return candidates


def likelihood_scores(model, tokenizer, items: list[Item], progress) -> dict:
    """Mean per-token log-probability of the true answer and of the distractors, per item."""
    candidates = candidate_answers(items)
    pairs = [(item.messages, answer) for item, answers in zip(items, candidates) for answer in answers]
    scored = answer_log_probs(model, tokenizer, pairs, progress)
    scores, labels, groups, top1, true_nll, true_tokens = [], [], [], [], 0.0, 0
    position = 0
    for item_index, answers in enumerate(candidates):
        item_scores = []
        for index, _ in enumerate(answers):
            total, count = scored[position]
            position += 1
            item_scores.append(total / count)
            if index == 0:
                true_nll -= total
                true_tokens += count
        scores += item_scores
        labels += [1] + [0] * (len(answers) - 1)
        groups += [item_index] * len(answers)
        top1.append(float(int(np.argmax(item_scores)) == 0))
    return {"scores": scores, "labels": labels, "groups": groups, "top1": top1, "perplexity": math.exp(true_nll / true_tokens)}


def generative_scores(answers: list[str], items: list[Item]) -> list[dict]:
    rows = []
    for answer, item in zip(answers, items):
        token = metrics.token_scores(answer, item.reference)
        rows.append({"exact_match": metrics.exact_match(answer, item.reference), "precision": token.precision,
                     "recall": token.recall, "f1": token.f1, "rouge_l": metrics.rouge_l(answer, item.reference),
                     "refusal": float(metrics.is_refusal(answer))})
    return rows


def summarise(rows: list[dict], items: list[Item], likelihood: dict, threshold: float) -> dict:
    facts = [r for r, i in zip(rows, items) if i.kind != "out_of_scope"]
    out_of_scope = [r for r, i in zip(rows, items) if i.kind == "out_of_scope"]
    fpr, tpr, _ = metrics.roc_curve(likelihood["scores"], likelihood["labels"])
    summary = {name: metrics.bootstrap_interval([r[name] for r in rows]).as_dict()
               for name in ("exact_match", "precision", "recall", "f1", "rouge_l")}
    summary["refusal_rate_out_of_scope"] = metrics.bootstrap_interval([r["refusal"] for r in out_of_scope]).as_dict()
    summary["refusal_rate_facts"] = metrics.bootstrap_interval([r["refusal"] for r in facts]).as_dict()
    summary["top1_accuracy"] = metrics.bootstrap_interval(likelihood["top1"]).as_dict()
    summary["auc"] = metrics.auc(fpr, tpr)
    summary["auc_interval"] = metrics.bootstrap_auc(likelihood["scores"], likelihood["labels"], likelihood["groups"]).as_dict()
    summary["roc"] = {"fpr": fpr.tolist(), "tpr": tpr.tolist()}
    summary["threshold"] = threshold
    summary["confusion"] = metrics.confusion(likelihood["scores"], likelihood["labels"], threshold).as_dict()
    summary["perplexity"] = likelihood["perplexity"]
    return summary


def load_variant(run_info: dict, adapter: Path | None):
    from farense_guide.config import profile_from_dict
    from farense_guide.inference import load_run_model
    from farense_guide.runs import Backend

    return load_run_model(profile_from_dict(run_info["profile"]), Backend(**run_info["backend"]), adapter)


def loss_gap(run_folder) -> dict:
    """The last training-loss report against the last validation loss (the "overfitting gap")."""
    entries = run_folder.read_metrics()
    train = [m for m in entries if m["type"] == "train"]
    valid = [m for m in entries if m["type"] == "valid"]
    if not train or not valid:
        return {}
    return {"step": valid[-1]["step"], "train_loss": train[-1]["train_loss"], "val_loss": valid[-1]["val_loss"],
            "gap": valid[-1]["val_loss"] - train[-1]["train_loss"]}


def check_trained(run, info: dict) -> None:
    """Refuse a run whose adapter was never trained: the "fine-tuned" model would be the base."""
    if not (run.adapters / "adapters.safetensors").is_file():
        raise FarenseError(f"{run.path}: não há adaptador em {run.adapters}.", f"treine-o primeiro: farense-guide train --resume {run.path}")
    if info.get("status") == "failed_nan" and not info.get("best", {}).get("step"):
        raise FarenseError(f"{run.path}: o treino falhou (perda NaN) antes de qualquer validação; o adaptador não foi treinado.",
                           "comece um run novo com uma taxa de aprendizagem mais baixa (--learning-rate)")


def evaluate_run(run_path: Path, limit: int | None = None, max_tokens: int = 96) -> dict:
    """Evaluate base and fine-tuned on test (threshold from valid); write run/evaluation/."""
    import csv

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from farense_guide.runs import file_sha256
    from farense_guide.runs import RunFolder, write_json

    run = RunFolder(run_path)
    info = run.read_run()
    check_trained(run, info)
    data = Path(info["profile"]["data"])
    limit = limit or info["profile"].get("eval_limit")
    if limit is not None and limit < 2:
        raise FarenseError(f"--limit {limit}: são precisas pelo menos 2 perguntas (as respostas das outras servem de distratores).")
    test, valid = load_items(data / "test.jsonl", limit), load_items(data / "valid.jsonl", limit)
    epochs = sorted(run.adapters.glob("epoch-*"), key=lambda p: int(p.name.split("-")[1]))
    variants = {"base": None, "tuned": run.adapters, **{p.name: p for p in epochs}}
    per_variant = len(test) * (2 + DISTRACTORS) + len(valid) * (1 + DISTRACTORS)
    saved_variants = run.path / "evaluation" / "variants"  # each variant is kept as soon as it is done: a crash loses one
    settings = {"data": {name: file_sha256(data / f"{name}.jsonl") for name in ("test", "valid")}, "limit": limit,
                "max_tokens": max_tokens, "distractors": DISTRACTORS, "backend": info["backend"],
                "code": hashlib.sha256(Path(__file__).read_bytes() + Path(metrics.__file__).read_bytes()).hexdigest()}
    results, answers, evaluated = {}, {}, {}  # evaluated: variant -> adapter sha256 (identical adapters are scored once)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) as bar:
        for name, adapter in variants.items():
            label = {"base": "base", "tuned": "afinado"}.get(name, name.replace("epoch-", "época "))
            task = bar.add_task(f"avaliação ({label})", total=per_variant)

            def advance(n: int, task=task) -> None:
                bar.update(task, advance=n)

            digest = file_sha256(adapter / "adapters.safetensors") if adapter else None
            if same := next((done for done, other in evaluated.items() if other == digest), None):
                results[name], answers[name] = results[same], answers[same]  # e.g. the best adapter is the last epoch's
                bar.update(task, advance=per_variant)
                continue
            evaluated[name] = digest
            saved, key = saved_variants / f"{name}.json", {**settings, "adapter": digest}
            if saved.exists() and (done := json.loads(saved.read_text(encoding="utf-8")))["key"] == key:
                results[name], answers[name] = done["result"], done["answers"]
                bar.update(task, advance=per_variant)
                bar.console.print(f"{label}: já avaliado em {saved}, com os mesmos dados, adaptador e código")
                continue
            model, tokenizer = load_variant(info, adapter)
            validation = likelihood_scores(model, tokenizer, valid, advance)
            threshold = metrics.best_threshold(validation["scores"], validation["labels"])
            answers[name] = generate_answers(model, tokenizer, test, max_tokens, advance)
            rows = generative_scores(answers[name], test)
            results[name] = {"summary": summarise(rows, test, likelihood_scores(model, tokenizer, test, advance), threshold),
                             "rows": rows}
            write_json(saved, {"key": key, "result": results[name], "answers": answers[name]})
            summary = results[name]["summary"]
            bar.console.print(f"{label}: F1 {summary['f1']['mean']:.3f}, AUC {summary['auc']:.3f} (guardado em {saved})")
    folder = run.path / "evaluation"
    folder.mkdir(parents=True, exist_ok=True)
    report = {
        "run": info["name"], "split": "test", "items": len(test), "limit": limit, "max_tokens": max_tokens,
        "data": {name: {"path": str(data / f"{name}.jsonl"), "sha256": file_sha256(data / f"{name}.jsonl")} for name in ("test", "valid")},
        "distractors": DISTRACTORS, "out_of_scope_items": sum(i.kind == "out_of_scope" for i in test),
        "base": results["base"]["summary"], "tuned": results["tuned"]["summary"], "loss_gap": loss_gap(run),
        "epochs": {name.split("-")[1]: results[name]["summary"] for name in variants if name.startswith("epoch-")},
    }
    write_json(folder / "evaluation_report.json", report)
    with open(folder / "predictions.jsonl", "w", encoding="utf-8") as out:
        for index, item in enumerate(test):
            out.write(json.dumps({
                "id": item.item_id, "kind": item.kind, "question": item.question, "reference": item.reference,
                "base_answer": answers["base"][index], "tuned_answer": answers["tuned"][index],
                "base_scores": results["base"]["rows"][index], "tuned_scores": results["tuned"]["rows"][index],
            }, ensure_ascii=False) + "\n")
    with open(folder / "evaluation_summary.csv", "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["metric", "base", "base_ci_low", "base_ci_high", "tuned", "tuned_ci_low", "tuned_ci_high"])
        for metric in ("exact_match", "precision", "recall", "f1", "rouge_l", "top1_accuracy", "refusal_rate_out_of_scope"):
            b, t = report["base"][metric], report["tuned"][metric]
            writer.writerow([metric, *(v if v is not None else "" for v in (b["mean"], b["ci_low"], b["ci_high"],
                                                                                t["mean"], t["ci_low"], t["ci_high"]))])
        b, t = report["base"]["auc_interval"], report["tuned"]["auc_interval"]
        writer.writerow(["auc", b["mean"], b["ci_low"], b["ci_high"], t["mean"], t["ci_low"], t["ci_high"]])
        writer.writerow(["perplexity", report["base"]["perplexity"], "", "", report["tuned"]["perplexity"], "", ""])
    from farense_guide.report import build_report

    build_report(run.path)  # figures, tables and EVALUATION_REPORT.md
    return report
