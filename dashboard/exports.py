"""Votes, DPO pairs and separability as plain records and as CSV / JSONL text.

One place builds the records, so the `export_votes` command, the dashboard download buttons, the REST
API and the background export task all write the same columns. Annotators appear only under their
pseudonym (`AnnotatorProfile.pseudonym`), never their username.
"""
from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator

from lib import csvsafe

# Exports of more votes than this run as a background task (dashboard.tasks.run_export) and are
# downloaded when ready; smaller ones stream straight to the browser.
LARGE_EXPORT_VOTES = 20_000

FORMATS = ("csv", "jsonl", "dpo")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8",
                 "dpo": "application/x-ndjson; charset=utf-8"}
SUFFIXES = {"csv": "votes.csv", "jsonl": "votes.jsonl", "dpo": "dpo.jsonl"}

VOTE_FIELDS = (
    "study", "vote_id", "comparison_id", "instance_id", "system_left", "system_right", "choice", "winner",
    "winner_system", "rationale", "annotator", "served_at", "submitted_at", "duration_seconds", "is_gold",
    "gold_answer", "gold_passed", "system_a", "system_b", "sample_a", "sample_b", "too_fast", "excluded",
    "exclusion_reason", "source",
)
DPO_FIELDS = ("prompt", "chosen", "rejected")


def pseudonym_of(user_id: int, pseudonym: str | None) -> str:
    """The profile's pseudonym; a user without a profile (e.g. a researcher trying the page) gets a
    stable stand-in that still hides the username."""
    return pseudonym or f"user-{user_id}"


def _iso(value):
    return value.isoformat() if value is not None else None


def vote_queryset(study):
    from annotations.models import Vote

    return (Vote.objects.filter(study=study)
            .select_related("comparison__instance", "comparison__system_a", "comparison__system_b",
                            "comparison__generation_a", "comparison__generation_b", "assignment",
                            "annotator__annotator")
            .order_by("submitted_at", "id"))


def _profile_pseudonym(user) -> str | None:
    try:
        return user.annotator.pseudonym
    except Exception:  # noqa: BLE001 - RelatedObjectDoesNotExist: no profile
        return None


def vote_record(vote, study_slug: str) -> dict:
    comparison = vote.comparison
    a, b = comparison.system_a.name, comparison.system_b.name
    left_is_a = vote.assignment.left_is_a
    winner_system = {"a": a, "b": b}.get(vote.winner)
    return {
        "study": study_slug,
        "vote_id": vote.pk,
        "comparison_id": comparison.pk,
        "instance_id": comparison.instance.external_id,
        "system_left": a if left_is_a else b,
        "system_right": b if left_is_a else a,
        "choice": vote.choice,
        "winner": vote.winner,
        "winner_system": winner_system,
        "rationale": vote.rationale,
        "annotator": pseudonym_of(vote.annotator_id, _profile_pseudonym(vote.annotator)),
        "served_at": _iso(vote.served_at),
        "submitted_at": _iso(vote.submitted_at),
        "duration_seconds": vote.duration_seconds,
        "is_gold": comparison.is_gold,
        "gold_answer": comparison.gold_answer or None,
        "gold_passed": vote.gold_passed,
        "system_a": a,
        "system_b": b,
        "sample_a": comparison.generation_a.sample_index,
        "sample_b": comparison.generation_b.sample_index,
        "too_fast": vote.too_fast,
        "excluded": vote.excluded,
        "exclusion_reason": vote.exclusion_reason,
        "source": vote.source,
    }


def iter_vote_records(study, queryset=None) -> Iterator[dict]:
    for vote in (queryset if queryset is not None else vote_queryset(study)).iterator(chunk_size=2000):
        yield vote_record(vote, study.slug)


def iter_dpo_records(study) -> Iterator[dict]:
    """{prompt, chosen, rejected} per decisive (a/b), non-excluded vote; prompt = the instance input."""
    for vote in vote_queryset(study).filter(winner__in=("a", "b"), excluded=False).iterator(chunk_size=2000):
        comparison = vote.comparison
        winning, losing = comparison.generation_a, comparison.generation_b
        if vote.winner == "b":
            winning, losing = losing, winning
        yield {"prompt": comparison.instance.input, "chosen": winning.text, "rejected": losing.text}


def records_for(study, fmt: str) -> Iterator[dict]:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    return iter_dpo_records(study) if fmt == "dpo" else iter_vote_records(study)


def export_size(study, fmt: str) -> int:
    """How many records the export will hold (progress totals, the large-export decision)."""
    qs = study.votes.all()
    if fmt == "dpo":
        qs = qs.filter(winner__in=("a", "b"), excluded=False)
    return qs.count()


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def iter_csv(records: Iterable[dict], fields: Iterable[str] = VOTE_FIELDS) -> Iterator[str]:
    """CSV text in chunks: the header, then one chunk per 500 records. Text cells that a spreadsheet would
    run as a formula (a rationale starting with '=') are escaped: lib.csvsafe says how and why."""
    fields = list(fields)
    buffer = io.StringIO()
    writer = csvsafe.writer(buffer)
    writer.writerow(fields)
    for count, record in enumerate(records, start=1):
        writer.writerow([_csv_value(record.get(f)) for f in fields])
        if count % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def iter_jsonl(records: Iterable[dict]) -> Iterator[str]:
    for record in records:
        yield json.dumps(record, ensure_ascii=False) + "\n"


def iter_export_text(study, fmt: str) -> Iterator[str]:
    records = records_for(study, fmt)
    return iter_csv(records) if fmt == "csv" else iter_jsonl(records)


def iter_separability_jsonl(dataset, metric: str | None = None) -> Iterator[str]:
    from separability.exports import iter_separability_records

    return iter_jsonl(iter_separability_records(dataset, metric))


def export_filename(slug: str, fmt: str) -> str:
    return f"{slug}-{SUFFIXES[fmt]}"
