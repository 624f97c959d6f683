"""Metrics for a chatbot, each defined so the guide can say exactly what was counted.

Generative (answer text against the reference answer), SQuAD-style on tokens after a
normalisation written for Portuguese: exact match, token precision, recall and F1, and
ROUGE-L (longest common subsequence). Discriminative (from likelihood scores of true and
wrong answers): ROC curve, AUC, a confusion matrix at a threshold. Macro averages come
with bootstrap 95% confidence intervals, shares (exact match, top-1, refusals) with Wilson's.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

# Definite and indefinite articles, and their contractions with de/em/a/por: like SQuAD's
# a/an/the, they carry no content, and matching on them would reward filler.
ARTICLES = {
    "o", "a", "os", "as", "um", "uma", "uns", "umas",
    "do", "da", "dos", "das", "no", "na", "nos", "nas", "ao", "aos", "à", "às",
    "pelo", "pela", "pelos", "pelas", "num", "numa", "nuns", "numas", "dum", "duma", "duns", "dumas",
}
REFUSAL = re.compile(r"\bnão (sei|tenho)\b", re.IGNORECASE)


def normalise_answer(text: str) -> str:
    """Lowercase, no punctuation, no articles or article contractions, single spaces; accents kept."""
    text = unicodedata.normalize("NFC", text.lower())
    text = "".join(" " if unicodedata.category(c).startswith("P") or c in "«»" else c for c in text)
    return " ".join(word for word in text.split() if word not in ARTICLES)


def answer_tokens(text: str) -> list[str]:
    return normalise_answer(text).split()


def exact_match(prediction: str, reference: str) -> float:
    return float(normalise_answer(prediction) == normalise_answer(reference))


@dataclass
class TokenScores:
    precision: float
    recall: float
    f1: float


def token_scores(prediction: str, reference: str) -> TokenScores:
    """SQuAD's token overlap: shared tokens counted with multiplicity; two empty answers agree."""
    predicted, expected = answer_tokens(prediction), answer_tokens(reference)
    if not predicted or not expected:
        same = float(predicted == expected)
        return TokenScores(same, same, same)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return TokenScores(0.0, 0.0, 0.0)
    precision, recall = common / len(predicted), common / len(expected)
    return TokenScores(precision, recall, 2 * precision * recall / (precision + recall))


def longest_common_subsequence(a: list[str], b: list[str]) -> int:
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if token == other else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1: the longest common subsequence of normalised tokens, as precision and recall."""
    predicted, expected = answer_tokens(prediction), answer_tokens(reference)
    if not predicted or not expected:
        return float(predicted == expected)
    lcs = longest_common_subsequence(predicted, expected)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(predicted), lcs / len(expected)
    return 2 * precision * recall / (precision + recall)


def is_refusal(text: str) -> bool:
    """Does the answer say «não sei» / «não tenho (essa) informação»?"""
    return bool(REFUSAL.search(text))


@dataclass
class Interval:
    mean: float
    low: float
    high: float

    def as_dict(self) -> dict:
        """JSON-ready; an empty sample (NaN) becomes null."""
        clean = {"mean": self.mean, "ci_low": self.low, "ci_high": self.high}
        return {k: None if v != v else v for k, v in clean.items()}


def bootstrap_interval(values, resamples: int = 2000, seed: int = 0, confidence: float = 0.95) -> Interval:
    """Mean and percentile bootstrap interval of the mean (resampling items with replacement)."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    return Interval(float(data.mean()), float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail)))


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> Interval:
    """The share successes/trials and Wilson's score interval (Wilson 1927): unlike a bootstrap's, it does not collapse
    to [0; 0] or run past [0; 1] when the share is 0 or 1, or the items are few (12 out-of-scope questions)."""
    if trials == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    share = successes / trials
    centre = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials))
    return Interval(share, max(0.0, centre - half), min(1.0, centre + half))


def bootstrap_auc(scores, labels, groups, resamples: int = 2000, seed: int = 0, confidence: float = 0.95) -> Interval:
    """AUC and a percentile bootstrap interval, resampling questions (a question's true answer and its distractors together)."""
    scores, labels, groups = np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool), np.asarray(groups)
    members = [np.nonzero(groups == g)[0] for g in np.unique(groups)]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        picked = np.concatenate([members[i] for i in rng.integers(0, len(members), size=len(members))])
        if labels[picked].all() or not labels[picked].any():
            continue  # a resample with one class has no ROC curve
        values.append(auc(*roc_curve(scores[picked], labels[picked])[:2]))
    tail = (1 - confidence) / 2 * 100
    return Interval(auc(*roc_curve(scores, labels)[:2]), float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail)))


def roc_curve(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rates, true positive rates, thresholds), one point per distinct score, ties together."""
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool)
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        raise ValueError("a curva ROC precisa de exemplos positivos e negativos")
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    last_of_tie = np.r_[np.nonzero(np.diff(scores))[0], scores.size - 1]
    true_positives = np.cumsum(labels)[last_of_tie]
    false_positives = (last_of_tie + 1) - true_positives
    fpr = np.r_[0.0, false_positives / negatives]
    tpr = np.r_[0.0, true_positives / positives]
    thresholds = np.r_[np.inf, scores[last_of_tie]]
    return fpr, tpr, thresholds


def auc(fpr, tpr) -> float:
    """Area under a curve by the trapezoid rule."""
    return float(np.trapezoid(tpr, fpr))


@dataclass
class Confusion:
    true_positives: int
    false_positives: int
    true_negatives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        predicted = self.true_positives + self.false_positives
        return self.true_positives / predicted if predicted else 0.0

    @property
    def recall(self) -> float:
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def accuracy(self) -> float:
        total = self.true_positives + self.false_positives + self.true_negatives + self.false_negatives
        return (self.true_positives + self.true_negatives) / total if total else 0.0

    def as_dict(self) -> dict:
        return {"tp": self.true_positives, "fp": self.false_positives, "tn": self.true_negatives, "fn": self.false_negatives,
                "precision": self.precision, "recall": self.recall, "f1": self.f1, "accuracy": self.accuracy}


def confusion(scores, labels, threshold: float) -> Confusion:
    """Predict "true answer" when score >= threshold, and count against the labels."""
    predicted = np.asarray(scores, dtype=float) >= threshold
    actual = np.asarray(labels, dtype=bool)
    return Confusion(int((predicted & actual).sum()), int((predicted & ~actual).sum()),
                     int((~predicted & ~actual).sum()), int((~predicted & actual).sum()))


def best_threshold(scores, labels) -> float:
    """The score threshold with the highest F1 (chosen on validation, then applied to test)."""
    candidates = np.unique(np.asarray(scores, dtype=float))
    return float(max(candidates, key=lambda t: (confusion(scores, labels, t).f1, -t)))
