"""Redis (the cache, the rate-limit counters and the Celery broker) dies while annotators vote.

Votes only need PostgreSQL: while Redis is down every vote is still stored and acknowledged (the
rate limit counts in the database instead, the leaderboard recompute cannot be queued and is skipped), and the health
check says the broker is gone. Redis comes back empty (no persistence: the recompute queued before
the crash is lost with it); a worker is started, the next vote queues a recompute, and the stored
leaderboard catches up with every vote, including those cast during the outage.

The health check writes a key to the cache and reads it back: 503 with the cache's error while Redis is
gone or was never reachable, "ok" with Redis, "ok (local memory)" with the embedded cache.
"""
from __future__ import annotations

import random
import threading
from collections import Counter

import pytest
import requests

from annotations.models import Comparison, InviteLink, Vote
from ranking.models import LeaderboardSnapshot, RatingState
from tests.conftest import WorkerProcess
from tests.factories import make_study

from .conftest import Annotator, SiteServer, free_port, wait_until

pytestmark = [pytest.mark.services, pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

ANNOTATORS = 4


class Voters:
    """Annotator threads voting without pause; each answer is logged with the phase it was sent in."""

    def __init__(self, site: SiteServer, slug: str, invite_url: str):
        self.phase = "redis up"
        self.log: list[tuple[str, int, str]] = []  # (phase, status, token)
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(site, slug, invite_url, seed), daemon=True)
                        for seed in range(ANNOTATORS)]

    def run(self, site, slug, invite_url, seed):
        rng = random.Random(seed)
        annotator = Annotator(site.base, slug)
        try:
            annotator.join(invite_url)
            while not self.stop.is_set() and annotator.token:
                phase, token = self.phase, annotator.token
                response = annotator.vote(rng.choice(["left", "right", "tie", "both_bad"]))
                with self.lock:
                    self.log.append((phase, response.status_code, token))
                self.stop.wait(0.05)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.failures.append(repr(exc))
        finally:
            annotator.close()

    def acknowledged(self, phase: str | None = None) -> int:
        with self.lock:
            return sum(1 for p, status, _ in self.log if status == 200 and (phase is None or p == phase))

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(60)


def test_votes_are_stored_while_redis_is_down_and_the_leaderboard_catches_up_after(postgres, own_redis):
    # Room for about 45 s of non-stop voting (1,800 votes): with 180, four voters used the whole study up
    # while Redis and the worker restarted on a loaded CI machine, and nothing was left to vote on after.
    study = make_study(slug="redis-outage", n_instances=300, systems=("alpha-model", "beta-model", "gamma-model"),
                       overlap=2)
    invite = InviteLink.objects.create(max_uses=ANNOTATORS)
    invite.studies.add(study)
    cache_url, broker_url = own_redis.url(1), own_redis.url(0)
    site = SiteServer(REDIS_URL=cache_url, CELERY_BROKER_URL=broker_url, VOTE_RATE_LIMIT="100000/m").start()
    worker = None
    try:
        with Voters(site, study.slug, f"{site.base}/invite/{invite.token}/") as voters:
            wait_until(lambda: voters.acknowledged("redis up") >= 8, 120, "8 votes with Redis up")

            own_redis.kill()
            voters.phase = "redis down"
            health = requests.get(f"{site.base}/healthz", timeout=30)
            wait_until(lambda: voters.acknowledged("redis down") >= 12, 120, "12 votes with Redis down")

            own_redis.start()  # same port, empty
            worker = WorkerProcess(broker_url)
            worker.env_extra = {"REDIS_URL": cache_url}
            worker.start()
            voters.phase = "redis back"
            wait_until(lambda: voters.acknowledged("redis back") >= 4, 120, "4 votes after Redis came back")
        assert voters.failures == []

        statuses = Counter((phase, status) for phase, status, _ in voters.log)
        assert {status for _, status in statuses} == {200}, f"every answer was acknowledged: {statuses}"
        assert health.status_code == 503 and health.json()["checks"]["broker"].startswith("error")
        assert health.json()["checks"]["cache"].startswith("error: "), health.json()

        votes = Vote.objects.filter(study=study)
        acknowledged = [token for _, _, token in voters.log]
        assert sorted(votes.values_list("assignment__token", flat=True)) == sorted(acknowledged)
        assert len(set(acknowledged)) == len(acknowledged)
        for comparison in Comparison.objects.filter(study=study):
            assert comparison.votes_count == comparison.votes.count() <= study.votes_per_comparison

        total = votes.count()

        def caught_up():
            snapshot = LeaderboardSnapshot.objects.filter(study=study, method="elo").first()
            return snapshot is not None and snapshot.votes_used == total

        wait_until(caught_up, 120, f"the stored leaderboard to count all {total} votes")
        rated = sum(RatingState.objects.filter(study=study, method="elo").values_list("votes", flat=True))
        assert rated == 2 * total

        log = site.log()
        assert "cache unavailable, counting in the database" in log, "the vote limit kept counting during the outage"
        assert "could not schedule the leaderboard recompute" in log
    finally:
        if worker is not None:
            worker.stop()
        site.stop()


def redis_cache(url: str) -> dict:
    return {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url,
                        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}}}


def health(client):
    response = client.get("/healthz")
    return response.status_code, response.json()["checks"]


def test_health_check_fails_when_the_cache_redis_is_unreachable(settings, client):
    settings.CELERY_BROKER_URL = ""  # the embedded broker: only the cache is in question here
    settings.CACHES = redis_cache(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    status, checks = health(client)
    assert status == 503 and checks["database"] == "ok"
    assert checks["cache"].startswith("error: "), checks


def test_health_check_follows_the_cache_redis_down_and_up(settings, client, own_redis):
    settings.CELERY_BROKER_URL = ""
    settings.CACHES = redis_cache(own_redis.url(1))
    assert health(client) == (200, {"database": "ok", "cache": "ok", "broker": "embedded (eager tasks)"})
    own_redis.kill()
    status, checks = health(client)
    assert status == 503 and checks["cache"].startswith("error: "), checks
    own_redis.start()  # same port, empty
    assert health(client)[0] == 200


def test_health_check_names_the_local_memory_cache(settings, client):
    settings.CELERY_BROKER_URL = ""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert health(client) == (200, {"database": "ok", "cache": "ok (local memory)", "broker": "embedded (eager tasks)"})
