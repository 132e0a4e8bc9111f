"""Leaderboards from named pairwise votes: the one function the Django site and the command line call.

`compute_leaderboard` takes the votes as three parallel sequences of names and winner labels (plus
optional per-vote weights), turns them into integer-coded arrays, checks that they can be ranked,
and returns a `Leaderboard` with ratings, bootstrap intervals, ranks, vote counts and the win-rate and
battle-count matrices.

With bootstrap rounds, every method's rating is the median of its bootstrap distribution and its
interval the 2.5th-97.5th percentiles of the same distribution, so the rating always lies inside
its interval (`Leaderboard.point` says which estimate the rating is). The weighted methods count
each vote with w = max(weight, WEIGHT_FLOOR) (`separability_weight`), so they rank every system
that the plain methods rank.

The rating methods themselves live in `ranking.elo` and `ranking.bt` and are re-exported here, so
`from ranking.ratings import ...` is the one import users need.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from lib.vocabulary import METHOD_TITLES, METHODS, WINNERS, Winner

from .bt import PSEUDO_TIES, bootstrap_bt, bradley_terry, bradley_terry_from_wins, mle_exists, win_matrix
from .common import (
    WEIGHT_FLOOR,
    RatingError,
    apply_weight_floor,
    as_vote_arrays,
    bootstrap_estimate,
    check_connected,
    confidence_interval,
    connected_groups,
    ranks_from_intervals,
    separability_weight,
)
from .elo import (
    DEFAULT_BASE,
    DEFAULT_INITIAL,
    DEFAULT_K,
    DEFAULT_SCALE,
    bootstrap_elo,
    elo,
    elo_permutation_average,
    elo_update,
    weighted_elo,
)

__all__ = [
    "DEFAULT_BASE",
    "DEFAULT_INITIAL",
    "DEFAULT_K",
    "DEFAULT_SCALE",
    "METHODS",
    "METHOD_TITLES",
    "PSEUDO_TIES",
    "WEIGHT_FLOOR",
    "WINNERS",
    "Leaderboard",
    "LeaderboardRow",
    "RatingError",
    "apply_weight_floor",
    "bootstrap_bt",
    "bootstrap_elo",
    "bootstrap_estimate",
    "bradley_terry",
    "bradley_terry_from_wins",
    "check_connected",
    "compute_leaderboard",
    "confidence_interval",
    "connected_groups",
    "elo",
    "elo_permutation_average",
    "elo_update",
    "factorize_systems",
    "mle_exists",
    "ranks_from_intervals",
    "scores_from_winners",
    "separability_weight",
    "weighted_elo",
    "win_matrix",
    "win_rate_matrix",
]

_SCORE_OF_WINNER: dict[str, float] = {Winner.A: 1.0, Winner.B: 0.0, Winner.TIE: 0.5}


@dataclass(frozen=True)
class LeaderboardRow:
    system: str
    rating: float
    ci_low: float
    ci_high: float
    rank: int
    votes: int
    win_rate: float  # share of points won in its votes, a tie counting half

    def to_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "rating": self.rating,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "rank": self.rank,
            "votes": self.votes,
            "win_rate": self.win_rate,
        }


@dataclass
class Leaderboard:
    """Ratings sorted best first. `systems` lists the systems in the same order as `rows`, and indexes
    both matrices: `win_rate[i, j]` is i's share of points against j (NaN where never compared),
    `counts[i, j]` the number of votes between i and j. `point` says in words which estimate the
    ratings are, e.g. "bootstrap median of 100 rounds"."""

    method: str
    rows: list[LeaderboardRow]
    systems: list[str]
    win_rate: np.ndarray
    counts: np.ndarray
    votes_used: int
    rounds: int
    seed: int
    notes: list[str] = field(default_factory=list)
    point: str = ""

    def row(self, system: str) -> LeaderboardRow:
        for row in self.rows:
            if row.system == system:
                return row
        raise KeyError(system)

    def ratings(self) -> dict[str, float]:
        return {row.system: row.rating for row in self.rows}

    def to_dict(self, matrices: bool = False) -> dict[str, Any]:
        """JSON-ready: {"method", "ratings": [row dicts], "votes_used", "rounds", "seed", "point", "notes"},
        plus "systems", "win_rate" (null where never compared) and "counts" when `matrices` is true."""
        out = {
            "method": self.method,
            "ratings": [row.to_dict() for row in self.rows],
            "votes_used": self.votes_used,
            "rounds": self.rounds,
            "seed": self.seed,
            "point": self.point,
            "notes": list(self.notes),
        }
        if matrices:
            out["systems"] = list(self.systems)
            out["win_rate"] = [[None if math.isnan(x) else float(x) for x in r] for r in self.win_rate]
            out["counts"] = self.counts.astype(int).tolist()
        return out


def factorize_systems(
    system_a: Sequence[str] | np.ndarray, system_b: Sequence[str] | np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Map names to indices in order of first appearance: returns (a, b, names).

    Plain dicts: as fast as pandas.factorize on lists of str (both hash every name once).
    """
    first_seen = dict.fromkeys(system_a)
    first_seen.update(dict.fromkeys(system_b))
    index = {name: i for i, name in enumerate(first_seen)}
    a = np.array([index[name] for name in system_a], dtype=np.int64)
    b = np.array([index[name] for name in system_b], dtype=np.int64)
    return a, b, [str(name) for name in index]


