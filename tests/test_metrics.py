"""Metric functions against hand-worked cases, SQuAD's reference behaviour and scikit-learn."""

import numpy as np
import pytest

from farense_guide import metrics as m


@pytest.mark.parametrize(
    "text, normalised",
    [
        ("O Farense, é de Faro!", "farense é de faro"),
        ("Do Algarve, à vitória.", "algarve vitória"),
        ("  Os «Leões de Faro»  ", "leões de faro"),
        ("Um golo DA equipa no São Luís", "golo equipa são luís"),
        ("1 de abril de 1910.", "1 de abril de 1910"),
    ],
)
def test_portuguese_normalisation(text, normalised):
    assert m.normalise_answer(text) == normalised


def test_accents_are_kept():
    # «é» (is) and «e» (and) are different words; so are «pé» and «pe».
    assert m.token_scores("o farense é de faro", "o farense e de faro").f1 < 1


def test_token_scores_hand_worked():
    # prediction tokens: farense foi fundado em 1910 (5); reference: farense foi fundado 1 de abril de 1910 (8)
    # shared: farense, foi, fundado, 1910 = 4 -> P = 4/5, R = 4/8, F1 = 2*0.8*0.5/1.3
    scores = m.token_scores("O Farense foi fundado em 1910", "O Farense foi fundado a 1 de abril de 1910.")
    assert scores.precision == pytest.approx(0.8)
    assert scores.recall == pytest.approx(0.5)
    assert scores.f1 == pytest.approx(0.8 / 1.3)


def test_squad_reference_behaviour():
    # shared tokens count with multiplicity, as in the SQuAD v1.1/v2.0 evaluation script
    twice = m.token_scores("golo golo", "golo")
    assert (twice.precision, twice.recall) == (0.5, 1.0) and twice.f1 == pytest.approx(2 / 3)
    assert m.token_scores("", "").f1 == 1.0  # both empty: agree
    assert m.token_scores("o", "golo").f1 == 0.0  # only an article: empty after normalisation
    assert m.token_scores("Benfica", "Farense").f1 == 0.0
    assert m.exact_match("O Farense!", "farense") == 1.0
    assert m.exact_match("Farense de Faro", "Farense") == 0.0


def test_rouge_l_hand_worked():
    # LCS of [farense venceu porto 1 0] and [farense venceu fc porto por 1 0] = 5 tokens
    score = m.rouge_l("O Farense venceu o Porto 1-0", "O Farense venceu o FC Porto por 1-0")
    precision, recall = 5 / 5, 5 / 7
    assert score == pytest.approx(2 * precision * recall / (precision + recall))
    assert m.rouge_l("faro farense", "farense faro") == pytest.approx(0.5)  # order matters, unlike F1
    assert m.token_scores("faro farense", "farense faro").f1 == 1.0


@pytest.mark.parametrize(
    "answer, refusal",
    [
        ("Não sei. Só tenho informação verificada sobre o Farense.", True),
        ("Não tenho essa informação.", True),
        ("O Farense foi fundado em 1910.", False),
        ("Sei que foi campeão em 1982/83.", False),
    ],
)
def test_refusal_detection(answer, refusal):
    assert m.is_refusal(answer) is refusal


def test_auc_matches_scikit_learn_on_random_scores():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    for trial in range(20):
        labels = rng.random(200) < 0.3
        scores = np.round(rng.normal(size=200) + labels * rng.random(), 1)  # rounding makes ties
        fpr, tpr, _ = m.roc_curve(scores, labels)
        assert m.auc(fpr, tpr) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12), trial


def test_roc_and_confusion_hand_worked():
    scores = [0.9, 0.8, 0.8, 0.3, 0.1]
    labels = [1, 1, 0, 1, 0]
    fpr, tpr, thresholds = m.roc_curve(scores, labels)
    assert list(thresholds[1:]) == [0.9, 0.8, 0.3, 0.1]
    assert list(tpr) == pytest.approx([0, 1 / 3, 2 / 3, 1, 1])
    assert list(fpr) == pytest.approx([0, 0, 0.5, 0.5, 1])
    # area: 0.5 * 1/3->2/3 trapezoid + ... = hand: (0.5)*(1/3+2/3)/2 + 0.5*1 = 0.25 + 0.5
    assert m.auc(fpr, tpr) == pytest.approx(0.75)
    c = m.confusion(scores, labels, 0.8)
    assert (c.true_positives, c.false_positives, c.true_negatives, c.false_negatives) == (2, 1, 1, 1)
    assert c.precision == pytest.approx(2 / 3) and c.recall == pytest.approx(2 / 3) and c.accuracy == pytest.approx(0.6)
    assert m.best_threshold(scores, labels) == 0.3  # predicts all three positives with one false positive: F1 0.857


def test_bootstrap_interval():
    values = [0, 1] * 50
    interval = m.bootstrap_interval(values, resamples=4000, seed=1)
    assert interval.mean == 0.5
    assert 0.39 < interval.low < 0.45 and 0.55 < interval.high < 0.61  # about mean +- 1.96 * 0.05
    assert m.bootstrap_interval([0.7] * 10).as_dict() == {"mean": 0.7, "ci_low": 0.7, "ci_high": 0.7}


def test_bootstrap_auc_resamples_whole_questions():
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(60), 5)
    labels = np.tile([1, 0, 0, 0, 0], 60)
    scores = rng.normal(size=300) + 1.5 * labels  # the true answer scores higher, with noise
    interval = m.bootstrap_auc(scores, labels, groups, resamples=500)
    assert interval.mean == m.auc(*m.roc_curve(scores, labels)[:2])
    assert interval.low < interval.mean < interval.high
    assert 0.75 < interval.mean < 0.95 and interval.high - interval.low < 0.2
    perfect = m.bootstrap_auc(labels.astype(float), labels, groups, resamples=50)
    assert (perfect.mean, perfect.low, perfect.high) == (1.0, 1.0, 1.0)
