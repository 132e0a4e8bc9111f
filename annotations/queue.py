"""Which comparison an annotator sees next, and storing their answer exactly once.

The rules (the views are thin wrappers around `next_assignment` and `submit_vote`):

- A comparison is open to an annotator when it is `selected`, they hold no assignment for it (an
  assignment, once issued, is unique per (comparison, annotator), so nobody sees an item twice) and
  `votes_count + active unexpired leases < votes_per_comparison`. Higher `priority` (= separability)
  is served first. A lease that runs out returns its slot to the pool.
- Every lease takes the row lock of the comparison it leases and recounts under that lock, so
  concurrent requests never lease more than the overlap. On PostgreSQL the lock is
  `SELECT ... FOR UPDATE SKIP LOCKED`: annotators racing for the same item spread over the next ones
  instead of queueing. SQLite has no row locks; there every lease and vote begins with a write, which
  takes SQLite's database-wide write lock, so the same code is correct there, one writer at a time.
- The sample pairs of one consistency unit (same `unit_key`) go to one annotator: leasing one pair
  reserves the others for them (assignments with `served_at` unset), and a reserved pair is served only
  once at least `UNIT_GAP` other items came after the last pair of its unit.
- Gold items: one in every block of `gold_every` items, at a position inside the block drawn per
  annotator and block (`gold_position`), so the rate is exactly 1/N but nobody can count to it; gold
  items have no overlap cap.
- `submit_vote` is idempotent per assignment token: a replay returns the stored vote, never a second one.

Lock order, which keeps PostgreSQL free of deadlocks: annotator, study, comparison, assignment, rating
rows. Both a lease and a vote begin by locking the annotator's user row `FOR NO KEY UPDATE`, so one
annotator's requests (a double-click, a reload during the htmx vote, two tabs) run one after the
other. A lease then only ever *tries* comparison rows (SKIP LOCKED, never waits) before writing its
own assignments. A vote, in the same statement as the annotator's lock, takes a *share* lock on the
study row (votes of a study run side by side; opening or closing the study and rebuilding its ratings,
which lock that row exclusively, wait for them and they for it), then locks its comparison, then its
assignment, then the two systems' rating rows in id order (`ranking.services`). Nothing that holds an
assignment ever waits for a comparison, and nothing waits for an annotator's row while holding any
row of that annotator's items.

`NO KEY UPDATE`, not `UPDATE`: inserting a vote or an assignment checks its foreign key to the user
with a `KEY SHARE` lock, which `FOR UPDATE` blocks. With the lease holding the user `FOR UPDATE` and
waiting for the assignment a vote held while that vote waited for `KEY SHARE` on the same user, the two
deadlocked (7 of 9 double-clicks; tests/annotations/test_vote_races.py).
"""
from __future__ import annotations

import hashlib
import hmac
import random
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from lib.vocabulary import Choice

from .models import Assignment, Comparison, ItemFlag, Study, Vote
from .signals import vote_stored
from .sql import (
    has_room,
    insert,
    insert_vote,
    lock_annotator,
    lock_annotator_and_share_study,
    lock_assignment,
    open_comparisons,
    try_lock_comparisons,
    unanswered_assignments,
    votes_by,
)

UNIT_GAP = 2  # other items served between two sample pairs of the same consistency unit
MAX_LEASE_TRIES = 25  # candidates tried per request when others lease the same items concurrently
# When every open item is locked by someone else at that instant (votes and leases hold one for
# milliseconds), look again this many times, this far apart, before saying nothing is left.
LOCKED_RETRIES, LOCKED_PAUSE_SECONDS = 20, 0.05
RATIONALE_MAX_CHARS = 5000

_sides = random.SystemRandom()


TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")  # Assignment.token: token_urlsafe(18)


