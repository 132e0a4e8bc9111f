"""Agreement, kappa and the biases against independent computations: scikit-learn's cohen_kappa_score,
and small fixtures counted by hand."""
import random

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from judges.metrics import (
    JudgeAnswer,
    JudgedComparison,
    agreement_and_kappa,
    bootstrap_mean,
    judge_report,
    majority_label,
    position_bias,
    side_bias,
)
from judges.verdicts import Verdict

FIRST, SECOND, TIE = Verdict.FIRST, Verdict.SECOND, Verdict.TIE


@pytest.mark.parametrize("seed", range(6))
def test_kappa_and_agreement_equal_scikit_learn_and_a_plain_count(seed):
    rng = random.Random(seed)
    n = rng.randint(5, 300)
    human = [rng.choice("ab") if rng.random() < 0.8 else "tie" for _ in range(n)]
    judge = [h if rng.random() < 0.6 else rng.choice(["a", "b", "tie"]) for h in human]
    agreement, kappa = agreement_and_kappa(human, judge, rounds=0)
    assert agreement.value == pytest.approx(sum(h == j for h, j in zip(human, judge, strict=True)) / n)
    assert kappa.value == pytest.approx(cohen_kappa_score(human, judge, labels=["a", "b", "tie"]))
    assert agreement.n == kappa.n == n


def test_kappa_by_hand():
    """10 comparisons: human a a a a a b b b tie tie, judge a a a b tie b b a tie b.
    Agreement 6/10. Marginals human (5, 3, 2), judge (4, 4, 2): p_e = (20 + 12 + 4) / 100 = 0.36,
    kappa = (0.6 - 0.36) / 0.64 = 0.375."""
    human = list("aaaaabbb") + ["tie", "tie"]
    judge = ["a", "a", "a", "b", "tie", "b", "b", "a", "tie", "b"]
    agreement, kappa = agreement_and_kappa(human, judge, rounds=0)
    assert agreement.value == pytest.approx(0.6)
    assert kappa.value == pytest.approx(0.375)


def test_kappa_is_undefined_when_both_raters_give_one_label_only():
    agreement, kappa = agreement_and_kappa(["a"] * 4, ["a"] * 4, rounds=50)
    assert agreement.value == 1.0
    assert kappa.value is None and kappa.low is None


def test_bootstrap_interval_is_the_percentiles_of_resampled_means():
    values = [1.0] * 30 + [0.0] * 70
    estimate = bootstrap_mean(values, rounds=400, seed=3)
    drawn = np.random.default_rng(3).integers(0, 100, size=(400, 100))
    means = np.asarray(values)[drawn].mean(axis=1)
    assert estimate.value == pytest.approx(0.3)
    assert (estimate.low, estimate.high) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])))
    assert estimate.low < 0.3 < estimate.high
    assert estimate.n == 100


def test_agreement_interval_brackets_the_point():
    rng = random.Random(0)
    human = [rng.choice("ab") for _ in range(200)]
    judge = [h if rng.random() < 0.7 else ("b" if h == "a" else "a") for h in human]
    agreement, kappa = agreement_and_kappa(human, judge, rounds=300)
    assert agreement.low < agreement.value < agreement.high
    assert kappa.low < kappa.value < kappa.high


def test_majority_label_needs_a_unique_most_frequent_label():
    assert majority_label(["a", "a", "b"]) == "a"
    assert majority_label(["a", "b"]) is None
    assert majority_label(["tie", "a", "tie", "b"]) == "tie"
    assert majority_label([]) is None


def test_position_bias_counts_decisive_verdicts_only():
    """7 first, 3 second, 5 ties: 7 / 10 first-position wins."""
    estimate = position_bias([FIRST] * 7 + [SECOND] * 3 + [TIE] * 5, rounds=0)
    assert estimate.value == pytest.approx(0.7)
    assert estimate.n == 10


