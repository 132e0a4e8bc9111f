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
(`SKIP LOCKED`, never waits); a vote locks its comparison before its assignment (`lock_assignment`). On
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

from .models import (
    AnnotatorExclusion,
    AnnotatorProfile,
    Assignment,
    Comparison,
    Generation,
    Instance,
    InviteLink,
    Study,
    Vote,
)

# --------------------------------------------------------------------------------------------------
# model rows read by plain SQL
#
# The reads of the vote-and-next-item cycle below were ORM querysets; building and compiling them
# (`SQLCompiler.as_sql`, `pre_sql_setup`, the select_related joins) was about half of the server's CPU
# per cycle, against a few hundredths of a millisecond for the statement in PostgreSQL
# (`python -m bench.peers --systems site --profile-cpu`: the study lookup 7.8%, the vote's assignment
# read 8.5%, the lease's open assignments 9%, the item's texts 7%). Here the same rows come back as the
# same model instances, through each field's database converters (so SQLite's integers and strings
# become booleans and datetimes as the ORM would make them), from statements written once.


def columns(model, alias: str) -> str:
    """The model's concrete columns, in field order, qualified by `alias`."""
    return ", ".join(f'{alias}."{field.column}"' for field in model._meta.concrete_fields)


_converters: dict[tuple[str, type], list] = {}


def _field_converters(model) -> list:
    key = (connection.vendor, model)
    if key not in _converters:
        found = []
        for index, field in enumerate(model._meta.concrete_fields):
            col = field.get_col(model._meta.db_table)
            functions = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            if functions:
                found.append((index, col, functions))
        _converters[key] = found
    return _converters[key]


def from_row(model, values):
    """A model instance from a row of `columns(model, ...)`, as the ORM makes it (`Model.from_db`)."""
    values = list(values)
    for index, col, functions in _field_converters(model):
        for function in functions:
            values[index] = function(values[index], col, connection)
    return model.from_db(connection.alias, [f.attname for f in model._meta.concrete_fields], values)


def _split(row, *models) -> list:
    """`row` of `columns(m1) , columns(m2), ...` as one instance of each model."""
    out, start = [], 0
    for model in models:
        end = start + len(model._meta.concrete_fields)
        out.append(from_row(model, row[start:end]))
        start = end
    return out


def study_by_slug(slug: str) -> Study | None:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT {columns(Study, "s")} FROM "{Study._meta.db_table}" s WHERE s.slug = %s', [slug])
        row = cursor.fetchone()
    return None if row is None else from_row(Study, row)


def _with_comparison(row) -> Assignment:
    assignment, comparison = _split(row, Assignment, Comparison)
    assignment.comparison = comparison  # what select_related("comparison") would have cached
    return assignment


def lock_assignment(token: str, user, study: Study) -> Assignment | None:
    """The annotator's assignment `token` in `study`, with its comparison, both locked to COMMIT: the
    comparison `FOR NO KEY UPDATE`, then the assignment `FOR UPDATE` (PostgreSQL takes a statement's row
    locks in the order of its locking clauses: the lock order of the module docstring). One statement
    where there were two (the comparison's lock, then the assignment read through the ORM); both rows are
    locked, so what comes back is their latest committed version even after waiting for a lock."""
    locks = "" if is_sqlite() else " FOR NO KEY UPDATE OF c FOR UPDATE OF a"
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT {columns(Assignment, "a")}, {columns(Comparison, "c")} FROM "{Assignment._meta.db_table}" a '
            f'JOIN "{Comparison._meta.db_table}" c ON c.id = a.comparison_id '
            f"WHERE a.token = %s AND a.annotator_id = %s AND c.study_id = %s{locks}", [token, user.pk, study.pk])
        row = cursor.fetchone()
    return None if row is None else _with_comparison(row)


