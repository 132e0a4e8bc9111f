"""Bradley-Terry ratings by maximum likelihood, on the Elo scale, with bootstrap confidence intervals.

Model: P(i beats j) = p_i / (p_i + p_j). A win counts 1 for the winner, a tie half a win for each
side, and an optional per-vote weight multiplies the vote's count. The votes only enter through the
aggregated win matrix W[i, j] (how much i won against j), so the fit costs the same for ten votes or
ten million. We maximise the log-likelihood sum_ij W_ij log sigmoid(theta_i - theta_j) over the
log-strengths theta with Newton's method (the Hessian is a weighted graph Laplacian, n x n) and a
backtracking line search, to a relative step of 1e-10. Ratings are reported as
initial + scale * log_base(p_i), centred so that their mean is `initial`.

This is the same maximum-likelihood estimate as Chatbot Arena's `compute_mle_elo` (logistic regression
without intercept or penalty, every win counted twice and every tie once each way, SCALE=400,
BASE=10, INIT_RATING=1000), which also ends up with mean 1000 before its anchor shift.

When the estimate does not exist (some group of systems never lost, or never won, against the rest;
or a bootstrap resample lost all votes of a pair) the likelihood keeps growing as ratings drift
apart. We then add PSEUDO_TIES virtual tie votes to every pair that the full data compares, which
keeps those ratings finite and far apart.

The leaderboard (`ranking.ratings`) reports the median of the bootstrap ratings, not the estimate on
all votes, so that the rating always lies inside its percentile interval; with few or lopsided votes the
maximum-likelihood estimate can fall outside it.

Bootstrap: resampling N votes with replacement and counting them per (pair, outcome) cell is the same
as drawing the cell counts from Multinomial(N, cell_counts / N), so each round costs a draw over a
few thousand cells instead of touching a million rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import numpy.typing as npt
from scipy.special import expit, log_expit

from .common import RatingError, as_vote_arrays, check_connected
from .elo import DEFAULT_BASE, DEFAULT_INITIAL, DEFAULT_SCALE

__all__ = [
    "PSEUDO_TIES",
    "win_matrix",
    "mle_exists",
    "bradley_terry",
    "bradley_terry_from_wins",
    "bootstrap_bt",
]

PSEUDO_TIES = 0.1
TOLERANCE = 1e-10
MAX_ITERATIONS = 200


def win_matrix(a: npt.ArrayLike, b: npt.ArrayLike, score: npt.ArrayLike, n_systems: int,
               weights: npt.ArrayLike | None = None) -> np.ndarray:
    """W[i, j] = total (weighted) score of system i in its votes against j; a tie gives 0.5 to each."""
    a, b, score, weights = as_vote_arrays(a, b, score, n_systems, weights)
    return _win_matrix(a, b, score, weights, n_systems)


def _win_matrix(a: np.ndarray, b: np.ndarray, score: np.ndarray, weights: np.ndarray | None, n: int) -> np.ndarray:
    wa = score if weights is None else score * weights
    wb = (1.0 - score) if weights is None else (1.0 - score) * weights
    flat = np.bincount(a * n + b, weights=wa, minlength=n * n) + np.bincount(b * n + a, weights=wb, minlength=n * n)
    return flat.reshape(n, n)


def _reaches_all(wins: np.ndarray, reverse: bool) -> bool:
    """Whether every system is reached from system 0 along 'won against' edges (or their reverse)."""
    n: int = wins.shape[0]
    seen = np.zeros(n, dtype=np.bool_)
    stack = np.empty(n, dtype=np.int64)
    seen[0] = True
    stack[0] = 0
    top = 1
    count = 1
    while top > 0:
        top -= 1
        i = stack[top]
        for j in range(n):
            if not seen[j] and (wins[j, i] if reverse else wins[i, j]) > 0.0:
                seen[j] = True
                stack[top] = j
                top += 1
                count += 1
    return count == n


def mle_exists(wins: np.ndarray) -> bool:
    """True when every system reaches every other along 'beat (at least half)' edges, the condition
    for finite maximum-likelihood ratings (Zermelo 1929; Ford 1957)."""
    wins = np.ascontiguousarray(wins, dtype=np.float64)
    return bool(_reaches_all(wins, False) and _reaches_all(wins, True))


def _log_likelihood(wins: np.ndarray, theta: np.ndarray) -> float:
    return float(np.sum(wins * log_expit(theta[:, None] - theta[None, :])))


def _newton_numpy(wins: np.ndarray, theta: np.ndarray, tolerance: float,
                  max_iterations: int) -> tuple[np.ndarray, bool]:
    """Newton's method for the log-strengths (natural log, mean zero); returns (theta, converged)."""
    n = wins.shape[0]
    games = wins + wins.T
    total_wins = wins.sum(axis=1)
    ones = np.ones((n, n))
    current = _log_likelihood(wins, theta)
    for _ in range(max_iterations):
        p = expit(theta[:, None] - theta[None, :])
        gradient = total_wins - np.sum(games * p, axis=1)
        curvature = games * p * p.T
        laplacian = np.diag(curvature.sum(axis=1)) - curvature
        # The likelihood is flat along theta + c; adding the all-ones matrix pins the step to mean zero
        # (the gradient sums to zero) and makes the system non-singular on a connected graph.
        step = np.linalg.solve(laplacian + ones, gradient)
        t = 1.0
        while True:
            candidate = theta + t * step
            value = _log_likelihood(wins, candidate)
            if value >= current - 1e-13 * abs(current) or t < 1e-8:
                break
            t *= 0.5
        theta, current = candidate - candidate.mean(), value
        if np.max(np.abs(t * step)) <= tolerance * max(1.0, float(np.max(np.abs(theta)))):
            return theta, True
    return theta, False


