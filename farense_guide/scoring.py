"""What one model (a variant: the base, or the base with an adapter) scores on the evaluation questions.

Generative: its greedy answers against the references (exact match, token precision/recall/F1,
ROUGE-L, refusals; see metrics.py). Discriminative: the mean per-token log-probability it gives each
question's true answer and DISTRACTORS answers of other questions; from those a ROC curve, its AUC,
top-1 accuracy and a confusion matrix at the threshold chosen on the validation split. Also the
perplexity of the reference answers.

Each test question's row keeps its own scores (the generative ones, top-1 and the candidates'
log-probabilities), so that two variants or two runs can be compared question by question
(paired.py). A variant's saved result is keyed on this module's code, metrics.py and inference.py
(evaluate.variant_settings): what is here decides the numbers; what only reports them is elsewhere.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from farense_guide import metrics
from farense_guide.data.records import read_jsonl
from farense_guide.inference import Progress, answer_log_probs, greedy_answers, load_run_model
from farense_guide.runs import RunInfo

DISTRACTORS = 4  # wrong answers scored per question


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


def candidate_answers(items: list[Item], seed: int = 0) -> list[list[str]]:
    """For each item: its reference first, then DISTRACTORS references of other items (other ids)."""
    rng = random.Random(seed)
    pool = sorted({(i.item_id, i.reference) for i in items})
    candidates = []
    for item in items:
        others = [answer for item_id, answer in pool if item_id != item.item_id and answer != item.reference]
        candidates.append([item.reference] + rng.sample(others, min(DISTRACTORS, len(others))))
    return candidates


def likelihood_scores(model, tokenizer, items: list[Item], progress: Progress) -> dict:
    """Mean per-token log-probability of the true answer and of the distractors: flat (scores, labels, groups) for the
    ROC curve, and per item (candidates: the true answer's first; top1: whether it scored highest)."""
    candidates = candidate_answers(items)
    scored = answer_log_probs(model, tokenizer, [(item.messages, answers) for item, answers in zip(items, candidates)], progress)
    scores, labels, groups, per_item, top1, true_nll, true_tokens = [], [], [], [], [], 0.0, 0
    for item_index, (answers, answer_scores) in enumerate(zip(candidates, scored)):
        item_scores = [total / count for total, count in answer_scores]
        true_nll -= answer_scores[0][0]
        true_tokens += answer_scores[0][1]
        scores += item_scores
        per_item.append(item_scores)
        labels += [1] + [0] * (len(answers) - 1)
        groups += [item_index] * len(answers)
        top1.append(float(int(np.argmax(item_scores)) == 0))
    return {"scores": scores, "labels": labels, "groups": groups, "candidates": per_item, "top1": top1,
            "perplexity": math.exp(true_nll / true_tokens)}


def generative_scores(answers: list[str], items: list[Item]) -> list[dict]:
    rows = []
    for answer, item in zip(answers, items):
        token = metrics.token_scores(answer, item.reference)
        rows.append({"exact_match": metrics.exact_match(answer, item.reference), "precision": token.precision,
                     "recall": token.recall, "f1": token.f1, "rouge_l": metrics.rouge_l(answer, item.reference),
                     "refusal": float(metrics.is_refusal(answer))})
    return rows


def proportion(values: list[float]) -> dict:
    """A share of 0/1 values with Wilson's interval, which stays honest on a dozen items where a bootstrap does not."""
    return metrics.wilson_interval(int(sum(values)), len(values)).as_dict()


def summarise(rows: list[dict], items: list[Item], likelihood: dict, threshold: float) -> dict:
    """Means with 95% intervals: bootstrap for the graded scores, Wilson for the shares (EM, top-1, refusals)."""
    facts = [r for r, i in zip(rows, items) if i.kind != "out_of_scope"]
    out_of_scope = [r for r, i in zip(rows, items) if i.kind == "out_of_scope"]
    fpr, tpr, _ = metrics.roc_curve(likelihood["scores"], likelihood["labels"])
    summary = {"exact_match": proportion([r["exact_match"] for r in rows])}
    summary.update({name: metrics.bootstrap_interval([r[name] for r in rows]).as_dict() for name in ("precision", "recall", "f1", "rouge_l")})
    summary["refusal_rate_out_of_scope"] = proportion([r["refusal"] for r in out_of_scope])
    summary["refusal_rate_facts"] = proportion([r["refusal"] for r in facts])
    summary["top1_accuracy"] = proportion(likelihood["top1"])
    summary["auc"] = metrics.auc(fpr, tpr)
    summary["auc_interval"] = metrics.bootstrap_auc(likelihood["scores"], likelihood["labels"], likelihood["groups"]).as_dict()
    summary["roc"] = {"fpr": fpr.tolist(), "tpr": tpr.tolist()}
    summary["threshold"] = threshold
    summary["confusion"] = metrics.confusion(likelihood["scores"], likelihood["labels"], threshold).as_dict()
    summary["perplexity"] = likelihood["perplexity"]
    return summary


def score_variant(info: RunInfo, adapter: Path | None, test: list[Item], valid: list[Item], max_tokens: int,
                  advance: Progress) -> tuple[dict, list[str]]:
    """One variant's result ({"summary", "rows"}) and its answers: threshold on valid, then answers and scores on test.
    A row is one test question's scores: the generative ones, top1 and its candidates' mean log-probabilities."""
    model, tokenizer = load_run_model(info.profile, info.backend, adapter)
    validation = likelihood_scores(model, tokenizer, valid, advance)
    threshold = metrics.best_threshold(validation["scores"], validation["labels"])
    answers = greedy_answers(model, tokenizer, [item.messages for item in test], max_tokens, advance)
    likelihood = likelihood_scores(model, tokenizer, test, advance)
    rows = [{**row, "top1": top1, "candidates": candidates}
            for row, top1, candidates in zip(generative_scores(answers, test), likelihood["top1"], likelihood["candidates"])]
    summary = summarise(rows, test, likelihood, threshold)
    return {"summary": summary, "rows": rows}, answers
