"""Two models on the same questions: is the second better than the first, and by how much.

Both answer the same test questions, so their scores are paired: how hard a question is weighs on
both, and cancels in the difference. Comparing each model's own interval throws that away; two
intervals can overlap while the difference is clearly more than chance (tests/test_paired.py holds
such a case). Here, for each metric, the second model minus the first:

- the mean difference, with a paired bootstrap 95% interval (one resample of questions for both
  models) and a p-value from the same resamples, centred on "no difference";
- for yes/no scores (exact match, top-1, refusing an out-of-scope question) the p-value is McNemar's
  exact test instead: only the questions where the two models disagree count;
- for the AUC, the bootstrap resamples whole questions with their candidate answers (the candidates
  of one question are not independent of each other, which DeLong's test assumes).

"Better" means p < ALPHA; the interval says by how much.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from farense_guide import metrics

RESAMPLES = 2000
CONFIDENCE = 0.95
ALPHA = 0.05
GRADED = ("precision", "recall", "f1", "rouge_l")  # 0 to 1 per question
YES_NO = {"exact_match": "exact_match", "top1_accuracy": "top1"}  # compared name: row field (0 or 1 per question)
BOOTSTRAP, MCNEMAR = "bootstrap emparelhado", "McNemar exato"


@dataclass
class PairedDifference:
    first: float  # the first model's mean (or AUC)
    second: float
    difference: float  # second - first
    ci_low: float
    ci_high: float
    p_value: float
    test: str  # BOOTSTRAP or MCNEMAR
    items: int  # questions compared
    only_first: int | None = None  # yes/no scores: questions only the first model got right
    only_second: int | None = None

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA

    def as_dict(self) -> dict:
        return {**asdict(self), "significant": self.significant}


def resampled_questions(count: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, count) question indices drawn with replacement: the same draw serves both models."""
    return np.random.default_rng(seed).integers(0, count, size=(resamples, count))


def bootstrap_p_value(observed: float, resampled: np.ndarray) -> float:
    """Two-sided: how often a resampled difference, centred on zero, is at least as far from it as the observed one.
    (1 + hits) / (1 + resamples), so it is never 0 from a finite number of resamples."""
    hits = int(np.sum(np.abs(resampled - observed) >= abs(observed) - 1e-12))
    return (1 + hits) / (1 + resampled.size)


