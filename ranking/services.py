"""Keeping a study's ratings current: O(1) Elo updates as votes land, full rebuilds and snapshots.

Plain and separability-weighted Elo are stored per (study, method, system) in `RatingState` and moved
in the vote's own transaction, with the two systems' rows locked in id order, so concurrent votes that
share a system are applied one after the other, in commit order. Bradley-Terry with bootstrap intervals is
recomputed off the request path by a debounced task (`ranking.tasks.recompute_leaderboards`), which
also refreshes the Elo snapshots from a full replay.
"""
from __future__ import annotations

import logging
import threading
from typing import NamedTuple

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from lib.tasks import tasks_run_eagerly
from lib.vocabulary import METHODS

from .common import separability_weights
from .models import LeaderboardRelease, LeaderboardSnapshot, RatingState
from .ratings import (
    DEFAULT_INITIAL,
    RatingError,
    compute_leaderboard,
    elo,
    elo_update,
    factorize_systems,
    scores_from_winners,
    separability_weight,
)
from .sql import count_rating_rows, lock_rating_rows, store_ratings

log = logging.getLogger(__name__)

ELO_METHODS = (RatingState.Method.ELO, RatingState.Method.WEIGHTED_ELO)
SNAPSHOT_METHODS = METHODS  # lib.vocabulary
RECOMPUTE_DEBOUNCE_SECONDS = 5
BOOTSTRAP_ROUNDS = 100
RATING_ROWS_LOCK = 7_301  # the advisory lock class of a study's first votes (_serialise_first_votes)


def score_of(winner: str, both_bad: str) -> float | None:
    if winner == "a":
        return 1.0
    if winner == "b":
        return 0.0
    if winner == "both_bad" and both_bad == "drop":
        return None
    return 0.5


def counts_for_ratings(vote) -> bool:
    """Human votes only: an LLM judge's verdicts (source `judge`) are never in the human boards."""
    return not vote.excluded and not vote.comparison.is_gold and vote.source != "judge"


def apply_vote_to_ratings(vote) -> None:
    """Move plain and weighted Elo by one vote, inside the transaction that stores the vote.

    The caller holds at least a share lock on the study row (`annotations.queue.submit_vote` does): a
    full rebuild takes that row FOR UPDATE, so a rebuild and a vote never interleave, while votes run
    side by side. Each vote locks its two systems' rating rows in id order, so votes that share a system
    apply one after the other, and the stored ratings are those of applying the votes in commit order."""
    comparison = vote.comparison
    study = vote.study
    if not counts_for_ratings(vote):
        return
    score = score_of(vote.winner, study.both_bad)
    if score is None:
        return
    systems = (comparison.system_a_id, comparison.system_b_id)
    if count_rating_rows(study.pk, systems) < len(systems) * len(ELO_METHODS):
        # The systems' first vote in this study. Two such votes inserting overlapping rows each waited for
        # the other's uncommitted insert: a deadlock (tests/annotations/test_concurrency.py saw it). First
        # votes of a study take one transaction-scoped advisory lock before any rating row, so they insert
        # one at a time; every other vote goes straight to the row locks below.
        _serialise_first_votes(study.pk)
    states = lock_rating_rows(study.pk, systems)
    if len(states) < len(systems) * len(ELO_METHODS):
        RatingState.objects.bulk_create(
            [RatingState(study_id=study.pk, system_id=s, method=m, rating=DEFAULT_INITIAL)
             for s in systems for m in ELO_METHODS if (m, s) not in states],
            ignore_conflicts=True,
        )
        states = lock_rating_rows(study.pk, systems)
    weights = {RatingState.Method.ELO: 1.0,
               RatingState.Method.WEIGHTED_ELO: separability_weight(comparison.separability)}
    for method in ELO_METHODS:
        state_a, state_b = states[(method, systems[0])], states[(method, systems[1])]
        state_a.rating, state_b.rating = elo_update(state_a.rating, state_b.rating, score, weight=weights[method])
    store_ratings(list(states.values()))


