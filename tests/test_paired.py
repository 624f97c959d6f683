"""Paired comparisons against reference implementations on fixed inputs: a plain numpy loop, scipy's binomial test and
Wilson interval, and a brute-force AUC."""

import numpy as np
import pytest
from scipy import stats

from farense_guide import metrics, paired


def test_paired_bootstrap_is_a_plain_loop_over_resampled_questions():
    rng = np.random.default_rng(7)
    first, second = rng.uniform(size=40), rng.uniform(size=40)
    result = paired.paired_bootstrap(first, second, resamples=500, seed=3)

    draws = np.random.default_rng(3)
    differences = []
    for _ in range(500):  # one draw of questions, used for both models
        picked = draws.integers(0, 40, size=40)
        differences.append(second[picked].mean() - first[picked].mean())
    differences = np.array(differences)
    observed = second.mean() - first.mean()
    assert result.difference == pytest.approx(observed, abs=1e-12)
    assert (result.ci_low, result.ci_high) == pytest.approx((np.percentile(differences, 2.5), np.percentile(differences, 97.5)), abs=1e-12)
    extreme = sum(abs(d - observed) >= abs(observed) for d in differences)
    assert result.p_value == pytest.approx((1 + extreme) / 501, abs=1e-12)
    assert (result.first, result.second, result.items) == (pytest.approx(first.mean()), pytest.approx(second.mean()), 40)


@pytest.mark.parametrize("only_first,only_second,same", [(0, 0, 10), (3, 9, 20), (1, 12, 5), (7, 7, 0), (0, 6, 30), (25, 40, 3)])
def test_mcnemar_is_the_exact_binomial_test_on_the_disagreements(only_first, only_second, same):
    first = [1] * only_first + [0] * only_second + [1] * same
    second = [0] * only_first + [1] * only_second + [1] * same
    counted_first, counted_second, p_value = paired.mcnemar_exact(first, second)
    assert (counted_first, counted_second) == (only_first, only_second)
    disagreements = only_first + only_second
    expected = stats.binomtest(only_second, disagreements, 0.5).pvalue if disagreements else 1.0
    assert p_value == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("successes,trials", [(0, 12), (1, 12), (6, 12), (12, 12), (37, 130), (0, 1)])
def test_wilson_interval_matches_scipy(successes, trials):
    interval = metrics.wilson_interval(successes, trials)
    expected = stats.binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    assert interval.mean == successes / trials
    assert (interval.low, interval.high) == pytest.approx((expected.low, expected.high), abs=1e-12)


def test_wilson_interval_for_no_refusal_in_twelve_is_not_a_point():
    """A bootstrap of 0 out of 12 gives [0; 0]; Wilson gives [0; 0.2425] (by hand: z²/(n+z²) with z = 1.96)."""
    assert metrics.bootstrap_interval([0.0] * 12).high == 0.0
    assert metrics.wilson_interval(0, 12).high == pytest.approx(1.959964**2 / (12 + 1.959964**2), abs=1e-6)


def brute_force_auc(candidates):
    """P(a true answer outscores a wrong one), ties counting one half, over every pair of the whole set."""
    positives = [q[0] for q in candidates]
    negatives = [s for q in candidates for s in q[1:]]
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def test_paired_auc_against_brute_force_and_a_plain_loop():
    rng = np.random.default_rng(11)
    first = [list(np.round(rng.normal(size=5) + [1.0, 0, 0, 0, 0], 1)) for _ in range(25)]  # rounded: ties happen
    second = [list(np.round(rng.normal(size=5) + [2.0, 0, 0, 0, 0], 1)) for _ in range(25)]
    assert paired.candidates_auc(first) == pytest.approx(brute_force_auc(first), abs=1e-12)
    result = paired.paired_auc(first, second, resamples=200, seed=5)
    assert result.difference == pytest.approx(brute_force_auc(second) - brute_force_auc(first), abs=1e-12)

    draws = np.random.default_rng(5)
    differences = []
    for _ in range(200):
        picked = draws.integers(0, 25, size=25)
        differences.append(brute_force_auc([second[i] for i in picked]) - brute_force_auc([first[i] for i in picked]))
    assert (result.ci_low, result.ci_high) == pytest.approx((np.percentile(differences, 2.5), np.percentile(differences, 97.5)), abs=1e-9)
    assert result.significant and result.ci_low > 0


