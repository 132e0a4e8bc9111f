"""Online Elo, plain and separability-weighted, as Chatbot Arena computes it.

Elo is sequential: each vote moves the two ratings by K * (S_a - E_a) with
E_a = 1 / (1 + base ** ((R_b - R_a) / scale)), so the loop over votes cannot be vectorised. It runs
compiled with numba when numba is installed (a million votes in about 20 ms) and as a plain
Python loop otherwise. The separability-weighted variant multiplies K by the vote's weight w and
stays zero-sum: R_a += K*w*(S_a - E_a), R_b -= K*w*(S_a - E_a). (evalica's `weights` argument is a
different thing: it scales the score S but not the expectation, which is not zero-sum.)

Confidence intervals follow Chatbot Arena: resample the votes with replacement (which also
reshuffles their order), rerun Elo, take percentiles; the leaderboard (`ranking.ratings`) reports the
median of the same resamples as the rating, since Elo in the one stored order can lie outside them. The
functions here take weights as given (0 leaves the ratings alone); the leaderboard raises them to its
weight floor first (`ranking.common.separability_weight`).
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import numpy.typing as npt

from .common import RatingError, as_vote_arrays

__all__ = [
    "DEFAULT_K",
    "DEFAULT_INITIAL",
    "DEFAULT_SCALE",
    "DEFAULT_BASE",
    "HAVE_NUMBA",
    "elo",
    "weighted_elo",
    "elo_update",
    "bootstrap_elo",
    "elo_permutation_average",
]

DEFAULT_K = 4.0
DEFAULT_INITIAL = 1000.0
DEFAULT_SCALE = 400.0
DEFAULT_BASE = 10.0


def _run_elo_loop(a: np.ndarray, b: np.ndarray, score: np.ndarray, weights: np.ndarray, ratings: np.ndarray,
                  k: float, scale: float, ln_base: float) -> None:
    """Apply the votes to `ratings` in place, in order. `weights` empty means every weight is 1.

    Written so numba can compile it unchanged."""
    use_weights = weights.shape[0] > 0
    c = ln_base / scale
    for i in range(a.shape[0]):
        x = a[i]
        y = b[i]
        rx = ratings[x]
        ry = ratings[y]
        delta = k * (score[i] - 1.0 / (1.0 + math.exp((ry - rx) * c)))
        if use_weights:
            delta *= weights[i]
        ratings[x] = rx + delta
        ratings[y] = ry - delta


def _run_elo_picks(picks: np.ndarray, cell_of_vote: np.ndarray, cell_a: np.ndarray, cell_b: np.ndarray,
                   cell_score: np.ndarray, vote_weight: np.ndarray, ratings: np.ndarray,
                   k: float, scale: float, ln_base: float) -> None:
    """Apply the votes numbered `picks` (a resample or a permutation), in that order.

    A vote's systems and score are looked up through its cell (see _Cells); `vote_weight` is per vote,
    empty when every weight is 1."""
    use_weights = vote_weight.shape[0] > 0
    c = ln_base / scale
    for t in range(picks.shape[0]):
        i = picks[t]
        j = cell_of_vote[i]
        x = cell_a[j]
        y = cell_b[j]
        rx = ratings[x]
        ry = ratings[y]
        delta = k * (cell_score[j] - 1.0 / (1.0 + math.exp((ry - rx) * c)))
        if use_weights:
            delta *= vote_weight[i]
        ratings[x] = rx + delta
        ratings[y] = ry - delta


def _run_elo_loop_python(a: np.ndarray, b: np.ndarray, score: np.ndarray, weights: np.ndarray,
                         ratings: np.ndarray, k: float, scale: float, ln_base: float) -> None:
    """The in-order loop on Python lists, for installations without numba (10 to 20 times slower)."""
    r = ratings.tolist()
    wl = weights.tolist() if weights.shape[0] else None
    c = ln_base / scale
    exp = math.exp
    for i, (x, y, s) in enumerate(zip(a.tolist(), b.tolist(), score.tolist(), strict=True)):
        rx, ry = r[x], r[y]
        delta = k * (s - 1.0 / (1.0 + exp((ry - rx) * c)))
        if wl is not None:
            delta *= wl[i]
        r[x] = rx + delta
        r[y] = ry - delta
    ratings[:] = r


def _run_elo_picks_python(picks: np.ndarray, cell_of_vote: np.ndarray, cell_a: np.ndarray, cell_b: np.ndarray,
                          cell_score: np.ndarray, vote_weight: np.ndarray, ratings: np.ndarray,
                          k: float, scale: float, ln_base: float) -> None:
    cells = cell_of_vote[picks]
    weights = vote_weight[picks] if vote_weight.shape[0] else vote_weight
    _run_elo_loop_python(cell_a[cells], cell_b[cells], cell_score[cells], weights, ratings, k, scale, ln_base)


# The compiled kernels (numba's Dispatcher) or the plain Python loops: the same signatures.
_elo_loop: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, float, float], None]
_elo_picks: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                      float, float, float], None]
try:
    import numba

    _elo_loop = numba.njit(cache=True, nogil=True)(_run_elo_loop)
    _elo_picks = numba.njit(cache=True, nogil=True)(_run_elo_picks)
    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only where numba is missing
    _elo_loop = _run_elo_loop_python
    _elo_picks = _run_elo_picks_python
    HAVE_NUMBA = False

_NO_WEIGHTS = np.empty(0, dtype=np.float64)


def _check_parameters(k: float, scale: float, base: float) -> float:
    if not (math.isfinite(k) and k >= 0):
        raise RatingError(f"K must be a finite non-negative number, got {k}")
    if not (math.isfinite(scale) and scale > 0):
        raise RatingError(f"scale must be positive, got {scale}")
    if not (math.isfinite(base) and base > 1):
        raise RatingError(f"base must be greater than 1, got {base}")
    return math.log(base)


class _Cells:
    """The votes prepared for visiting them at random (bootstrap resamples, permutations).

    Votes with scores 0, 0.5, 1 are grouped into cells of identical (a, b, score): a vote is then a
    1- or 2-byte cell number and the cell tables fit in cache, which matters when a million votes
    are visited in random order. Weights stay per vote."""

    def __init__(self, a: np.ndarray, b: np.ndarray, score: np.ndarray, weights: np.ndarray | None,
                 n_systems: int) -> None:
        self.index_type = np.int32 if len(a) < 2**31 else np.int64
        self.weight = _NO_WEIGHTS if weights is None else weights
        doubled = score * 2.0
        n_keys = n_systems * n_systems * 3
        if n_keys <= 4_000_000 and np.array_equal(doubled, np.round(doubled)):
            key = (a * n_systems + b) * 3 + doubled.astype(np.int64)
            present = np.bincount(key, minlength=n_keys) > 0
            keys = np.flatnonzero(present)
            cell_type = np.uint16 if len(keys) < 2**16 else np.int32
            self.cell_of_vote = (np.cumsum(present) - 1).astype(cell_type)[key]
            self.a, self.b, self.score = keys // 3 // n_systems, keys // 3 % n_systems, (keys % 3) / 2.0
        else:
            self.cell_of_vote = np.arange(len(a), dtype=self.index_type)
            self.a, self.b, self.score = a, b, score

    def run(self, picks: np.ndarray, ratings: np.ndarray, k: float, scale: float, ln_base: float) -> np.ndarray:
        _elo_picks(picks, self.cell_of_vote, self.a, self.b, self.score, self.weight, ratings,
                   float(k), float(scale), float(ln_base))
        return ratings


def rating_threads() -> int:
    """Threads for the rounds of a bootstrap or a permutation average: the CPUs this process may use, at
    most 4 (the compiled kernel releases the GIL; a round's work is memory-bound, so more threads gain
    little)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def _run_rounds(cells: _Cells, picks_of_rounds: Iterator[np.ndarray], samples: np.ndarray, k: float,
                scale: float, ln_base: float) -> None:
    """Replay each round's picks into its row of `samples`.

    The picks are drawn here, in round order, from the one seeded generator, so the result is the same
    with any number of threads; the compiled replays run on `rating_threads()` threads at once (numba's
    nogil). The 100 bootstrap rounds of 1,000,000 votes took 2.0 s on one core (bench/scale.py)."""
    threads = rating_threads() if HAVE_NUMBA else 1
    if threads == 1:
        for r, picks in enumerate(picks_of_rounds):
            cells.run(picks, samples[r], k, scale, ln_base)
        return
    with ThreadPoolExecutor(max_workers=threads) as pool:
        pending: deque[Future[np.ndarray]] = deque()
        for r, picks in enumerate(picks_of_rounds):
            pending.append(pool.submit(cells.run, picks, samples[r], k, scale, ln_base))
            if len(pending) > 2 * threads:  # a bounded queue: at most a few rounds' picks in memory
                pending.popleft().result()
        for future in pending:
            future.result()


