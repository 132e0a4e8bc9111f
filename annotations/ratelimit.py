"""Fixed-window request counters in the Django cache (Redis when REDIS_URL is set, so every worker
process shares them): the vote endpoint's rate limit and the sign-in lockout both count here.

The vote limit fails open: with the cache unreachable a vote is let through rather than refused."""
from __future__ import annotations

import logging
import time

from django.core.cache import cache

log = logging.getLogger(__name__)

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """'120/m' -> (120, 60): at most 120 hits per 60-second window. Also '5/10s', '1000/h', '10000/d'."""
    try:
        count, period = rate.strip().split("/")
        count = int(count)
        multiple = int(period[:-1]) if len(period) > 1 else 1
        seconds = multiple * UNITS[period[-1].lower()]
    except (ValueError, KeyError, IndexError):
        raise ValueError(f"bad rate {rate!r}; expected COUNT/PERIOD such as '120/m'") from None
    if count < 1 or seconds < 1:
        raise ValueError(f"bad rate {rate!r}; count and period must be positive")
    return count, seconds


def increment(key: str, timeout: int) -> int:
    """Add one to a counter that lives `timeout` seconds from its first hit; returns the new value."""
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # expired (or evicted) between add and incr: start again
        cache.add(key, 0, timeout=timeout)
        return cache.incr(key)


def hit(scope: str, ident: str, rate: str, now: float | None = None) -> tuple[bool, int]:
    """Count one request; returns (allowed, seconds until the window ends)."""
    limit, window = parse_rate(rate)
    now = time.time() if now is None else now
    window_index = int(now // window)
    retry_after = max(1, int((window_index + 1) * window - now))
    try:
        count = increment(f"rl:{scope}:{ident}:{window}:{window_index}", timeout=window + 1)
    except Exception:  # noqa: BLE001 - cache down: fail open, a counter must not refuse a vote
        log.warning("rate-limit cache unavailable; %s request of %s let through", scope, ident, exc_info=True)
        return True, retry_after
    return count <= limit, retry_after
