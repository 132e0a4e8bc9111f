"""How far an LLM judge can be trusted, measured against the humans on the same comparisons.

The figures the literature warns about (Zheng et al. 2023, "Judging LLM-as-a-Judge with MT-Bench and
Chatbot Arena", NeurIPS Datasets and Benchmarks; docs/design.md §4.7): agreement with the human majority,
Cohen's kappa (Cohen 1960), position consistency (the same verdict in both orders), position bias (the
share of first-position wins), length bias (how often the longer output wins, the judge against the
humans on the same comparisons) and self-preference (the same, for the judge's own model's outputs).
Each figure comes with its n and a percentile bootstrap interval (2.5th and 97.5th percentiles, 1,000
rounds of the comparisons resampled with replacement, seed 0).

Labels are canonical, per comparison: `a`, `b` or `tie` ("both bad" counts as a tie). A judge answer is
positional (`judges.verdicts`): the caller says whether the first output it saw was A. Pure numpy, no
Django. Cohen's kappa is computed here rather than by scikit-learn because scikit-learn is not a runtime
dependency and the bootstrap needs it on thousands of resampled confusion matrices at once; the tests
check it against `sklearn.metrics.cohen_kappa_score`.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .verdicts import Verdict

LABELS = ("a", "b", "tie")
BOOTSTRAP_ROUNDS = 1000
BOOTSTRAP_SEED = 0

FloatArray = npt.NDArray[np.float64]


def comparison_label(winner: str) -> str:
    """A vote's winner (a, b, tie, both_bad) as a label: both bad counts as a tie."""
    if winner not in ("a", "b", "tie", "both_bad"):
        raise ValueError(f"{winner!r} is not a, b, tie or both_bad")
    return "tie" if winner == "both_bad" else winner


def majority_label(labels: Iterable[str]) -> str | None:
    """The unique most frequent label, or None (no labels, or two labels equally frequent)."""
    ranked = Counter(labels).most_common()
    if not ranked or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]


def canonical_label(verdict: Verdict, first_is_a: bool) -> str:
    """A positional verdict as the comparison's label."""
    if verdict == Verdict.FIRST:
        return "a" if first_is_a else "b"
    if verdict == Verdict.SECOND:
        return "b" if first_is_a else "a"
    return "tie"


@dataclass(frozen=True)
class Estimate:
    """A figure with the number of things it was computed from and its bootstrap interval."""

    value: float | None
    n: int
    low: float | None = None
    high: float | None = None

    def to_dict(self) -> dict[str, float | int | None]:
        return {"value": self.value, "n": self.n, "low": self.low, "high": self.high}


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _interval(rounds_values: FloatArray) -> tuple[float | None, float | None]:
    finite = rounds_values[np.isfinite(rounds_values)]
    if finite.size == 0:
        return None, None
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def _resample(n: int, rounds: int, seed: int) -> npt.NDArray[np.int64]:
    return np.random.default_rng(seed).integers(0, n, size=(rounds, n))


