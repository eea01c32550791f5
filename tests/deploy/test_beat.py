"""Beat: safe as a singleton and watched (appease/beat.py, docs/deploy.md "Beat").

Two beats started by mistake against one Redis, through deploy/entrypoint.sh in production
settings with a short schedule (tests/deploy/beat_settings.py): only the one holding the
lock sends, each task once per period; when it stops the other takes over where it left
off. The heartbeat they write is what /readyz and /metrics report."""

from __future__ import annotations

import itertools
import json
import shutil
import time
from datetime import datetime, timedelta

import pytest
import redis
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from appease.beat import HEARTBEAT_KEY, PersistentScheduler, beat_heartbeat_get, beat_heartbeat_record
from appease.core.tasks import sessions_clear_task
from tests.delivery.channels.conftest import free_port
from tests.delivery.test_faults import RedisServer, wait_until
from tests.deploy.test_entrypoint import START_TIMEOUT, Started, production_env

PERIODS = {"every-second": 1.0, "every-two-seconds": 2.0}


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path  # the demo keeps the heartbeat in a file there
    return tmp_path


# --- What /readyz and /metrics say -----------------------------------------------------


@pytest.mark.django_db
def test_readyz_says_beat_never_ticked_and_stays_ready(client, var_dir):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"]["beat"] == "never" and response.json()["checks"]["beat_age_s"] is None


@pytest.mark.django_db
def test_readyz_reports_the_heartbeats_age(client, var_dir):
    # given beat ticked 7 seconds ago
    beat_heartbeat_record(at=time.time() - 7)

    # when the load balancer (or the operator) asks
    checks = client.get("/readyz").json()["checks"]

    # then
    assert checks["beat"] == "ok" and 7 <= checks["beat_age_s"] <= 60


@pytest.mark.django_db
def test_a_stale_heartbeat_is_said_but_the_web_process_stays_ready(client, var_dir, settings):
    # given beat's last tick is older than BEAT_STALE_SECONDS (beat is down)
    beat_heartbeat_record(at=time.time() - settings.BEAT_STALE_SECONDS - 5)

    response = client.get("/readyz")

    # then it says so, and the web process still takes traffic (beat runs elsewhere)
    assert response.status_code == 200
    assert response.json()["checks"]["beat"] == "stale"
    assert response.json()["checks"]["beat_age_s"] > settings.BEAT_STALE_SECONDS


@pytest.mark.django_db
def test_metrics_expose_when_beat_last_ticked(client, var_dir, settings):
    settings.METRICS_TOKEN = "scrape-token-0123456789"
    at = time.time() - 12
    beat_heartbeat_record(at=at)
    cache.delete("metrics:business")

    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-0123456789")

    families = {family.name: family for family in text_string_to_metric_families(response.content.decode())}
    family = families["appease_beat_heartbeat_timestamp_seconds"]
    assert family.type == "gauge" and family.samples[0].value == pytest.approx(at)


def test_the_demo_scheduler_writes_the_heartbeat_on_every_tick(var_dir, settings, tmp_path):
    # given the embedded default scheduler (no Redis), as `celery beat` makes it
    from appease.celery import app

    scheduler = PersistentScheduler(app=app, schedule_filename=str(tmp_path / "schedule"), lazy=True)
    scheduler.setup_schedule()
    before = time.time()

    # when it ticks
    scheduler.tick()

    # then the heartbeat says now, this process
    heartbeat = beat_heartbeat_get()
    assert heartbeat["at"] >= before and heartbeat["pid"] > 0
    scheduler.close()


# --- Housekeeping ------------------------------------------------------------------------


@pytest.mark.django_db
def test_expired_sessions_are_cleared_by_the_nightly_task(settings):
    # given an expired session and a live one
    expired, live = SessionStore(), SessionStore()
    expired["x"], live["x"] = 1, 2
    expired.set_expiry(1)
    expired.create()
    live.create()
    Session.objects.filter(session_key=expired.session_key).update(expire_date=timezone.now() - timedelta(days=1))

    # when beat's task runs
    sessions_clear_task()

    # then only the expired one is gone
    assert list(Session.objects.values_list("session_key", flat=True)) == [live.session_key]
    assert settings.CELERY_BEAT_SCHEDULE["sessions-clear"]["task"] == "appease.core.tasks.sessions_clear_task"


