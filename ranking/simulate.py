"""Selection policies simulated vote by vote: how many human votes a ranking needs under each policy.

Why it exists: the votes-needed planner (dashboard) and bench/selection.py answer the same question, "how
fast does the ranking converge if units are chosen like this?", and must answer it with the same code
the site serves by (`ranking.adaptive`). Django-free.

A *pool* is the set of units a policy may pick (a unit: one comparison, i.e. an instance and a system
pair, with its normalised separability and how many votes it can still take) and what a vote on a unit
says: a real vote, not yet used, in a replay (`ReplayPool`), or a draw from a model (`SyntheticPool`).

The synthetic vote model: P(vote for i over j | not a tie) = sigmoid(kappa(s) * (theta_i - theta_j)),
kappa(s) = exp(SHARPNESS * (s - MEDIAN_SEPARABILITY)): at the median separability votes follow the true
Bradley-Terry strengths, on less separable units they are closer to a coin flip, on more separable ones
sharper. SHARPNESS, MEDIAN_SEPARABILITY and TIE_RATE are fitted by bench/selection.py (`--fit`) on the
separability paper's two crowd batches (ROUGE-1 separability; the fit and its figures are in
docs/benchmarks.md, "Selection").

Policies, as the site serves them (`annotations.selection`, priorities descending): `random` (every unit,
uniform random order: the baseline), `random_vote` (replay only: the real votes in uniform random order),
`top_fraction` (the top TOP_FRACTION of each pair's units by separability, best first), `proportional`
(units drawn in proportion to separability, Efraimidis-Spirakis) and `adaptive` (`ranking.adaptive`,
priorities refreshed every `refresh_every` votes like the debounced recompute).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit
from scipy.stats import kendalltau, spearmanr

from .adaptive import fit_posterior, unit_gains, unit_priorities
from .bt import bradley_terry_from_wins
from .common import RatingError

__all__ = [
    "MEDIAN_SEPARABILITY",
    "POLICIES",
    "SHARPNESS",
    "TIE_RATE",
    "Curve",
    "ReplayPool",
    "SyntheticPool",
    "adjacent_separated",
    "evenly_spread",
    "plan",
    "run_policy",
    "percentile_interval",
    "votes_to_reach",
]

# Fitted by `python bench/selection.py --fit` on demo/data/separability-paper/ (docs/benchmarks.md).
SHARPNESS = 4.10
MEDIAN_SEPARABILITY = 0.41
TIE_RATE = 0.089
TOP_FRACTION = 0.25
POLICIES = ("random", "random_vote", "top_fraction", "proportional", "adaptive")


@dataclass
class ReplayPool:
    """Real votes grouped by unit: votes[u] = system a's scores (1, 0.5, 0) of unit u's votes."""

    n_systems: int
    unit_a: np.ndarray
    unit_b: np.ndarray
    votes: list[list[float]]
    separability: np.ndarray = field(default_factory=lambda: np.zeros(0))  # empty: unknown (NaN) for every unit

    def __post_init__(self) -> None:
        if not len(self.separability):
            self.separability = np.full(len(self.unit_a), np.nan)

    def slots(self) -> np.ndarray:
        return np.array([len(v) for v in self.votes], dtype=np.int64)

    def start(self, rng: np.random.Generator) -> Callable[[int], float]:
        """A fresh replay: each call reveals one not-yet-used vote of the unit, in a random order."""
        remaining = [list(rng.permutation(v)) for v in self.votes]
        return lambda unit: float(remaining[unit].pop())


@dataclass
class SyntheticPool:
    """Units of systems with true log-strengths `theta`; a vote is drawn from the module's vote model."""

    theta: np.ndarray
    unit_a: np.ndarray
    unit_b: np.ndarray
    separability: np.ndarray
    overlap: int = 1
    sharpness: float = SHARPNESS
    median_separability: float = MEDIAN_SEPARABILITY
    tie_rate: float = TIE_RATE

    @property
    def n_systems(self) -> int:
        return len(self.theta)

    def slots(self) -> np.ndarray:
        return np.full(len(self.unit_a), self.overlap, dtype=np.int64)

    def start(self, rng: np.random.Generator) -> Callable[[int], float]:
        s = np.where(np.isnan(self.separability), self.median_separability, self.separability)
        kappa = np.exp(self.sharpness * (s - self.median_separability))
        p_a = expit(kappa * (self.theta[self.unit_a] - self.theta[self.unit_b]))

        def vote(unit: int) -> float:
            if rng.random() < self.tie_rate:
                return 0.5
            return 1.0 if rng.random() < p_a[unit] else 0.0
        return vote

    @classmethod
    def build(cls, theta: Sequence[float], separabilities: Sequence[float], instances: int, seed: int,
              overlap: int = 1) -> SyntheticPool:
        """Every system pair on `instances` instances; each unit's separability drawn from `separabilities`."""
        strengths = np.asarray(theta, dtype=np.float64)
        i, j = np.triu_indices(len(strengths), k=1)
        a, b = np.repeat(i, instances), np.repeat(j, instances)
        rng = np.random.default_rng(seed)
        s = rng.choice(np.asarray(separabilities, dtype=np.float64), size=len(a))
        return cls(strengths, a, b, s, overlap)