def bootstrap_mean(values: Sequence[float], rounds: int = BOOTSTRAP_ROUNDS, seed: int = BOOTSTRAP_SEED) -> Estimate:
    """The mean of `values` with its percentile bootstrap interval (none when rounds is 0 or no values)."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return Estimate(None, 0)
    value = float(data.mean())
    if rounds <= 0:
        return Estimate(value, int(data.size))
    low, high = _interval(data[_resample(data.size, rounds, seed)].mean(axis=1))
    return Estimate(value, int(data.size), low, high)


# ---------------------------------------------------------------------------------------------- agreement, kappa

def _kappa_of(confusion: FloatArray) -> FloatArray:
    """Cohen's kappa of each confusion matrix in a (..., k, k) stack: (p_o - p_e) / (1 - p_e); NaN where
    p_e = 1 (both raters always gave the same one label: kappa is undefined)."""
    total = confusion.sum(axis=(-2, -1))
    observed = np.trace(confusion, axis1=-2, axis2=-1) / total
    expected = (confusion.sum(axis=-1) * confusion.sum(axis=-2)).sum(axis=-1) / total**2
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = (observed - expected) / (1.0 - expected)
    return np.where(np.isclose(expected, 1.0), np.nan, kappa)


def agreement_and_kappa(human: Sequence[str], judge: Sequence[str], rounds: int = BOOTSTRAP_ROUNDS,
                        seed: int = BOOTSTRAP_SEED) -> tuple[Estimate, Estimate]:
    """Share of comparisons where the judge's label is the human label, and Cohen's kappa over a/b/tie,
    both with the same bootstrap rounds (the comparisons resampled together)."""
    if len(human) != len(judge):
        raise ValueError("human and judge labels must be paired")
    n = len(human)
    if n == 0:
        return Estimate(None, 0), Estimate(None, 0)
    code = {label: i for i, label in enumerate(LABELS)}
    cells = np.array([code[h] * len(LABELS) + code[j] for h, j in zip(human, judge, strict=True)])
    size = len(LABELS) ** 2
    confusion = np.bincount(cells, minlength=size).reshape(len(LABELS), len(LABELS)).astype(float)
    agreement = float(np.trace(confusion) / n)
    kappa = _finite(float(_kappa_of(confusion)))
    if rounds <= 0:
        return Estimate(agreement, n), Estimate(kappa, n)
    drawn = cells[_resample(n, rounds, seed)] + size * np.arange(rounds)[:, None]
    stack: FloatArray = np.bincount(drawn.ravel(), minlength=rounds * size).reshape(
        rounds, len(LABELS), len(LABELS)).astype(float)
    agree_low, agree_high = _interval(np.trace(stack, axis1=1, axis2=2) / n)
    kappa_low, kappa_high = _interval(_kappa_of(stack))
    return Estimate(agreement, n, agree_low, agree_high), Estimate(kappa, n, kappa_low, kappa_high)


# ---------------------------------------------------------------------------------------------- biases

def position_bias(verdicts: Iterable[Verdict], rounds: int = BOOTSTRAP_ROUNDS, seed: int = BOOTSTRAP_SEED) -> Estimate:
    """Share of the decisive verdicts (first or second) that went to the output shown first; 0.5 is none."""
    return bootstrap_mean([1.0 if v == Verdict.FIRST else 0.0 for v in verdicts
                           if v in (Verdict.FIRST, Verdict.SECOND)], rounds, seed)


def position_consistency(label_pairs: Iterable[tuple[str, str]], rounds: int = BOOTSTRAP_ROUNDS,
                         seed: int = BOOTSTRAP_SEED) -> Estimate:
    """Share of comparisons judged in both orders whose two canonical labels are the same."""
    return bootstrap_mean([1.0 if x == y else 0.0 for x, y in label_pairs], rounds, seed)


def _score(label: str, side: str) -> float:
    """What `side` (a or b) scores under a label: 1 for a win, 0.5 for a tie, 0 for a loss."""
    return 1.0 if label == side else 0.5 if label == "tie" else 0.0


@dataclass(frozen=True)
class SideBias:
    """The win rate of one side of each comparison (the longer output, the judge's own model's) by the
    judge and by the humans on the same comparisons, and judge minus humans (a paired bootstrap)."""

    judge: Estimate
    human: Estimate
    difference: Estimate

    def to_dict(self) -> dict[str, dict[str, float | int | None]]:
        return {"judge": self.judge.to_dict(), "human": self.human.to_dict(), "difference": self.difference.to_dict()}


def side_bias(rows: Iterable[tuple[str, str, str]], rounds: int = BOOTSTRAP_ROUNDS,
              seed: int = BOOTSTRAP_SEED) -> SideBias:
    """rows: (judge label, human label, the side in question: a or b)."""
    judge_scores, human_scores = [], []
    for judge, human, side in rows:
        judge_scores.append(_score(judge, side))
        human_scores.append(_score(human, side))
    j, h = np.asarray(judge_scores, dtype=float), np.asarray(human_scores, dtype=float)
    n = int(j.size)
    if n == 0:
        return SideBias(Estimate(None, 0), Estimate(None, 0), Estimate(None, 0))
    points = (float(j.mean()), float(h.mean()), float(j.mean() - h.mean()))
    if rounds <= 0:
        return SideBias(*(Estimate(p, n) for p in points))
    drawn = _resample(n, rounds, seed)
    jr, hr = j[drawn].mean(axis=1), h[drawn].mean(axis=1)
    intervals = [_interval(jr), _interval(hr), _interval(jr - hr)]
    return SideBias(*(Estimate(p, n, low, high) for p, (low, high) in zip(points, intervals, strict=True)))


# ---------------------------------------------------------------------------------------------- one judge's report

@dataclass(frozen=True)
class JudgeAnswer:
    """One answer of the judge on a comparison: the order it was shown and what it said (None: unparseable)."""

    first_is_a: bool
    verdict: Verdict | None


@dataclass(frozen=True)
class JudgedComparison:
    human_label: str | None  # the human majority label (None: no human votes, or no unique majority)
    answers: tuple[JudgeAnswer, ...]
    length_a: int | None = None  # the outputs' lengths (characters), for length bias
    length_b: int | None = None
    own_side: str | None = None  # "a" or "b" when the judge's own model wrote that output

    @property
    def judge_label(self) -> str | None:
        """The judge's label: its one parsed verdict, or the verdict both orders agree on; orders that
        disagree make a tie (Zheng et al. 2023 count an inconsistent pair as a tie). None: nothing parsed."""
        labels = {canonical_label(a.verdict, a.first_is_a) for a in self.answers if a.verdict is not None}
        if not labels:
            return None
        return labels.pop() if len(labels) == 1 else "tie"

    @property
    def longer_side(self) -> str | None:
        if self.length_a is None or self.length_b is None or self.length_a == self.length_b:
            return None
        return "a" if self.length_a > self.length_b else "b"


@dataclass(frozen=True)
class JudgeReport:
    answers: int
    unparseable: int
    agreement: Estimate
    cohen_kappa: Estimate
    position_consistency: Estimate
    position_bias: Estimate
    length_bias: SideBias
    self_preference: SideBias | None  # None when the judge's model is none of the systems
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)  # human label -> judge label -> count

    def to_dict(self) -> dict[str, object]:
        return {"answers": self.answers, "unparseable": self.unparseable,
                "agreement": self.agreement.to_dict(), "cohen_kappa": self.cohen_kappa.to_dict(),
                "position_consistency": self.position_consistency.to_dict(),
                "position_bias": self.position_bias.to_dict(), "length_bias": self.length_bias.to_dict(),
                "self_preference": self.self_preference.to_dict() if self.self_preference else None,
                "confusion": self.confusion}


def _both_labels(items: Sequence[JudgedComparison],
                 side: Callable[[JudgedComparison], str | None]) -> list[tuple[str, str, str]]:
    rows = []
    for item in items:
        judge, chosen = item.judge_label, side(item)
        if judge is not None and item.human_label is not None and chosen is not None:
            rows.append((judge, item.human_label, chosen))
    return rows


def judge_report(items: Sequence[JudgedComparison], judge_model_in_study: bool = False,
                 rounds: int = BOOTSTRAP_ROUNDS, seed: int = BOOTSTRAP_SEED) -> JudgeReport:
    """Every figure of one judge over its comparisons (see the module docstring)."""
    answers = [a for item in items for a in item.answers]
    paired = [(item.human_label, item.judge_label) for item in items
              if item.human_label is not None and item.judge_label is not None]
    human = [h for h, _ in paired if h is not None]
    judge = [j for _, j in paired if j is not None]
    agreement, kappa = agreement_and_kappa(human, judge, rounds, seed)
    both_orders = []
    for item in items:
        by_order: dict[bool, set[str]] = {}
        for a in item.answers:
            if a.verdict is not None:
                by_order.setdefault(a.first_is_a, set()).add(canonical_label(a.verdict, a.first_is_a))
        if len(by_order) == 2 and all(len(labels) == 1 for labels in by_order.values()):
            both_orders.append((next(iter(by_order[True])), next(iter(by_order[False]))))
    confusion = {h: {j: 0 for j in LABELS} for h in LABELS}
    for h, j in zip(human, judge, strict=True):
        confusion[h][j] += 1
    return JudgeReport(
        answers=len(answers),
        unparseable=sum(1 for a in answers if a.verdict is None),
        agreement=agreement,
        cohen_kappa=kappa,
        position_consistency=position_consistency(both_orders, rounds, seed),
        position_bias=position_bias((a.verdict for a in answers if a.verdict is not None), rounds, seed),
        length_bias=side_bias(_both_labels(items, lambda item: item.longer_side), rounds, seed),
        self_preference=(side_bias(_both_labels(items, lambda item: item.own_side), rounds, seed)
                         if judge_model_in_study else None),
        confusion=confusion,
    )