def percentile_interval(resampled: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    return float(np.percentile(resampled, tail)), float(np.percentile(resampled, 100 - tail))


def paired_bootstrap(first, second, resamples: int = RESAMPLES, seed: int = 0, confidence: float = CONFIDENCE) -> PairedDifference:
    """Mean of second - first over the questions, its paired bootstrap interval and p-value."""
    first, second = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    differences = second - first
    resampled = differences[resampled_questions(differences.size, resamples, seed)].mean(axis=1)
    low, high = percentile_interval(resampled, confidence)
    return PairedDifference(float(first.mean()), float(second.mean()), float(differences.mean()), low, high,
                            bootstrap_p_value(float(differences.mean()), resampled), BOOTSTRAP, differences.size)


def unpaired_bootstrap(first, second, resamples: int = RESAMPLES, seed: int = 0, confidence: float = CONFIDENCE) -> metrics.Interval:
    """The interval of mean(second) - mean(first) with each model's questions resampled on their own, as if the two had
    answered different questions: the wrong test for paired scores, kept to show what the pairing buys."""
    first, second = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    draws = np.random.default_rng(seed)
    resampled = (second[draws.integers(0, second.size, size=(resamples, second.size))].mean(axis=1)
                 - first[draws.integers(0, first.size, size=(resamples, first.size))].mean(axis=1))
    return metrics.Interval(float(second.mean() - first.mean()), *percentile_interval(resampled, confidence))


def holm_rejections(p_values: list[float], alpha: float = ALPHA) -> int:
    """How many of several tests stay "better or worse" after Holm's correction for testing many at once: the k-th
    smallest p must be below alpha / (tests − k + 1), and the first that is not stops the count."""
    tests = len(p_values)
    for rank, p_value in enumerate(sorted(p_values)):
        if p_value >= alpha / (tests - rank):
            return rank
    return tests


def mcnemar_exact(first, second) -> tuple[int, int, float]:
    """(questions only the first got right, only the second, two-sided exact p-value): under "no difference" each
    disagreement goes either way with probability 1/2, so the smaller count is a binomial tail, doubled."""
    first, second = np.asarray(first, dtype=bool), np.asarray(second, dtype=bool)
    only_first, only_second = int(np.sum(first & ~second)), int(np.sum(~first & second))
    disagreements = only_first + only_second
    tail = sum(math.comb(disagreements, k) for k in range(min(only_first, only_second) + 1)) / 2 ** disagreements
    return only_first, only_second, min(1.0, 2 * tail)


def paired_yes_no(first, second, resamples: int = RESAMPLES, seed: int = 0, confidence: float = CONFIDENCE) -> PairedDifference:
    """The difference of two shares on the same questions: bootstrap interval, McNemar's exact p-value."""
    difference = paired_bootstrap(first, second, resamples, seed, confidence)
    only_first, only_second, p_value = mcnemar_exact(first, second)
    return PairedDifference(difference.first, difference.second, difference.difference, difference.ci_low, difference.ci_high,
                            p_value, MCNEMAR, difference.items, only_first, only_second)


def candidates_auc(candidates: list[list[float]]) -> float:
    """The AUC of questions' candidate scores, each question's true answer first."""
    scores = [score for question in candidates for score in question]
    labels = [index == 0 for question in candidates for index in range(len(question))]
    return metrics.auc(*metrics.roc_curve(scores, labels)[:2])


def paired_auc(first: list[list[float]], second: list[list[float]], resamples: int = RESAMPLES, seed: int = 0,
               confidence: float = CONFIDENCE) -> PairedDifference:
    """AUC of second - first, resampling whole questions (each with its candidates), the same ones for both."""
    observed = candidates_auc(second) - candidates_auc(first)
    resampled = np.array([candidates_auc([second[i] for i in draw]) - candidates_auc([first[i] for i in draw])
                          for draw in resampled_questions(len(first), resamples, seed)])
    low, high = percentile_interval(resampled, confidence)
    return PairedDifference(candidates_auc(first), candidates_auc(second), observed, low, high,
                            bootstrap_p_value(observed, resampled), BOOTSTRAP, len(first))


def compare_rows(first: list[dict], second: list[dict], kinds: list[str]) -> dict[str, PairedDifference]:
    """Every paired comparison the two models' per-question rows allow (rows of scoring.score_variant, same questions
    in the same order; kinds: each question's "fact" or "out_of_scope"), named as in a variant's summary. Rows from
    before top-1 and the candidates were kept per question give the generative metrics only."""
    compared = {name: paired_yes_no([r[field] for r in first], [r[field] for r in second])
                for name, field in YES_NO.items() if field in first[0] and field in second[0]}
    compared.update({name: paired_bootstrap([r[name] for r in first], [r[name] for r in second]) for name in GRADED})
    out_of_scope = [index for index, kind in enumerate(kinds) if kind == "out_of_scope"]
    if out_of_scope:
        compared["refusal_rate_out_of_scope"] = paired_yes_no([first[i]["refusal"] for i in out_of_scope], [second[i]["refusal"] for i in out_of_scope])
    if "candidates" in first[0] and "candidates" in second[0]:
        compared["auc"] = paired_auc([r["candidates"] for r in first], [r["candidates"] for r in second])
    order = ("exact_match", *GRADED, "top1_accuracy", "auc", "refusal_rate_out_of_scope")
    return {name: compared[name] for name in order if name in compared}


def paired_report(first: list[dict], second: list[dict], kinds: list[str], first_name: str, second_name: str) -> dict:
    """The JSON of a comparison: which is which, how it was tested, and each metric's PairedDifference."""
    return {"first": first_name, "second": second_name, "difference": f"{second_name} - {first_name}", "alpha": ALPHA,
            "resamples": RESAMPLES, "confidence": CONFIDENCE, "items": len(first),
            "metrics": {name: result.as_dict() for name, result in compare_rows(first, second, kinds).items()}}