def elo(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    score: npt.ArrayLike,
    n_systems: int,
    *,
    weights: npt.ArrayLike | None = None,
    k: float = DEFAULT_K,
    initial: float = DEFAULT_INITIAL,
    scale: float = DEFAULT_SCALE,
    base: float = DEFAULT_BASE,
) -> np.ndarray:
    """Online Elo over the votes in the order given; returns one rating per system index.

    `a`, `b`: system indices per vote; `score`: system a's score (1, 0.5, 0). With `weights`, each
    vote's K is multiplied by its weight (see `weighted_elo`).
    """
    a, b, score, weights = as_vote_arrays(a, b, score, n_systems, weights)
    ln_base = _check_parameters(k, scale, base)
    ratings = np.full(n_systems, float(initial))
    _elo_loop(a, b, score, _NO_WEIGHTS if weights is None else weights, ratings, float(k), float(scale), ln_base)
    return ratings


def weighted_elo(a: npt.ArrayLike, b: npt.ArrayLike, score: npt.ArrayLike, weights: npt.ArrayLike | None,
                 n_systems: int, **parameters: float) -> np.ndarray:
    """Separability-weighted Elo: K is multiplied by each vote's weight w (0 leaves the ratings alone).

    Takes the same keyword parameters as `elo` (k, initial, scale, base).
    """
    if weights is None:
        raise RatingError("weighted Elo needs one weight per vote")
    return elo(a, b, score, n_systems, weights=weights, **parameters)