def _serialise_first_votes(study_id: int) -> None:
    """PostgreSQL: pg_advisory_xact_lock on (rating rows, study), released at commit. SQLite writes one
    transaction at a time already."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [RATING_ROWS_LOCK, study_id])


class VoteTable(NamedTuple):
    """The votes that count for ratings, in vote order: per vote the two systems' names, the winner label
    ("a", "b", "tie", "both_bad") and the weight (`separability_weight` of the unit), as numpy arrays."""

    system_a: np.ndarray
    system_b: np.ndarray
    winners: np.ndarray
    weights: np.ndarray

    def as_lists(self) -> tuple[list[str], list[str], list[str], list[float]]:
        return (self.system_a.tolist(), self.system_b.tolist(), self.winners.tolist(), self.weights.tolist())


def study_vote_table(study) -> VoteTable:
    """The study's `VoteTable`, read in one statement.

    The ORM's SQL, run on a plain cursor and turned into arrays column by column: at 1,000,000 votes the
    values_list() iteration with a name lookup and a weight call per row took 6.2 s on a quiet machine (32 s
    on a loaded one), fetchall() and the arrays 2 s (bench/scale.py). Systems are fetched as ids and named
    through one lookup of the study's systems."""
    from django.db import connections

    from annotations.models import System, Vote

    rows = (Vote.objects.filter(study=study, excluded=False, comparison__is_gold=False)
            .exclude(source=Vote.Source.JUDGE)
            .order_by("submitted_at", "id")
            .values_list("comparison__system_a_id", "comparison__system_b_id", "winner",
                         "comparison__separability"))
    sql, params = rows.query.sql_with_params()
    with connections[rows.db].cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    if not fetched:
        empty = np.array([], dtype=object)
        return VoteTable(empty, empty.copy(), empty.copy(), np.array([], dtype=np.float64))
    a_ids, b_ids, winners, separability = zip(*fetched, strict=True)
    del fetched
    ids, codes = np.unique(np.array(a_ids + b_ids, dtype=np.int64), return_inverse=True)
    names = dict(System.objects.filter(id__in=ids.tolist()).values_list("id", "name"))
    named = np.array([names[i] for i in ids.tolist()], dtype=object)[codes]
    half = len(a_ids)
    return VoteTable(named[:half], named[half:], np.array(winners, dtype=object),
                     separability_weights(np.array(separability, dtype=np.float64)))


def study_leaderboard(study, method: str, rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0,
                      table: VoteTable | None = None):
    """A fresh `ranking.ratings.Leaderboard` for the study (raises RatingError when it cannot rank).
    `table`: the study's vote table when the caller already has it (one fetch for every method)."""
    system_a, system_b, winners, weights = study_vote_table(study) if table is None else table
    return compute_leaderboard(system_a, system_b, winners, method=method,
                               weights=weights if method.startswith("weighted") else None,
                               both_bad=study.both_bad, rounds=rounds, seed=seed)


@transaction.atomic
def rebuild_elo_states(study) -> VoteTable:
    """Replace the incremental Elo state by a full replay of the study's votes; returns the vote table
    it replayed, read under the study's lock (a vote committed between a read outside it and the lock
    would be missing from the replayed state until the next rebuild: bench/web_load.py's audit saw it).

    Replays with `ratings.elo` itself rather than `compute_leaderboard`, whose connectivity and
    all-weights-zero checks would leave the state empty while the per-vote updates go on from 1000:
    online Elo is defined for any votes."""
    from annotations.models import Study, System

    Study.objects.select_for_update().filter(pk=study.pk).first()  # serialise with concurrent rebuilds
    RatingState.objects.filter(study=study).delete()
    table = study_vote_table(study)
    system_a, system_b, winners, weights = table
    score, keep = scores_from_winners(winners, study.both_bad)
    if not keep.any():
        return table
    a, b, names = factorize_systems(system_a[keep], system_b[keep])
    score, weights = score[keep], weights[keep]
    votes = np.bincount(a, minlength=len(names)) + np.bincount(b, minlength=len(names))
    system_ids = dict(System.objects.filter(name__in=names).values_list("name", "id"))
    for method, method_weights in ((RatingState.Method.ELO, None), (RatingState.Method.WEIGHTED_ELO, weights)):
        ratings = elo(a, b, score, len(names), weights=method_weights)
        RatingState.objects.bulk_create([
            RatingState(study=study, system_id=system_ids[name], method=method, rating=float(ratings[i]),
                        votes=int(votes[i]))
            for i, name in enumerate(names)
        ])
    return table