def test_side_bias_compares_the_judge_and_the_humans_on_the_same_comparisons():
    """The longer side is a in all four: the judge gives it a, a, tie, b (2.5 / 4), the humans a, b, b, b (1 / 4)."""
    rows = [("a", "a", "a"), ("a", "b", "a"), ("tie", "b", "a"), ("b", "b", "a")]
    bias = side_bias(rows, rounds=0)
    assert bias.judge.value == pytest.approx(0.625)
    assert bias.human.value == pytest.approx(0.25)
    assert bias.difference.value == pytest.approx(0.375)
    assert bias.judge.n == bias.human.n == bias.difference.n == 4


def comparison(human, *answers, lengths=(None, None), own=None):
    return JudgedComparison(human, tuple(JudgeAnswer(first_is_a, verdict) for first_is_a, verdict in answers),
                            lengths[0], lengths[1], own)


def test_report_from_a_scripted_judge_counted_by_hand():
    """Five comparisons, each judged in both orders (first_is_a True, then False):

    c1 human a:   A first -> first (a), B first -> second (a): consistent a; longer a; own side a
    c2 human b:   A first -> first (a), B first -> first (b): inconsistent -> tie; longer b
    c3 human a:   A first -> second (b), B first -> first (b): consistent b; longer b; own side b
    c4 human tie: A first -> tie, B first -> unparseable: tie; equal lengths
    c5 no human:  A first -> first (a), B first -> second (a): consistent a (no human label)

    agreement: c1 yes, c2 no (tie vs b), c3 no, c4 yes -> 2 / 4.
    position consistency over pairs with both orders parsed: c1, c2, c3, c5 -> 3 / 4.
    position bias: the decisive answers are first, second (c1), first, first (c2), second, first (c3),
    first, second (c5): first 5, second 3 -> 5 / 8.
    length bias (comparisons with both labels and unequal lengths: c1, c2, c3): longer a, b, b; judge labels
    a, tie, b -> 1 + 0.5 + 1 = 2.5 / 3; humans a, b, a -> 1 + 1 + 0 = 2 / 3.
    self-preference (c1, c3): own a, b; judge a, b -> 1; humans a, a -> (1 + 0) / 2 = 0.5.
    """
    items = [
        comparison("a", (True, FIRST), (False, SECOND), lengths=(50, 10), own="a"),
        comparison("b", (True, FIRST), (False, FIRST), lengths=(10, 50)),
        comparison("a", (True, SECOND), (False, FIRST), lengths=(5, 9), own="b"),
        comparison("tie", (True, TIE), (False, None), lengths=(7, 7)),
        comparison(None, (True, FIRST), (False, SECOND), lengths=(1, 2)),
    ]
    report = judge_report(items, judge_model_in_study=True, rounds=0)
    assert report.answers == 10
    assert report.unparseable == 1
    assert report.agreement.value == pytest.approx(0.5) and report.agreement.n == 4
    assert report.position_consistency.value == pytest.approx(0.75) and report.position_consistency.n == 4
    assert report.position_bias.value == pytest.approx(5 / 8) and report.position_bias.n == 8
    assert report.length_bias.judge.value == pytest.approx(2.5 / 3)
    assert report.length_bias.human.value == pytest.approx(2 / 3)
    assert report.length_bias.judge.n == 3
    assert report.self_preference is not None
    assert report.self_preference.judge.value == pytest.approx(1.0)
    assert report.self_preference.human.value == pytest.approx(0.5)
    assert report.confusion["b"]["tie"] == 1 and report.confusion["a"]["b"] == 1


def test_a_judge_that_answered_nothing_parseable_has_no_figures():
    items = [comparison("a", (True, None), (False, None)) for _ in range(3)]
    report = judge_report(items, rounds=100)
    assert report.answers == 6 and report.unparseable == 6
    assert report.agreement.value is None and report.agreement.n == 0
    assert report.position_bias.n == 0 and report.position_consistency.n == 0
    assert report.self_preference is None