def test_overlapping_intervals_with_a_significant_paired_difference():
    """Questions differ a lot in difficulty and the second model is a little better on nearly every one: each model's
    own interval is wide and the two overlap, but the paired difference is clearly not chance."""
    rng = np.random.default_rng(0)
    difficulty = rng.uniform(0.1, 0.9, size=130)
    first = np.clip(difficulty + rng.normal(0, 0.02, size=130), 0, 1)
    second = np.clip(difficulty + 0.04 + rng.normal(0, 0.02, size=130), 0, 1)
    first_interval, second_interval = metrics.bootstrap_interval(first), metrics.bootstrap_interval(second)
    assert second_interval.low < first_interval.high  # the two separate intervals overlap
    result = paired.paired_bootstrap(first, second)
    assert result.significant and result.p_value < 0.001 and result.ci_low > 0


def test_no_difference_is_not_significant():
    scores = np.random.default_rng(1).uniform(size=50)
    result = paired.paired_bootstrap(scores, scores)
    assert result.difference == 0 and result.p_value == 1.0 and not result.significant
    assert paired.mcnemar_exact([1, 0, 1], [1, 0, 1]) == (0, 0, 1.0)


def test_compare_rows_uses_what_both_have():
    rows = [{"exact_match": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0, "rouge_l": 1.0, "refusal": 0.0},
            {"exact_match": 0.0, "precision": 0.5, "recall": 0.2, "f1": 0.3, "rouge_l": 0.3, "refusal": 1.0}]
    with_likelihood = [{**row, "top1": 1.0, "candidates": [-0.5, -1.0, -2.0]} for row in rows]
    old = paired.compare_rows(rows, with_likelihood, ["fact", "out_of_scope"])
    assert list(old) == ["exact_match", "precision", "recall", "f1", "rouge_l", "refusal_rate_out_of_scope"]
    new = paired.compare_rows(with_likelihood, with_likelihood, ["fact", "out_of_scope"])
    assert list(new) == ["exact_match", "precision", "recall", "f1", "rouge_l", "top1_accuracy", "auc", "refusal_rate_out_of_scope"]
    assert new["exact_match"].test == paired.MCNEMAR and new["f1"].test == paired.BOOTSTRAP
    assert new["refusal_rate_out_of_scope"].items == 1


def test_compare_two_runs_on_their_common_questions(evaluated_run, tmp_path):
    import json
    import shutil

    from conftest import run_cli

    run, _ = evaluated_run
    first, second = tmp_path / "a", tmp_path / "b"
    shutil.copytree(run, first)
    shutil.copytree(run, second)
    predictions = second / "evaluation" / "predictions.jsonl"
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    before = [row["tuned_scores"]["f1"] for row in rows[:-1]]
    for row in rows:  # B's fine-tuned model gets every question exactly right
        row["tuned_scores"].update(exact_match=1.0, precision=1.0, recall=1.0, f1=1.0, rouge_l=1.0)
    predictions.write_text("".join(json.dumps(row) + "\n" for row in rows[:-1]))  # and was evaluated on one question fewer

    result = run_cli("compare", str(first), str(second), "--json", str(tmp_path / "c.json"))
    assert result.returncode == 0, result.stderr
    saved = json.loads((tmp_path / "c.json").read_text())
    assert saved["items"] == saved["questions"]["common"] == len(rows) - 1 and saved["questions"]["first"] == len(rows)
    assert saved["metrics"]["f1"]["difference"] == pytest.approx(1 - np.mean(before), abs=1e-12)
    assert saved["metrics"]["auc"]["difference"] == 0 and not saved["metrics"]["auc"]["significant"]
    assert "F1 (tokens)" in result.stdout and "sem diferença detetável" in result.stdout

    report = second / "evaluation" / "evaluation_report.json"
    changed = json.loads(report.read_text())
    changed["data"]["test"]["sha256"] = "0" * 64
    report.write_text(json.dumps(changed))
    refused = run_cli("compare", str(first), str(second))
    assert refused.returncode == 2 and "ficheiros de teste diferentes" in refused.stderr


def test_holm_keeps_the_smallest_p_values_while_each_stays_below_its_share_of_alpha():
    from farense_guide.paired import holm_rejections

    # sorted 0.005 < 0.05/4, 0.01 < 0.05/3, then 0.03 ≥ 0.05/2 stops the count, though 0.04 < 0.05
    assert holm_rejections([0.04, 0.01, 0.03, 0.005]) == 2
    assert holm_rejections([0.001, 0.002]) == 2 and holm_rejections([0.06, 0.001]) == 1 and holm_rejections([]) == 0
    assert holm_rejections([0.03, 0.03], alpha=0.05) == 0  # 0.03 ≥ 0.05/2: a plain p < 0.05 would count both
