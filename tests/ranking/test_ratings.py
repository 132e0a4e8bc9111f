"""Tests of the rating core: hand-computed cases, cross-checks against evalica, scipy, scikit-learn and
Chatbot Arena's own formulas, invariants (zero-sum, intervals), errors, and real PandaLM votes."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ranking import bt as bt_module
from ranking import elo as elo_module
from ranking.__main__ import main as cli_main
from ranking.ratings import (
    Leaderboard,
    LeaderboardRow,
    RatingError,
    bootstrap_bt,
    bootstrap_elo,
    bradley_terry,
    compute_leaderboard,
    confidence_interval,
    elo,
    elo_permutation_average,
    elo_update,
    mle_exists,
    ranks_from_intervals,
    weighted_elo,
    win_matrix,
    win_rate_matrix,
)

DATA = Path(__file__).parent / "data"


def random_votes(n_votes=400, n_systems=6, seed=1, tie_share=0.15):
    """Votes drawn from a Bradley-Terry model with ties, every pair compared."""
    rng = np.random.default_rng(seed)
    strength = rng.normal(0, 1, n_systems)
    a = rng.integers(0, n_systems, n_votes)
    b = (a + rng.integers(1, n_systems, n_votes)) % n_systems
    p = 1 / (1 + np.exp(strength[b] - strength[a]))
    tie = rng.random(n_votes) < tie_share
    score = np.where(tie, 0.5, (rng.random(n_votes) < p).astype(float))
    return a, b, score


def arena_compute_elo(battles, K=4, SCALE=400, BASE=10, INIT_RATING=1000):
    """Chatbot Arena's compute_elo (FastChat elo_analysis.py), on (model_a, model_b, winner) tuples."""
    rating = {}
    for model_a, model_b, winner in battles:
        ra = rating.setdefault(model_a, INIT_RATING)
        rb = rating.setdefault(model_b, INIT_RATING)
        ea = 1 / (1 + BASE ** ((rb - ra) / SCALE))
        eb = 1 / (1 + BASE ** ((ra - rb) / SCALE))
        sa = {"model_a": 1, "model_b": 0, "tie": 0.5, "tie (bothbad)": 0.5}[winner]
        rating[model_a] += K * (sa - ea)
        rating[model_b] += K * (1 - sa - eb)
    return rating


# --- Elo ---------------------------------------------------------------------------------------------

def test_elo_one_vote_by_hand():
    # Equal ratings: expected score 0.5, so the winner gains K/2 = 2 and the loser loses 2.
    assert elo([0], [1], [1.0], 2).tolist() == [1002.0, 998.0]
    assert elo([0], [1], [0.0], 2).tolist() == [998.0, 1002.0]
    assert elo([0], [1], [0.5], 2).tolist() == [1000.0, 1000.0]
    assert elo([0], [1], [1.0], 2, k=32, initial=1500).tolist() == [1516.0, 1484.0]


def test_elo_two_votes_by_hand():
    ratings = elo([0, 0], [1, 1], [1.0, 1.0], 2)
    expected_second = 1 / (1 + 10 ** ((998 - 1002) / 400))  # 1 / (1 + 0.977237) = 0.505756
    gain = 4 * (1 - expected_second)
    assert ratings[0] == pytest.approx(1002 + gain, abs=1e-12)
    assert ratings[1] == pytest.approx(998 - gain, abs=1e-12)
    assert gain == pytest.approx(1.976975, abs=1e-6)


def test_elo_matches_chatbot_arena_compute_elo():
    a, b, score = random_votes(500, 5, seed=3)
    names = [f"m{i}" for i in range(5)]
    label = {1.0: "model_a", 0.0: "model_b", 0.5: "tie"}
    arena = arena_compute_elo([(names[x], names[y], label[s]) for x, y, s in zip(a, b, score, strict=True)])
    ours = elo(a, b, score, 5)
    for i, name in enumerate(names):
        assert ours[i] == pytest.approx(arena[name], abs=1e-9)


