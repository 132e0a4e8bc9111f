"""Pieces every rating method shares: the error type, input checks on the integer-coded vote arrays,
the comparison-graph connectivity check, the separability weight, and the bootstrap point estimate and
percentile confidence intervals.

Votes reach the rating functions as parallel numpy arrays: `a` and `b` hold system indices in
`range(n_systems)`, `score` holds system a's score (1 win, 0.5 tie, 0 loss) and an optional `weights`
array holds one non-negative weight per vote.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

__all__ = [
    "WEIGHT_FLOOR",
    "RatingError",
    "apply_weight_floor",
    "bootstrap_estimate",
    "as_vote_arrays",
    "check_connected",
    "connected_groups",
    "confidence_interval",
    "ranks_from_intervals",
    "separability_weight",
]

# Every vote keeps at least this weight in the separability-weighted methods (see separability_weight).
WEIGHT_FLOOR = 0.05


class RatingError(ValueError):
    """The votes cannot be turned into ratings; the message says why in words a researcher understands."""


def as_vote_arrays(
    a: npt.ArrayLike, b: npt.ArrayLike, score: npt.ArrayLike, n_systems: int, weights: npt.ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Return (a, b, score, weights) as contiguous int64/float64 arrays after checking shapes and ranges.

    `weights` stays None when not given.
    """
    a = np.ascontiguousarray(a, dtype=np.int64)
    b = np.ascontiguousarray(b, dtype=np.int64)
    score = np.ascontiguousarray(score, dtype=np.float64)
    if not (a.ndim == b.ndim == score.ndim == 1) or not (len(a) == len(b) == len(score)):
        raise RatingError(
            f"vote arrays must be one-dimensional and of equal length (got {len(a)}, {len(b)}, {len(score)})"
        )
    if len(a) == 0:
        raise RatingError("no votes: there is nothing to rank")
    if n_systems < 2:
        raise RatingError("only one system: a ranking needs votes between at least two systems")
    if min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= n_systems:
        raise RatingError(f"system indices must lie in 0..{n_systems - 1}")
    if not np.all((score >= 0.0) & (score <= 1.0)):
        raise RatingError("scores must lie in [0, 1] (1 = a wins, 0.5 = tie, 0 = b wins)")
    if weights is not None:
        weights = np.ascontiguousarray(weights, dtype=np.float64)
        if weights.shape != a.shape:
            raise RatingError(f"expected one weight per vote ({len(a)}), got {weights.shape[0]}")
        if not np.all(np.isfinite(weights)) or np.any(weights < 0.0):
            raise RatingError("weights must be finite and non-negative")
    return a, b, score, weights


def separability_weight(separability: float | None, floor: float = WEIGHT_FLOOR) -> float:
    """A vote's weight in the separability-weighted methods: w = max(clip(separability, 0, 1), floor).

    `separability` is the unit's normalised separability (instance and system pair), None (or NaN)
    where it is undefined (k = 1: a system with a single output has no self-alignment) or not computed
    yet; such a vote gets the floor. The floor keeps every vote in the comparison graph: with w = 0 a
    pair whose units all have separability <= 0 or none would drop out, and the weighted methods could
    not rank systems that the plain ones rank. With floor = 0.05 a vote on an inseparable unit counts a
    twentieth of one on a fully separable unit.
    """
    if separability is None:
        return floor
    value = float(separability)
    if math.isnan(value):
        return floor
    return max(min(max(value, 0.0), 1.0), floor)


def separability_weights(separability: npt.ArrayLike, floor: float = WEIGHT_FLOOR) -> np.ndarray:
    """`separability_weight` of every vote at once (NaN where undefined), for a study's whole vote table."""
    values = np.asarray(separability, dtype=np.float64)
    return np.where(np.isnan(values), floor, np.maximum(np.clip(values, 0.0, 1.0), floor))


def apply_weight_floor(weights: npt.ArrayLike, floor: float = WEIGHT_FLOOR) -> np.ndarray:
    """max(w, floor) per vote, for weights already clipped to [0, 1] (a vote file's weight column, or
    `separability_weight` values, on which it changes nothing)."""
    return np.maximum(np.asarray(weights, dtype=np.float64), floor)


def connected_groups(a: np.ndarray, b: np.ndarray, n_systems: int) -> list[list[int]]:
    """Split systems into the connected components of the comparison graph (an edge per compared pair).

    Groups are ordered by their smallest member; a system that appears in no vote is a group of its own.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    key = np.minimum(a, b) * n_systems + np.maximum(a, b)
    if n_systems * n_systems <= 4_000_000:
        pairs = np.flatnonzero(np.bincount(key, minlength=n_systems * n_systems))
    else:
        pairs = np.unique(key)
    graph = csr_matrix((np.ones(len(pairs)), (pairs // n_systems, pairs % n_systems)), shape=(n_systems, n_systems))
    _, labels = connected_components(graph, directed=False)
    groups: dict[int, list[int]] = {}
    for i, label in enumerate(labels.tolist()):
        groups.setdefault(label, []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


def check_connected(a: np.ndarray, b: np.ndarray, n_systems: int, names: Sequence[str] | None = None) -> None:
    """Raise RatingError naming the groups when the votes do not connect every system to every other.

    Ratings of systems that were never compared, directly or through others, cannot be put on one scale.
    """
    groups = connected_groups(a, b, n_systems)
    if len(groups) > 1:
        label = (lambda i: str(names[i])) if names is not None else str
        parts = " | ".join("{" + ",".join(label(i) for i in g) + "}" for g in groups)
        raise RatingError(
            f"systems form {len(groups)} disconnected groups: {parts}; "
            "votes never compare a system of one group with one of another, so their ratings "
            "cannot be put on one scale"
        )


def confidence_interval(
    samples: np.ndarray, point: np.ndarray | None = None, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval (2.5/97.5 for level 0.95) per column of a (rounds, systems) sample matrix.

    When `point` is given the interval is widened, if needed, to contain it (online Elo in vote order,
    or a maximum-likelihood estimate on very few votes, can sit outside the percentile interval).
    `compute_leaderboard` does not widen: it reports the bootstrap median (`bootstrap_estimate`).
    """
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(samples, [tail, 100.0 - tail], axis=0)
    if point is not None:
        low = np.minimum(low, point)
        high = np.maximum(high, point)
    return low, high


def bootstrap_estimate(samples: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(point, low, high) per column of a (rounds, systems) bootstrap sample matrix: the median and the
    percentile interval (2.5th and 97.5th percentiles for level 0.95).

    The median is what the percentile interval is built around, so it always lies inside it (a
    percentile is non-decreasing in its level; the clip only guards the last bit of rounding).
    """
    tail = (1.0 - level) / 2.0 * 100.0
    low, point, high = np.percentile(samples, [tail, 50.0, 100.0 - tail], axis=0)
    return np.clip(point, low, high), low, high


def ranks_from_intervals(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Rank = 1 + the number of systems whose lower bound lies above this system's upper bound."""
    ranks: np.ndarray = 1 + (low[None, :] > high[:, None]).sum(axis=1)
    return ranks
