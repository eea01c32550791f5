"""The shared cache when Redis is down or hangs: a per-process circuit breaker.

Every call to Redis goes through `BREAKER`. The first failure (refused, reset, or no
answer within the socket timeout, `CACHE_TIMEOUT_SECONDS`) opens it: for the next
`CACHE_RETRY_SECONDS` this process does not try Redis at all, so a hung Redis costs one
timeout per process per retry period, not one per request. Then one request tries again;
success closes the breaker. Each change is logged once (not per request) and shown by the
`appease_cache_degraded` gauge and in /readyz.

While it is open:
- `ResilientRedisCache` (the configured backend) answers like an empty cache: a read is a
  miss, a write is dropped. Its users keep only what they can recompute (triage rules,
  the metrics snapshot).
- The guessing guards and rate limits (`appease.core.ratelimit`) count in the database
  instead: never an unlimited window. See docs/adr/0008-cache-outage.md.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache.backends.redis import RedisCache
from prometheus_client import Counter, Gauge
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

T = TypeVar("T")

CACHE_DEGRADED = Gauge(
    "appease_cache_degraded",
    "1 while this process cannot reach the cache (Redis) and runs on its fallbacks.",
    multiprocess_mode="livemax",
)
CACHE_FALLBACKS = Counter(
    "appease_cache_fallbacks_total",
    "Cache operations answered without the cache because it was down or hung, by user.",
    ["use"],
)
# A failure of the connection, not of our code: refused, reset, timed out, bad reply.
CACHE_ERRORS = (RedisError, OSError)


class CacheUnavailable(Exception):
    """The cache did not answer (or is known not to, for a few seconds)."""


class CacheBreaker:
    """Per process, shared by its threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._retry_at = 0.0
        self.reason = ""

    @property
    def degraded(self) -> bool:
        return self._down_since is not None

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)`, or CacheUnavailable without trying while the breaker is
        open. Once the retry period is over, one caller (one thread) tries again."""
        with self._lock:
            if self._down_since is not None:
                now = time.monotonic()
                if now < self._retry_at:
                    raise CacheUnavailable(self.reason)
                self._retry_at = now + settings.CACHE_RETRY_SECONDS  # this thread probes
        return self.probe(fn, *args, **kwargs)

    def probe(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` whatever the breaker's state (a readiness probe)."""
        try:
            result = fn(*args, **kwargs)
        except CACHE_ERRORS as error:
            self._trip(error)
            raise CacheUnavailable(self.reason) from error
        if self._down_since is not None:
            self._recover()
        return result

    def _trip(self, error: Exception) -> None:
        with self._lock:
            self._retry_at = time.monotonic() + settings.CACHE_RETRY_SECONDS
            if self._down_since is not None:
                return  # already down: logged when it went down
            self._down_since = time.monotonic()
            self.reason = type(error).__name__
        CACHE_DEGRADED.set(1)
        logger.warning(
            "cache unavailable (%s): rate limits count in the database, cached reads go to "
            "the database; retrying every %s s",
            self.reason,
            settings.CACHE_RETRY_SECONDS,
        )

    def _recover(self) -> None:
        with self._lock:
            if self._down_since is None:
                return
            down_for = time.monotonic() - self._down_since
            self._down_since, self.reason = None, ""
        CACHE_DEGRADED.set(0)
        logger.warning("cache available again after %.1f s", down_for)

    def reset(self) -> None:
        """Closed, as at start-up (tests)."""
        with self._lock:
            self._down_since, self._retry_at, self.reason = None, 0.0, ""
        CACHE_DEGRADED.set(0)


BREAKER = CacheBreaker()


class ResilientRedisCache(RedisCache):
    """Django's RedisCache that answers like an empty cache while Redis is unreachable
    (through BREAKER): a read is a miss, a write is dropped. `incr`/`decr` raise
    CacheUnavailable (a counter has no honest default)."""

    def _or(self, fallback, fn, *args, **kwargs):
        try:
            return BREAKER.call(fn, *args, **kwargs)
        except CacheUnavailable:
            CACHE_FALLBACKS.labels("cache").inc()
            return fallback

    def add(self, key, value, timeout=None, version=None):
        return self._or(False, super().add, key, value, timeout, version)

    def get(self, key, default=None, version=None):
        return self._or(default, super().get, key, default, version)

    def set(self, key, value, timeout=None, version=None):
        return self._or(None, super().set, key, value, timeout, version)

    def touch(self, key, timeout=None, version=None):
        return self._or(False, super().touch, key, timeout, version)

    def delete(self, key, version=None):
        return self._or(False, super().delete, key, version)

    def get_many(self, keys, version=None):
        return self._or({}, super().get_many, keys, version)

    def has_key(self, key, version=None):
        return self._or(False, super().has_key, key, version)

    def set_many(self, data, timeout=None, version=None):
        return self._or(list(data), super().set_many, data, timeout, version)

    def delete_many(self, keys, version=None):
        return self._or(None, super().delete_many, keys, version)

    def clear(self):
        return self._or(False, super().clear)

    def incr(self, key, delta=1, version=None):
        return BREAKER.call(super().incr, key, delta, version)

    def decr(self, key, delta=1, version=None):
        return BREAKER.call(super().decr, key, delta, version)
