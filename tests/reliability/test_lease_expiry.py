"""Leases running out while many annotators work: the rules of annotations/queue.py under load.

Twenty annotators vote over HTTP on a study with the shortest lease allowed (10 s), while a "clock"
thread moves time forward by expiring every open lease of the study a few times a second (a direct
update of `expires_at`, the time travel). A quarter of the items are answered only after the clock
has expired them (the annotator walked away). The queue's documented rules must hold throughout:

- a late answer is kept while the slot is still free, and refused with 409 ("timed out and went to
  someone else") once others filled it; a refused answer stores nothing;
- no comparison ever gets more votes than its overlap, nobody votes twice on one comparison, and
  every acknowledged answer is stored;
- an expired lease returns its slot to the pool: after the run every lease is expired once more,
  fresh annotators drain the study, and every comparison ends with exactly `overlap` votes, the ones
  the walked-away annotators held included.
"""
from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from annotations.models import Assignment, Comparison, InviteLink, Study, Vote
from tests.factories import make_study

from .conftest import Annotator, wait_until

pytestmark = [pytest.mark.services, pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

ANNOTATORS = 20
DRAINERS = 8
OVERLAP = 2
WALK_AWAY = 0.25


def expire_open_leases(study_id: int) -> int:
    now = timezone.now()
    return Assignment.objects.filter(comparison__study_id=study_id, completed_at__isnull=True,
                                     expires_at__gt=now).update(expires_at=now - timedelta(seconds=1))


class Clock(threading.Thread):
    """Expires every open lease of the study every `period` seconds; `ticks` counts the passes."""

    def __init__(self, study_id: int, period: float = 0.2):
        super().__init__(daemon=True)
        self.study_id, self.period = study_id, period
        self.ticks = 0
        self.stop = threading.Event()

    def run(self):
        try:
            while not self.stop.is_set():
                expire_open_leases(self.study_id)
                self.ticks += 1
                self.stop.wait(self.period)
        finally:
            connection.close()

    def wait_ticks(self, n: int, timeout: float = 30) -> None:
        target = self.ticks + n
        wait_until(lambda: self.ticks >= target or self.stop.is_set(), timeout, f"{n} clock ticks", interval=0.05)


class Outcomes:
    def __init__(self):
        self.lock = threading.Lock()
        self.rows: list[tuple[str, str, int, bool]] = []  # (kind, token, status, redirected)
        self.failures: list[str] = []

    def add(self, kind, token, response):
        with self.lock:
            self.rows.append((kind, token, response.status_code, bool(response.headers.get("HX-Redirect"))))

    def last_status(self) -> dict[str, tuple[int, bool]]:
        """Each token's final outcome. A refused token can come back: when a slot frees up before the
        annotator's next request, the queue renews their lease and shows the same item again."""
        with self.lock:
            return {token: (status, redirected) for _, token, status, redirected in self.rows}

    def tokens(self, kind=None, status=None, redirected=None) -> list[str]:
        with self.lock:
            return [t for k, t, s, r in self.rows if (kind is None or k == kind) and (status is None or s == status)
                    and (redirected is None or r == redirected)]


def annotate(base, slug, invite_url, seed, outcomes: Outcomes, stop: threading.Event, clock: Clock | None,
             keep: list):
    rng = random.Random(seed)
    annotator = Annotator(base, slug)
    keep.append(annotator)  # the test answers its last item late, after the run, then closes it
    try:
        annotator.join(invite_url)
        while not stop.is_set() and annotator.token:
            token, kind = annotator.token, "prompt"
            if clock is not None and rng.random() < WALK_AWAY:
                clock.wait_ticks(2)  # a full expiry pass after the item was served: the lease has run out
                kind = "late"
            response = annotator.vote(rng.choice(["left", "right", "tie"]), token=token)
            outcomes.add(kind, token, response)
            if response.status_code not in (200, 409):
                outcomes.failures.append(f"{kind} answer got {response.status_code}: {response.text[:200]}")
                return
    except Exception as exc:  # noqa: BLE001 - reported by the test
        outcomes.failures.append(repr(exc))
    finally:
        connection.close()


def run_annotators(count, seed_base, base, slug, invite_url, outcomes, stop, clock=None, keep=None):
    keep = [] if keep is None else keep
    threads = [threading.Thread(target=annotate, daemon=True,
                                args=(base, slug, invite_url, seed_base + i, outcomes, stop, clock, keep))
               for i in range(count)]
    for thread in threads:
        thread.start()
    return threads


def test_expired_leases_return_to_the_pool_and_late_answers_follow_the_rules(postgres, live_server):
    study = make_study(slug="short-leases", n_instances=20, systems=("alpha-model", "beta-model", "gamma-model"),
                       overlap=OVERLAP, lease_seconds=10)
    comparisons = Comparison.objects.filter(study=study).count()
    slots = comparisons * OVERLAP
    base = live_server.url.replace("localhost", "127.0.0.1")
    invite = InviteLink.objects.create(max_uses=ANNOTATORS + DRAINERS)
    invite.studies.add(study)
    invite_url = f"{base}/invite/{invite.token}/"

    # 1. Under load, with leases running out all the time.
    outcomes, stop, clock, walked_away = Outcomes(), threading.Event(), Clock(study.pk), []
    clock.start()
    threads = run_annotators(ANNOTATORS, 0, base, study.slug, invite_url, outcomes, stop, clock, walked_away)
    try:
        wait_until(lambda: Vote.objects.filter(study=study).count() >= slots // 2 or outcomes.failures, 180,
                   "half of the vote slots filled")
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
        clock.stop.set()
        clock.join(10)
    assert outcomes.failures == []
    late = Counter(status for kind, _, status, _ in outcomes.rows if kind == "late")
    print(f"answers under load: {Counter((k, s) for k, _, s, _ in outcomes.rows)}")
    assert sum(late.values()) > 0, "some answers came after their lease ran out"

    stored = set(Vote.objects.filter(study=study).values_list("assignment__token", flat=True))
    final = outcomes.last_status()
    acknowledged = {token for token, (status, redirected) in final.items() if status == 200 and not redirected}
    refused = {token for token, (status, _) in final.items() if status == 409}
    assert acknowledged <= stored, "an acknowledged answer is missing"
    assert not refused & stored, "an answer refused with 409 (and not answered again) was stored anyway"
    assert stored <= set(final), "a vote nobody sent"
    assert stored <= acknowledged | {t for t, (status, _) in final.items() if status == 200}, \
        "a vote whose answer was not a success"

    # 2. Every open lease runs out; fresh annotators drain the study with long leases.
    Study.objects.filter(pk=study.pk).update(lease_seconds=600)
    expire_open_leases(study.pk)
    held = set(Assignment.objects.filter(comparison__study=study, completed_at__isnull=True)
               .values_list("comparison_id", flat=True))
    assert held, "the first phase left leases behind (the items on screen when it stopped)"
    drain, stop = Outcomes(), threading.Event()
    threads = run_annotators(DRAINERS, 1000, base, study.slug, invite_url, drain, stop)
    for thread in threads:
        thread.join(240)
    assert not any(thread.is_alive() for thread in threads)
    assert drain.failures == []
    assert set(drain.tokens(status=409)) == set(), "nobody answered late while draining"

    # 3. The pool is exactly full: the expired leases' slots went to others, nothing over the overlap.
    per_comparison = dict(Comparison.objects.filter(study=study).annotate(n=Count("votes")).values_list("pk", "n"))
    assert set(per_comparison.values()) == {OVERLAP}, Counter(per_comparison.values())
    assert set(Comparison.objects.filter(study=study).values_list("votes_count", flat=True)) == {OVERLAP}
    pairs = list(Vote.objects.filter(study=study).values_list("comparison_id", "annotator_id"))
    assert len(pairs) == len(set(pairs)) == slots
    stored = set(Vote.objects.filter(study=study).values_list("assignment__token", flat=True))
    assert set(drain.tokens(status=200)) <= stored
    assert not refused & stored, "a refused answer was stored by someone else's request"

    # 4. The first annotators come back to the items still on their screens, long expired and since
    #    filled by others: every such late answer is refused and stores nothing.
    votes_before = len(pairs)
    returned = [a for a in walked_away if a.token]
    assert returned, "items were on screen when the first phase stopped"
    for annotator in returned:
        token = annotator.token
        response = annotator.vote("left", token=token)
        # 409 ("went to someone else"); when nothing is left for them, the refusal arrives as an
        # HX-Redirect to the done page (see test_refused_late_answer_keeps_its_409_when_nothing_is_left).
        assert response.status_code == 409 or response.headers.get("HX-Redirect"), response.status_code
        assert not Vote.objects.filter(assignment__token=token).exists()
    for annotator in walked_away:
        annotator.close()
    assert Vote.objects.filter(study=study).count() == votes_before
    assert set(Comparison.objects.filter(study=study).values_list("votes_count", flat=True)) == {OVERLAP}


def test_refused_late_answer_keeps_its_409_when_nothing_is_left(postgres, live_server):
    study = make_study(slug="last-item", n_instances=1, overlap=1, lease_seconds=10)
    invite = InviteLink.objects.create(max_uses=2)
    invite.studies.add(study)
    base = live_server.url.replace("localhost", "127.0.0.1")
    late, prompt = (Annotator(base, study.slug) for _ in range(2))
    late.join(f"{base}/invite/{invite.token}/")
    held = late.token
    expire_open_leases(study.pk)
    prompt.join(f"{base}/invite/{invite.token}/")
    assert prompt.vote("left").status_code == 200
    response = late.vote("right", token=held)
    late.close(), prompt.close()
    assert not Vote.objects.filter(assignment__token=held).exists()
    assert response.status_code == 409