@pytest.mark.parametrize("k, scale, base, initial", [(4, 400, 10, 1000), (32, 400, 10, 1500), (16, 173.7, math.e, 0)])
def test_elo_matches_evalica(k, scale, base, initial):
    import evalica
    a, b, score = random_votes(2000, 8, seed=4)
    names = [f"s{i}" for i in range(8)]
    winner_of = {1.0: evalica.Winner.X, 0.0: evalica.Winner.Y, 0.5: evalica.Winner.Draw}
    theirs = evalica.elo(
        [names[i] for i in a], [names[i] for i in b], [winner_of[s] for s in score],
        k=k, scale=scale, base=base, initial=initial, win_weight=1.0, tie_weight=0.5,
    ).scores
    ours = elo(a, b, score, 8, k=k, scale=scale, base=base, initial=initial)
    np.testing.assert_allclose(ours, theirs.reindex(names).to_numpy(), atol=1e-6, rtol=0)


def test_evalica_weights_are_not_separability_weights():
    # evalica multiplies the score, not the step: a weight-0 win still counts as a loss for both sides.
    import evalica
    theirs = evalica.elo(["x"], ["y"], [evalica.Winner.X], weights=[0.0]).scores
    assert theirs["x"] == pytest.approx(998.0)
    assert weighted_elo([0], [1], [1.0], [0.0], 2).tolist() == [1000.0, 1000.0]


def test_elo_update_matches_batch():
    a, b, score = random_votes(200, 4, seed=5)
    weights = np.random.default_rng(5).random(200)
    ratings = [1000.0] * 4
    for x, y, s, w in zip(a, b, score, weights, strict=True):
        ratings[x], ratings[y] = elo_update(ratings[x], ratings[y], s, weight=w)
    np.testing.assert_allclose(ratings, weighted_elo(a, b, score, weights, 4), atol=1e-9)


def test_weighted_elo_with_unit_weights_is_plain_elo():
    a, b, score = random_votes(300, 5, seed=6)
    np.testing.assert_array_equal(weighted_elo(a, b, score, np.ones(300), 5), elo(a, b, score, 5))


def test_weight_zero_vote_changes_nothing():
    a, b, score = random_votes(300, 5, seed=7)
    weights = np.ones(300)
    weights[::3] = 0.0
    keep = weights > 0
    np.testing.assert_allclose(weighted_elo(a, b, score, weights, 5), elo(a[keep], b[keep], score[keep], 5),
                               atol=1e-12)


def test_weighted_elo_scales_the_step():
    assert weighted_elo([0], [1], [1.0], [0.25], 2).tolist() == [1000.5, 999.5]


votes_strategy = st.integers(min_value=2, max_value=7).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(
            st.tuples(
                st.integers(0, n - 1),
                st.integers(1, n - 1),
                st.sampled_from([0.0, 0.5, 1.0]),
                st.floats(0.0, 1.0),
            ),
            min_size=1,
            max_size=60,
        ),
    )
)


@settings(max_examples=60, deadline=None)
@given(votes_strategy, st.sampled_from([4.0, 32.0]))
def test_elo_and_weighted_elo_are_zero_sum(case, k):
    n, votes = case
    a = np.array([v[0] for v in votes])
    b = (a + np.array([v[1] for v in votes])) % n
    score = np.array([v[2] for v in votes])
    weights = np.array([v[3] for v in votes])
    assert elo(a, b, score, n, k=k).sum() == pytest.approx(1000.0 * n, abs=1e-9)
    assert weighted_elo(a, b, score, weights, n, k=k).sum() == pytest.approx(1000.0 * n, abs=1e-9)


