"""Request rate limits shared by every worker process: the vote endpoint's limit and the sign-in throttle.

Why hand-written: the limits must hold across gunicorn workers (so they live in Redis through Django's
cache), must keep holding when Redis is down (so they fall back to a database table), and must not
let a burst through at a window boundary. django-ratelimit counts in fixed cache windows only and has
no fallback; django-axes covers sign-in but not the vote endpoint. This is one small mechanism for both.

The algorithm is a sliding window kept in SLICES sub-windows: hits are counted per slice of
`period / SLICES` seconds, and the rate at time t is the hits of the slices inside (t - period, t], the
oldest slice weighted by how much of it is still inside. It is exact to within one slice. A fixed
window let 130 votes through in 24 s across a boundary with a limit of 120 a minute, and so does the
two-window "sliding counter" (it assumes the previous window's hits were spread evenly); with six
slices the burst is refused as it crosses.
"""
from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection

from .models import RateCounter

log = logging.getLogger(__name__)

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
CLEANUP_PROBABILITY = 0.01  # share of database-fallback hits that also delete expired counters


@dataclass(frozen=True)
class Rate:
    limit: int
    period: int  # seconds

    @classmethod
    def parse(cls, rate: str) -> Rate:
        """'120/m' -> at most 120 hits in any 60 s. Also '5/10s', '1000/h', '10000/d', '5/900s'."""
        try:
            count, period = rate.strip().split("/")
            limit = int(count)
            multiple = int(period[:-1]) if len(period) > 1 else 1
            seconds = multiple * UNITS[period[-1].lower()]
        except (ValueError, KeyError, IndexError, AttributeError):
            raise ValueError(f"bad rate {rate!r}; expected COUNT/PERIOD such as '120/m'") from None
        if limit < 1 or seconds < 1:
            raise ValueError(f"bad rate {rate!r}; count and period must be positive")
        return cls(limit, seconds)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int  # seconds until a hit would be allowed again (>= 1 when refused)
    rate: float  # the sliding estimate, this hit included
    store: str  # "cache" or "database": where the counters were read


def parse_rate(rate: str) -> tuple[int, int]:
    parsed = Rate.parse(rate)
    return parsed.limit, parsed.period


def _key(scope: str, ident: str) -> str:
    return f"rl:{scope}:{ident}"


SLICES = 6


def _slice(rate: Rate) -> float:
    return rate.period / SLICES


def _estimate(counts: dict[int, int], current: int, share: float) -> float:
    """Hits in the sliding window ending now: slices current-5..current in full, current-6 in part."""
    full = sum(counts.get(current - back, 0) for back in range(SLICES))
    return full + counts.get(current - SLICES, 0) * (1.0 - share)


def _retry_after(rate: Rate, counts: dict[int, int], current: int, share: float, now: float) -> int:
    """Seconds until the window holds at most limit - 1 hits (so that one more is allowed), if no more come."""
    length = _slice(rate)
    room = rate.limit - 1
    for ahead in range(SLICES + 1):
        slice_now = current + ahead
        full = sum(counts.get(slice_now - back, 0) for back in range(SLICES) if slice_now - back <= current)
        partial = counts.get(slice_now - SLICES, 0)
        if full > room:
            continue
        start_share = share if ahead == 0 else 0.0
        needed_share = 0.0 if partial == 0 else max(start_share, 1.0 - (room - full) / partial)
        return max(0, math.ceil((slice_now + needed_share) * length - now))
    return rate.period