def refresh_snapshots(study, rounds: int = BOOTSTRAP_ROUNDS, store: bool = True,
                      table: VoteTable | None = None) -> dict[str, LeaderboardSnapshot]:
    """Recompute every method's leaderboard with bootstrap intervals; store it, or (`store=False`, for a
    page asked for before any recompute) return unsaved snapshots: a GET never writes."""
    snapshots: dict[str, LeaderboardSnapshot] = {}
    table = study_vote_table(study) if table is None else table
    for method in SNAPSHOT_METHODS:
        try:
            board = study_leaderboard(study, method, rounds=rounds, table=table)
            payload, error, used = board.to_dict(matrices=True), "", board.votes_used
        except RatingError as exc:
            payload, error, used = {}, str(exc), 0
        if store:
            snapshots[method], _ = LeaderboardSnapshot.objects.update_or_create(
                study=study, method=method, defaults={"payload": payload, "error": error, "votes_used": used})
        else:
            snapshots[method] = LeaderboardSnapshot(study=study, method=method, payload=payload, error=error,
                                                    votes_used=used, computed_at=timezone.now())
    return snapshots


def rebuild_study_ratings(study, rounds: int = BOOTSTRAP_ROUNDS) -> dict[str, LeaderboardSnapshot]:
    """Full rebuild after an import or a separability run: Elo states and all snapshots."""
    table = rebuild_elo_states(study)  # the snapshots are computed on the same votes, read once
    return refresh_snapshots(study, rounds=rounds, table=table)


def _recompute_in_a_thread(study_id: int) -> None:
    """Embedded mode: the debounced recompute, in a timer thread of this process, after the window."""
    from django.db import connections

    from .tasks import recompute_leaderboards

    def run():
        try:
            recompute_leaderboards(study_id)
        except Exception:  # noqa: BLE001 - logged; the next vote schedules another
            log.exception("leaderboard recompute of study %s failed", study_id)
            release_recompute_slot(study_id)
        finally:
            connections.close_all()  # this thread's own connections

    timer = threading.Timer(RECOMPUTE_DEBOUNCE_SECONDS, run)
    timer.daemon = True
    timer.start()


def schedule_leaderboard_recompute(study_id: int) -> bool:
    """Queue one recompute per debounce window; never raises (a vote must not fail because of it).

    With a broker the task waits RECOMPUTE_DEBOUNCE_SECONDS on the `default` queue. Embedded (tasks
    eager), an eager task would run the four bootstrapped fits inside the vote's request, once per vote;
    there it runs in a timer thread instead (settings.RECOMPUTE_IN_THREAD_WHEN_EAGER; the tests keep it
    inline, where a thread could not see their transaction)."""
    from .tasks import recompute_leaderboards

    try:
        if not cache.add(f"leaderboard-recompute:{study_id}", 1, timeout=RECOMPUTE_DEBOUNCE_SECONDS * 12):
            return False
        if tasks_run_eagerly() and settings.RECOMPUTE_IN_THREAD_WHEN_EAGER:
            _recompute_in_a_thread(study_id)
            return True
        # retry=False: with the broker down, fail at once (the vote is already stored) instead of stalling it.
        recompute_leaderboards.apply_async((study_id,), countdown=RECOMPUTE_DEBOUNCE_SECONDS, retry=False)
        return True
    except Exception:  # noqa: BLE001 - broker or cache down: the next vote (or a rebuild) catches up
        log.warning("could not schedule the leaderboard recompute of study %s", study_id, exc_info=True)
        try:
            cache.delete(f"leaderboard-recompute:{study_id}")
        except Exception:  # noqa: BLE001
            pass
        return False


