"""Celery beat, safe as a singleton, and its heartbeat (docs/deploy.md, "Beat").

With Redis (production), beat is RedBeat: the schedule and each task's last run are kept
in Redis, and only the beat holding a lock there sends anything. A second beat started
by mistake (two machines, a unit started twice) waits for the lock instead of sending
every task a second time, and takes over when the first stops: at once after a clean
stop (the lock is released), within the lock's timeout (5 × CELERY_BEAT_MAX_LOOP_INTERVAL)
after a crash. Without Redis (the embedded demo) it is Celery's default scheduler, its
state in a file.

Either way, every tick (at least every CELERY_BEAT_MAX_LOOP_INTERVAL seconds) writes a
heartbeat: `/readyz` reports its age and `/metrics` its time (appease/health.py). It is
kept in the shared cache (Redis); without one, in a file beside the demo's schedule.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time

from celery.beat import PersistentScheduler as CeleryPersistentScheduler
from django.conf import settings
from django.core.cache import cache
from redbeat import RedBeatScheduler as CeleryRedBeatScheduler

logger = logging.getLogger(__name__)

HEARTBEAT_KEY = "beat:heartbeat"
HEARTBEAT_FILE = "beat-heartbeat.json"
# Ticks can come every few seconds (a task due every 15 s, another every 30…): one write
# in this many seconds is enough.
HEARTBEAT_EVERY = 5.0


def _shared_cache() -> bool:
    return not settings.CACHES["default"]["BACKEND"].endswith("LocMemCache")


def beat_heartbeat_record(*, at: float | None = None) -> None:
    """This process is beat and it is ticking: when, on which host, which process."""
    beat = {"at": time.time() if at is None else at, "host": socket.gethostname(), "pid": os.getpid()}
    if _shared_cache():
        cache.set(HEARTBEAT_KEY, beat, timeout=None)
        return
    path = settings.VAR_DIR / HEARTBEAT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{HEARTBEAT_FILE}.{os.getpid()}")
    partial.write_text(json.dumps(beat))
    partial.replace(path)  # atomic: a reader never sees half a file


def beat_heartbeat_get() -> dict | None:
    """The last heartbeat ({"at": unix time, "host", "pid"}), or None if beat never ticked."""
    if _shared_cache():
        return cache.get(HEARTBEAT_KEY)
    try:
        return json.loads((settings.VAR_DIR / HEARTBEAT_FILE).read_text())
    except (OSError, ValueError):
        return None


class HeartbeatMixin:
    _heartbeat_at = float("-inf")

    def tick(self, *args, **kwargs):
        interval = super().tick(*args, **kwargs)
        now = time.monotonic()
        if now - self._heartbeat_at >= HEARTBEAT_EVERY:
            try:
                beat_heartbeat_record()
            except Exception:  # the schedule goes on: /readyz will show the heartbeat's age
                logger.warning("beat: could not record its heartbeat", exc_info=True)
            else:
                self._heartbeat_at = now
        return interval


class RedBeatScheduler(HeartbeatMixin, CeleryRedBeatScheduler):
    """RedBeat (a lock in Redis: one beat sends), with the heartbeat."""

    def __init__(self, app, *args, **kwargs):
        # RedBeat reads its settings by their bare names (redbeat_redis_url), not under
        # the CELERY_ prefix our settings give every Celery setting.
        app.conf.update(
            redbeat_redis_url=settings.CELERY_REDBEAT_REDIS_URL,
            redbeat_redis_options=settings.CELERY_REDBEAT_REDIS_OPTIONS,
            redbeat_key_prefix=settings.CELERY_REDBEAT_KEY_PREFIX,
        )
        super().__init__(app, *args, **kwargs)


class PersistentScheduler(HeartbeatMixin, CeleryPersistentScheduler):
    """Celery's default scheduler (a file; the embedded demo), with the heartbeat."""

    lock_key = None  # RedBeat's start-up hook (once imported, it runs for any scheduler) takes no lock
