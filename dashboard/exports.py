"""Votes, DPO pairs and separability as plain records and as CSV / JSONL text.

One place builds the records, so the `export_votes` command, the dashboard download buttons, the REST
API and the background export task all write the same columns. Annotators appear only under their
pseudonym (`AnnotatorProfile.pseudonym`), never their username.
"""
from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator

from django.db.models import Q

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


# What a vote record is made of, read as values() rows: building seven related model instances per vote
# made the export of 20,000 votes take 17 s (bench/scale.py), values() rows a fraction of that.
_VOTE_COLUMNS = (
    "id", "comparison_id", "comparison__instance__external_id", "comparison__system_a__name",
    "comparison__system_b__name", "assignment__left_is_a", "choice", "winner", "rationale", "annotator_id",
    "annotator__annotator__pseudonym", "served_at", "submitted_at", "duration_seconds", "comparison__is_gold",
    "comparison__gold_answer", "gold_passed", "comparison__generation_a__sample_index",
    "comparison__generation_b__sample_index", "too_fast", "excluded", "exclusion_reason", "source",
)


def vote_queryset(study):
    """The study's votes in vote order, as the values() rows `vote_record` reads."""
    from annotations.models import Vote

    return Vote.objects.filter(study=study).order_by("submitted_at", "id").values(*_VOTE_COLUMNS)


def vote_record(vote: dict, study_slug: str) -> dict:
    """One export record from a `vote_queryset` row."""
    a, b = vote["comparison__system_a__name"], vote["comparison__system_b__name"]
    left_is_a = vote["assignment__left_is_a"]
    return {
        "study": study_slug,
        "vote_id": vote["id"],
        "comparison_id": vote["comparison_id"],
        "instance_id": vote["comparison__instance__external_id"],
        "system_left": a if left_is_a else b,
        "system_right": b if left_is_a else a,
        "choice": vote["choice"],
        "winner": vote["winner"],
        "winner_system": {"a": a, "b": b}.get(vote["winner"]),
        "rationale": vote["rationale"],
        "annotator": pseudonym_of(vote["annotator_id"], vote["annotator__annotator__pseudonym"]),
        "served_at": _iso(vote["served_at"]),
        "submitted_at": _iso(vote["submitted_at"]),
        "duration_seconds": vote["duration_seconds"],
        "is_gold": vote["comparison__is_gold"],
        "gold_answer": vote["comparison__gold_answer"] or None,
        "gold_passed": vote["gold_passed"],
        "system_a": a,
        "system_b": b,
        "sample_a": vote["comparison__generation_a__sample_index"],
        "sample_b": vote["comparison__generation_b__sample_index"],
        "too_fast": vote["too_fast"],
        "excluded": vote["excluded"],
        "exclusion_reason": vote["exclusion_reason"],
        "source": vote["source"],
    }


# The first batch is small, so the first chunk (500 records, see iter_csv) is out after one short query;
# the next ones are larger, since each batch's ten-table join costs about 25 ms to plan (bench/scale.py).
FIRST_EXPORT_BATCH = 500
EXPORT_BATCH = 5000


def in_vote_order(queryset, batch: int = EXPORT_BATCH, first: int = FIRST_EXPORT_BATCH) -> Iterator[dict]:
    """The values() rows of a vote queryset in vote order (submitted_at, id), read by keyset, `first` rows
    and then `batch` at a time: each batch continues after the last row of the one before, through the
    (study, submitted_at, id) index.

    Why not one `.iterator()`: PostgreSQL planned the single cursor over a million votes and their seven
    joins as hash joins and a sort of every joined row, so the first row came after 18 s on a quiet machine
    (64 s on a loaded one; bench/scale.py). A LIMITed batch in index order starts at once, and memory stays
    one batch. The rows need "id" and "submitted_at" among their values."""
    queryset = queryset.order_by("submitted_at", "id")
    after = None
    size = min(first, batch)
    while True:
        # The range on submitted_at is what the index scan starts from; the OR only trims its first rows
        # (PostgreSQL did not use the index for the OR alone and sorted every joined vote again per batch).
        page = queryset if after is None else queryset.filter(
            Q(submitted_at__gt=after[0]) | Q(submitted_at=after[0], id__gt=after[1]), submitted_at__gte=after[0])
        rows = list(page[:size])
        yield from rows
        if len(rows) < size:
            return
        after, size = (rows[-1]["submitted_at"], rows[-1]["id"]), batch


def iter_vote_records(study, queryset=None) -> Iterator[dict]:
    for vote in in_vote_order(queryset if queryset is not None else vote_queryset(study)):
        yield vote_record(vote, study.slug)


def iter_dpo_records(study) -> Iterator[dict]:
    """{prompt, chosen, rejected} per decisive (a/b), non-excluded vote; prompt = the instance input."""
    from annotations.models import Vote

    rows = (Vote.objects.filter(study=study, winner__in=("a", "b"), excluded=False)
            .values("id", "submitted_at", "comparison__instance__input", "comparison__generation_a__text",
                    "comparison__generation_b__text", "winner"))
    for row in in_vote_order(rows):
        text_a, text_b = row["comparison__generation_a__text"], row["comparison__generation_b__text"]
        chosen, rejected = (text_a, text_b) if row["winner"] == "a" else (text_b, text_a)
        yield {"prompt": row["comparison__instance__input"], "chosen": chosen, "rejected": rejected}


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
