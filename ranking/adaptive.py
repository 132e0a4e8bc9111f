"""The adaptive selection policy's priority: where the next human vote changes the ranking most.

Why it exists: a study's fixed policies decide at opening which units are judged; once votes arrive, the
ratings also say which system pairs are still undecided. This module turns both signals into a serving
priority per comparison (docs/design.md §5.1, "Adaptive selection"), without Django, so the site
(`ranking.priorities`), the simulations (`ranking.simulate`, bench/selection.py) and the tests run the
same formula.

The formula, per comparison u of system pair (i, j):

1. Posterior of the Bradley-Terry log-strengths theta: the maximum a posteriori estimate under a weak
   Gaussian prior N(0, 1/PRIOR_PRECISION) and its Laplace covariance C = (L + PRIOR_PRECISION * I)^-1,
   where L is the Hessian of the BT log-likelihood (a weighted graph Laplacian). The prior keeps the fit
   finite on a disconnected or separated comparison graph, where the plain maximum-likelihood estimate
   does not exist (ranking.bt), and is negligible once pairs have a few votes.
2. The pair's difference d = theta_i - theta_j has variance v = C_ii + C_jj - 2 C_ij. One more vote on
   the pair adds curvature c = p (1 - p), p = sigmoid(d), along e_i - e_j, and by the Sherman-Morrison
   formula the variance becomes v / (1 + c v): the reduction of the interval width of the pair's
   difference that Chiang et al. 2024 (Chatbot Arena, §5 "active sampling") sample pairs by, computed
   here from the whole comparison graph rather than the pair's own votes only.
3. That reduction is weighted by 2 * P(the pair's current order is wrong) = 2 Phi(-|d| / sd): a pair
   already decided gains nothing a ranking needs from another vote; a coin flip gains fully.
4. The unit's separability (Ghosh et al. 2024: low separability gives inconsistent votes, i.e. less
   information per vote) multiplies it, as the weighted ratings weigh the vote (`separability_weight`).
   Units whose separability is unknown (k = 1, or not computed) get the median weight of the known ones,
   or 1 when none is known: only the uncertainty part acts then.
5. Batch awareness: priorities are refreshed by the debounced recompute, not per vote, so the m-th open
   slot of a pair (its units in order of separability) gets the gain of a vote after m - 1 others
   queued on the pair (variance v / (1 + m c v)): between refreshes, votes spread over the undecided
   pairs instead of all landing on the single best one.
6. Floor (exploration): the stored priority is a serving order, 1 - place / n: the units by gain, but
   every (1 / EXPLORE)-th place goes to a unit drawn uniformly among the rest, so every selected pair keeps
   being sampled (about EXPLORE of the votes), the undecided ones far more often. Served through the
   existing `comparison_serve_order` walk, priority descending. (Departure from Chiang et al.'s sampling
   in proportion to the gain: in bench/selection.py's exploratory runs, serving by gain with an
   exploration share reached the target with fewer votes than proportional sampling.)
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import expit, log_expit
from scipy.stats import norm

__all__ = [
    "EXPLORE",
    "PRIOR_PRECISION",
    "Posterior",
    "fit_posterior",
    "pair_gain",
    "unit_gains",
    "unit_priorities",
]

PRIOR_PRECISION = 0.05  # prior sd of a log-strength ~4.5 (about 780 Elo points): weak
SEPARABILITY_FLOOR = 0.05  # as ranking.common.WEIGHT_FLOOR: an inseparable unit still counts a little
EXPLORE = 0.1  # share of the serving order drawn uniformly at random (every selected pair keeps being sampled)


@dataclass(frozen=True)
class Posterior:
    """Laplace approximation of the BT log-strengths (natural log, prior mean 0)."""

    theta: np.ndarray  # (n,)
    cov: np.ndarray  # (n, n)

    def difference(self, a: npt.ArrayLike, b: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """(d, sd) of theta_a - theta_b for index arrays a, b."""
        a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
        c = self.cov
        variance = c[a, a] + c[b, b] - 2.0 * c[a, b]
        return self.theta[a] - self.theta[b], np.sqrt(np.maximum(variance, 1e-12))

    def p_wrong(self, a: npt.ArrayLike, b: npt.ArrayLike) -> np.ndarray:
        """P(the sign of theta_a - theta_b is not the estimate's sign), in [0, 0.5]."""
        d, sd = self.difference(a, b)
        p: np.ndarray = norm.cdf(-np.abs(d) / sd)
        return p


def fit_posterior(wins: npt.ArrayLike, prior_precision: float = PRIOR_PRECISION) -> Posterior:
    """MAP log-strengths and Laplace covariance from a win matrix W[i, j] (ranking.bt.win_matrix).

    scipy's trust-region Newton with the exact Hessian: the objective is strictly convex (the prior), so
    it converges from zero in a few steps, connected comparison graph or not."""
    wins = np.asarray(wins, dtype=np.float64)
    n = wins.shape[0]
    games = wins + wins.T
    total_wins = wins.sum(axis=1)

    def objective(theta: np.ndarray) -> float:
        return float(-np.sum(wins * log_expit(theta[:, None] - theta[None, :]))
                     + 0.5 * prior_precision * theta @ theta)

    def gradient(theta: np.ndarray) -> np.ndarray:
        p = expit(theta[:, None] - theta[None, :])
        grad: np.ndarray = -(total_wins - np.sum(games * p, axis=1)) + prior_precision * theta
        return grad

    def hessian(theta: np.ndarray) -> np.ndarray:
        p = expit(theta[:, None] - theta[None, :])
        curvature = games * p * (1.0 - p)
        h: np.ndarray = np.diag(curvature.sum(axis=1)) - curvature + prior_precision * np.eye(n)
        return h

    if n == 0:
        return Posterior(np.zeros(0), np.zeros((0, 0)))
    result = minimize(objective, np.zeros(n), jac=gradient, hess=hessian, method="trust-exact",
                      options={"gtol": 1e-8})
    theta = np.asarray(result.x, dtype=np.float64)
    return Posterior(theta, np.linalg.inv(hessian(theta)))


def pair_gain(d: npt.ArrayLike, sd: npt.ArrayLike, queued: npt.ArrayLike = 0.0) -> np.ndarray:
    """Expected gain of one more vote on a pair with difference d and sd, after `queued` others:
    2 * P(order wrong) * (sd_before - sd_after), with variances v / (1 + m c v) (module docstring)."""
    d, sd, queued = np.asarray(d, dtype=np.float64), np.asarray(sd, dtype=np.float64), np.asarray(queued)
    p = expit(d)
    c = p * (1.0 - p)
    v = sd * sd
    before = np.sqrt(v / (1.0 + queued * c * v))
    after = np.sqrt(v / (1.0 + (queued + 1.0) * c * v))
    gain: np.ndarray = 2.0 * norm.cdf(-np.abs(d) / before) * (before - after)
    return gain


def separability_factor(separability: npt.ArrayLike) -> np.ndarray:
    """A unit's separability as a multiplier in [SEPARABILITY_FLOOR, 1]; unknown (NaN) ones get the median of the known
    ones, or 1 when none is known (k = 1: only the uncertainty part acts)."""
    s = np.asarray(separability, dtype=np.float64)
    known = ~np.isnan(s)
    factor = np.clip(np.where(known, s, 0.0), SEPARABILITY_FLOOR, 1.0)
    fill = float(np.median(factor[known])) if known.any() else 1.0
    result: np.ndarray = np.where(known, factor, fill)
    return result


def unit_gains(posterior: Posterior, unit_a: Sequence[int] | np.ndarray, unit_b: Sequence[int] | np.ndarray,
               separability: npt.ArrayLike, open_slots: npt.ArrayLike) -> np.ndarray:
    """Expected gain of the next vote on each unit (comparison), batch-aware (module docstring, 1-5).

    unit_a / unit_b: system indices into the posterior; separability: NaN where unknown; open_slots:
    votes the unit can still take (overlap minus votes so far). Units with no open slot gain 0."""
    a, b = np.asarray(unit_a, dtype=np.int64), np.asarray(unit_b, dtype=np.int64)
    slots = np.maximum(np.asarray(open_slots, dtype=np.float64), 0.0)
    factor = separability_factor(separability)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    # Within each pair, units in order of separability (best first), then index: the votes queued before a
    # unit are the open slots of the pair's units ahead of it.
    order = np.lexsort((np.arange(len(a)), -factor, hi, lo))
    cumulative = np.cumsum(slots[order]) - slots[order]
    pair_key = lo[order] * (int(hi.max(initial=0)) + 1) + hi[order]
    first_of_pair = np.r_[True, pair_key[1:] != pair_key[:-1]] if len(order) else np.zeros(0, dtype=bool)
    start = np.maximum.accumulate(np.where(first_of_pair, cumulative, 0.0)) if len(order) else cumulative
    queued = np.empty(len(a))
    queued[order] = cumulative - start
    d, sd = posterior.difference(a, b)
    gains: np.ndarray = np.where(slots > 0, factor * pair_gain(d, sd, queued), 0.0)
    return gains


def unit_priorities(gains: npt.ArrayLike, seed: int, explore: float = EXPLORE) -> np.ndarray:
    """Serving priorities from gains: the units in order of gain (ties in a seeded random order), with
    every (1/explore)-th place taken by a unit drawn uniformly among those not yet placed, so every unit
    keeps being served. Returned as 1 - place / n, in (0, 1]: serving by priority descending is that order."""
    g = np.asarray(gains, dtype=np.float64)
    n = len(g)
    rng = np.random.default_rng(seed)
    greedy = np.lexsort((rng.random(n), -g))
    uniform = rng.permutation(n)
    every = max(1, round(1.0 / explore)) if explore > 0 else n + 1
    placed = np.zeros(n, dtype=bool)
    priority = np.empty(n)
    next_greedy = next_uniform = 0
    # A plain loop: two cursors merging two orders, skipping units already placed (n is a study's size).
    for place in range(n):
        if (place + 1) % every == 0:
            while placed[uniform[next_uniform]]:
                next_uniform += 1
            unit = uniform[next_uniform]
        else:
            while placed[greedy[next_greedy]]:
                next_greedy += 1
            unit = greedy[next_greedy]
        placed[unit] = True
        priority[unit] = 1.0 - place / n
    return priority