@dataclass
class Curve:
    """Rank agreement with the reference after each checkpoint's number of votes."""

    policy: str
    votes: list[int]
    spearman: list[float]  # NaN while the votes cannot rank every system (disconnected)
    kendall: list[float]
    separated: list[bool]  # every adjacent pair of the estimate's order separated at the confidence


Pool = ReplayPool | SyntheticPool


def _ranking_of(wins: np.ndarray) -> np.ndarray | None:
    try:
        return bradley_terry_from_wins(wins)
    except RatingError:  # not connected yet
        return None


def adjacent_separated(wins: np.ndarray, confidence: float) -> bool:
    """Whether every adjacent pair of the estimated order has P(order right) >= confidence (Laplace
    posterior of `ranking.adaptive`)."""
    posterior = fit_posterior(wins)
    order = np.argsort(-posterior.theta)
    return bool(np.all(posterior.p_wrong(order[:-1], order[1:]) <= 1.0 - confidence))


def _fixed_order(policy: str, pool: Pool, rng: np.random.Generator) -> np.ndarray:
    """The serving order of a policy that does not look at the votes (a unit repeats per slot)."""
    n = len(pool.unit_a)
    s = np.nan_to_num(pool.separability, nan=0.0)
    if policy == "top_fraction":
        lo, hi = np.minimum(pool.unit_a, pool.unit_b), np.maximum(pool.unit_a, pool.unit_b)
        order = np.lexsort((rng.random(n), -s, hi, lo))
        pair = lo[order] * pool.n_systems + hi[order]
        starts = np.r_[0, np.flatnonzero(pair[1:] != pair[:-1]) + 1, n]
        chosen = np.concatenate([order[s0:s0 + max(1, round(TOP_FRACTION * (s1 - s0)))]
                                 for s0, s1 in zip(starts[:-1], starts[1:], strict=True)])
        units = chosen[np.argsort(-s[chosen], kind="stable")]
    elif policy == "proportional":
        weight = np.clip(s, 1e-6, 1.0)
        units = np.argsort(-(rng.random(n) ** (1.0 / weight)))
    else:  # random
        units = rng.permutation(n)
    return np.repeat(units, pool.slots()[units])