# --- Two beats at once, for real ---------------------------------------------------------


def sends(process: Started) -> list[tuple[str, datetime]]:
    """(schedule entry, when) for every task this beat sent, from its JSON log lines."""
    found = []
    for line in process.text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        message = entry.get("message", "") if isinstance(entry, dict) else ""
        if message.startswith("Scheduler: Sending due task "):
            name = message.removeprefix("Scheduler: Sending due task ").split(" ", 1)[0]
            found.append((name, datetime.strptime(entry["time"], "%Y-%m-%d %H:%M:%S,%f")))
    return found


def queued(client: redis.Redis) -> list[str]:
    """The task names of the messages waiting in the broker's queue."""
    return [json.loads(raw)["headers"]["task"] for raw in client.lrange("celery", 0, -1)]


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server on PATH (a private Redis)")
def test_two_beats_send_each_task_once_per_period_and_one_takes_over_from_the_other(tmp_path):
    server = RedisServer(port=free_port(), directory=tmp_path)
    server.start()
    env = production_env(
        tmp_path,
        DJANGO_SETTINGS_MODULE="tests.deploy.beat_settings",
        CELERY_BROKER_URL=f"redis://127.0.0.1:{server.port}/0",
        REDIS_URL=f"redis://127.0.0.1:{server.port}/1",
        BEAT_MAX_INTERVAL_SECONDS="1",  # the lock: 5 s; a waiting beat tries every second
    )
    broker = redis.Redis(port=server.port, db=0)
    beats: list[Started] = []
    try:
        # given one beat holding the lock, and a second one started by mistake
        first = Started("beat1", ["beat"], env, tmp_path)
        beats.append(first)
        wait_until(
            lambda: first.assert_running() or "beat: Acquired lock" in first.text(),
            what="beat1's lock",
            timeout=START_TIMEOUT,
            logs=first.text(),
        )
        second = Started("beat2", ["beat"], env, tmp_path)
        beats.append(second)
        wait_until(
            lambda: second.assert_running() or "beat: Starting..." in second.text(),
            what="beat2 to start",
            timeout=START_TIMEOUT,
            logs=second.text(),
        )

        # when several periods pass
        wait_until(
            lambda: queued(broker).count("appease.core.tasks.idempotency_keys_purge_task") >= 8,
            what="eight sends of the every-second task",
            timeout=START_TIMEOUT,
            logs=first.text(),
        )

        # then only the lock holder sent anything, and every message queued is one of its sends
        assert sends(second) == [], second.text()
        sent = sends(first)
        # and each task once per period: never two sends of one entry within its period
        for name, period in PERIODS.items():
            times = [at for entry, at in sent if entry == name]
            assert len(times) >= 2, name
            gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times)]
            assert min(gaps) >= period * 0.9, (name, gaps)
        # and the heartbeat is the lock holder's
        shared = RedisCache(env["REDIS_URL"], {})
        assert shared.get(HEARTBEAT_KEY)["pid"] == first.popen.pid

        # when the lock holder stops (a deploy, a machine going down)
        first_sent = sends(first)
        assert first.terminate() == 0, first.text()

        # then the second takes the lock and carries on the same schedule
        wait_until(
            lambda: second.assert_running() or len(sends(second)) >= 4,
            what="beat2 to take over",
            timeout=START_TIMEOUT,
            logs=second.text(),
        )
        assert "beat: Acquired lock" in second.text()
        wait_until(lambda: shared.get(HEARTBEAT_KEY)["pid"] == second.popen.pid, what="beat2's heartbeat", timeout=30)
        assert second.terminate() == 0, second.text()
        # every message queued was sent by the one beat holding the lock at the time
        assert len(queued(broker)) == len(first_sent) + len(sends(second))
        for name, period in PERIODS.items():
            last_of_first = max(at for entry, at in first_sent if entry == name)
            first_of_second = min(at for entry, at in sends(second) if entry == name)
            assert (first_of_second - last_of_first).total_seconds() >= period * 0.9, name
    finally:
        for process in beats:
            if process.popen.poll() is None:
                process.kill_group()
        broker.close()
        server.stop()