def test_python_fallback_loops_match_compiled_loops():
    a, b, score = random_votes(500, 6, seed=8)
    weights = np.random.default_rng(8).random(500)
    picks = np.random.default_rng(9).integers(0, 500, 500).astype(np.int32)
    for w in (np.empty(0), weights):
        compiled, python = np.full(6, 1000.0), np.full(6, 1000.0)
        elo_module._elo_loop(a, b, score, w, compiled, 4.0, 400.0, math.log(10))
        elo_module._run_elo_loop_python(a, b, score, w, python, 4.0, 400.0, math.log(10))
        np.testing.assert_allclose(compiled, python, atol=1e-9)
        for fractional in (False, True):
            s = np.where(score == 0.5, 0.3, score) if fractional else score  # fractional: no cells
            cells = elo_module._Cells(a, b, s, w if len(w) else None, 6)
            compiled, python = np.full(6, 1000.0), np.full(6, 1000.0)
            cells.run(picks, compiled, 4.0, 400.0, math.log(10))
            elo_module._run_elo_picks_python(picks, cells.cell_of_vote, cells.a, cells.b, cells.score, cells.weight,
                                             python, 4.0, 400.0, math.log(10))
            np.testing.assert_allclose(compiled, python, atol=1e-9)
            direct = np.full(6, 1000.0)
            elo_module._run_elo_loop_python(a[picks], b[picks], s[picks], w[picks] if len(w) else w, direct,
                                            4.0, 400.0, math.log(10))
            np.testing.assert_allclose(compiled, direct, atol=1e-9)


def test_elo_bootstrap_and_permutations_are_seeded():
    a, b, score = random_votes(300, 4, seed=10)
    first = bootstrap_elo(a, b, score, 4, rounds=20, seed=3)
    assert first.shape == (20, 4)
    np.testing.assert_array_equal(first, bootstrap_elo(a, b, score, 4, rounds=20, seed=3))
    assert not np.array_equal(first, bootstrap_elo(a, b, score, 4, rounds=20, seed=4))
    average = elo_permutation_average(a, b, score, 4, permutations=10, seed=1)
    np.testing.assert_array_equal(average, elo_permutation_average(a, b, score, 4, permutations=10, seed=1))
    assert average.sum() == pytest.approx(4000.0)


# --- Bradley-Terry -----------------------------------------------------------------------------------

def negative_log_likelihood_fit(a, b, score, n, weights=None):
    """An independent fit: scipy's BFGS on the negative log-likelihood of the log-strengths."""
    from scipy.optimize import minimize

    w = np.ones(len(a)) if weights is None else np.asarray(weights, float)

    def objective(theta):
        d = theta[a] - theta[b]
        p = 1 / (1 + np.exp(-d))
        value = -np.sum(w * (score * np.log(p) + (1 - score) * np.log(1 - p)))
        g_d = -w * (score - p)
        grad = np.bincount(a, g_d, n) - np.bincount(b, g_d, n)
        return value, grad

    result = minimize(objective, np.zeros(n), jac=True, method="BFGS", options={"gtol": 1e-10, "maxiter": 10000})
    theta = result.x - result.x.mean()
    return 1000 + 400 * theta / np.log(10)


@pytest.mark.parametrize("seed", [11, 12])
def test_bt_equals_independent_scipy_fit(seed):
    a, b, score = random_votes(600, 6, seed=seed)
    np.testing.assert_allclose(bradley_terry(a, b, score, 6), negative_log_likelihood_fit(a, b, score, 6), atol=1e-5)


def test_weighted_bt_equals_independent_scipy_fit():
    a, b, score = random_votes(600, 6, seed=13)
    weights = np.random.default_rng(13).random(600)
    np.testing.assert_allclose(
        bradley_terry(a, b, score, 6, weights=weights), negative_log_likelihood_fit(a, b, score, 6, weights), atol=1e-5
    )


def test_bt_weight_multiplies_the_count():
    a, b, score = random_votes(200, 4, seed=14)
    doubled = bradley_terry(np.r_[a, a[:50]], np.r_[b, b[:50]], np.r_[score, score[:50]], 4)
    weights = np.ones(200)
    weights[:50] = 2.0
    np.testing.assert_allclose(bradley_terry(a, b, score, 4, weights=weights), doubled, atol=1e-9)