def scores_from_winners(winner: Sequence[str] | np.ndarray, both_bad: str = "tie") -> tuple[np.ndarray, np.ndarray]:
    """System a's score per vote (1, 0.5, 0) and a mask of the votes kept ("both bad" ones are dropped
    when both_bad="drop")."""
    if both_bad not in ("tie", "drop"):
        raise RatingError(f"both_bad must be 'tie' or 'drop', got {both_bad!r}")
    # "both bad" is coded -1 until the end so one pass over the labels serves both outputs.
    code: dict[str, float] = {**_SCORE_OF_WINNER, "both_bad": -1.0}
    try:
        score = np.array([code[w] for w in winner], dtype=np.float64)
    except (KeyError, TypeError):
        for i, w in enumerate(winner):
            if not isinstance(w, str) or w not in code:
                raise RatingError(
                    f"vote {i + 1}: unknown winner {w!r}; expected one of a, b, tie, both_bad"
                ) from None
        raise
    keep = score >= 0.0
    if both_bad == "drop":
        return score, keep
    score[~keep] = 0.5
    return score, np.ones(len(score), dtype=bool)


def win_rate_matrix(
    a: npt.ArrayLike, b: npt.ArrayLike, score: npt.ArrayLike, n_systems: int
) -> tuple[np.ndarray, np.ndarray]:
    """(win_rate, counts): win_rate[i, j] = i's points against j / votes between them (a tie is half a
    point; NaN where never compared), counts[i, j] = votes between i and j (symmetric)."""
    a, b, score, _ = as_vote_arrays(a, b, score, n_systems)
    points = win_matrix(a, b, score, n_systems)
    counts = points + points.T
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(counts > 0, points / counts, np.nan)
    return rate, np.rint(counts).astype(np.int64)


def _check_weights(weights: npt.ArrayLike, votes: int) -> np.ndarray:
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (votes,):
        raise RatingError(f"expected one weight per vote ({votes}), got {weights.size}")
    bad = np.flatnonzero(~(np.isfinite(weights) & (weights >= 0.0) & (weights <= 1.0)))
    if bad.size:
        raise RatingError(f"vote {bad[0] + 1}: weight {float(weights[bad[0]])!r} is not in [0, 1]")
    return weights