def run_policy(pool: Pool, policy: str, *, seed: int, budget: int, step: int, refresh_every: int = 50,
               reference: np.ndarray | None = None, confidence: float = 0.95) -> Curve:
    """Serve `budget` votes (fewer if the pool runs dry) by `policy`, checking the BT ranking against
    `reference` (ratings or strengths; the pool's theta when synthetic) every `step` votes."""
    rng = np.random.default_rng(seed)
    vote = pool.start(rng)
    if reference is None:
        if not isinstance(pool, SyntheticPool):
            raise ValueError("a replay needs the reference ranking")
        reference = pool.theta
    n = pool.n_systems
    slots = pool.slots().copy()
    budget = min(budget, int(slots.sum()))
    wins = np.zeros((n, n))
    curve = Curve(policy, [], [], [], [])
    queue: np.ndarray = np.zeros(0, dtype=np.int64)
    position = 0
    if policy == "random_vote":  # every remaining vote equally likely: units repeated per vote, shuffled
        queue = rng.permutation(np.repeat(np.arange(len(slots)), slots))
    elif policy != "adaptive":
        queue = _fixed_order(policy, pool, rng)
        budget = min(budget, len(queue))  # top_fraction serves only the units it selected
    for served in range(1, budget + 1):
        if policy == "adaptive" and (served - 1) % refresh_every == 0:
            posterior = fit_posterior(wins)
            gains = unit_gains(posterior, pool.unit_a, pool.unit_b, pool.separability, slots)
            priorities = unit_priorities(gains, seed=int(rng.integers(2**31)))
            priorities[slots <= 0] = -1.0
            order = np.argsort(-priorities, kind="stable")
            queue, position = np.repeat(order, slots[order]), 0
        if policy == "random":  # uniform over the units that still have a vote
            while True:
                unit = int(rng.integers(len(slots)))
                if slots[unit] > 0:
                    break
        else:
            while slots[queue[position]] <= 0:
                position += 1
            unit = int(queue[position])
            position += 1
        slots[unit] -= 1
        score = vote(unit)
        a, b = pool.unit_a[unit], pool.unit_b[unit]
        wins[a, b] += score
        wins[b, a] += 1.0 - score
        if served % step == 0 or served == budget:
            ratings = _ranking_of(wins)
            curve.votes.append(served)
            if ratings is None:
                curve.spearman.append(float("nan"))
                curve.kendall.append(float("nan"))
                curve.separated.append(False)
            else:
                curve.spearman.append(float(spearmanr(ratings, reference).statistic))
                curve.kendall.append(float(kendalltau(ratings, reference).statistic))
                curve.separated.append(adjacent_separated(wins, confidence))
    return curve


def votes_to_reach(curve: Curve, target: float, measure: str = "spearman") -> int | None:
    """The first checkpoint at which the measure reaches `target` (None: not within the run)."""
    values = curve.spearman if measure == "spearman" else curve.kendall
    for votes, value in zip(curve.votes, values, strict=True):
        if value >= target:
            return votes
    return None


def evenly_spread(n_systems: int, elo_range: float = 400.0) -> np.ndarray:
    """A prior's true log-strengths: n systems evenly spread over `elo_range` Elo points."""
    return np.linspace(-0.5, 0.5, n_systems) * elo_range * np.log(10.0) / 400.0


@dataclass
class Plan:
    """Per policy: expected Spearman at each vote count (mean over seeds), and the median votes after
    which every adjacent pair is separated at the confidence (None: not within the budget)."""

    votes: list[int]
    expected_spearman: dict[str, list[float]]
    votes_to_separate: dict[str, int | None]


def plan(theta: Sequence[float], unit_a: Sequence[int], unit_b: Sequence[int], separability: Sequence[float],
         *, overlap: int, budget: int, policies: Sequence[str] = ("random", "adaptive"), seeds: int = 5,
         checkpoints: int = 20, confidence: float = 0.95) -> Plan:
    """The votes-needed planner: simulate the study's own units (their system pairs and separability) with
    true strengths `theta` (a pilot's fit or a prior), `seeds` times per policy."""
    pool = SyntheticPool(np.asarray(theta, dtype=np.float64), np.asarray(unit_a, dtype=np.int64),
                         np.asarray(unit_b, dtype=np.int64), np.asarray(separability, dtype=np.float64),
                         overlap=overlap)
    budget = min(budget, int(pool.slots().sum()))
    step = max(1, budget // checkpoints)
    expected: dict[str, list[float]] = {}
    separate: dict[str, int | None] = {}
    votes = list(range(step, budget + 1, step))
    for policy in policies:
        curves = [run_policy(pool, policy, seed=seed, budget=budget, step=step,
                             refresh_every=max(10, step // 2), confidence=confidence) for seed in range(seeds)]
        # A policy that selects fewer units (top_fraction) runs dry early: its ranking stays where it was.
        at = [[c.spearman[max(0, int(np.searchsorted(c.votes, v, side="right")) - 1)] for v in votes] for c in curves]
        expected[policy] = [float(np.mean(np.nan_to_num(column, nan=0.0))) for column in zip(*at, strict=True)]
        firsts = [next((v for v, ok in zip(c.votes, c.separated, strict=True) if ok), None) for c in curves]
        reached = [f for f in firsts if f is not None]
        separate[policy] = int(np.median(reached)) if len(reached) * 2 > len(firsts) else None
    return Plan(votes, expected, separate)


def percentile_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of `values` (for the benchmark's spread over seeds)."""
    low = (1.0 - level) / 2.0
    return float(np.quantile(values, low)), float(np.quantile(values, 1.0 - low))

