"""Rating consistency (the paper's check that separability matters), pure Python + scipy.

When one annotator judges the same (instance, system pair) on several sample pairs, their consistency
is the share of those judgments that favour the system they favoured most; ties and "both bad" count
for neither system but stay in the denominator. A unit's consistency is the mean over its annotators
who gave at least two judgments. A healthy study shows a positive Spearman correlation between a
unit's separability and its consistency.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def annotator_consistency(winners: Sequence[str]) -> float:
    """winners: "a", "b", "tie" or "both_bad" for one annotator's judgments of one unit."""
    if not winners:
        raise ValueError("no judgments")
    counts = Counter(w for w in winners if w in ("a", "b"))
    return max(counts.values(), default=0) / len(winners)


def unit_consistency(judgments_by_annotator: Mapping[Any, Sequence[str]],
                     min_judgments: int = 2) -> tuple[float | None, int]:
    """(mean consistency over annotators with at least `min_judgments`, number of such annotators)."""
    values = [annotator_consistency(w) for w in judgments_by_annotator.values() if len(w) >= min_judgments]
    if not values:
        return None, 0
    return sum(values) / len(values), len(values)


@dataclass
class Correlation:
    rho: float | None
    p: float | None
    n: int

    def as_dict(self) -> dict[str, Any]:
        return {"rho": self.rho, "p": self.p, "n": self.n}


def spearman(xs: Iterable[float | None], ys: Iterable[float | None]) -> Correlation:
    from scipy.stats import spearmanr

    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if x is not None and y is not None]
    n = len(pairs)
    if n < 3:
        return Correlation(None, None, n)
    result = spearmanr([p[0] for p in pairs], [p[1] for p in pairs])
    rho, p = float(result.statistic), float(result.pvalue)
    if math.isnan(rho):
        return Correlation(None, None, n)
    return Correlation(rho, p, n)