def release_recompute_slot(study_id: int) -> None:
    try:
        cache.delete(f"leaderboard-recompute:{study_id}")
    except Exception:  # noqa: BLE001
        log.warning("cache unavailable while releasing the recompute slot of study %s", study_id)


# --- what the public sees ------------------------------------------------------------------------------
# Blinding (docs/security.md): a public board that moves after each vote tells the annotator who cast it
# which system was behind the side they chose. The public therefore reads only releases: a frozen copy
# of the snapshots, made when the study closes, or while it is open, for studies released in batches, at
# most every `release_every_hours` and only once `release_min_votes` new votes have come in, so that any
# one annotator's votes drown in everyone else's.


def _counted_queryset(study):
    from annotations.models import Study, Vote

    counted = Vote.objects.filter(study=study, excluded=False, comparison__is_gold=False).exclude(
        source=Vote.Source.JUDGE)
    if study.both_bad == Study.BothBad.DROP:
        counted = counted.exclude(winner=Vote.Winner.BOTH_BAD)
    return counted


def counted_votes(study) -> int:
    """Votes that count for the ratings now (not excluded, not gold, both-bad per the study's rule)."""
    return _counted_queryset(study).count()


def votes_fingerprint(study) -> tuple[int, str]:
    """(count, fingerprint) of the votes that count now: one aggregate query."""
    from django.db.models import Count, Sum

    row = _counted_queryset(study).aggregate(n=Count("id"), ids=Sum("id"))
    return row["n"], f"{row['n']}:{row['ids'] or 0}"


def latest_release(study) -> LeaderboardRelease | None:
    return LeaderboardRelease.objects.filter(study=study).order_by("-released_at", "-id").first()


def release_leaderboard(study, reason: str, snapshots: dict[str, LeaderboardSnapshot] | None = None,
                        votes: int | None = None) -> LeaderboardRelease:
    """Freeze the current snapshots as the public leaderboard."""
    snapshots = snapshots if snapshots is not None else {
        s.method: s for s in LeaderboardSnapshot.objects.filter(study=study)}
    payload: dict[str, dict[str, object]] = {}
    for method in SNAPSHOT_METHODS:
        snapshot = snapshots.get(method)
        if snapshot is None or snapshot.error or not snapshot.payload.get("ratings"):
            payload[method] = {"error": (snapshot.error if snapshot is not None and snapshot.error
                                         else "not computed yet")}
        else:
            payload[method] = {**snapshot.payload, "computed_at": snapshot.computed_at.isoformat(),
                               "votes_used": snapshot.votes_used}
    count, fingerprint = votes_fingerprint(study)
    return LeaderboardRelease.objects.create(
        study=study, released_at=timezone.now(), reason=reason, payload=payload,
        votes_counted=count if votes is None else votes, votes_fingerprint=fingerprint)


def refresh_release_in_place(study, snapshots: dict[str, LeaderboardSnapshot]) -> bool:
    """Recompute the public release from the same votes (separability arrived, weights changed): safe for
    blinding, since not one vote more is in it. Does nothing once any counted vote changed."""
    last = latest_release(study)
    if last is None or not last.votes_fingerprint or last.votes_fingerprint != votes_fingerprint(study)[1]:
        return False
    fresh = release_leaderboard(study, last.reason, snapshots, last.votes_counted)
    LeaderboardRelease.objects.filter(pk=fresh.pk).update(released_at=last.released_at)
    last.delete()
    return True


def batch_release_due(study, votes: int, now=None) -> bool:
    """Whether an open study released in batches may publish now: cadence and minimum batch both met."""
    from annotations.models import Study

    if study.status != Study.Status.OPEN or study.leaderboard_release != Study.Release.BATCHES:
        return False
    last = latest_release(study)
    if last is None:
        return votes >= study.release_min_votes
    now = now or timezone.now()
    waited = (now - last.released_at).total_seconds() >= study.release_every_hours * 3600
    return waited and votes - last.votes_counted >= study.release_min_votes
