"""Ranking's hand-written SQL: the statements on the vote path that the ORM made slow.

On every vote the online Elo ratings of the two systems (plain and weighted: four rows) are counted, locked
(SELECT ... FOR UPDATE in id order, the last step of the vote's lock order in docs/design.md §4 and
annotations/sql.py) and written back in one statement. Written by hand for the same reason as
annotations/sql.py: each ORM statement cost about ten times its plain-SQL form in Python on this path
(`apply_vote_to_ratings` was 24% of the server's CPU per vote, `python -m bench.peers --profile-cpu`).
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from .models import RatingState


@dataclass(slots=True)
class LockedRating:
    """One locked `RatingState` row: what the vote reads and writes back (`store_ratings`)."""

    pk: int
    method: str
    system_id: int
    rating: float


def count_rating_rows(study_id: int, system_ids) -> int:
    """How many rating rows the study has for these systems (all methods), without locking them."""
    system_ids = list(system_ids)
    marks = ", ".join("%s" for _ in system_ids)
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT COUNT(*) FROM "{RatingState._meta.db_table}" '
                       f"WHERE study_id = %s AND system_id IN ({marks})", [study_id, *system_ids])
        return cursor.fetchone()[0]


def lock_rating_rows(study_id: int, system_ids) -> dict[tuple[str, int], LockedRating]:
    """The study's rating rows for these systems, locked FOR UPDATE in id order (where the database has row
    locks; SQLite runs one writing transaction at a time), keyed by (method, system id)."""
    system_ids = list(system_ids)
    marks = ", ".join("%s" for _ in system_ids)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT id, method, system_id, rating FROM "{RatingState._meta.db_table}" '
                       f"WHERE study_id = %s AND system_id IN ({marks}) ORDER BY id{lock}",
                       [study_id, *system_ids])
        rows = [LockedRating(*row) for row in cursor.fetchall()]
    return {(row.method, row.system_id): row for row in rows}


def store_ratings(states: list[LockedRating]) -> None:
    """One UPDATE for the vote's four rating rows (each rating set, each vote count + 1). The rows are already
    locked by the caller, in id order, last in the vote's lock order (annotations/sql.py).

    Written by hand: `bulk_update` builds a CASE expression per field and row through the ORM, which
    cost 13% of the server's CPU on the vote path (bench/web_load.py --profile-cpu)."""
    cases = " ".join("WHEN %s THEN %s" for _ in states)
    params = [value for state in states for value in (state.pk, float(state.rating))]
    ids_params = [state.pk for state in states]
    ids = ", ".join("%s" for _ in states)
    with connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE "{RatingState._meta.db_table}" SET rating = CASE id {cases} END, votes = votes + 1, '
            f"updated_at = %s WHERE id IN ({ids})", [*params, timezone.now(), *ids_params])
