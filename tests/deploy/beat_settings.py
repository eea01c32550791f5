"""The production settings with a short schedule, for test_beat.py's beats: two tasks,
every second and every two seconds (beat only sends them; nothing has to run them)."""

from datetime import timedelta

from appease.settings import *  # noqa: F403

CELERY_BEAT_SCHEDULE = {
    "every-second": {"task": "appease.core.tasks.idempotency_keys_purge_task", "schedule": timedelta(seconds=1)},
    "every-two-seconds": {"task": "appease.core.tasks.sessions_clear_task", "schedule": timedelta(seconds=2)},
}
