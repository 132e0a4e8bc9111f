"""The agreement statistics (dashboard.agreement) against hand-computed cases and reference packages."""
import math

import numpy as np
import pytest

from dashboard import agreement

# Fleiss (1971) as reproduced on Wikipedia's "Fleiss' kappa" page: 10 items, 14 raters, 5 categories.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]


def test_fleiss_kappa_small_case_by_hand():
    # items: (a, a), (b, b), (a, b). p_a = p_b = 1/2 so P_e = 1/2; P_i = 1, 1, 0 so P = 2/3;
    # kappa = (2/3 - 1/2) / (1 - 1/2) = 1/3.
    triples = [(1, "i1", "a"), (2, "i1", "a"), (1, "i2", "b"), (2, "i2", "b"), (1, "i3", "a"), (2, "i3", "b")]
    result = agreement.fleiss_kappa(triples)
    assert result.value == pytest.approx(1 / 3)
    assert (result.items, result.raters, result.ratings) == (3, 2, 6)
    assert "all 3 items" in result.note


def test_fleiss_kappa_textbook_table():
    assert agreement.fleiss_kappa_table(FLEISS_TABLE) == pytest.approx(0.20993, abs=1e-5)


def test_fleiss_kappa_uses_the_modal_number_of_raters_and_says_so():
    triples = []
    for item in range(4):  # four items with 3 raters
        triples += [(r, f"t{item}", "a" if r < 2 else "b") for r in range(3)]
    triples += [(0, "two", "a"), (1, "two", "b")]  # one item with 2 raters, one with 1
    triples += [(0, "one", "tie")]
    result = agreement.fleiss_kappa(triples)
    assert result.items == 4 and result.ratings == 12
    assert "modal number of annotators, 3" in result.note and "4 of 6 items" in result.note
    table = [[2, 1, 0, 0]] * 4
    assert result.value == pytest.approx(agreement.fleiss_kappa_table(table))


def test_fleiss_kappa_matches_statsmodels():
    import statsmodels.stats.inter_rater as irr
    rng = np.random.default_rng(7)
    table = np.array([rng.multinomial(5, [0.5, 0.3, 0.15, 0.05]) for _ in range(40)])
    assert agreement.fleiss_kappa_table(table) == pytest.approx(irr.fleiss_kappa(table, method="fleiss"))
    assert agreement.fleiss_kappa_table(FLEISS_TABLE) == pytest.approx(irr.fleiss_kappa(np.array(FLEISS_TABLE)))


def test_krippendorff_alpha_matches_the_package_and_skips_unpairable_items():
    import krippendorff

    triples = [("r1", 1, "a"), ("r2", 1, "a"), ("r3", 1, "b"),
               ("r1", 2, "tie"), ("r2", 2, "tie"),
               ("r1", 3, "b"), ("r3", 3, "b"),
               ("r2", 4, "both_bad")]  # item 4: one rating, not pairable
    matrix, annotators, items = agreement.reliability_matrix(triples)
    assert matrix.shape == (3, 4) and np.isnan(matrix[2, 1])
    result = agreement.krippendorff_alpha(matrix)
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    assert result.value == pytest.approx(expected)
    assert (result.items, result.ratings, result.raters) == (3, 7, 3)


def test_krippendorff_alpha_by_hand():
    # Two raters, items (a, a), (a, b): coincidences a-a 2, a-b 1, b-a 1, n = 4, n_a = 3, n_b = 1.
    # D_o = 2/4, D_e = 2 * 3 * 1 / (4 * 3) = 1/2, so alpha = 1 - D_o / D_e = 0.
    matrix, _, _ = agreement.reliability_matrix([(1, "x", "a"), (2, "x", "a"), (1, "y", "a"), (2, "y", "b")])
    assert agreement.krippendorff_alpha(matrix).value == pytest.approx(0.0, abs=1e-12)


def test_undefined_agreement_is_explained_not_raised():
    matrix, _, _ = agreement.reliability_matrix([(1, "x", "a"), (2, "x", "a")])
    alpha = agreement.krippendorff_alpha(matrix)
    assert alpha.value is None and "same label" in alpha.note
    single = agreement.krippendorff_alpha(agreement.reliability_matrix([(1, "x", "a")])[0])
    assert single.value is None and single.items == 0
    assert agreement.fleiss_kappa([(1, "x", "a")]).value is None
    assert agreement.fleiss_kappa([(1, "x", "a"), (2, "x", "a")]).value is None
    assert agreement.krippendorff_alpha(np.empty((0, 0))).value is None


