"""Agreement statistics for the researcher dashboard, as plain functions on lists and arrays.

No Django here: the dashboard gathers votes into (annotator, item, label) triples and hands them over,
so every number on the page can be checked against a reference implementation in a test or a notebook.

- Krippendorff's alpha (nominal), computed by the `krippendorff` package: from the items x labels table of
  value counts (`krippendorff_alpha_of`, what the dashboard uses: O(votes) memory), or from the
  annotators x items reliability matrix, NaN where an annotator did not judge an item (`krippendorff_alpha`;
  5,000 annotators x 200,000 items is 10^9 cells, which took 194 s at 1,000,000 votes in bench/scale.py).
- Fleiss' kappa, which needs the same number of raters on every item: all items when that already holds,
  otherwise the items with the modal number of raters (the result says which).
- Per-annotator figures: median seconds per vote, gold pass rate, share of left picks, share too fast,
  agreement with the majority of the *other* annotators of the same item.
- The most disagreed items (observed pairwise disagreement).
"""
from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from lib.vocabulary import WINNERS

LABELS = WINNERS  # the canonical winners (lib.vocabulary)
CODES: dict[str, int] = {label: code for code, label in enumerate(LABELS)}

Triple = tuple[Hashable, Hashable, str]  # (annotator, item, label)


@dataclass
class Agreement:
    """One agreement coefficient with what it was computed on."""

    statistic: str
    value: float | None
    items: int  # items that entered the computation
    raters: int  # distinct annotators among those items
    ratings: int  # ratings that entered the computation
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def reliability_matrix(triples: Iterable[Triple], codes: dict[str, int] = CODES):
    """(matrix, annotators, items): matrix[r, i] = code of annotator r's label on item i, NaN if none.

    If one annotator labelled an item twice, the last label counts (votes are unique per comparison and
    annotator, so this does not happen with stored votes)."""
    annotators: dict[Hashable, int] = {}
    items: dict[Hashable, int] = {}
    cells = []
    for annotator, item, label in triples:
        r = annotators.setdefault(annotator, len(annotators))
        i = items.setdefault(item, len(items))
        cells.append((r, i, codes[label]))
    matrix = np.full((len(annotators), len(items)), np.nan)
    for r, i, code in cells:
        matrix[r, i] = code
    return matrix, list(annotators), list(items)


def krippendorff_alpha(matrix: np.ndarray) -> Agreement:
    """Nominal alpha. Items with fewer than two ratings are not pairable and are left out (as the
    coefficient itself does); `items` counts the pairable ones."""
    import krippendorff

    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or matrix.size == 0:
        return Agreement("krippendorff_alpha", None, 0, 0, 0, "no ratings")
    pairable = np.sum(~np.isnan(matrix), axis=0) >= 2
    used = matrix[:, pairable]
    raters = int(np.sum(np.any(~np.isnan(used), axis=1))) if used.size else 0
    ratings = int(np.sum(~np.isnan(used)))
    n_items = int(pairable.sum())
    if n_items == 0:
        return Agreement("krippendorff_alpha", None, 0, raters, 0,
                         "no item was judged by two or more annotators")
    values = np.unique(used[~np.isnan(used)])
    if len(values) < 2:
        return Agreement("krippendorff_alpha", None, n_items, raters, ratings,
                         "every rating has the same label: agreement is perfect but alpha is undefined")
    value = float(krippendorff.alpha(reliability_data=used, level_of_measurement="nominal"))
    return Agreement("krippendorff_alpha", None if math.isnan(value) else value, n_items, raters, ratings)


def krippendorff_alpha_of(triples: Iterable[Triple], codes: dict[str, int] = CODES) -> Agreement:
    """Nominal alpha from (annotator, item, label) triples through the items x labels value counts: the
    same coefficient as `krippendorff_alpha(reliability_matrix(triples)[0])` (a test checks it) without
    the annotators x items matrix. An annotator's repeated label on one item counts once (the last)."""
    import krippendorff

    last: dict[tuple[Hashable, Hashable], int] = {}
    for annotator, item, label in triples:
        last[(annotator, item)] = codes[label]
    if not last:
        return Agreement("krippendorff_alpha", None, 0, 0, 0, "no ratings")
    items: dict[Hashable, int] = {}
    rows = np.fromiter((items.setdefault(item, len(items)) for _annotator, item in last), dtype=np.int64,
                       count=len(last))
    labels = np.fromiter(last.values(), dtype=np.int64, count=len(last))
    counts = np.zeros((len(items), len(codes)), dtype=np.int64)
    np.add.at(counts, (rows, labels), 1)
    pairable = counts.sum(axis=1) >= 2
    n_items = int(pairable.sum())
    in_pairable = pairable[rows]
    raters = len({annotator for (annotator, _item), keep in zip(last, in_pairable, strict=True) if keep})
    ratings = int(counts[pairable].sum())
    if n_items == 0:
        return Agreement("krippendorff_alpha", None, 0, raters, 0,
                         "no item was judged by two or more annotators")
    used = counts[pairable]
    if int(np.count_nonzero(used.sum(axis=0))) < 2:
        return Agreement("krippendorff_alpha", None, n_items, raters, ratings,
                         "every rating has the same label: agreement is perfect but alpha is undefined")
    value = float(krippendorff.alpha(value_counts=used, level_of_measurement="nominal"))
    return Agreement("krippendorff_alpha", None if math.isnan(value) else value, n_items, raters, ratings)


