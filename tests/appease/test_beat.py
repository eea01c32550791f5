"""Every periodic task beat sends can be sent: a task whose soft time limit (the
default, CELERY_TASK_SOFT_TIME_LIMIT) exceeds its own hard limit is refused by Celery
at publish time, and beat would log an error every tick while the task never runs
(bench/soak found eight such tasks, the delivery sweeper among them)."""

from __future__ import annotations

import importlib

import pytest
from django.conf import settings

from appease.celery import app


@pytest.mark.parametrize("entry", sorted(settings.CELERY_BEAT_SCHEDULE))
def test_beat_can_publish_each_periodic_task(entry):
    name = settings.CELERY_BEAT_SCHEDULE[entry]["task"]
    importlib.import_module(name.rsplit(".", 1)[0])  # what the worker's autodiscovery does
    task = app.tasks[name]
    previous = app.conf.broker_url
    app.conf.broker_url = "memory://"
    try:
        with app.connection_for_write() as connection:
            result = task.apply_async(connection=connection)  # raises ValueError if the limits clash
    finally:
        app.conf.broker_url = previous
    assert result.id
    soft = task.soft_time_limit or app.conf.task_soft_time_limit
    hard = task.time_limit or app.conf.task_time_limit
    assert soft <= hard, f"{entry}: soft limit {soft} s above hard limit {hard} s"
