"""The annotator cycle's hand-written SQL, in one place: the row locks of a lease and a vote, the lease
query and the overlap recount. The queue (`annotations.queue`) says what to do; this module how.

Why plain SQL: these statements run on every item served and every vote. Built through the ORM (an Exists
and a Subquery annotation for the lease, a Subquery on the token for the comparison lock, an Exists for the
exclusion check) they cost about 4 ms of server CPU per lease, a fifth of the whole annotator cycle, against
0.3 ms in the database, and 5% of the cycle for the comparison lock (bench/web_load.py --profile-cpu). The
ORM also has no `FOR SHARE`.

Lock order, which keeps PostgreSQL free of deadlocks (docs/design.md §4): annotator, study, comparison,
assignment, rating rows. A lease and a vote both begin with `lock_annotator` / `lock_annotator_and_share_study`
(the user row `FOR NO KEY UPDATE`: `FOR UPDATE` would block the `KEY SHARE` that inserting a vote or an
assignment takes on it, which deadlocked double-clicks); a lease then only *tries* comparisons
(`SKIP LOCKED`, never waits); a vote locks its comparison (`lock_comparison_of`) before its assignment. On
SQLite, which has no row locks, each of these begins with a write: SQLite's database-wide write lock,
held to the end of the transaction, serialises the same code.

The lease query walks the partial index `comparison_serve_order` (study, priority DESC, id; not gold,
selected) and stops at the first row that fits: tests/annotations/test_lease_plan.py checks PostgreSQL's
plan.
"""
from __future__ import annotations

from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from .models import AnnotatorExclusion, AnnotatorProfile, Assignment, Comparison, InviteLink, Study

# --------------------------------------------------------------------------------------------------
# locks


def is_sqlite() -> bool:
    return connection.vendor == "sqlite"


def take_sqlite_write_lock(table: str, pk: int) -> None:
    """A no-op UPDATE as the first statement: SQLite's write lock, held to the end of the transaction."""
    with connection.cursor() as cursor:
        cursor.execute(f'UPDATE "{table}" SET id = id WHERE id = %s', [pk])


def lock_annotator(user) -> None:
    """The annotator's row `FOR NO KEY UPDATE` (see the module docstring for why not `FOR UPDATE`)."""
    if is_sqlite():
        take_sqlite_write_lock(get_user_model()._meta.db_table, user.pk)
    else:
        list(get_user_model().objects.select_for_update(no_key=True).filter(pk=user.pk)
             .values_list("pk", flat=True))


EXCLUDED = (f'EXISTS (SELECT 1 FROM "{AnnotatorExclusion._meta.db_table}" x '
             "WHERE x.study_id = s.id AND x.annotator_id = %s)")


def lock_annotator_and_share_study(study: Study, user) -> tuple[str, bool]:
    """Lock the annotator's row, and read the study's status under a shared row lock, both held to COMMIT
    (SQLite: its write lock), and whether staff excluded this annotator from the study. One statement,
    so the vote path pays nothing for the annotator's lock or the exclusion check.

    Raw SQL because the ORM's select_for_update has no FOR SHARE."""
    if is_sqlite():
        take_sqlite_write_lock(Study._meta.db_table, study.pk)
        with connection.cursor() as cursor:
            cursor.execute(f'SELECT s.status, {EXCLUDED} FROM "{Study._meta.db_table}" s WHERE s.id = %s',
                           [user.pk, study.pk])
            status, excluded = cursor.fetchone()
            return status, bool(excluded)
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT s.status, {EXCLUDED} FROM "{Study._meta.db_table}" s, "{get_user_model()._meta.db_table}" u '
            "WHERE s.id = %s AND u.id = %s FOR NO KEY UPDATE OF u FOR SHARE OF s", [user.pk, study.pk, user.pk])
        status, excluded = cursor.fetchone()
        return status, bool(excluded)


def lock_comparison_of(token: str, user) -> None:
    """Lock the comparison of the annotator's assignment `token` (if any), before the assignment itself.

    Plain SQL: through the ORM (a Subquery on the token) this lock cost 5% of the cycle's CPU."""
    if is_sqlite():
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT c.id FROM "{Comparison._meta.db_table}" c JOIN "{Assignment._meta.db_table}" a '
            "ON a.comparison_id = c.id WHERE a.token = %s AND a.annotator_id = %s FOR NO KEY UPDATE OF c",
            [token, user.pk])