def fleiss_kappa_table(table: npt.ArrayLike) -> float | None:
    """Fleiss' kappa of an items x categories count table with the same row sum n >= 2 on every row.

    None when chance agreement is 1 (every rating in one category)."""
    counts = np.asarray(table, dtype=float)
    if counts.ndim != 2 or counts.shape[0] == 0:
        raise ValueError("need an items x categories table with at least one item")
    n = counts.sum(axis=1)
    if not np.all(n == n[0]) or n[0] < 2:
        raise ValueError("every item needs the same number of raters, at least two")
    raters = n[0]
    items = counts.shape[0]
    p_j = counts.sum(axis=0) / (items * raters)
    p_i = (np.sum(counts * counts, axis=1) - raters) / (raters * (raters - 1))
    p_bar, p_e = float(p_i.mean()), float(np.sum(p_j * p_j))
    if math.isclose(p_e, 1.0):
        return None
    return (p_bar - p_e) / (1 - p_e)


def fleiss_kappa(triples: Iterable[Triple], labels: Sequence[str] = LABELS) -> Agreement:
    """Fleiss' kappa over the items that share one number of raters.

    When every item has the same number (>= 2) of raters, all items are used; otherwise the items whose
    number of raters is the most common one among items with two or more (ties: the larger number)."""
    by_item: dict[Hashable, list[str]] = defaultdict(list)
    annotators_of: dict[Hashable, set] = defaultdict(set)
    for annotator, item, label in triples:
        by_item[item].append(label)
        annotators_of[item].add(annotator)
    sizes = Counter(len(v) for v in by_item.values() if len(v) >= 2)
    if not sizes:
        return Agreement("fleiss_kappa", None, 0, 0, 0, "no item was judged by two or more annotators")
    raters_per_item, n_items = max(sizes.items(), key=lambda kv: (kv[1], kv[0]))
    chosen = [item for item, v in by_item.items() if len(v) == raters_per_item]
    column = {label: j for j, label in enumerate(labels)}
    table = np.zeros((len(chosen), len(labels)))
    for row, item in enumerate(chosen):
        for label in by_item[item]:
            table[row, column[label]] += 1
    if len(chosen) == len(by_item):
        note = f"all {len(chosen)} items, each judged by exactly {raters_per_item} annotators"
    else:
        note = (f"the {len(chosen)} of {len(by_item)} items judged by the modal number of annotators, "
                f"{raters_per_item} (Fleiss' kappa needs the same number on every item)")
    raters = len(set().union(*(annotators_of[item] for item in chosen)))
    value = fleiss_kappa_table(table)
    if value is None:
        note += "; every rating has the same label, so kappa is undefined"
    return Agreement("fleiss_kappa", value, len(chosen), raters, int(table.sum()), note)


def pairwise_disagreement(labels: Sequence[str]) -> float:
    """Share of the item's pairs of ratings that disagree (0 = unanimous)."""
    n = len(labels)
    if n < 2:
        return 0.0
    agreeing = sum(c * (c - 1) for c in Counter(labels).values())
    return 1.0 - agreeing / (n * (n - 1))


@dataclass
class DisagreedItem:
    item: Hashable
    disagreement: float
    counts: dict[str, int]
    ratings: int


def most_disagreed(triples: Iterable[Triple], limit: int = 10) -> list[DisagreedItem]:
    by_item: dict[Hashable, list[str]] = defaultdict(list)
    for _annotator, item, label in triples:
        by_item[item].append(label)
    ranked = [
        DisagreedItem(item, pairwise_disagreement(labels), dict(Counter(labels)), len(labels))
        for item, labels in by_item.items() if len(labels) >= 2
    ]
    ranked.sort(key=lambda d: (-d.disagreement, -d.ratings, str(d.item)))
    return [d for d in ranked[:limit] if d.disagreement > 0]