def test_majority_agreement_is_leave_one_out():
    triples = [(1, "i", "a"), (2, "i", "a"), (4, "i", "a"), (3, "i", "b"),  # 3 differs from the others' "a"
               (1, "j", "a"), (2, "j", "b"), (3, "j", "tie"),  # no strict majority among any two others
               (1, "k", "a"), (2, "k", "a")]  # two raters only: nothing to compare with
    result = agreement.majority_agreement(triples)
    assert result == {1: (1.0, 1), 2: (1.0, 1), 3: (0.0, 1), 4: (1.0, 1)}
    # with three raters, the one who differs from two agreeing others is measured, the others are not
    assert agreement.majority_agreement([(1, "i", "a"), (2, "i", "a"), (3, "i", "b")]) == {
        1: (None, 0), 2: (None, 0), 3: (0.0, 1)}


def test_annotator_stats():
    rows = [
        agreement.VoteRow("u1", 1, "a", "left", 4.0, None, False),
        agreement.VoteRow("u1", 2, "b", "left", 2.0, True, True),
        agreement.VoteRow("u1", 3, "tie", "tie", 6.0, False, False),
        agreement.VoteRow("u2", 1, "a", "left", None, None, False, live=False),
    ]
    stats = {s.annotator: s for s in agreement.annotator_stats(rows)}
    u1 = stats["u1"]
    assert u1.votes == 3 and u1.median_seconds == 4.0
    assert u1.gold_pass_rate == 0.5 and u1.gold_items == 2
    assert u1.left_share == 1.0 and u1.decisive_live == 2
    assert u1.too_fast_share == pytest.approx(1 / 3)
    assert stats["u2"].left_share is None and stats["u2"].median_seconds is None


def test_most_disagreed_and_disagreement():
    assert agreement.pairwise_disagreement(["a", "a", "a"]) == 0
    assert agreement.pairwise_disagreement(["a", "b", "tie"]) == 1
    assert agreement.pairwise_disagreement(["a", "a", "b"]) == pytest.approx(2 / 3)
    triples = [(1, "x", "a"), (2, "x", "a"), (3, "x", "a"),
               (1, "y", "a"), (2, "y", "b"), (3, "y", "tie"),
               (1, "z", "a"), (2, "z", "b"), (3, "z", "b")]
    ranked = agreement.most_disagreed(triples)
    assert [d.item for d in ranked] == ["y", "z"]  # unanimous x is not listed
    assert ranked[0].counts == {"a": 1, "b": 1, "tie": 1}


def test_histogram_spans_the_marks_and_time_left():
    hist = agreement.histogram([0.1, 0.2, 0.2, 0.3], bins=4, marks=[0.5])
    assert hist["edges"][0] == pytest.approx(0.1) and hist["edges"][-1] == pytest.approx(0.5)
    assert sum(hist["counts"]) == 4 and hist["n"] == 4
    assert agreement.histogram([], bins=3) == {"edges": [], "counts": [], "n": 0}
    assert agreement.histogram([0.2, 0.2], bins=2)["n"] == 2  # zero width does not crash
    assert agreement.seconds_left(0, 10, 5.0) is None
    assert agreement.seconds_left(5, 10, 20.0) == pytest.approx(20.0)
    assert agreement.seconds_left(10, 10, 20.0) == 0.0
    assert not math.isnan(agreement.seconds_left(1, 3, 0.5))


@pytest.mark.parametrize("seed", range(6))
def test_alpha_from_value_counts_equals_alpha_from_the_reliability_matrix(seed):
    import random

    rng = random.Random(seed)
    labels = agreement.LABELS[: 2 + seed % 3]
    triples = [(a, i, rng.choice(labels)) for i in range(40) for a in rng.sample(range(12), rng.randint(1, 5))]
    by_matrix = agreement.krippendorff_alpha(agreement.reliability_matrix(triples)[0])
    by_counts = agreement.krippendorff_alpha_of(triples)
    assert by_counts.value == pytest.approx(by_matrix.value, abs=1e-12)
    assert (by_counts.items, by_counts.raters, by_counts.ratings) == (by_matrix.items, by_matrix.raters,
                                                                        by_matrix.ratings)


def test_alpha_from_value_counts_says_why_it_is_undefined():
    assert agreement.krippendorff_alpha_of([]).value is None
    single = agreement.krippendorff_alpha_of([(1, "x", "a")])
    assert single.value is None and "two or more" in single.note
    same = agreement.krippendorff_alpha_of([(1, "x", "a"), (2, "x", "a")])
    assert same.value is None and "same label" in same.note and same.items == 1
