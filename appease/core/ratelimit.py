"""Atomic fixed-window counters of failures, for guessing guards.

DRF's throttles count every request and keep a list of timestamps that they read,
change and write back: two concurrent requests can both pass. Guessing guards must
count only *failed* look-ups (a merchant's valid traffic is never limited) and must
hold under concurrency, so the count is an atomic INCR in the shared cache (Redis in
production), and the decision is taken on the value INCR returned. A failure counted
under several identities (API key and IP) increments all its counters in one atomic
step, so concurrent failures are counted in the same order on every counter.
See docs/adr/0003-guessing-guard.md.

While the cache is down or hangs (appease.core.cache's breaker is open) the same counters
are kept in the database (FailureCounter, one upsert per counter): the same limits,
never an unguarded window. See docs/adr/0008-cache-outage.md.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection, transaction
from django.utils import timezone
from prometheus_client import Counter

from appease.core.cache import BREAKER, CACHE_FALLBACKS, CacheUnavailable
from appease.core.models import FailureCounter

FAILED_LOOKUPS = Counter("appease_failed_lookups_total", "Failed code look-ups: possible guessing.")

# Makes a group of increments atomic in a per-process cache (LocMemCache).
_local_group_lock = threading.Lock()


@dataclass(frozen=True)
class FailureLimiter:
    scope: str
    limit: int
    window_seconds: int

    def _window(self, now: float) -> tuple[int, int]:
        index = int(now // self.window_seconds)
        retry_after = math.ceil((index + 1) * self.window_seconds - now)
        return index, max(1, retry_after)

    def _key(self, ident: str, index: int) -> str:
        return f"failures:{self.scope}:{ident}:{index}"

    def blocked(self, idents: list[str]) -> int | None:
        """Seconds to wait if any identity is already at the limit, else None."""
        index, retry_after = self._window(time.time())
        counts = self._read([self._key(ident, index) for ident in idents])
        if any(int(count) >= self.limit for count in counts.values()):
            return retry_after
        return None

    def counted(self, ident: str, *, since: float) -> int:
        """What was counted for `ident` from `since` (a time.time()) until now, over every
        window in between. A window's counter lives one window past its first count, so
        only a span of about one window back is complete."""
        first, _ = self._window(since)
        last, _ = self._window(time.time())
        keys = [self._key(ident, index) for index in range(first, last + 1)]
        return sum(int(count) for count in self._read(keys).values())

    def record_failure(self, idents: list[str]) -> int | None:
        """Count one failure for each identity.

        Returns the seconds to wait when this failure went past the limit for any of
        them: the caller must then answer 429 instead of revealing the failure.
        """
        index, retry_after = self._window(time.time())
        counts = self._incr_all([self._key(ident, index) for ident in idents])
        return retry_after if any(count > self.limit for count in counts) else None

    def _incr_all(self, keys: list[str]) -> list[int]:
        """Add one to every counter in one atomic step.

        Counter by counter is not enough: two racing failures counted in a different
        order on the key's counter and on the IP's could each be the one past the
        limit on one of them, and fewer than `limit` failures would be answered.
        """
        backend = caches[DEFAULT_CACHE_ALIAS]
        if isinstance(backend, RedisCache):
            try:
                return BREAKER.call(self._redis_incr_all, backend, keys)
            except CacheUnavailable:
                CACHE_FALLBACKS.labels("ratelimit").inc()
                return database_incr_all(keys, expires_in=self.window_seconds + 1)
        # LocMemCache lives in this process, so a process lock makes the group atomic
        # (the only other cache the settings configure).
        with _local_group_lock:
            return [self._incr(key) for key in keys]

    def _redis_incr_all(self, backend: RedisCache, keys: list[str]) -> list[int]:
        # MULTI/EXEC: no other client's command runs between ours. SET NX EX then
        # INCR is the add() + incr() below; writes all go to the first server.
        client = backend._cache.get_client(write=True)
        pipe = client.pipeline(transaction=True)
        for key in keys:
            stored_key = backend.make_and_validate_key(key)
            pipe.set(stored_key, 0, ex=self.window_seconds + 1, nx=True)
            pipe.incr(stored_key)
        return [int(count) for count in pipe.execute()[1::2]]

    @staticmethod
    def _read(keys: list[str]) -> dict[str, int]:
        backend = caches[DEFAULT_CACHE_ALIAS]
        if isinstance(backend, RedisCache):
            try:
                # The backend's own get_many, which raises (the configured one answers
                # "nothing counted" while Redis is down: exactly what must not happen here).
                return BREAKER.call(RedisCache.get_many, backend, keys)
            except CacheUnavailable:
                CACHE_FALLBACKS.labels("ratelimit").inc()
                return database_counts(keys)
        return backend.get_many(keys)

    def _incr(self, key: str) -> int:
        # add() is a no-op when the key exists; incr() is atomic (Redis INCR, or
        # LocMemCache's lock). The retry covers the key expiring in between.
        for _attempt in range(3):
            cache.add(key, 0, timeout=self.window_seconds + 1)
            try:
                return cache.incr(key)
            except ValueError:
                continue
        raise RuntimeError(f"could not count failure for {key}")


# --- The database fallback -------------------------------------------------------------


def database_counts(keys: list[str]) -> dict[str, int]:
    rows = FailureCounter.objects.filter(key__in=keys, expires_at__gt=timezone.now())
    return dict(rows.values_list("key", "count"))


@transaction.atomic
def database_incr_all(keys: list[str], *, expires_in: int) -> list[int]:
    """Add one to every counter, creating it, in one transaction; returns the new counts.

    Each upsert locks its row until commit, and every caller takes the rows in the same
    (sorted) order: concurrent groups are counted in one order on every counter, as
    MULTI/EXEC does in Redis, and never deadlock.
    """
    table = connection.ops.quote_name(FailureCounter._meta.db_table)
    expires_at = timezone.now() + timedelta(seconds=expires_in)
    counts: dict[str, int] = {}
    with connection.cursor() as cursor:
        for key in sorted(set(keys)):
            cursor.execute(
                f"INSERT INTO {table} (key, count, expires_at) VALUES (%s, 1, %s) "  # noqa: S608 (our table name)
                f"ON CONFLICT (key) DO UPDATE SET count = {table}.count + 1 RETURNING count",
                [key, expires_at],
            )
            counts[key] = cursor.fetchone()[0]
    return [counts[key] for key in keys]


def failure_counters_purge() -> int:
    """Delete the fallback's counters of windows that are over (beat, hourly)."""
    deleted, _ = FailureCounter.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
