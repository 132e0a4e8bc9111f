"""The dashboard study page's vote-by-vote statistics, computed once per change of the votes.

Agreement, the per-annotator table, the most disagreed items, the consistency scatter and the votes
timeline each read every vote of the study. For a small study that is cheap and the page computes them
on every view (always current). Above `INLINE_VOTES` votes it is not (seconds at 1,000,000 votes,
bench/scale.py): such a study's page shows the `StudyAnalysis` stored by `refresh`, which runs after
every leaderboard recompute (`ranking.signals.leaderboards_recomputed`, connected in dashboard.apps), so
it lags the votes by at most one debounced recompute, and the page says when it was computed.
"""
from __future__ import annotations

import math
import time
from typing import Any

from django.utils import timezone

from annotations.models import Study, Vote

from . import queries
from .models import StudyAnalysis

INLINE_VOTES = 5_000  # at most this many votes: computed on each page view (about 0.1 s on this machine)
CONSISTENCY_PAIRS = 24  # system pairs whose scatter a page draws (most units first)
ANNOTATOR_ROWS = 200  # rows of the per-annotator table a page shows (most votes first); the API has all
EMPTY: dict[str, Any] = {  # what a large study's page shows before its first analysis is stored
    "votes": 0, "annotators": [], "disagreed": [],
    "agreement": {"krippendorff_alpha": {"value": None, "note": "being computed"},
                  "fleiss_kappa": {"value": None, "note": "being computed"}, "labels": []},
    "consistency": {"metric": "", "pairs": [], "overall": None, "note": "", "units": 0},
    "timeline": {"labels": [], "counts": [], "cumulative": [], "bucket": None},
    "adaptive": None,
}


def _json_safe(value: Any) -> Any:
    """PostgreSQL's jsonb refuses NaN and infinities: store them as null (the templates show a dash)."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def compute(study: Study) -> dict[str, Any]:
    """Every vote-by-vote statistic of the page, JSON-ready (the exclusions are joined at render time)."""
    rows = queries.vote_rows(study)
    annotators = queries.annotator_table(study, rows)
    for row in annotators:
        row.pop("exclusion", None)
    return _json_safe({
        "votes": len(rows),
        "annotators": annotators,
        "agreement": queries.study_agreement(study, rows),
        "disagreed": queries.disagreed_items(study, rows),
        "consistency": queries.consistency_scatter(study),
        "timeline": queries.votes_over_time(study),
        "adaptive": _adaptive_report(study),
    })


def _adaptive_report(study: Study) -> dict[str, Any] | None:
    """What the adaptive policy is doing (ranking.priorities), for an adaptive study; None otherwise."""
    if study.policy != Study.Policy.ADAPTIVE:
        return None
    from ranking.priorities import adaptive_report

    return adaptive_report(study)


def refresh(study: Study) -> StudyAnalysis:
    """Compute and store the study's analysis (a background task's work, not a page's)."""
    started = time.perf_counter()
    payload = compute(study)
    analysis, _ = StudyAnalysis.objects.update_or_create(study=study, defaults={
        "payload": payload, "votes": payload["votes"], "seconds": time.perf_counter() - started,
        "computed_at": timezone.now()})
    return analysis


def refresh_if_large(study: Study) -> StudyAnalysis | None:
    """After a recompute: refresh the stored analysis of a study the page no longer computes inline."""
    if Vote.objects.filter(study=study).count() <= INLINE_VOTES and not StudyAnalysis.objects.filter(
            study=study, votes__gt=INLINE_VOTES).exists():
        return None
    return refresh(study)


def agreement_of(study: Study, votes: int | None = None) -> dict[str, Any]:
    """The study's agreement as the dashboard shows it (the REST API's study detail): computed now for a
    small study, the stored analysis' for a large one, and computed now if it has none yet. `votes`: the
    study's vote count when the caller has its progress."""
    votes = queries.study_progress(study)["votes"] if votes is None else votes
    payload, _stored = for_page(study, votes)
    return payload["agreement"] if payload is not None else queries.study_agreement(study)


def for_page(study: Study, votes: int) -> tuple[dict[str, Any] | None, StudyAnalysis | None]:
    """(payload, stored analysis or None): computed now for a small study; the stored one for a large
    study; (None, None) for a large study whose first analysis has not been computed yet."""
    if votes <= INLINE_VOTES:
        return compute(study), None
    stored = StudyAnalysis.objects.filter(study=study).first()
    if stored is None:
        return None, None
    return stored.payload, stored