def test_bt_matches_evalica():
    import evalica
    a, b, score = random_votes(3000, 7, seed=15)
    names = [f"s{i}" for i in range(7)]
    winner_of = {1.0: evalica.Winner.X, 0.0: evalica.Winner.Y, 0.5: evalica.Winner.Draw}
    strengths = evalica.bradley_terry(
        [names[i] for i in a], [names[i] for i in b], [winner_of[s] for s in score],
        win_weight=1.0, tie_weight=0.5, tolerance=1e-13, limit=100_000,
    ).scores.reindex(names).to_numpy()
    theirs = 400 * np.log10(strengths)
    theirs += 1000 - theirs.mean()
    np.testing.assert_allclose(bradley_terry(a, b, score, 7), theirs, atol=1e-6)


def test_bt_reproduces_chatbot_arena_compute_mle_elo():
    """Arena's compute_mle_elo: logistic regression, wins counted twice, ties once each way."""
    import sklearn.linear_model as sklearn
    a, b, score = random_votes(1500, 6, seed=16)
    n = 6
    a_win = np.zeros((n, n))
    tie = np.zeros((n, n))
    b_win = np.zeros((n, n))
    np.add.at(a_win, (a[score == 1], b[score == 1]), 1)
    np.add.at(b_win, (a[score == 0], b[score == 0]), 1)
    np.add.at(tie, (a[score == 0.5], b[score == 0.5]), 1)
    win = a_win * 2 + b_win.T * 2 + tie + tie.T  # ptbl_win in FastChat
    rows, labels, sample_weight = [], [], []
    for i in range(n):
        for j in range(n):
            if i == j or win[i, j] + win[j, i] == 0:
                continue
            x = np.zeros(n)
            x[i], x[j] = math.log(10), -math.log(10)
            rows += [x, x]
            labels += [1.0, 0.0]
            sample_weight += [win[i, j], win[j, i]]
    # Arena passes penalty=None; scikit-learn >= 1.8 spells "no penalty" C=inf.
    model = sklearn.LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-12, max_iter=10_000)
    model.fit(np.array(rows), np.array(labels), sample_weight=np.array(sample_weight))
    arena = 400 * model.coef_[0] + 1000
    assert arena.mean() == pytest.approx(1000, abs=1e-6)  # no intercept: the fit is already centred
    np.testing.assert_allclose(bradley_terry(a, b, score, n), arena, atol=1e-6)


def test_numpy_newton_fallback_matches_compiled_solver():
    a, b, score = random_votes(800, 9, seed=17)
    wins = win_matrix(a, b, score, 9)
    compiled, ok1 = bt_module._newton(wins, np.zeros(9), 1e-12, 100)
    fallback, ok2 = bt_module._newton_numpy(wins, np.zeros(9), 1e-12, 100)
    assert ok1 and ok2
    np.testing.assert_allclose(compiled, fallback, atol=1e-10)


def test_bt_is_finite_when_a_system_never_lost():
    # x beats y and z every time: the MLE puts x at infinity; pseudo-ties keep it finite and on top.
    board = compute_leaderboard(["x", "x", "y", "z"], ["y", "z", "z", "y"], ["a", "a", "a", "a"],
                                method="bt", rounds=30)
    assert board.rows[0].system == "x"
    assert all(math.isfinite(r.rating) and math.isfinite(r.ci_low) for r in board.rows)
    assert any("never lost" in note for note in board.notes)
    assert not mle_exists(win_matrix([0, 0, 1, 2], [1, 2, 2, 1], [1.0] * 4, 3))


def test_bt_bootstrap_multinomial_matches_row_resampling_in_spread():
    # Unweighted votes take the multinomial shortcut; unit weights take the row-resampling path.
    a, b, score = random_votes(800, 5, seed=18)
    shortcut = bootstrap_bt(a, b, score, 5, rounds=300, seed=1)
    rows = bootstrap_bt(a, b, score, 5, weights=np.ones(800), rounds=300, seed=2)
    ratio = shortcut.std(axis=0) / rows.std(axis=0)
    assert np.all((ratio > 0.75) & (ratio < 1.33)), ratio
    point = bradley_terry(a, b, score, 5)
    np.testing.assert_allclose(shortcut.mean(axis=0), point, atol=5)
    np.testing.assert_array_equal(shortcut, bootstrap_bt(a, b, score, 5, rounds=300, seed=1))