def _log_sigmoid(x: float) -> float:
    if x >= 0.0:
        return -math.log1p(math.exp(-x))
    return x - math.log1p(math.exp(x))


def _pair_log_likelihood(wins: np.ndarray, theta: np.ndarray) -> float:
    n = wins.shape[0]
    total = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            d = theta[i] - theta[j]
            if wins[i, j] > 0.0:
                total += wins[i, j] * _log_sigmoid(d)
            if wins[j, i] > 0.0:
                total += wins[j, i] * _log_sigmoid(-d)
    return total


def _newton_loops(wins: np.ndarray, theta: np.ndarray, tolerance: float,
                  max_iterations: int) -> tuple[np.ndarray, bool]:
    """The same Newton iteration with explicit loops and an in-place Cholesky solve, compiled by numba.

    Kept free of LAPACK on purpose: a threaded BLAS on a 100 x 100 system is slower than this loop,
    and far slower when the cores are busy with other work.
    """
    n = wins.shape[0]
    m = np.empty((n, n))
    gradient = np.empty(n)
    step = np.empty(n)
    candidate = np.empty(n)
    current = _pair_log_likelihood(wins, theta)
    for _ in range(max_iterations):
        # m = Laplacian of the curvature weights + all-ones matrix (see _newton_numpy).
        for i in range(n):
            gradient[i] = 0.0
            m[i, i] = 1.0
        for i in range(n):
            for j in range(i + 1, n):
                games = wins[i, j] + wins[j, i]
                if games > 0.0:
                    p = 1.0 / (1.0 + math.exp(theta[j] - theta[i]))
                    c = games * p * (1.0 - p)
                    gradient[i] += wins[i, j] - games * p
                    gradient[j] += wins[j, i] - games * (1.0 - p)
                    m[i, i] += c
                    m[j, j] += c
                    m[i, j] = 1.0 - c
                else:
                    m[i, j] = 1.0
        # Cholesky factor in the lower triangle (the upper one holds the matrix).
        for j in range(n):
            s = m[j, j]
            for k in range(j):
                s -= m[j, k] * m[j, k]
            if s <= 0.0:
                return theta, False
            d = math.sqrt(s)
            m[j, j] = d
            for i in range(j + 1, n):
                s = m[j, i]
                for k in range(j):
                    s -= m[i, k] * m[j, k]
                m[i, j] = s / d
        for i in range(n):
            s = gradient[i]
            for k in range(i):
                s -= m[i, k] * step[k]
            step[i] = s / m[i, i]
        for i in range(n - 1, -1, -1):
            s = step[i]
            for k in range(i + 1, n):
                s -= m[k, i] * step[k]
            step[i] = s / m[i, i]
        t = 1.0
        while True:
            for i in range(n):
                candidate[i] = theta[i] + t * step[i]
            value = _pair_log_likelihood(wins, candidate)
            if value >= current - 1e-13 * abs(current) or t < 1e-8:
                break
            t *= 0.5
        mean = candidate.mean()
        largest_step = 0.0
        largest_theta = 1.0
        for i in range(n):
            theta[i] = candidate[i] - mean
            largest_step = max(largest_step, abs(t * step[i]))
            largest_theta = max(largest_theta, abs(theta[i]))
        current = value
        if largest_step <= tolerance * largest_theta:
            return theta, True
    return theta, False


