"""Atomic fixed-window counters of failures, for guessing guards.

DRF's throttles count every request and keep a list of timestamps that they read,
change and write back: two concurrent requests can both pass. Guessing guards must
count only *failed* look-ups (a merchant's valid traffic is never limited) and must
hold under concurrency, so the count is a single atomic INCR in the shared cache
(Redis in production), and the decision is taken on the value INCR returned.
See docs/adr/0003-guessing-guard.md.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.core.cache import cache


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
        counts = cache.get_many([self._key(ident, index) for ident in idents])
        if any(int(count) >= self.limit for count in counts.values()):
            return retry_after
        return None

    def record_failure(self, idents: list[str]) -> int | None:
        """Count one failure for each identity.

        Returns the seconds to wait when this failure went past the limit for any of
        them: the caller must then answer 429 instead of revealing the failure.
        """
        index, retry_after = self._window(time.time())
        over = False
        for ident in idents:
            if self._incr(self._key(ident, index)) > self.limit:
                over = True
        return retry_after if over else None

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
