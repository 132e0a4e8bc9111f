"""The adaptive policy's serving priorities, written by the debounced leaderboard recompute.

Why here: annotations serves comparisons by `Comparison.priority` (the lease query walks the serve-order
index) and must not import ranking; ranking, above it, fits the votes and writes the priorities back, off
the request path (`ranking.tasks.recompute_leaderboards`), never per vote. The formula is the pure
`ranking.adaptive` (docs/design.md §5.1, "Adaptive selection"); this module reads the study's counted
votes and open comparisons and stores the result. `adaptive_report` is what the dashboard says of it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from annotations.models import Comparison, Study, Vote

from .adaptive import Posterior, fit_posterior, unit_gains, unit_priorities
from .bt import win_matrix
from .ratings import scores_from_winners

UNDECIDED_CONFIDENCE = 0.95  # a pair is undecided while P(its order is wrong) > 1 - this
WRITE_BATCH = 500


@dataclass
class StudyState:
    """The study's systems (ids, in index order), posterior and selected non-gold comparisons."""

    system_ids: list[int]
    posterior: Posterior
    votes: int
    comparison_ids: np.ndarray
    unit_a: np.ndarray
    unit_b: np.ndarray
    separability: np.ndarray
    open_slots: np.ndarray

    def gains(self) -> np.ndarray:
        return unit_gains(self.posterior, self.unit_a, self.unit_b, self.separability, self.open_slots)


def study_state(study: Study) -> StudyState:
    system_ids = sorted(study.systems.values_list("id", flat=True))
    index = {pk: i for i, pk in enumerate(system_ids)}
    rows = list(Vote.objects.filter(study=study, excluded=False, comparison__is_gold=False,
                                    comparison__system_a__in=system_ids, comparison__system_b__in=system_ids)
                .exclude(source=Vote.Source.JUDGE)  # LLM judges' verdicts never steer the human votes
                .values_list("comparison__system_a_id", "comparison__system_b_id", "winner"))
    score, keep = scores_from_winners([r[2] for r in rows], study.both_bad)
    a = np.array([index[r[0]] for r in rows], dtype=np.int64)[keep]
    b = np.array([index[r[1]] for r in rows], dtype=np.int64)[keep]
    wins = win_matrix(a, b, score[keep], len(system_ids)) if len(a) else np.zeros((len(system_ids),) * 2)
    posterior = fit_posterior(wins)
    comparisons = list(Comparison.objects.filter(study=study, selected=True, is_gold=False)
                       .order_by("id").values_list("id", "system_a_id", "system_b_id", "separability", "votes_count"))
    return StudyState(
        system_ids, posterior, int(keep.sum()),
        np.array([c[0] for c in comparisons], dtype=np.int64),
        np.array([index[c[1]] for c in comparisons], dtype=np.int64),
        np.array([index[c[2]] for c in comparisons], dtype=np.int64),
        np.array([np.nan if c[3] is None else c[3] for c in comparisons], dtype=np.float64),
        np.array([study.votes_per_comparison - c[4] for c in comparisons], dtype=np.int64))


def refresh_adaptive_priorities(study: Study) -> int:
    """Write the adaptive priorities of an open adaptive study's selected comparisons; returns how many.

    Seeded by the study's selection seed and vote count, so a recompute of the same votes writes the same
    order. Rows are updated in id order (no deadlock between two overlapping refreshes)."""
    if study.policy != Study.Policy.ADAPTIVE or study.status != Study.Status.OPEN:
        return 0
    state = study_state(study)
    if not len(state.comparison_ids):
        return 0
    priorities = unit_priorities(state.gains(), seed=study.selection_seed * 1_000_003 + state.votes)
    return write_priorities([int(pk) for pk in state.comparison_ids], [float(p) for p in priorities])


def write_priorities(ids: list[int], priorities: list[float]) -> int:
    """Store serving priorities without ever holding annotators up; returns the rows written.

    PostgreSQL: in batches of WRITE_BATCH, each its own short transaction that updates only the rows nobody
    holds (`FOR UPDATE SKIP LOCKED`, in id order). A row a vote or a lease holds at that moment keeps its
    previous priority until the next recompute (priorities only order the queue). One `bulk_update` held
    every comparison of the study until it committed: leases, which skip locked rows, found nothing and sent
    annotators to the done page with work left, and votes locking their comparison deadlocked with it
    (CI, the 50-annotator adaptive test). SQLite serialises writers: a plain bulk update."""
    from django.db import connection, transaction

    pairs = sorted(zip(ids, priorities, strict=True))
    if connection.vendor != "postgresql":
        Comparison.objects.bulk_update([Comparison(pk=pk, priority=p) for pk, p in pairs], ["priority"],
                                       batch_size=1000)
        return len(pairs)
    table = Comparison._meta.db_table
    written = 0
    for start in range(0, len(pairs), WRITE_BATCH):
        batch = pairs[start:start + WRITE_BATCH]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"WITH v AS (SELECT unnest(%s::bigint[]) AS id, unnest(%s::float8[]) AS priority), "  # noqa: S608
                f"free AS (SELECT c.id FROM {table} c JOIN v ON v.id = c.id ORDER BY c.id FOR UPDATE OF c SKIP LOCKED) "
                f"UPDATE {table} c SET priority = v.priority FROM v, free WHERE c.id = v.id AND c.id = free.id",
                [[pk for pk, _ in batch], [p for _, p in batch]])
            written += cursor.rowcount
    return written


def adaptive_report(study: Study, bins: int = 10, limit: int = 20) -> dict:
    """What the policy is doing: the distribution of the open comparisons' expected gain per vote, the
    undecided system pairs (most uncertain first), and the expected gain of the next 100 votes."""
    from annotations.models import System

    state = study_state(study)
    gains = state.gains()
    open_gains = gains[state.open_slots > 0]
    counts, edges = (np.histogram(open_gains, bins=bins) if len(open_gains) else (np.zeros(0), np.zeros(0)))
    n = len(state.system_ids)
    names = dict(System.objects.filter(pk__in=state.system_ids).values_list("id", "name"))
    i, j = np.triu_indices(n, k=1)
    p_wrong = state.posterior.p_wrong(i, j) if n > 1 else np.zeros(0)
    undecided = [k for k in np.argsort(-p_wrong) if p_wrong[k] > 1.0 - UNDECIDED_CONFIDENCE]
    # The next 100 votes go (mostly) to the best open slots: their summed gain is in units of the log-strength
    # difference's standard deviation, weighted by 2 P(order wrong) (ranking.adaptive).
    next_100 = float(np.sort(open_gains)[::-1][:100].sum()) if len(open_gains) else 0.0
    return {
        "votes": state.votes,
        "histogram": {"counts": [int(c) for c in counts], "edges": [float(e) for e in edges]},
        "undecided": [{"system_a": names[state.system_ids[i[k]]], "system_b": names[state.system_ids[j[k]]],
                       "p_wrong": float(p_wrong[k])} for k in undecided[:limit]],
        "undecided_count": len(undecided),
        "pairs": int(len(i)),
        "next_100_gain": next_100,
        "open_comparisons": int(len(open_gains)),
    }