class VoteRejected(Exception):
    """The answer cannot be stored (the message is shown to the annotator)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class Progress:
    done: int
    quota: int  # 0 = no limit

    @property
    def quota_met(self) -> bool:
        return bool(self.quota) and self.done >= self.quota

    @property
    def percent(self) -> int:
        if not self.quota:
            return 0
        return min(100, round(100 * self.done / self.quota))


@dataclass
class SubmitResult:
    vote: Vote
    replay: bool  # True when the token had already been answered (nothing new was stored)


def progress(study: Study, user) -> Progress:
    return Progress(done=votes_by(study, user), quota=study.quota)


# --------------------------------------------------------------------------------------------------
# leasing


def _serve(assignment: Assignment, study: Study, now: datetime) -> Assignment:
    assignment.served_at = assignment.served_at or now
    assignment.expires_at = now + timedelta(seconds=study.lease_seconds)
    assignment.save(update_fields=["served_at", "expires_at"])
    return assignment


def _keep_or_renew(assignment: Assignment, study: Study, now: datetime) -> bool:
    """Whether the annotator still holds this lease (renewing a run-out one when the slot is still free)."""
    if assignment.expires_at > now or assignment.comparison.is_gold:
        return True
    locked = try_lock_comparisons(Comparison.objects.filter(pk=assignment.comparison_id))
    if not list(locked.values_list("pk", flat=True)):
        return False  # someone else is leasing it right now; try again on a later request
    return has_room(assignment.comparison_id, study, now, exclude_assignment=assignment.pk)


def _new_assignment(comparison: Comparison, user, now: datetime, seconds: int, served: bool = False) -> Assignment:
    """A lease (`served`: shown now) or a reservation (served later, through `_serve`)."""
    return insert(Assignment(
        comparison=comparison, annotator=user, left_is_a=_sides.random() < 0.5,
        issued_at=now, expires_at=now + timedelta(seconds=seconds), served_at=now if served else None,
    ))


def gold_position(study: Study, user, block: int) -> int:
    """Where, in block `block` of `study.gold_every` items (0-based), this annotator meets gold.

    Keyed with the site's secret, so the position is fixed for a given (study, annotator, block) —
    a reload asks the same question — yet cannot be worked out by an annotator; at fixed positions
    (items 3, 6, 9, ...) an annotator could answer gold carefully and the rest at random."""
    message = f"gold:{study.pk}:{user.pk}:{block}".encode()
    digest = hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") % study.gold_every


def _lease_gold(study: Study, user, now: datetime) -> Assignment | None:
    seen = Assignment.objects.filter(comparison=OuterRef("pk"), annotator=user)
    gold = (Comparison.objects.filter(study=study, selected=True, is_gold=True).filter(~Exists(seen))
            .order_by("?").first())
    if gold is None:
        return None
    return _new_assignment(gold, user, now, study.lease_seconds, served=True)


def _lease_fresh(study: Study, user, now: datetime, room: int | None) -> Assignment | None:
    """Lease (and serve) the best open comparison and reserve the rest of its unit (up to `room` items in all)."""
    tried: list[int] = []
    waits = 0
    for _ in range(MAX_LEASE_TRIES + LOCKED_RETRIES):
        found = open_comparisons(study, user, now, exclude=tried, limit=1, lock=True)
        if not found:
            # SKIP LOCKED saw nothing free; if open items exist they are only held at this instant: an
            # annotator must not be sent to the done page while work is left.
            if waits >= LOCKED_RETRIES or not open_comparisons(study, user, now, exclude=tried, limit=1):
                return None
            waits += 1
            time.sleep(LOCKED_PAUSE_SECONDS)
            continue
        comparison = found[0]
        if not has_room(comparison.pk, study, now):
            tried.append(comparison.pk)  # filled between our query and our lock
            continue
        assignment = _new_assignment(comparison, user, now, study.lease_seconds, served=True)
        if study.sample_pairs_per_unit > 1:
            _reserve_unit(study, user, now, comparison, None if room is None else room - 1)
        return assignment
    return None


def _reserve_unit(study: Study, user, now: datetime, leased: Comparison, room: int | None) -> None:
    if room is not None and room <= 0:
        return
    siblings = open_comparisons(study, user, now, unit_key=leased.unit_key, exclude=[leased.pk], lock=True)
    reserved: list[Comparison] = []
    for sibling in siblings:
        if room is not None and len(reserved) >= room:
            break
        if has_room(sibling.pk, study, now):
            reserved.append(sibling)
    # Reservations wait while other items are served, so they hold their slot for the whole unit's time.
    hold = study.lease_seconds * (1 + (UNIT_GAP + 1) * len(reserved))
    for sibling in reserved:
        _new_assignment(sibling, user, now, hold)


def next_assignment(study: Study, user, now: datetime | None = None, done: int | None = None) -> Assignment | None:
    """The item to show this annotator now (leasing one if needed), or None when nothing is left for them.

    `done` is the annotator's stored votes in the study when the caller has just counted them."""
    now = now or timezone.now()
    with transaction.atomic():
        lock_annotator(user)
        mine = unanswered_assignments(study, user)  # with their comparisons, oldest first
        # An item already on screen stays there until answered (a reload does not skip it).
        for assignment in mine:
            if assignment.served_at is not None and _keep_or_renew(assignment, study, now):
                return _serve(assignment, study, now)
        reserved = [a for a in mine if a.served_at is None]
        def served():
            return Assignment.objects.filter(comparison__study=study, annotator=user, served_at__isnull=False)

        # The order of past items matters only for spacing the pairs of a unit; gold needs only their number.
        # (A queryset is built only when used: building this one cost 3% of the cycle's CPU for nothing.)
        history = (list(served().order_by("served_at", "id").values_list("comparison__unit_key", flat=True))
                   if reserved else None)
        room = None
        if study.quota:
            done = progress(study, user).done if done is None else done
            room = study.quota - done - len(reserved)

        if study.gold_every and (room is None or room > 0):
            shown = len(history) if history is not None else served().count()
            if shown % study.gold_every == gold_position(study, user, shown // study.gold_every):
                gold = _lease_gold(study, user, now)
                if gold is not None:
                    return gold

        last_seen = {unit: index for index, unit in enumerate(history or ())}

        def due(assignment):
            last = last_seen.get(assignment.comparison.unit_key)
            return last is None or len(history) - 1 - last >= UNIT_GAP

        for assignment in filter(due, reserved):
            served_now = _serve_reserved(assignment, study, now)
            if served_now is not None:
                return served_now
        if room is None or room > 0:
            fresh = _lease_fresh(study, user, now, room)
            if fresh is not None:
                return fresh
        # Nothing fresh left: finish the reserved pairs even if they come closer together.
        for assignment in reserved:
            if not due(assignment):
                served_now = _serve_reserved(assignment, study, now)
                if served_now is not None:
                    return served_now
        return None


def _serve_reserved(assignment: Assignment, study: Study, now: datetime) -> Assignment | None:
    if _keep_or_renew(assignment, study, now):
        return _serve(assignment, study, now)
    if assignment.expires_at <= now:
        assignment.delete()  # never shown and its slot went to someone else: as if never reserved
    return None


def has_open_items(study: Study, user, now: datetime | None = None) -> bool:
    """Whether `next_assignment` could give this annotator anything (read-only estimate)."""
    now = now or timezone.now()
    mine = Assignment.objects.filter(comparison__study=study, annotator=user, completed_at__isnull=True,
                                     expires_at__gt=now)
    return mine.exists() or bool(open_comparisons(study, user, now, limit=1))


class Availability:
    """Why `next_assignment` has nothing for this annotator, in words a person can act on."""

    ITEMS_LEFT = "items_left"  # there is something: go on
    QUOTA_MET = "quota_met"  # they did what was asked of them
    CLOSED = "closed"  # the study takes no more votes
    NOTHING_SELECTED = "nothing_selected"  # the study's policy chose no item at all
    COMPLETE = "complete"  # every item has all the votes it needs
    LEASED = "leased"  # the items still needing votes are held by others for now
    JUDGED_ALL = "judged_all"  # the items still needing votes are ones they already judged


@dataclass
class Status:
    state: str
    retry_minutes: int = 0  # LEASED: when the first lease held by someone else runs out


def availability(study: Study, user, progress_now: Progress | None = None, now: datetime | None = None) -> Status:
    """What the done page tells the annotator (read-only; a few aggregate queries, off the vote path)."""
    now = now or timezone.now()
    progress_now = progress_now or progress(study, user)
    if study.status == Study.Status.CLOSED:
        return Status(Availability.CLOSED)
    if progress_now.quota_met:
        return Status(Availability.QUOTA_MET)
    if has_open_items(study, user, now):
        return Status(Availability.ITEMS_LEFT)
    served = Comparison.objects.filter(study=study, selected=True, is_gold=False)
    if not served.exists():
        return Status(Availability.NOTHING_SELECTED)
    unfilled = served.filter(votes_count__lt=study.votes_per_comparison)
    if not unfilled.exists():
        return Status(Availability.COMPLETE)
    mine = Assignment.objects.filter(comparison=OuterRef("pk"), annotator=user)
    held_by_others = (Assignment.objects.filter(comparison__in=unfilled.filter(~Exists(mine)),
                                                completed_at__isnull=True, expires_at__gt=now)
                      .order_by("expires_at").values_list("expires_at", flat=True).first())
    if held_by_others is not None:
        return Status(Availability.LEASED, max(1, -(-int((held_by_others - now).total_seconds()) // 60)))
    return Status(Availability.JUDGED_ALL)


# --------------------------------------------------------------------------------------------------
# voting


def decode_choice(choice: str, left_is_a: bool) -> str:
    """What the annotator clicked (left/right/tie/both_bad) as the canonical winner (a/b/tie/both_bad)."""
    if choice == "left":
        return "a" if left_is_a else "b"
    if choice == "right":
        return "b" if left_is_a else "a"
    return choice


def check_answer(study: Study, choice: str, rationale: str) -> str:
    """Validate the form fields; returns the cleaned rationale or raises VoteRejected."""
    allowed = {Choice.LEFT, Choice.RIGHT} | ({Choice.TIE} if study.allow_tie else set()) | (
        {Choice.BOTH_BAD} if study.allow_both_bad else set())
    if choice not in allowed:
        raise VoteRejected("Please choose one of the answers shown.")
    rationale = (rationale or "").strip()
    if "\x00" in rationale:
        raise VoteRejected("The explanation contains a character that cannot be stored.")
    if study.rationale == Study.Rationale.OFF:
        return ""
    if study.rationale == Study.Rationale.REQUIRED and not rationale:
        raise VoteRejected("Please explain your choice in a sentence before submitting.")
    if len(rationale) > RATIONALE_MAX_CHARS:
        raise VoteRejected(f"Please keep the explanation under {RATIONALE_MAX_CHARS} characters.")
    return rationale


def submit_vote(study: Study, user, token: str, choice: str, rationale: str = "",
                now: datetime | None = None) -> SubmitResult:
    """Store the answer to the assignment `token` (idempotent: a replay returns the stored vote)."""
    now = now or timezone.now()
    if not TOKEN_PATTERN.fullmatch(token or ""):
        raise VoteRejected("This item is not yours or no longer exists.", status=404)
    try:
        with transaction.atomic():
            return _store_vote(study, user, token, choice, rationale, now)
    except IntegrityError:
        # The locks taken first make a second vote for one assignment impossible through this function;
        # a vote written for it by other means (an import) in between makes this a replay too.
        vote = Vote.objects.filter(assignment__token=token, annotator=user).first()
        if vote is None:
            raise
        return SubmitResult(vote, replay=True)


def _store_vote(study: Study, user, token: str, choice: str, rationale: str, now: datetime) -> SubmitResult:
    status, excluded = lock_annotator_and_share_study(study, user)
    assignment = lock_assignment(token, user, study)  # its comparison, then it (the lock order)
    if assignment is None:
        raise VoteRejected("This item is not yours or no longer exists.", status=404)
    if assignment.completed_at is not None:  # answered: set in the same transaction as its vote
        existing = Vote.objects.filter(assignment=assignment).first()
        if existing is None:
            raise VoteRejected("This item was already answered.", status=409)
        return SubmitResult(existing, replay=True)
    rationale = check_answer(study, choice, rationale)
    if status != Study.Status.OPEN:
        raise VoteRejected("This study is closed; your last answer could not be stored.", status=409)
    comparison = assignment.comparison
    if assignment.served_at is None:
        raise VoteRejected("This item was not shown to you yet.", status=409)
    # A run-out lease counts only while its slot is still free (recounted under the comparison's lock).
    if assignment.expires_at <= now and not comparison.is_gold:
        if not has_room(comparison.pk, study, now, exclude_assignment=assignment.pk):
            raise VoteRejected("This item timed out and went to someone else; here is a new one.", status=409)
    duration = max(0.0, (now - assignment.served_at).total_seconds())
    winner = decode_choice(choice, assignment.left_is_a)
    vote = Vote(
        assignment=assignment, study=study, comparison=comparison, annotator=user,
        choice=choice, winner=winner, rationale=rationale, served_at=assignment.served_at,
        submitted_at=now, duration_seconds=duration,
        gold_passed=(winner == comparison.gold_answer) if comparison.is_gold and comparison.gold_answer else None,
        too_fast=duration < study.too_fast_seconds,
        **({"excluded": True, "exclusion_reason": "annotator excluded", "excluded_at": now,
            "excluded_with_annotator": True} if excluded else {}),
    )
    insert_vote(vote, now)  # with the assignment's completed_at and the comparison's votes_count + 1
    vote_stored.send(sender=Vote, vote=vote)  # ranking moves the online Elo here, in this transaction
    return SubmitResult(vote, replay=False)


FLAG_REASON_MAX_CHARS = 1000


def flag_item(study: Study, user, token: str, reason: str = "", now: datetime | None = None) -> ItemFlag:
    """The annotator cannot judge this item: no vote is stored, the item leaves their queue and its slot
    returns to the pool (a completed assignment holds no lease), and staff see the flag. Same locks, in the
    same order, as a vote."""
    now = now or timezone.now()
    if not TOKEN_PATTERN.fullmatch(token or ""):
        raise VoteRejected("This item is not yours or no longer exists.", status=404)
    reason = (reason or "").strip()
    if "\x00" in reason:
        raise VoteRejected("The note contains a character that cannot be stored.")
    if len(reason) > FLAG_REASON_MAX_CHARS:
        raise VoteRejected(f"Please keep the note under {FLAG_REASON_MAX_CHARS} characters.")
    with transaction.atomic():
        status, _ = lock_annotator_and_share_study(study, user)
        assignment = lock_assignment(token, user, study)
        if assignment is None:
            raise VoteRejected("This item is not yours or no longer exists.", status=404)
        existing = ItemFlag.objects.filter(assignment=assignment).first()
        if existing is not None:
            return existing
        if assignment.completed_at is not None:
            raise VoteRejected("This item was already answered.", status=409)
        if status != Study.Status.OPEN:
            raise VoteRejected("This study is closed.", status=409)
        flag = ItemFlag.objects.create(assignment=assignment, study=study, comparison=assignment.comparison,
                                       annotator=user, reason=reason, created_at=now)
        Assignment.objects.filter(pk=assignment.pk).update(completed_at=now)
        return flag
