"""The adaptive policy's pure parts (ranking.adaptive, ranking.simulate) and bench/selection.py's, on tiny
cases: an undecided pair gains more from a vote than a decided one, a pair's queued votes lower its next
gain, every unit keeps a place in the serving order, and the simulations count votes to a target."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from ranking.adaptive import fit_posterior, pair_gain, separability_factor, unit_gains, unit_priorities
from ranking.bt import win_matrix
from ranking.simulate import ReplayPool, SyntheticPool, evenly_spread, plan, run_policy, votes_to_reach

ROOT = Path(__file__).resolve().parents[2]


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_selection", ROOT / "bench" / "selection.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def three_systems_posterior():
    """0 and 1 split 10-10, both beat 2 in 20 of 20."""
    a = [0] * 20 + [0] * 20 + [1] * 20
    b = [1] * 20 + [2] * 20 + [2] * 20
    score = [1.0] * 10 + [0.0] * 10 + [1.0] * 40
    return fit_posterior(win_matrix(a, b, score, 3))


def test_an_undecided_pair_gains_more_from_a_vote_than_a_decided_one():
    posterior = three_systems_posterior()
    assert posterior.p_wrong([0], [1])[0] > 0.3 and posterior.p_wrong([0], [2])[0] < 0.01
    gains = unit_gains(posterior, [0, 0, 1], [1, 2, 2], [np.nan] * 3, [1, 1, 1])
    assert gains[0] > 10 * gains[1] and gains[0] > 10 * gains[2]


def test_a_full_comparison_gains_nothing_and_separability_scales_the_gain():
    posterior = three_systems_posterior()
    gains = unit_gains(posterior, [0, 0, 0], [1, 1, 1], [0.9, 0.3, 0.9], [1, 1, 0])
    assert gains[2] == 0.0
    assert gains[0] > gains[1] > 0  # the better separated unit first, and the other after one queued vote
    assert separability_factor([np.nan, -0.5, 2.0]).tolist() == [0.525, 0.05, 1.0]  # unknown: the known median
    assert separability_factor([np.nan, np.nan]).tolist() == [1.0, 1.0]  # none known: only uncertainty acts


def test_each_queued_vote_lowers_the_next_votes_gain():
    gains = pair_gain(np.zeros(4), np.ones(4), queued=np.arange(4))
    assert np.all(np.diff(gains) < 0) and gains[-1] > 0


def test_the_serving_order_is_by_gain_with_every_tenth_place_drawn_at_random():
    gains = np.arange(100, dtype=float)  # unit 99 has the largest gain
    priority = unit_priorities(gains, seed=3)
    order = np.argsort(-priority)
    assert sorted(priority.tolist()) == sorted(1.0 - np.arange(100) / 100)  # a permutation of the places
    greedy_places = [p for p in range(100) if (p + 1) % 10]
    assert list(order[:9]) == [99, 98, 97, 96, 95, 94, 93, 92, 91]
    picked = order[greedy_places]
    assert np.all(np.diff(gains[picked]) < 0)  # the greedy places keep the order of gain
    random_places = order[9::10]
    assert np.any(gains[random_places] < 50)  # the drawn places reach far down the list
    assert unit_priorities(gains, seed=3).tolist() == priority.tolist()  # seeded


def test_a_replay_reveals_each_real_vote_once_and_counts_votes_to_the_target():
    pool = ReplayPool(3, np.array([0, 0, 1]), np.array([1, 2, 2]), [[1.0, 1.0, 0.5], [1.0] * 4, [1.0] * 4])
    reference = np.array([3.0, 2.0, 1.0])
    for policy in ("random", "random_vote", "adaptive"):
        curve = run_policy(pool, policy, seed=0, budget=100, step=1, reference=reference, refresh_every=2)
        assert curve.votes == list(range(1, 12))  # the pool's 11 votes, then it ran dry
        assert curve.spearman[-1] == pytest.approx(1.0)
        reached = votes_to_reach(curve, 0.95)
        assert reached is not None and curve.spearman[curve.votes.index(reached)] >= 0.95
        assert all(s < 0.95 or np.isnan(s) for s in curve.spearman[:curve.votes.index(reached)])


def test_synthetic_votes_follow_the_true_order_and_the_planner_gives_a_curve_per_policy():
    theta = evenly_spread(4, elo_range=800)
    pool = SyntheticPool.build(theta, [0.4, 0.6], instances=30, seed=1)
    vote = pool.start(np.random.default_rng(0))
    top_vs_bottom = [u for u in range(len(pool.unit_a)) if (pool.unit_a[u], pool.unit_b[u]) == (0, 3)]
    scores = [vote(u) for u in top_vs_bottom]
    assert np.mean(scores) < 0.2  # system 0 is the weakest: it mostly loses
    result = plan(theta, pool.unit_a, pool.unit_b, pool.separability, overlap=1, budget=120, seeds=2,
                  checkpoints=6, policies=("random", "top_fraction", "proportional", "adaptive"))
    assert result.votes == [20, 40, 60, 80, 100, 120]
    assert set(result.expected_spearman) == {"random", "top_fraction", "proportional", "adaptive"}
    assert all(len(v) == 6 and v[-1] > 0.5 for v in result.expected_spearman.values())


def test_the_bench_reads_llmfao_votes_and_fits_the_vote_model(tmp_path):
    bench = load_bench()
    path = tmp_path / "votes.csv"
    path.write_text("id,prompt,model_x,model_y,worker,winner,left,right\n"
                    "0,1,7,8,1,left,A,B\n0,1,7,8,2,tie,A,B\n1,1,8,9,1,right,B,C\n")
    pool, names = bench.load_llmfao(path)
    assert names == ["7", "8", "9"] and pool.votes == [[1.0, 0.5], [0.0]]
    assert pool.unit_a.tolist() == [0, 1] and pool.unit_b.tolist() == [1, 2]
    path.write_text("id,prompt,model_x,model_y,worker,winner,left,right\n0,1,7,8,1,both,A,B\n")
    with pytest.raises(ValueError, match=r"votes.csv, line 2, field winner: 'both'"):
        bench.load_llmfao(path)
    # Separable units agree with the majority, inseparable ones are coin flips: a positive sharpness.
    units = [(0, 0.9, [True] * 9 + [False], 1), (0, 0.1, [True] * 5 + [False] * 5, 1),
             (1, 0.8, [True] * 8 + [False] * 2, 0), (1, 0.2, [True] * 5 + [False] * 5, 0)]
    fit = bench.fit_vote_model(units)
    assert fit["sharpness"] > 0 and fit["tie_rate"] == pytest.approx(2 / 42)
    rows = bench.summarise({"random": [run_policy(SyntheticPool.build(evenly_spread(3, 1200), [0.5], 20, seed=0),
                                                  "random", seed=s, budget=60, step=10) for s in range(3)]})
    assert rows["random"]["runs"] == 3 and rows["random"]["ratio"] in (None, 1.0)