def elo_update(
    rating_a: float,
    rating_b: float,
    score_a: float,
    *,
    weight: float = 1.0,
    k: float = DEFAULT_K,
    scale: float = DEFAULT_SCALE,
    base: float = DEFAULT_BASE,
) -> tuple[float, float]:
    """One vote's Elo step, for keeping stored ratings current as votes arrive (O(1) per vote)."""
    expected_a = 1.0 / (1.0 + base ** ((rating_b - rating_a) / scale))
    delta = k * weight * (score_a - expected_a)
    return rating_a + delta, rating_b - delta


def bootstrap_elo(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    score: npt.ArrayLike,
    n_systems: int,
    *,
    weights: npt.ArrayLike | None = None,
    rounds: int = 100,
    seed: int = 0,
    k: float = DEFAULT_K,
    initial: float = DEFAULT_INITIAL,
    scale: float = DEFAULT_SCALE,
    base: float = DEFAULT_BASE,
) -> np.ndarray:
    """Elo over `rounds` resamples of the votes (with replacement, in the resampled order).

    Returns a (rounds, n_systems) array; the same seed gives the same array.
    """
    a, b, score, weights = as_vote_arrays(a, b, score, n_systems, weights)
    ln_base = _check_parameters(k, scale, base)
    cells = _Cells(a, b, score, weights, n_systems)
    rng = np.random.default_rng(seed)
    samples = np.full((rounds, n_systems), float(initial))
    _run_rounds(cells, (rng.integers(0, len(a), size=len(a), dtype=cells.index_type) for _ in range(rounds)),
                samples, k, scale, ln_base)
    return samples


def elo_permutation_average(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    score: npt.ArrayLike,
    n_systems: int,
    *,
    weights: npt.ArrayLike | None = None,
    permutations: int = 100,
    seed: int = 0,
    k: float = DEFAULT_K,
    initial: float = DEFAULT_INITIAL,
    scale: float = DEFAULT_SCALE,
    base: float = DEFAULT_BASE,
) -> np.ndarray:
    """Elo averaged over `permutations` random orders of the votes, which removes the recency bias of
    a single order. Seeded, so reproducible."""
    a, b, score, weights = as_vote_arrays(a, b, score, n_systems, weights)
    ln_base = _check_parameters(k, scale, base)
    if permutations < 1:
        raise RatingError("permutations must be at least 1")
    cells = _Cells(a, b, score, weights, n_systems)
    rng = np.random.default_rng(seed)
    samples = np.full((permutations, n_systems), float(initial))
    _run_rounds(cells, (rng.permutation(len(a)).astype(cells.index_type) for _ in range(permutations)),
                samples, k, scale, ln_base)
    mean: np.ndarray = samples.sum(axis=0) / permutations
    return mean
