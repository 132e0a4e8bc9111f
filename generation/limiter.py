"""Keeping every worker within an endpoint's limits: requests in flight, requests per minute, tokens per minute.

The limits are the endpoint's, not a process's, so they are kept in Redis (REDIS_URL) and shared by every
worker; embedded (no Redis) they are kept in this process. Requests and tokens per minute use the
`limits` library's moving window (it counts a cost per hit, which tokens need). lib.ratelimit guards
requests *into* the site and fails open; this limiter guards requests *out* and waits instead.

Concurrency is a counting semaphore, hand-written because neither redis-py (Lock only) nor `limits`
(rates only) has one: a sorted set of holder ids scored by when they expire. A holder's process renews
its slots every few seconds while their requests run (a request may take minutes), so a worker killed while
holding a slot frees it within HOLD_SECONDS instead of leaking it (bench: a killed worker's slots held a
whole run up for 150 s when they expired only after the longest possible request).
"""
from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

POLL_SECONDS = 0.05
HOLD_SECONDS = 15.0  # a slot not renewed for this long is free (its holder died)
RENEW_SECONDS = 5.0


@dataclass(frozen=True)
class Limits:
    key: str  # the endpoint's name
    max_concurrency: int
    requests_per_minute: int = 0  # 0 = none
    tokens_per_minute: int = 0

    @classmethod
    def of(cls, spec) -> Limits:
        """An endpoint's limits (from a generation.clients.EndpointSpec or a ModelEndpoint)."""
        return cls(key=spec.name, max_concurrency=spec.max_concurrency,
                   requests_per_minute=spec.requests_per_minute, tokens_per_minute=spec.tokens_per_minute)


class _LocalSemaphores:
    """Embedded: one semaphore per endpoint in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}

    def try_acquire(self, limits: Limits) -> str | None:
        with self._lock:
            if self._held.get(limits.key, 0) >= limits.max_concurrency:
                return None
            self._held[limits.key] = self._held.get(limits.key, 0) + 1
            return "local"

    def release(self, limits: Limits, _token: str) -> None:
        with self._lock:
            self._held[limits.key] = max(0, self._held.get(limits.key, 0) - 1)

    def in_flight(self, key: str) -> int:
        return self._held.get(key, 0)


# KEYS[1] the set; ARGV: now, holder id, expiry, limit. Stale holders out, then join if there is room.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
  redis.call('EXPIRE', KEYS[1], 3600)
  return 1
end
return 0
"""


class _RedisSemaphores:
    def __init__(self, url: str):
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._held: dict[str, str] = {}  # holder id -> its set, renewed by the thread below
        self._held_lock = threading.Lock()
        self._renewer: threading.Thread | None = None

    def _renew_forever(self) -> None:
        import redis

        while True:
            time.sleep(RENEW_SECONDS)
            with self._held_lock:
                held = list(self._held.items())
            try:
                for token, key in held:
                    self._redis.zadd(key, {token: time.time() + HOLD_SECONDS}, xx=True)
            except redis.RedisError:  # the next round tries again; a slot lapses only after HOLD_SECONDS
                pass

    def _key(self, key: str) -> str:
        return f"generation:inflight:{key}"

    def try_acquire(self, limits: Limits) -> str | None:
        token = uuid.uuid4().hex
        now = time.time()
        got = self._acquire(keys=[self._key(limits.key)],
                            args=[now, token, now + HOLD_SECONDS, limits.max_concurrency])
        if not got:
            return None
        with self._held_lock:
            self._held[token] = self._key(limits.key)
            if self._renewer is None:
                self._renewer = threading.Thread(target=self._renew_forever, name="slot-renewer", daemon=True)
                self._renewer.start()
        return token

    def release(self, limits: Limits, token: str) -> None:
        with self._held_lock:
            self._held.pop(token, None)
        self._redis.zrem(self._key(limits.key), token)

    def in_flight(self, key: str) -> int:
        self._redis.zremrangebyscore(self._key(key), "-inf", time.time())
        return int(self._redis.zcard(self._key(key)))  # type: ignore[arg-type]  # sync client: an int


class EndpointLimiter:
    """`with limiter.slot(limits, tokens=n):` waits until a request may go out, then holds a slot."""

    def __init__(self, redis_url: str = ""):
        self.shared = bool(redis_url)
        self._semaphores = _RedisSemaphores(redis_url) if redis_url else _LocalSemaphores()
        self._rates = MovingWindowRateLimiter(storage_from_string(redis_url if redis_url else "memory://"))
        self.waited_seconds = 0.0  # time spent waiting on any limit (the benchmark reports it)

    def _wait_rate(self, item, key: str, cost: int) -> None:
        cost = max(1, min(cost, item.amount))  # a request larger than the whole budget still goes, alone
        while not self._rates.hit(item, key, cost=cost):
            reset = self._rates.get_window_stats(item, key).reset_time
            pause = min(max(reset - time.time(), POLL_SECONDS), 5.0)
            self.waited_seconds += pause
            time.sleep(pause)

    @contextlib.contextmanager
    def slot(self, limits: Limits, tokens: int = 0) -> Iterator[None]:
        token = self._semaphores.try_acquire(limits)
        while token is None:
            self.waited_seconds += POLL_SECONDS
            time.sleep(POLL_SECONDS)
            token = self._semaphores.try_acquire(limits)
        try:
            # The rates are counted last, just before the request goes out: counted before the wait for a
            # slot, a request could reach the server long after its hit, and the server then saw 46 in a
            # minute against a limit of 40 (bench/generation.py, part 4).
            if limits.requests_per_minute:
                self._wait_rate(RateLimitItemPerMinute(limits.requests_per_minute), f"rpm:{limits.key}", 1)
            if limits.tokens_per_minute and tokens:
                self._wait_rate(RateLimitItemPerMinute(limits.tokens_per_minute), f"tpm:{limits.key}", tokens)
            yield
        finally:
            self._semaphores.release(limits, token)

    def in_flight(self, key: str) -> int:
        return self._semaphores.in_flight(key)


_limiter: EndpointLimiter | None = None
_limiter_lock = threading.Lock()


def get_limiter() -> EndpointLimiter:
    """The process's limiter, on REDIS_URL when it is set."""
    global _limiter
    from django.conf import settings

    with _limiter_lock:
        if _limiter is None:
            _limiter = EndpointLimiter(getattr(settings, "REDIS_URL", "") or "")
        return _limiter