def try_lock_comparisons(queryset):
    """The rows of `queryset` that nobody else holds, locked (SQLite: already serialised)."""
    if is_sqlite():
        return queryset
    return queryset.select_for_update(skip_locked=True, of=("self",))


# The lease query and the recount are plain SQL: they run on every item served, and built through the
# ORM (an Exists and a Subquery annotation) they cost about 4 ms of server CPU per lease, a fifth of the
# whole annotator cycle, against 0.3 ms in the database (bench/web_load.py --profile-cpu).
# Live leases of comparison c: handed out, not answered, not run out (one less: `a.id <> %s`).
LIVE_LEASES = (f'(SELECT COUNT(*) FROM "{Assignment._meta.db_table}" a WHERE a.comparison_id = c.id '
                "AND a.completed_at IS NULL AND a.expires_at > %s AND a.id <> %s)")


def has_room(comparison_id: int, study: Study, now: datetime, exclude_assignment: int | None = None) -> bool:
    """Recount under the comparison's lock: stored votes + other live leases < overlap."""
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT c.votes_count + {LIVE_LEASES} FROM "{Comparison._meta.db_table}" c WHERE c.id = %s',
                       [now, exclude_assignment or 0, comparison_id])
        return cursor.fetchone()[0] < study.votes_per_comparison


def open_comparisons(study: Study, user, now: datetime, *, unit_key: str | None = None, exclude=(),
                      limit: int | None = None, lock: bool = False) -> list[Comparison]:
    """Non-gold comparisons of the study this annotator has not seen and that still need votes (stored
    votes + live leases < overlap), in serving order: highest priority (= separability) first, then id.

    `lock`: only rows nobody else holds, locked (`FOR UPDATE SKIP LOCKED`; SQLite is serialised).
    On PostgreSQL this walks the partial index `comparison_serve_order` and stops at the first hit."""
    sql, params = lease_query(study, user, now, unit_key=unit_key, exclude=exclude, limit=limit, lock=lock)
    return list(Comparison.objects.raw(sql, params))


def lease_query(study: Study, user, now: datetime, *, unit_key: str | None = None, exclude=(),
                limit: int | None = None, lock: bool = False) -> tuple[str, list]:
    """The SQL and parameters of `open_comparisons` (apart, so a test can EXPLAIN exactly this)."""
    sql = [f'SELECT c.* FROM "{Comparison._meta.db_table}" c',
           "WHERE c.study_id = %s AND c.selected AND NOT c.is_gold AND c.votes_count < %s",
           f'AND NOT EXISTS (SELECT 1 FROM "{Assignment._meta.db_table}" s WHERE s.comparison_id = c.id '
           "AND s.annotator_id = %s)",
           f"AND c.votes_count + {LIVE_LEASES} < %s"]
    params = [study.pk, study.votes_per_comparison, user.pk, now, 0, study.votes_per_comparison]
    if unit_key is not None:
        sql.append("AND c.unit_key = %s")
        params.append(unit_key)
    if exclude:
        sql.append(f"AND c.id NOT IN ({', '.join(['%s'] * len(exclude))})")
        params.extend(exclude)
    sql.append("ORDER BY c.priority DESC, c.id")
    if limit is not None:
        sql.append("LIMIT %s")
        params.append(limit)
    if lock and not is_sqlite():
        sql.append("FOR UPDATE OF c SKIP LOCKED")
    return " ".join(sql), params




# --------------------------------------------------------------------------------------------------
# access


def prolific_pid_and_invite_standing(study: Study, user) -> tuple[str, bool] | None:
    """(the annotator's Prolific id, whether their invite covers `study` and still stands: active, not
    expired), or None without a profile. A withdrawn or expired invite revokes everyone who came through it.

    One plain query on every vote: through the ORM, with an Exists annotation, it cost 7% of the server's
    CPU per annotator cycle (bench/web_load.py --profile-cpu)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT p.prolific_pid, EXISTS (SELECT 1 FROM "{InviteLink.studies.through._meta.db_table}" s '
            f'JOIN "{InviteLink._meta.db_table}" i ON i.id = s.invitelink_id '
            "WHERE s.invitelink_id = p.invite_id AND s.study_id = %s AND i.active "
            "AND (i.expires_at IS NULL OR i.expires_at > %s)) "
            f'FROM "{AnnotatorProfile._meta.db_table}" p WHERE p.user_id = %s', [study.pk, timezone.now(), user.pk])
        return cursor.fetchone()