def _where(rate: Rate, now: float) -> tuple[int, float]:
    """(current slice number, share of it already past)."""
    length = _slice(rate)
    current = int(now // length)
    return current, (now - current * length) / length


# --- the two stores ---------------------------------------------------------------------------------


def _cache_counts(key: str, rate: Rate, current: int, add: bool) -> dict[int, int]:
    names = {current - back: f"{key}:{rate.period}:{current - back}" for back in range(SLICES + 1)}
    timeout = math.ceil(rate.period + 2 * _slice(rate)) + 1
    backend = caches["default"]  # `cache` is a proxy: isinstance() needs the backend itself
    if isinstance(backend, RedisCache):
        return _redis_counts(backend, names, current, timeout, add)
    counts: dict[int, int] = {}
    if add:
        cache.add(names[current], 0, timeout=timeout)
        try:
            counts[current] = cache.incr(names[current])
        except ValueError:  # evicted between add and incr: start again
            cache.add(names[current], 0, timeout=timeout)
            counts[current] = cache.incr(names[current])
        del names[current]
    found = cache.get_many(list(names.values()))
    for number, name in names.items():
        counts[number] = int(found.get(name) or 0)
    return counts


def _redis_counts(backend: RedisCache, names: dict[int, str], current: int, timeout: int,
                  add: bool) -> dict[int, int]:
    """The same counters in Redis in one round trip: SET NX with the timeout, INCR, and MGET of the other
    slices, pipelined on the cache's own client and keys.

    Why not the cache API: `add`, `incr` (which asks EXISTS first) and `get_many` are four round trips,
    and with redis-py's per-command overhead they were 11.6% of the server's CPU per vote
    (`python -m bench.peers --systems site --profile-cpu`). Django's Redis cache stores integers
    unpickled, so the pipeline's counters are the ones `cache.get` reads (the generic path below)."""
    keys = {number: backend.make_and_validate_key(name) for number, name in names.items()}
    client = backend._cache.get_client(keys[current], write=True)  # type: ignore[attr-defined]
    others = [number for number in keys if not (add and number == current)]
    pipe = client.pipeline(transaction=False)
    if add:
        pipe.set(keys[current], 0, ex=timeout, nx=True)
        pipe.incr(keys[current])
    pipe.mget([keys[number] for number in others])
    replies = pipe.execute()
    counts = {number: int(value or 0) for number, value in zip(others, replies[-1], strict=True)}
    if add:
        counts[current] = int(replies[1])
    return counts


def _database_counts(key: str, rate: Rate, current: int, add: bool, now: float) -> dict[int, int]:
    """The same counters in `lib.RateCounter` rows, while the cache is unreachable.

    Plain SQL for the atomic upsert (INSERT ... ON CONFLICT ... RETURNING, PostgreSQL and SQLite
    alike): the ORM's update_or_create reads, then writes, and two processes would both insert."""
    table = RateCounter._meta.db_table
    key = f"{key}:{rate.period}"
    expires = datetime.fromtimestamp(now + rate.period + 2 * _slice(rate) + 1, tz=UTC)
    with connection.cursor() as cursor:
        if add:
            cursor.execute(
                f'INSERT INTO "{table}" (key, bucket, count, expires_at) VALUES (%s, %s, 1, %s) '
                f'ON CONFLICT (key, bucket) DO UPDATE SET count = "{table}".count + 1 RETURNING count',
                [key, current, expires])
            cursor.fetchone()
        cursor.execute(f'SELECT bucket, count FROM "{table}" WHERE key = %s AND bucket BETWEEN %s AND %s',
                       [key, current - SLICES, current])
        counts = {int(bucket): int(count) for bucket, count in cursor.fetchall()}
        if random.random() < CLEANUP_PROBABILITY:
            cursor.execute(f'DELETE FROM "{table}" WHERE expires_at < %s',
                           [datetime.fromtimestamp(now, tz=UTC)])
    return counts


def _counts(key: str, rate: Rate, current: int, add: bool, now: float) -> tuple[dict[int, int], str]:
    try:
        return _cache_counts(key, rate, current, add), "cache"
    except Exception:  # noqa: BLE001 - any cache backend error: the database keeps the limit
        log.warning("rate limit %s: cache unavailable, counting in the database", key, exc_info=True)
        return _database_counts(key, rate, current, add, now), "database"


# --- the interface ----------------------------------------------------------------------------------


def _decide(scope: str, ident: str, rate: str | Rate, now: float | None, add: bool) -> Decision:
    rate = rate if isinstance(rate, Rate) else Rate.parse(rate)
    now = time.time() if now is None else now
    current, share = _where(rate, now)
    counts, store = _counts(_key(scope, ident), rate, current, add, now)
    estimate = _estimate(counts, current, share) + (0 if add else 1)
    allowed = estimate <= rate.limit
    retry = 0 if allowed else max(1, _retry_after(rate, counts, current, share, now))
    return Decision(allowed, retry, estimate, store)


def hit(scope: str, ident: str, rate: str | Rate, now: float | None = None) -> Decision:
    """Count one hit of `ident` in `scope` and say whether it is within `rate`."""
    return _decide(scope, ident, rate, now, add=True)


def peek(scope: str, ident: str, rate: str | Rate, now: float | None = None) -> Decision:
    """Whether one more hit would be within `rate`, without counting it."""
    return _decide(scope, ident, rate, now, add=False)


def reset(scope: str, ident: str, rate: str | Rate, now: float | None = None) -> None:
    """Forget the hits of `ident` (a successful sign-in clears its failures)."""
    rate = rate if isinstance(rate, Rate) else Rate.parse(rate)
    now = time.time() if now is None else now
    current, _ = _where(rate, now)
    key = _key(scope, ident)
    numbers = range(current - SLICES, current + 1)
    try:
        cache.delete_many([f"{key}:{rate.period}:{n}" for n in numbers])
    except Exception:  # noqa: BLE001
        log.warning("rate limit %s: cache unavailable, clearing in the database", key, exc_info=True)
    # The database may hold counts from an outage; clearing them costs one statement, on sign-in only.
    RateCounter.objects.filter(key=f"{key}:{rate.period}", bucket__in=list(numbers)).delete()


def retry_after_text(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minutes"


__all__ = ["Decision", "Rate", "hit", "parse_rate", "peek", "reset", "retry_after_text"]
