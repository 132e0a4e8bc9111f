"""Bootstrap and permutation rounds of Elo run on several threads (ranking.elo._run_rounds): the picks are
drawn in round order from the one seeded generator, so the samples must not depend on the thread count."""
import numpy as np
import pytest

from ranking import elo


@pytest.fixture
def votes():
    rng = np.random.default_rng(3)
    n = 5_000
    a = rng.integers(0, 6, n)
    b = (a + rng.integers(1, 6, n)) % 6
    return a, b, rng.choice([0.0, 0.5, 1.0], n), rng.random(n)


@pytest.mark.parametrize("weighted", [False, True])
def test_bootstrap_samples_are_the_same_on_one_thread_and_on_several(votes, monkeypatch, weighted):
    a, b, score, weights = votes
    kwargs = dict(weights=weights if weighted else None, rounds=23, seed=5)
    monkeypatch.setattr(elo, "rating_threads", lambda: 1)
    one = elo.bootstrap_elo(a, b, score, 6, **kwargs)
    monkeypatch.setattr(elo, "rating_threads", lambda: 3)
    several = elo.bootstrap_elo(a, b, score, 6, **kwargs)
    assert one.shape == (23, 6)
    np.testing.assert_array_equal(one, several)
    assert len({tuple(row) for row in several}) == 23  # every round its own resample


def test_permutation_average_is_the_same_on_one_thread_and_on_several(votes, monkeypatch):
    a, b, score, _ = votes
    monkeypatch.setattr(elo, "rating_threads", lambda: 1)
    one = elo.elo_permutation_average(a, b, score, 6, permutations=9, seed=2)
    monkeypatch.setattr(elo, "rating_threads", lambda: 4)
    several = elo.elo_permutation_average(a, b, score, 6, permutations=9, seed=2)
    np.testing.assert_array_equal(one, several)
    assert abs(float(one.sum()) - 6 * elo.DEFAULT_INITIAL) < 1e-6  # zero-sum, averaged


def test_rating_threads_is_between_one_and_four():
    assert 1 <= elo.rating_threads() <= 4