# numba's Dispatcher where numba is installed, else the numpy version: the same signature.
_newton: Callable[[np.ndarray, np.ndarray, float, int], tuple[np.ndarray, bool]]
try:
    import numba

    _log_sigmoid = numba.njit(cache=True, nogil=True)(_log_sigmoid)
    _pair_log_likelihood = numba.njit(cache=True, nogil=True)(_pair_log_likelihood)
    _newton = numba.njit(cache=True, nogil=True)(_newton_loops)
    _reaches_all = numba.njit(cache=True, nogil=True)(_reaches_all)
except ImportError:  # pragma: no cover - exercised only where numba is missing
    _newton = _newton_numpy


def _solve_log_strengths(wins: np.ndarray, theta: np.ndarray | None = None) -> np.ndarray:
    """Maximum-likelihood log-strengths (natural log, mean zero) for a win matrix."""
    wins = np.ascontiguousarray(wins, dtype=np.float64)
    start = np.zeros(wins.shape[0]) if theta is None else np.array(theta - theta.mean(), dtype=np.float64)
    theta, converged = _newton(wins, start, TOLERANCE, MAX_ITERATIONS)
    if not converged and np.any(start):
        # A warm start (a bootstrap round starts from the full fit) can lie far from a resample's optimum,
        # e.g. a nearly separated full fit against a regularised resample: start again from zero.
        theta, converged = _newton(wins, np.zeros(wins.shape[0]), TOLERANCE, MAX_ITERATIONS)
    if not converged:
        raise RatingError(f"Bradley-Terry fit did not converge in {MAX_ITERATIONS} Newton steps")
    return theta


