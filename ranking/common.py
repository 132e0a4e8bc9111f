"""Pieces every rating method shares: the error type, input checks on the integer-coded vote arrays,
the comparison-graph connectivity check and percentile confidence intervals.

Votes reach the rating functions as parallel numpy arrays: `a` and `b` hold system indices in
`range(n_systems)`, `score` holds system a's score (1 win, 0.5 tie, 0 loss) and an optional `weights`
array holds one non-negative weight per vote.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

__all__ = [
    "RatingError",
    "as_vote_arrays",
    "check_connected",
    "connected_groups",
    "confidence_interval",
    "ranks_from_intervals",
]


class RatingError(ValueError):
    """The votes cannot be turned into ratings; the message says why in words a researcher understands."""


def as_vote_arrays(a, b, score, n_systems: int, weights=None):
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


def confidence_interval(samples: np.ndarray, point: np.ndarray | None = None, level: float = 0.95):
    """Percentile interval (2.5/97.5 for level 0.95) per column of a (rounds, systems) sample matrix.

    When `point` is given the interval is widened, if needed, to contain it: a percentile interval
    can miss the point estimate with very few votes, and online Elo in vote order can sit outside
    the spread of Elo over resampled (hence reshuffled) orders.
    """
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(samples, [tail, 100.0 - tail], axis=0)
    if point is not None:
        low = np.minimum(low, point)
        high = np.maximum(high, point)
    return low, high


def ranks_from_intervals(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Rank = 1 + the number of systems whose lower bound lies above this system's upper bound."""
    return 1 + (low[None, :] > high[:, None]).sum(axis=1)