def majority_agreement(triples: Iterable[Triple]) -> dict[Hashable, tuple[float | None, int]]:
    """Per annotator: (share of their ratings equal to the strict majority label of the *other*
    annotators of the same item, number of such items). Items without a strict majority among the
    others (e.g. the two others disagree) do not count."""
    by_item: dict[Hashable, list[tuple[Hashable, str]]] = defaultdict(list)
    annotators = set()
    for annotator, item, label in triples:
        by_item[item].append((annotator, label))
        annotators.add(annotator)
    hits: dict[Hashable, int] = Counter()
    totals: dict[Hashable, int] = Counter()
    for ratings in by_item.values():
        if len(ratings) < 3:
            continue
        overall = Counter(label for _, label in ratings)
        for annotator, label in ratings:
            others = overall.copy()
            others[label] -= 1
            top_label, top = max(others.items(), key=lambda kv: kv[1])
            if top * 2 <= len(ratings) - 1:
                continue
            totals[annotator] += 1
            hits[annotator] += top_label == label
    return {a: ((hits[a] / totals[a]) if totals[a] else None, totals[a]) for a in annotators}


@dataclass
class VoteRow:
    """What the per-annotator table needs from one vote."""

    annotator: Hashable
    item: Hashable
    winner: str
    choice: str  # left, right, tie, both_bad
    duration: float | None = None
    gold_passed: bool | None = None
    too_fast: bool = False
    live: bool = True  # collected here (the side shown is known), not imported


@dataclass
class AnnotatorStats:
    annotator: Hashable
    votes: int
    median_seconds: float | None
    gold_items: int
    gold_pass_rate: float | None
    left_share: float | None  # of live left/right picks
    decisive_live: int
    too_fast_share: float
    majority_agreement: float | None
    majority_items: int


def annotator_stats(rows: Iterable[VoteRow], agreement_triples: Iterable[Triple] | None = None) -> list[AnnotatorStats]:
    """One row per annotator, most votes first. `agreement_triples` (default: every row) are the
    ratings the majority comparison uses; pass the non-gold, non-excluded ones."""
    rows = list(rows)
    by_annotator: dict[Hashable, list[VoteRow]] = defaultdict(list)
    for row in rows:
        by_annotator[row.annotator].append(row)
    if agreement_triples is None:
        agreement_triples = [(r.annotator, r.item, r.winner) for r in rows]
    majority = majority_agreement(agreement_triples)
    result = []
    for annotator, votes in by_annotator.items():
        durations = [v.duration for v in votes if v.duration is not None]
        gold = [v.gold_passed for v in votes if v.gold_passed is not None]
        sides = [v.choice for v in votes if v.live and v.choice in ("left", "right")]
        share, items = majority.get(annotator, (None, 0))
        result.append(AnnotatorStats(
            annotator=annotator,
            votes=len(votes),
            median_seconds=statistics.median(durations) if durations else None,
            gold_items=len(gold),
            gold_pass_rate=(sum(gold) / len(gold)) if gold else None,
            left_share=(sides.count("left") / len(sides)) if sides else None,
            decisive_live=len(sides),
            too_fast_share=sum(v.too_fast for v in votes) / len(votes),
            majority_agreement=share,
            majority_items=items,
        ))
    result.sort(key=lambda s: (-s.votes, str(s.annotator)))
    return result


def histogram(values: Sequence[float], bins: int = 20, marks: Sequence[float] = ()) -> dict:
    """Counts of `values` in `bins` equal-width bins spanning the values and any `marks` (e.g. a
    threshold), so a marked value always falls on the axis."""
    data = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if data.size == 0:
        return {"edges": [], "counts": [], "n": 0}
    low = min([float(data.min())] + [float(m) for m in marks])
    high = max([float(data.max())] + [float(m) for m in marks])
    if high == low:
        low, high = low - 0.5, high + 0.5
    counts, edges = np.histogram(data, bins=bins, range=(low, high))
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts], "n": int(data.size)}


def seconds_left(done: int, total: int, elapsed_seconds: float) -> float | None:
    """Remaining time at the rate so far; None before anything is done."""
    if done <= 0 or total <= 0 or elapsed_seconds <= 0:
        return None
    return max(0.0, elapsed_seconds * (total - done) / done)
