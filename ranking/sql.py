"""Ranking's hand-written SQL: the one statement on the vote path that the ORM made slow.

On every vote the online Elo ratings of the two systems (plain and weighted: four rows) are updated. The rows
are locked by `ranking.services` (SELECT ... FOR UPDATE in id order, the last step of the vote's lock order
in docs/design.md §4 and annotations/sql.py); this writes them back in one statement.
"""
from __future__ import annotations

from django.db import connection
from django.utils import timezone

from .models import RatingState


def store_ratings(states) -> None:
    """One UPDATE for the vote's four rating rows (each rating set, each vote count + 1). The rows are already
    locked by the caller, in id order, last in the vote's lock order (annotations/sql.py).

    Written by hand: `bulk_update` builds a CASE expression per field and row through the ORM, which
    cost 13% of the server's CPU on the vote path (bench/web_load.py --profile-cpu)."""
    states = list(states)
    cases = " ".join("WHEN %s THEN %s" for _ in states)
    params = [value for state in states for value in (state.pk, float(state.rating))]
    params += [timezone.now()] + [state.pk for state in states]
    ids = ", ".join("%s" for _ in states)
    with connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE "{RatingState._meta.db_table}" SET rating = CASE id {cases} END, votes = votes + 1, '
            f"updated_at = %s WHERE id IN ({ids})", params)