# --- Intervals, ranks, matrices ------------------------------------------------------------------------

def test_rank_counts_systems_whose_lower_bound_is_above_my_upper_bound():
    low = np.array([10.0, 5.0, 4.0, 0.0])
    high = np.array([12.0, 11.0, 9.0, 3.0])
    assert ranks_from_intervals(low, high).tolist() == [1, 1, 2, 4]


def test_confidence_interval_is_percentile_and_contains_point():
    samples = np.arange(1, 101, dtype=float)[:, None]
    low, high = confidence_interval(samples)
    assert low[0] == pytest.approx(np.percentile(samples, 2.5))
    assert high[0] == pytest.approx(np.percentile(samples, 97.5))
    low, high = confidence_interval(samples, np.array([200.0]))
    assert high[0] == 200.0


@pytest.mark.parametrize("method", ["elo", "weighted_elo", "bt", "weighted_bt"])
def test_every_interval_contains_its_point_estimate(method):
    a, b, score = random_votes(300, 5, seed=19)
    names = np.array(list("vwxyz"), dtype=object)
    labels = np.array(["b", "tie", "a"], dtype=object)[(score * 2).astype(int)]
    weights = np.random.default_rng(19).random(300)
    board = compute_leaderboard(names[a], names[b], labels, method=method, weights=weights, rounds=50, seed=2)
    for row in board.rows:
        assert row.ci_low <= row.rating <= row.ci_high
    assert [r.rating for r in board.rows] == sorted((r.rating for r in board.rows), reverse=True)


def test_win_rate_and_count_matrices():
    rate, counts = win_rate_matrix([0, 0, 1, 2], [1, 1, 0, 0], [1.0, 0.5, 1.0, 0.0], 3)
    assert counts.tolist() == [[0, 3, 1], [3, 0, 0], [1, 0, 0]]
    assert rate[0, 1] == pytest.approx(1.5 / 3)
    assert rate[1, 0] == pytest.approx(1.5 / 3)
    assert rate[0, 2] == 1.0 and rate[2, 0] == 0.0
    assert math.isnan(rate[1, 2]) and math.isnan(rate[0, 0])


# --- compute_leaderboard -------------------------------------------------------------------------------

def test_leaderboard_shape_and_dict():
    board = compute_leaderboard(["x", "y", "x", "z", "y"], ["y", "z", "z", "x", "x"],
                                ["a", "tie", "b", "a", "both_bad"], method="bt", rounds=20)
    assert isinstance(board, Leaderboard) and isinstance(board.rows[0], LeaderboardRow)
    assert board.systems == [r.system for r in board.rows]
    assert board.votes_used == 5
    assert sum(r.votes for r in board.rows) == 10
    data = board.to_dict()
    assert data["method"] == "bt"
    assert set(data["ratings"][0]) == {"system", "rating", "ci_low", "ci_high", "rank", "votes", "win_rate"}
    json.dumps(board.to_dict(matrices=True))  # JSON-ready, NaN turned into null
    x = board.row("x")
    assert x.win_rate == pytest.approx((1 + 0 + 0 + 0.5) / 4)  # beat y; lost to z twice; both-bad tie with y
    assert board.counts[board.systems.index("x"), board.systems.index("y")] == 2


def test_both_bad_is_a_tie_by_default_or_dropped():
    args = (["x", "x", "y"], ["y", "y", "x"], ["a", "both_bad", "a"])
    as_tie = compute_leaderboard(*args, method="elo", rounds=0)
    explicit = compute_leaderboard(["x", "x", "y"], ["y", "y", "x"], ["a", "tie", "a"], method="elo", rounds=0)
    assert as_tie.ratings() == explicit.ratings()
    dropped = compute_leaderboard(*args, method="elo", rounds=0, both_bad="drop")
    assert dropped.votes_used == 2
    expected = compute_leaderboard(["x", "y"], ["y", "x"], ["a", "a"], method="elo", rounds=0)
    assert dropped.ratings() == expected.ratings()


