"""The Elo kept in RatingState, one O(1) update per stored vote, must equal a full replay of the votes.
"""
import random
from itertools import combinations

import numpy as np
import pytest

from annotations.models import Study
from ranking.models import RatingState
from ranking.ratings import compute_leaderboard, elo, factorize_systems, scores_from_winners
from ranking.services import rebuild_elo_states, separability_weight
from tests.factories import add_vote
from tests.factories import make_rating_study as make_study

pytestmark = pytest.mark.django_db





class VoteLog:
    """Votes as added, in canonical (a = lower system id) order, for replaying them outside the database."""

    def __init__(self):
        self.system_a, self.system_b, self.winner, self.weight = [], [], [], []
        self.count = 0

    def replay(self, method, both_bad="tie"):
        """Online Elo over the logged votes in order: plain Elo as the leaderboard computes it without
        bootstrap; weighted Elo with exactly the weights the services gave each vote, through
        `ranking.ratings.elo` (compute_leaderboard's weighted methods raise every weight to the floor
        WEIGHT_FLOOR, which the live state gets only where `services.separability_weight` applies it)."""
        if not method.startswith("weighted"):
            return compute_leaderboard(self.system_a, self.system_b, self.winner, method=method,
                                       both_bad=both_bad, rounds=0).ratings()
        score, keep = scores_from_winners(self.winner, both_bad)
        kept = np.flatnonzero(keep)
        a, b, names = factorize_systems([self.system_a[i] for i in kept], [self.system_b[i] for i in kept])
        ratings = elo(a, b, score[kept], len(names), weights=np.asarray(self.weight)[kept])
        return dict(zip(names, ratings.tolist(), strict=True))




def stored(study, method):
    return {state.system.name: state.rating
            for state in RatingState.objects.filter(study=study, method=method).select_related("system")}


def stored_full(study):
    return {(s.method, s.system.name): (s.rating, s.votes)
            for s in RatingState.objects.filter(study=study).select_related("system")}


def assert_close(incremental: dict, replayed: dict, tolerance=1e-9):
    assert set(incremental) == set(replayed)
    for name, rating in replayed.items():
        assert incremental[name] == pytest.approx(rating, abs=tolerance, rel=0), name


SEPARABILITY = [0.8, None, -0.2, 0.35, 1.4]  # per instance: raw values that clip to 0.8, 0, 0, 0.35, 1


def random_votes(study, n, seed=3, log=None):
    rng = random.Random(seed)
    names = list(study.systems.order_by("name").values_list("name", flat=True))
    pairs = list(combinations(names, 2))
    # Every pair first gets a vote on an instance with positive weight, so the weighted replay can rank.
    plan = [(x, y, 0) for x, y in pairs] + [(*rng.choice(pairs), rng.randrange(len(SEPARABILITY))) for _ in range(n)]
    for x, y, instance in plan:
        if rng.random() < 0.5:
            x, y = y, x
        outcome = rng.choice(["x", "x", "y", "tie", "both_bad"])
        add_vote(study, x, y, outcome, instance=instance, separability=SEPARABILITY[instance], log=log)


@pytest.mark.parametrize("both_bad", ["tie", "drop"])
def test_incremental_elo_equals_full_replay_plain_and_weighted(both_bad):
    study = make_study(both_bad=both_bad)
    log = VoteLog()
    random_votes(study, 90, log=log)

    assert_close(stored(study, "elo"), log.replay("elo", both_bad))
    assert_close(stored(study, "weighted_elo"), log.replay("weighted_elo", both_bad))
    # The vote counts kept with the state match the replay's too.
    for method in ("elo", "weighted_elo"):
        board = compute_leaderboard(log.system_a, log.system_b, log.winner, method=method, both_bad=both_bad,
                                    weights=log.weight if method == "weighted_elo" else None, rounds=0)
        counts = {s.system.name: s.votes for s in RatingState.objects.filter(study=study, method=method)}
        assert counts == {row.system: row.votes for row in board.rows}

    # A rebuild from the database (what the recompute task does) lands on the same numbers.
    before = stored_full(study)
    rebuild_elo_states(study)
    after = stored_full(study)
    assert set(before) == set(after)
    for key, (rating, votes) in before.items():
        assert after[key][0] == pytest.approx(rating, abs=1e-9, rel=0) and after[key][1] == votes