def open_assignment(token: str, user, study: Study) -> Assignment | None:
    """The annotator's assignment `token` in `study` that is on screen (served, not answered), with its
    comparison; no locks (the views re-show it after a refused answer)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT {columns(Assignment, "a")}, {columns(Comparison, "c")} FROM "{Assignment._meta.db_table}" a '
            f'JOIN "{Comparison._meta.db_table}" c ON c.id = a.comparison_id '
            "WHERE a.token = %s AND a.annotator_id = %s AND c.study_id = %s AND a.completed_at IS NULL "
            "AND a.served_at IS NOT NULL", [token, user.pk, study.pk])
        row = cursor.fetchone()
    return None if row is None else _with_comparison(row)


def unanswered_assignments(study: Study, user) -> list[Assignment]:
    """The annotator's assignments in `study` not answered yet (on screen, or reserved), with their
    comparisons, oldest first: what a lease looks at before leasing anything new."""
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT {columns(Assignment, "a")}, {columns(Comparison, "c")} FROM "{Assignment._meta.db_table}" a '
            f'JOIN "{Comparison._meta.db_table}" c ON c.id = a.comparison_id '
            "WHERE c.study_id = %s AND a.annotator_id = %s AND a.completed_at IS NULL ORDER BY a.issued_at, a.id",
            [study.pk, user.pk])
        rows = cursor.fetchall()
    return [_with_comparison(row) for row in rows]


def item_texts(comparison_id: int) -> tuple[str, str, str]:
    """(input, text of generation A, text of generation B) of a comparison: all an item page shows of it."""
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT i.input, ga.text, gb.text FROM "{Comparison._meta.db_table}" c '
            f'JOIN "{Instance._meta.db_table}" i ON i.id = c.instance_id '
            f'JOIN "{Generation._meta.db_table}" ga ON ga.id = c.generation_a_id '
            f'JOIN "{Generation._meta.db_table}" gb ON gb.id = c.generation_b_id WHERE c.id = %s', [comparison_id])
        return cursor.fetchone()


def votes_by(study: Study, user) -> int:
    """How many votes this annotator has in the study (their progress)."""
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT COUNT(*) FROM "{Vote._meta.db_table}" v WHERE v.study_id = %s AND v.annotator_id = %s',
                       [study.pk, user.pk])
        return cursor.fetchone()[0]


def _insert_statement(instance) -> tuple[str, list]:
    """The INSERT that `Model.save()` would send for a new `instance` (every concrete field but the
    automatic primary key, prepared for this database as the ORM prepares them)."""
    meta = instance._meta
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    values = [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]
    names = ", ".join(f'"{field.column}"' for field in fields)
    return f'INSERT INTO "{meta.db_table}" ({names}) VALUES ({", ".join(["%s"] * len(fields))})', values


def _stored(instance, pk: int):
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


def insert(instance):
    """Store a new model instance (no save signals: none are connected to the models written here) and
    set its primary key."""
    sql, values = _insert_statement(instance)
    with connection.cursor() as cursor:
        if is_sqlite():
            cursor.execute(sql, values)
            return _stored(instance, cursor.lastrowid)
        cursor.execute(sql + " RETURNING id", values)
        return _stored(instance, cursor.fetchone()[0])


def insert_vote(vote: Vote, now: datetime) -> Vote:
    """Store a new live vote, mark its assignment completed and count it on its comparison: one statement
    on PostgreSQL (a data-modifying WITH; the three writes succeed or fail together, and a second vote for
    the assignment fails on the vote's unique constraint like the ORM's INSERT did), three on SQLite.
    The caller holds the comparison's and the assignment's row locks (`lock_assignment`)."""
    sql, values = _insert_statement(vote)
    completed = [connection.ops.adapt_datetimefield_value(now), vote.assignment_id]
    assignments, comparisons = Assignment._meta.db_table, Comparison._meta.db_table
    with connection.cursor() as cursor:
        if is_sqlite():
            cursor.execute(sql, values)
            pk = cursor.lastrowid
            cursor.execute(f'UPDATE "{assignments}" SET completed_at = %s WHERE id = %s', completed)
            cursor.execute(f'UPDATE "{comparisons}" SET votes_count = votes_count + 1 WHERE id = %s',
                           [vote.comparison_id])
            return _stored(vote, pk)
        cursor.execute(
            f"WITH v AS ({sql} RETURNING id), "
            f'a AS (UPDATE "{assignments}" SET completed_at = %s WHERE id = %s), '
            f'c AS (UPDATE "{comparisons}" SET votes_count = votes_count + 1 WHERE id = %s) SELECT id FROM v',
            [*values, *completed, vote.comparison_id])
        return _stored(vote, cursor.fetchone()[0])


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
        with connection.cursor() as cursor:
            cursor.execute(f'SELECT u.id FROM "{get_user_model()._meta.db_table}" u WHERE u.id = %s '
                           "FOR NO KEY UPDATE", [user.pk])


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
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [from_row(Comparison, row) for row in cursor.fetchall()]


def lease_query(study: Study, user, now: datetime, *, unit_key: str | None = None, exclude=(),
                limit: int | None = None, lock: bool = False) -> tuple[str, list]:
    """The SQL and parameters of `open_comparisons` (apart, so a test can EXPLAIN exactly this)."""
    sql = [f'SELECT {columns(Comparison, "c")} FROM "{Comparison._meta.db_table}" c',
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