def test_zero_rounds_gives_point_intervals():
    board = compute_leaderboard(["x", "y"], ["y", "z"], ["a", "a"], method="elo", rounds=0)
    assert all(r.ci_low == r.rating == r.ci_high for r in board.rows)
    assert [r.rank for r in board.rows] == [1, 2, 3]


def test_weighted_methods_use_the_weights():
    plain = compute_leaderboard(["x", "x"], ["y", "y"], ["a", "b"], method="elo", rounds=0)
    weighted = compute_leaderboard(["x", "x"], ["y", "y"], ["a", "b"], method="weighted_elo",
                                   weights=[1.0, 0.0], rounds=0)
    assert plain.row("x").rating < 1000.1
    # Was 1002.0 exactly (the weight-0 vote did nothing); the weight floor (0.05) lets it move K * 0.05 * (1 - E_y)
    # with E_y = 1 / (1 + 10^((1002 - 998) / 400)).
    expected_y = 1 / (1 + 10 ** (4 / 400))
    assert weighted.row("x").rating == pytest.approx(1002.0 - 4 * 0.05 * (1 - expected_y), abs=1e-12)


def test_permutation_average_option():
    # Permutations set the rating only without bootstrap: with rounds the rating is the bootstrap median.
    board = compute_leaderboard(["x", "y", "z", "x"], ["y", "z", "x", "z"], ["a", "a", "b", "tie"],
                                method="elo", rounds=0, permutations=25)
    assert board.point == "Elo averaged over 25 random vote orders, seed 0 (no bootstrap)"
    assert any("25 random vote orders" in note for note in board.notes)
    assert sum(r.rating for r in board.rows) == pytest.approx(3000)


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        (([], [], []), {}, "no votes"),
        ((["x"], ["y"], ["both_bad"]), {"both_bad": "drop"}, "no votes"),
        ((["x", "x"], ["x", "x"], ["a", "b"]), {}, "only one system (x)"),
        ((["x", "y"], ["y", "y"], ["a", "b"]), {}, "vote 2 compares 'y' with itself"),
        ((["a", "c"], ["b", "d"], ["a", "a"]), {},
         "systems form 2 disconnected groups: {a,b} | {c,d}"),
        ((["x"], ["y"], ["left"]), {}, "vote 1: unknown winner 'left'"),
        ((["x"], ["y"], ["a"]), {"method": "weighted_elo"}, "weighted_elo needs one weight per vote"),
        ((["x"], ["y"], ["a"]), {"method": "weighted_bt", "weights": [1.5]}, "vote 1: weight 1.5 is not in [0, 1]"),
        ((["x"], ["y"], ["a"]), {"method": "glicko"}, "unknown method 'glicko'"),
        ((["x"], ["y"], ["a"]), {"both_bad": "loss"}, "both_bad must be 'tie' or 'drop'"),
        # (A weight-0 vote no longer disconnects: the weight floor keeps it. See test_point_and_weight_floor.py.)
        ((["x", "y"], ["y", "z"], ["a", "a"]), {"method": "elo", "rounds": 5, "permutations": 3},
         "permutations set the Elo rating only without bootstrap"),
    ],
)
def test_errors_are_rating_errors_with_clear_messages(args, kwargs, message):
    with pytest.raises(RatingError) as error:
        compute_leaderboard(*args, **{"method": "bt", **kwargs})
    assert message in str(error.value)
    assert isinstance(error.value, ValueError)


@pytest.mark.parametrize("function", [elo, bradley_terry])
def test_low_level_errors(function):
    with pytest.raises(RatingError, match="no votes"):
        function([], [], [], 3)
    with pytest.raises(RatingError, match="only one system"):
        function([0], [0], [1.0], 1)


def test_low_level_bt_names_disconnected_groups_by_index():
    with pytest.raises(RatingError, match=r"systems form 2 disconnected groups: \{0,1\} \| \{2,3\}"):
        bradley_terry([0, 2], [1, 3], [1.0, 0.0], 4)


# --- Real data: PandaLM's human test set -----------------------------------------------------------