def compute_leaderboard(
    system_a: Sequence[str] | np.ndarray,
    system_b: Sequence[str] | np.ndarray,
    winner: Sequence[str] | np.ndarray,
    method: str = "bt",
    weights: Sequence[float] | np.ndarray | None = None,
    both_bad: str = "tie",
    rounds: int = 100,
    seed: int = 0,
    k: float = DEFAULT_K,
    initial: float = DEFAULT_INITIAL,
    scale: float = DEFAULT_SCALE,
    base: float = DEFAULT_BASE,
    permutations: int = 0,
) -> Leaderboard:
    """Rate systems from named votes.

    winner: "a", "b", "tie" or "both_bad" per vote ("both bad" is a tie, or dropped when
    both_bad="drop"). method: "elo" (online), "weighted_elo" (K times each vote's weight), "bt"
    (Bradley-Terry; uses `weights` when given) or "weighted_bt" (needs weights).

    Weights lie in [0, 1] (the unit's clipped separability, 0 where it has none); each is raised to
    WEIGHT_FLOOR, so every vote keeps a little weight and the weighted comparison graph is the plain
    one. When no weight is above the floor, the weighted methods compute the plain board and say so.

    Ratings and intervals: with rounds > 0, `rounds` seeded bootstrap resamples of the votes; the
    rating is their median and the interval their 2.5th-97.5th percentiles (for Elo each resample is
    replayed in its own order). With rounds = 0 there is no interval: the rating is Elo in vote order
    (or, with permutations > 0, averaged over that many random orders) or the Bradley-Terry
    maximum-likelihood estimate. Raises RatingError when the votes cannot be ranked.
    """
    if method not in METHODS:
        raise RatingError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    if not (len(system_a) == len(system_b) == len(winner)):
        raise RatingError(
            f"system_a, system_b and winner differ in length ({len(system_a)}, {len(system_b)}, {len(winner)})"
        )
    if weights is None and method in ("weighted_elo", "weighted_bt"):
        raise RatingError(f"{method} needs one weight per vote (e.g. the instance's clipped separability)")
    if rounds < 0:
        raise RatingError("rounds must be 0 or more")
    if permutations < 0:
        raise RatingError("permutations must be 0 or more")
    if permutations and rounds and method in ("elo", "weighted_elo"):
        raise RatingError("permutations set the Elo rating only without bootstrap (rounds=0); with bootstrap "
                          "rounds the rating is the median of the bootstrap resamples")
    if len(winner) == 0:
        raise RatingError("no votes: there is nothing to rank")
    if weights is not None:
        weights = _check_weights(weights, len(winner))

    score, keep = scores_from_winners(winner, both_bad)
    if not keep.all():
        kept = np.flatnonzero(keep)
        if kept.size == 0:
            raise RatingError("no votes: every vote is 'both bad' and both_bad='drop' drops them")
        system_a = np.asarray(system_a, dtype=object)[kept]
        system_b = np.asarray(system_b, dtype=object)[kept]
        score = score[kept]
        weights = None if weights is None else weights[kept]
    a, b, names = factorize_systems(system_a, system_b)
    n = len(names)
    if n < 2:
        raise RatingError(f"only one system ({names[0]}): a ranking needs votes between at least two systems")
    same = np.flatnonzero(a == b)
    if same.size:
        raise RatingError(f"vote {same[0] + 1} compares {names[a[same[0]]]!r} with itself")
    # Every method uses every vote (the weighted ones with at least the floor weight): one graph.
    check_connected(a, b, n, names)

    notes: list[str] = []
    rate_weights = None
    if weights is not None and method != "elo":
        at_floor = int(np.count_nonzero(weights <= WEIGHT_FLOOR))
        if at_floor == len(weights):
            notes.append(
                f"No unit has separability above the floor {WEIGHT_FLOOR:g} (it is undefined for k = 1 data, "
                "not computed yet, or that small everywhere): weights are all the floor, the weighted board is "
                "the plain one."
            )
        else:
            rate_weights = apply_weight_floor(weights)
            notes.append(
                f"Vote weight: max(clipped separability, {WEIGHT_FLOOR:g}); {at_floor} of {len(weights)} votes "
                "have the floor weight (separability undefined or at most the floor)."
            )

    samples = None
    if method in ("elo", "weighted_elo"):
        parameters = dict(k=k, initial=initial, scale=scale, base=base)
        if rounds:
            samples = bootstrap_elo(a, b, score, n, weights=rate_weights, rounds=rounds, seed=seed, **parameters)
        elif permutations > 0:
            point = elo_permutation_average(a, b, score, n, weights=rate_weights, permutations=permutations,
                                            seed=seed, **parameters)
            point_text = f"Elo averaged over {permutations} random vote orders, seed {seed} (no bootstrap)"
        else:
            point = elo(a, b, score, n, weights=rate_weights, **parameters)
            point_text = "Elo in vote order (no bootstrap)"
    else:
        parameters = dict(initial=initial, scale=scale, base=base)
        wins = win_matrix(a, b, score, n, rate_weights)
        if not mle_exists(wins):
            notes.append(
                "Some systems never lost (or never won) against the others, so the maximum-likelihood "
                f"ratings are infinite; {PSEUDO_TIES} virtual tie votes per compared pair keep them finite."
            )
        if rounds:
            samples = bootstrap_bt(a, b, score, n, weights=rate_weights, rounds=rounds, seed=seed, **parameters)
        else:
            point = bradley_terry_from_wins(wins, **parameters)
            point_text = "maximum-likelihood estimate (no bootstrap)"

    if samples is None:
        low, high = point.copy(), point.copy()
        notes.append(f"Rating: {point_text}; no interval.")
    else:
        point, low, high = bootstrap_estimate(samples)
        point_text = f"bootstrap median of {rounds} rounds"
        order_words = ", each replayed in its own order" if method in ("elo", "weighted_elo") else ""
        notes.append(f"Rating: the median over {rounds} bootstrap resamples of the votes{order_words} (seed "
                     f"{seed}); 95% interval: their 2.5th to 97.5th percentiles.")
    rank = ranks_from_intervals(low, high)

    votes = np.bincount(a, minlength=n) + np.bincount(b, minlength=n)
    points = np.bincount(a, weights=score, minlength=n) + np.bincount(b, weights=1.0 - score, minlength=n)
    rate, counts = win_rate_matrix(a, b, score, n)
    order = sorted(range(n), key=lambda i: (-point[i], names[i]))
    rows = [
        LeaderboardRow(
            system=names[i],
            rating=float(point[i]),
            ci_low=float(low[i]),
            ci_high=float(high[i]),
            rank=int(rank[i]),
            votes=int(votes[i]),
            win_rate=float(points[i] / votes[i]),
        )
        for i in order
    ]
    return Leaderboard(
        method=method,
        rows=rows,
        systems=[names[i] for i in order],
        win_rate=rate[np.ix_(order, order)],
        counts=counts[np.ix_(order, order)],
        votes_used=len(a),
        rounds=rounds,
        seed=seed,
        notes=notes,
        point=point_text,
    )