def test_weighted_elo_moves_by_k_times_the_clipped_separability():
    study = make_study(systems=("alpha", "beta"))
    add_vote(study, "alpha", "beta", "x", instance=3, separability=0.35)
    plain, weighted = stored(study, "elo"), stored(study, "weighted_elo")
    # Equal ratings: E = 0.5, so the winner gains K * w * 0.5 with K = 4.
    assert plain["alpha"] == pytest.approx(1002.0) and plain["beta"] == pytest.approx(998.0)
    assert weighted["alpha"] == pytest.approx(1000.0 + 4 * 0.35 * 0.5)
    assert weighted["beta"] == pytest.approx(1000.0 - 4 * 0.35 * 0.5)
    add_vote(study, "alpha", "beta", "y", instance=1, separability=None)  # no separability
    # It moves weighted Elo by K times the services' weight for "no separability" (0 without a floor).
    w = separability_weight(None)
    expected_b = 1 / (1 + 10 ** ((weighted["alpha"] - weighted["beta"]) / 400))
    assert stored(study, "weighted_elo")["beta"] == pytest.approx(weighted["beta"] + 4 * w * (1 - expected_b), abs=1e-9)
    assert stored(study, "elo") != plain


def test_gold_and_excluded_votes_leave_ratings_unchanged():
    study = make_study(n_instances=6)
    log = VoteLog()
    random_votes(study, 20, log=log)  # uses instances 0-4
    before = stored_full(study)

    add_vote(study, "alpha", "beta", "x", instance=5, separability=1.0, gold=True)
    add_vote(study, "gamma", "delta", "y", instance=5, separability=1.0, excluded=True)
    assert stored_full(study) == before

    # Nor do they count in a replay from the database.
    rebuild_elo_states(study)
    assert_close(stored(study, "elo"), log.replay("elo"))
    assert_close(stored(study, "weighted_elo"), log.replay("weighted_elo"))


def test_both_bad_dropped_by_the_study_leaves_ratings_unchanged():
    study = make_study(both_bad=Study.BothBad.DROP)
    add_vote(study, "alpha", "beta", "x", instance=0, separability=0.8)
    before = stored_full(study)
    add_vote(study, "alpha", "beta", "both_bad", instance=0, separability=0.8)
    add_vote(study, "gamma", "beta", "both_bad", instance=3, separability=0.35)
    assert stored_full(study) == before


def test_both_bad_counts_as_a_tie_by_default():
    study = make_study()
    add_vote(study, "alpha", "beta", "x", instance=0, separability=0.8)
    before = stored(study, "elo")
    add_vote(study, "alpha", "beta", "both_bad", instance=0, separability=0.8)
    after = stored(study, "elo")
    # A tie pulls the leader back towards the other: alpha (ahead) loses what beta gains.
    assert after["alpha"] < before["alpha"] and after["beta"] > before["beta"]
    assert after["alpha"] + after["beta"] == pytest.approx(2000.0)


def test_rebuild_keeps_the_elo_of_votes_that_do_not_connect_every_system_yet():
    """Online Elo needs no connected comparison graph: a rebuild (run after every vote by the recompute
    task) must reproduce the per-vote state, not wipe it because a leaderboard cannot be ranked yet."""
    study = make_study()
    add_vote(study, "alpha", "beta", "x", instance=0, separability=0.8)
    add_vote(study, "gamma", "delta", "y", instance=1, separability=None)  # weight 0 as well
    add_vote(study, "alpha", "beta", "tie", instance=3, separability=0.35)
    before = stored_full(study)
    assert len(before) == 8
    rebuild_elo_states(study)
    after = stored_full(study)
    assert set(after) == set(before)
    for key, (rating, votes) in before.items():
        assert after[key][0] == pytest.approx(rating, abs=1e-9, rel=0) and after[key][1] == votes