def _fit(wins: np.ndarray, compared: np.ndarray, theta: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """Log-strengths for a win matrix; `compared` marks the pairs that receive pseudo-ties if needed.

    Returns (theta, regularised)."""
    if mle_exists(wins):
        return _solve_log_strengths(wins, theta), False
    return _solve_log_strengths(wins + (PSEUDO_TIES / 2.0) * compared, theta), True


def _to_ratings(theta: np.ndarray, initial: float, scale: float, base: float) -> np.ndarray:
    ratings: np.ndarray = initial + scale * (theta - theta.mean()) / math.log(base)
    return ratings


def bradley_terry_from_wins(
    wins: np.ndarray,
    *,
    initial: float = DEFAULT_INITIAL,
    scale: float = DEFAULT_SCALE,
    base: float = DEFAULT_BASE,
) -> np.ndarray:
    """Bradley-Terry ratings (Elo scale, mean `initial`) from a win matrix as made by `win_matrix`."""
    wins = np.asarray(wins, dtype=np.float64)
    n = wins.shape[0]
    if n < 2:
        raise RatingError("only one system: a ranking needs votes between at least two systems")
    compared = (wins + wins.T) > 0
    rows, cols = np.nonzero(compared)
    check_connected(rows, cols, n)
    theta, _ = _fit(wins, compared)
    return _to_ratings(theta, initial, scale, base)


def bradley_terry(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    score: npt.ArrayLike,
    n_systems: int,
    *,
    weights: npt.ArrayLike | None = None,
    initial: float = DEFAULT_INITIAL,
    scale: float = DEFAULT_SCALE,
    base: float = DEFAULT_BASE,
) -> np.ndarray:
    """Bradley-Terry maximum-likelihood ratings on the Elo scale, one per system index.

    `score` is system a's score (1, 0.5, 0); `weights` (optional) multiply each vote's count.
    """
    a, b, score, weights = as_vote_arrays(a, b, score, n_systems, weights)
    return bradley_terry_from_wins(_win_matrix(a, b, score, weights, n_systems),
                                   initial=initial, scale=scale, base=base)


def _resampled_win_matrices(a: np.ndarray, b: np.ndarray, score: np.ndarray, weights: np.ndarray | None, n: int,
                            rounds: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Yield the win matrix of each bootstrap resample of the votes."""
    votes = len(a)
    doubled = score * 2.0
    if weights is None and np.array_equal(doubled, np.round(doubled)):
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        # Outcome from the lower index's side: 0 loss, 1 tie, 2 win.
        outcome = np.where(a == lo, doubled, 2.0 - doubled).astype(np.int64)
        cells = np.bincount((lo * n + hi) * 3 + outcome, minlength=n * n * 3)
        used = np.flatnonzero(cells)
        forward, lo_score = used // 3, (used % 3) / 2.0
        backward = (forward % n) * n + forward // n
        draws = rng.multinomial(votes, cells[used] / votes, size=rounds)
        for counts in draws:
            flat = (np.bincount(forward, weights=counts * lo_score, minlength=n * n)
                    + np.bincount(backward, weights=counts * (1.0 - lo_score), minlength=n * n))
            yield flat.reshape(n, n)
    else:
        forward, backward = a * n + b, b * n + a
        wa = score if weights is None else score * weights
        wb = (1.0 - score) if weights is None else (1.0 - score) * weights
        for _ in range(rounds):
            times = np.bincount(rng.integers(0, votes, size=votes), minlength=votes)
            flat = (np.bincount(forward, weights=times * wa, minlength=n * n)
                    + np.bincount(backward, weights=times * wb, minlength=n * n))
            yield flat.reshape(n, n)


def bootstrap_bt(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    score: npt.ArrayLike,
    n_systems: int,
    *,
    weights: npt.ArrayLike | None = None,
    rounds: int = 100,
    seed: int = 0,
    initial: float = DEFAULT_INITIAL,
    scale: float = DEFAULT_SCALE,
    base: float = DEFAULT_BASE,
) -> np.ndarray:
    """Bradley-Terry ratings of `rounds` resamples of the votes (with replacement), seeded.

    Returns a (rounds, n_systems) array. Resamples whose estimate does not exist get the pseudo-ties
    described in the module docstring on the pairs the full data compares.
    """
    a, b, score, weights = as_vote_arrays(a, b, score, n_systems, weights)
    wins = _win_matrix(a, b, score, weights, n_systems)
    compared = (wins + wins.T) > 0
    rows, cols = np.nonzero(compared)
    check_connected(rows, cols, n_systems)
    theta_full, _ = _fit(wins, compared)
    rng = np.random.default_rng(seed)
    samples = np.empty((rounds, n_systems))
    for r, resampled in enumerate(_resampled_win_matrices(a, b, score, weights, n_systems, rounds, rng)):
        theta, _ = _fit(resampled, compared, theta_full)
        samples[r] = _to_ratings(theta, initial, scale, base)
    return samples
