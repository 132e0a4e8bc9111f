"""The shared rate limiter (lib.ratelimit): a sliding window that refuses bursts across a window
boundary, and a database fallback that keeps every limit while the cache (Redis) is down."""
import pytest
from django.core.cache import caches
from django.test import Client

from annotations.models import InviteLink
from lib.models import RateCounter
from lib.ratelimit import Rate, hit, peek, reset
from tests.factories import make_study

pytestmark = pytest.mark.django_db

DEAD_REDIS = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
                          "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}}}


@pytest.fixture
def cache_down(settings):
    settings.CACHES = DEAD_REDIS
    yield
    caches["default"].close()


def test_a_burst_across_a_window_boundary_is_refused():
    """130 hits in 24 s, straddling a minute boundary, against 120/m: a fixed window let all through."""
    start = 60 * 1_000_000 - 12.0
    decisions = [hit("burst", "u1", "120/m", now=start + i * 24 / 130) for i in range(130)]
    refused = [d for d in decisions if not d.allowed]
    assert refused, "the burst went through"
    assert all(d.retry_after >= 1 for d in refused)
    assert sum(d.allowed for d in decisions) <= 120


def test_steady_rate_under_the_limit_is_never_refused():
    start = 60 * 2_000_000 + 3.0
    assert all(hit("steady", "u1", "120/m", now=start + i * 0.55).allowed for i in range(600))


def test_peek_does_not_count_and_reset_forgets():
    rate = Rate(3, 60)
    now = 60 * 3_000_000 + 1.0
    for _ in range(3):
        assert hit("peek", "x", rate, now=now).allowed
    assert not peek("peek", "x", rate, now=now).allowed
    assert not peek("peek", "x", rate, now=now).allowed  # still 3 hits, not more
    reset("peek", "x", rate, now=now)
    assert peek("peek", "x", rate, now=now).allowed


def test_rates_parse_and_refuse_nonsense():
    assert Rate.parse("120/m") == Rate(120, 60) and Rate.parse("5/900s") == Rate(5, 900)
    for bad in ("", "0/m", "5/x", "abc", "5/0s"):
        with pytest.raises(ValueError):
            Rate.parse(bad)


def test_with_the_cache_down_the_database_keeps_the_limit(cache_down):
    decisions = [hit("fallback", "u1", "5/m", now=60 * 4_000_000 + 1.0) for _ in range(7)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
    assert {d.store for d in decisions} == {"database"}
    assert RateCounter.objects.get().count == 7


def test_votes_are_still_limited_when_redis_is_down(cache_down, settings):
    settings.VOTE_RATE_LIMIT = "3/m"
    study = make_study(slug="limited", n_instances=6)
    invite = InviteLink.objects.create(max_uses=1)
    invite.studies.add(study)
    client = Client()
    client.post(f"/invite/{invite.token}/")
    statuses = []
    for _ in range(5):
        page = client.get("/s/limited/")
        token = page.context["token"]
        statuses.append(client.post("/s/limited/vote/", {"token": token, "choice": "left"},
                                    HTTP_HX_REQUEST="true").status_code)
    assert statuses == [200, 200, 200, 429, 429]


def test_sign_in_is_still_throttled_when_redis_is_down(cache_down, settings, staff_user):
    settings.LOGIN_MAX_FAILURES = 3
    for _ in range(3):
        Client().post("/accounts/login/", {"username": "staff", "password": "wrong"}, REMOTE_ADDR="10.1.1.1")
    response = Client().post("/accounts/login/", {"username": "staff", "password": "staff-pass-123"},
                             REMOTE_ADDR="10.1.1.1")
    assert response.status_code == 429


@pytest.mark.parametrize("rate", ["5/m", "120/m", "3/10s", "20/h"])
def test_retry_after_is_when_a_hit_is_allowed_again(rate):
    parsed = Rate.parse(rate)
    now = 7_200_000.0 + 0.3
    while (decision := hit(f"retry-{rate}", "u", parsed, now=now)).allowed:
        now += parsed.period / (3 * parsed.limit)
    assert not peek(f"retry-{rate}", "u", parsed, now=now + decision.retry_after - 1).allowed
    assert peek(f"retry-{rate}", "u", parsed, now=now + decision.retry_after).allowed


@pytest.fixture
def redis_cache(settings, redis_url):
    """The limiter on a real Redis (REDIS_URL, else the broker's Redis), as the deployed site runs it."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": settings.REDIS_URL or redis_url, "KEY_PREFIX": "ratelimit-test"}}
    caches["default"].clear()
    yield caches["default"]
    caches["default"].clear()
    caches["default"].close()


def _sequence(scope: str) -> list[tuple[bool, int, float, str]]:
    rate = Rate(4, 60)
    start = 60 * 5_000_000 + 50.0  # crosses a minute boundary and several slices
    out = []
    for i in range(14):
        now = start + i * 4.5
        call = peek if i % 3 == 2 else hit
        decision = call(scope, "u", rate, now=now)
        out.append((decision.allowed, decision.retry_after, round(decision.rate, 6), decision.store))
    return out


@pytest.mark.services
def test_redis_counts_in_one_pipeline_as_the_cache_api_counts(redis_cache, settings):
    """The pipelined Redis path (one round trip) decides every hit and peek as the generic cache path."""
    on_redis = _sequence("pipeline")
    assert {store for *_, store in on_redis} == {"cache"}
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert _sequence("pipeline") == on_redis
    assert any(not allowed for allowed, *_ in on_redis) and any(allowed for allowed, *_ in on_redis)


@pytest.mark.services
def test_redis_counters_are_readable_through_the_cache_and_expire(redis_cache):
    rate = Rate(10, 60)
    now = 60 * 6_000_000 + 1.0
    for _ in range(3):
        hit("interop", "u", rate, now=now)
    name = f"rl:interop:u:60:{int(now // 10)}"
    assert redis_cache.get(name) == 3  # what the generic path and reset() read and delete
    raw = redis_cache._cache.get_client(None, write=True)
    ttl = raw.ttl(redis_cache.make_and_validate_key(name))
    assert 0 < ttl <= 60 + 2 * 10 + 1
    reset("interop", "u", rate, now=now)
    assert peek("interop", "u", rate, now=now).rate == 1