def pandalm_votes():
    """All three annotators' labels as votes; label 0 tie, 1 response1 (model1) better, 2 response2 better."""
    system_a, system_b, winner = [], [], []
    with open(DATA / "pandalm_labels.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            model1, model2 = row["cmp_key"].split("_")  # names contain '-' and '.', never '_'
            for key in ("annotator1", "annotator2", "annotator3"):
                system_a.append(model1)
                system_b.append(model2)
                winner.append({"0": "tie", "1": "a", "2": "b"}[row[key]])
    return system_a, system_b, winner


def test_pandalm_bradley_terry_ranks_llama_first_and_cerebras_last():
    system_a, system_b, winner = pandalm_votes()
    assert len(winner) == 2997
    board = compute_leaderboard(system_a, system_b, winner, method="bt")
    assert set(board.systems) == {"llama-7b", "bloom-7b", "cerebras-gpt-6.7B", "opt-7b", "pythia-6.9b"}
    assert board.rows[0].system == "llama-7b" and board.rows[0].rank == 1
    assert board.rows[-1].system == "cerebras-gpt-6.7B" and board.rows[-1].rank == 5
    assert board.rows[0].ci_low > board.rows[1].ci_high  # llama's lead is clear


# --- Command line ------------------------------------------------------------------------------------

def write_votes(path, rows, header="instance_id,system_a,system_b,sample_a,sample_b,winner,annotator"):
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_cli_json_and_table(tmp_path, capsys):
    system_a, system_b, winner = pandalm_votes()
    rows = [f"{i},{x},{y},0,0,{w},ann{i % 3}"
            for i, (x, y, w) in enumerate(zip(system_a, system_b, winner, strict=True))]
    path = write_votes(tmp_path / "votes.csv", rows)
    assert cli_main([str(path), "--json", "--rounds", "20", "--seed", "3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["method"] == "bt" and data["ratings"][0]["system"] == "llama-7b"
    assert cli_main([str(path), "--method", "elo", "--rounds", "5"]) == 0
    table = capsys.readouterr().out
    assert "llama-7b" in table and "95% interval" in table


def test_cli_errors_exit_1_with_one_line(tmp_path, capsys):
    path = write_votes(tmp_path / "votes.csv", ["1,x,y,0,0,maybe,ann"])
    assert cli_main([str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"error: {path}:2: winner: 'maybe' is not one of a, b, tie, both_bad"
    path = write_votes(tmp_path / "votes2.csv", ["1,x,y,0,0,a,ann"])
    assert cli_main([str(path), "--method", "weighted_elo"]) == 1
    assert "weight: missing column" in capsys.readouterr().err


def test_everything_works_without_numba():
    """numba is optional: with it blocked, the pure numpy/Python paths give the same leaderboard."""
    import subprocess
    import sys

    script = (
        "import sys, json; sys.modules['numba'] = None\n"
        "from ranking import elo, bt\n"
        "assert not elo.HAVE_NUMBA and bt._newton is bt._newton_numpy\n"
        "from ranking.ratings import compute_leaderboard\n"
        "args = (['x','y','z','x','y'], ['y','z','x','z','x'], ['a','tie','b','a','b'])\n"
        "out = {m: compute_leaderboard(*args, method=m, weights=[1, .5, .2, 1, .7], rounds=20).to_dict()"
        " for m in ('elo', 'weighted_elo', 'bt', 'weighted_bt')}\n"
        "print(json.dumps(out))\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True)
    without = json.loads(result.stdout)
    args = (["x", "y", "z", "x", "y"], ["y", "z", "x", "z", "x"], ["a", "tie", "b", "a", "b"])
    for method, expected in without.items():
        got = compute_leaderboard(*args, method=method, weights=[1, .5, .2, 1, .7], rounds=20).to_dict()
        for mine, theirs in zip(got["ratings"], expected["ratings"], strict=True):
            assert mine["system"] == theirs["system"]
            for key in ("rating", "ci_low", "ci_high"):
                assert mine[key] == pytest.approx(theirs[key], abs=1e-6)
