"""Faults with real processes, no mocks: a Celery worker SIGKILLed mid-send, a broker
that is down or hangs when a rep issues, a provider that fails and recovers while the
task schedules its own retries.

Each test runs its own redis-server on a free port as the broker (never the shared
Redis), real `celery worker` subprocesses on the pytest database, an SMS provider (an
HTTP server in a thread) and an SMTP server (aiosmtpd) in this process. Every process
is stopped in a fixture's teardown, every wait is bounded, and the workers' logs are
printed when a test fails (pytest shows a failing test's captured output).
See docs/delivery.md, "The outbox".
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import TypeVar
from urllib.parse import parse_qs, quote

import kombu.pools
import pytest
import redis
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from appease.celery import app
from appease.delivery.models import Delivery
from appease.delivery.services import deliveries_sweep
from appease.issuance.models import Issuance
from tests.delivery.channels.conftest import free_port
from tests.delivery.test_outbox import SMS_PATH, issue
from tests.factories import customer_create, offer_create, policy_create, reason_create, staff_user

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server on PATH (a private broker)"),
]

ROOT = Path(__file__).resolve().parents[2]
CELERY = Path(sys.executable).parent / "celery"
TIMEOUT = 30  # seconds, for every wait on another process
# seconds: "answers promptly", not "hangs" (a publish gives up after ~0.2 s refused, ~2.2 s
# hung; without the socket timeout it hangs until the silent broker's watchdog, 6 × this)
PROMPT = 10


def wait_until(condition: Callable[[], object], *, what: str, timeout: float = TIMEOUT, logs: str = ""):
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{logs}")
        time.sleep(0.05)


# --- The broker: a private redis-server -------------------------------------------------


@dataclass
class RedisServer:
    port: int
    directory: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.directory / f"redis-{self.port}.log").open("ab")
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--daemonize", "no", "--dir", str(self.directory)]
        self.process = subprocess.Popen(  # noqa: S603 (a fixed command)
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)

        def answers() -> bool:
            assert self.process.poll() is None, "redis-server exited"
            try:
                return client.ping()
            except redis.RedisError:
                return False

        wait_until(answers, what=f"redis-server on port {self.port}")
        client.close()

    def stop(self) -> None:
        stop(self.process)
        self.process = None


def stop(process: subprocess.Popen | None, *, grace: float = 10) -> None:
    """SIGTERM the process group, SIGKILL it if it is still there after `grace` seconds."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextmanager
def publishing_to(url: str) -> Iterator[None]:
    """This process's Celery app publishes to `url` (its connection pools are dropped
    on the way in and out, so nothing pooled for one broker is used for the other)."""
    if "socket_timeout" not in (app.conf.broker_transport_options or {}):
        pytest.skip("the broker settings are not the Redis ones (CELERY_BROKER_URL is not redis://)")

    def switch(to: str, environ: str | None) -> None:
        kombu.pools.reset()
        # Celery reads CELERY_BROKER_URL from the environment before its configuration.
        if environ is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = environ
        app.conf.broker_url = to
        app._pool = None
        app.amqp._producer_pool = None

    saved = app.conf.broker_url, os.environ.get("CELERY_BROKER_URL")
    switch(url, url)
    try:
        yield
    finally:
        switch(*saved)


@pytest.fixture
def broker(tmp_path) -> Iterator[RedisServer]:
    """A private Redis as the broker of this process and of the workers; not started:
    each test starts it when it wants it up."""
    server = RedisServer(port=free_port(), directory=tmp_path)
    try:
        with publishing_to(server.url):
            yield server
    finally:
        server.stop()


# --- Workers: real `celery worker` processes ---------------------------------------------


def database_url() -> str:
    """The pytest database (test_<name>), as a URL for another process."""
    db = settings.DATABASES["default"]
    credentials = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = quote(db.get("HOST") or "", safe="")  # a socket directory is percent-encoded
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{credentials}@{host}{port}/{quote(db['NAME'], safe='')}"


@dataclass
class Worker:
    process: subprocess.Popen
    log: Path

    def logs(self) -> str:
        return f"--- {self.log.name} ---\n{self.log.read_text(errors='replace')}"

    def wait_ready(self) -> None:
        def ready() -> bool:
            assert self.process.poll() is None, f"the worker exited with {self.process.returncode}\n{self.logs()}"
            return " ready." in self.log.read_text(errors="replace")

        wait_until(ready, what="the worker to be ready", logs=self.logs())

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, no ack, no clean-up of any kind."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@dataclass
class Workers:
    directory: Path
    broker_url: str
    started: list[Worker] = field(default_factory=list)
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def environment(self, extra: dict[str, str]) -> dict[str, str]:
        """Only what the worker needs: this process's keys (so it decrypts the codes this
        process stored), the pytest database, the private broker, no shared Redis."""
        env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR") if key in os.environ}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "appease.settings",
                "DEBUG": "1",
                "SECRET_KEY": settings.SECRET_KEY,
                "CODE_HASH_KEY": settings.CODE_HASH_KEY,
                "CODE_ENCRYPTION_KEYS": ",".join(settings.CODE_ENCRYPTION_KEYS),
                "DATABASE_URL": database_url(),
                "CELERY_BROKER_URL": self.broker_url,
                "REDIS_URL": "",  # an in-process cache: the shared Redis is not touched
                "APPEASE_VAR_DIR": str(self.directory / "var"),
                "LOG_LEVEL": "INFO",
                **extra,
            }
        )
        return env

    def start(self, **extra: str) -> Worker:
        name = f"fault{next(self._names)}"
        log = self.directory / f"worker-{name}.log"
        command = [str(CELERY), "-A", "appease", "worker", "--pool=solo", "--concurrency=1", "--without-gossip"]
        command += ["--without-mingle", "--without-heartbeat", "-Q", "celery", "--loglevel=INFO", f"-n={name}@%h"]
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603 (a fixed command; only the environment varies)
                command,
                cwd=ROOT,
                env=self.environment(extra),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killed as one
            )
        worker = Worker(process, log)
        self.started.append(worker)
        worker.wait_ready()
        return worker

    def logs(self) -> str:
        return "\n".join(worker.logs() for worker in self.started)

    def stop_all(self) -> None:
        for worker in self.started:
            stop(worker.process)
        # Shown by pytest only when the test failed.
        print(self.logs())


@pytest.fixture
def workers(transactional_db, tmp_path, broker) -> Iterator[Workers]:
    """Starts workers on request; all are stopped before the database is flushed."""
    pool = Workers(directory=tmp_path, broker_url=broker.url)
    try:
        yield pool
    finally:
        pool.stop_all()


def wait_for_status(delivery: Delivery, statuses: set[str], workers: Workers) -> Delivery:
    def reached() -> bool:
        delivery.refresh_from_db()
        return delivery.status in statuses

    wait_until(reached, what=f"delivery {delivery.pk} to be {statuses}", logs=workers.logs())
    return delivery


# --- An SMS provider: Twilio's Messages API, deduplicating on the idempotency token ----


@dataclass
class ProviderRequest:
    at: float  # time.monotonic()
    key: str  # I-Twilio-Idempotency-Token
    form: dict[str, list[str]]


class SmsProvider(ThreadingHTTPServer):
    """Answers POST {SMS_PATH} with the statuses in `script`, then 201 `{"sid": ...}`.

    Deduplicates like a provider that honours the idempotency token: a request whose
    token already made a message gets that message's sid back, and no new message.
    With `hold_first`, the first request is read in full (the provider has it) and its
    answer held until `release` is set or `hold_first` seconds pass.
    """

    daemon_threads = True

    def __init__(self, *, script: list[int] | None = None, hold_first: float = 0) -> None:
        super().__init__(("127.0.0.1", 0), _SmsHandler)
        self.script = list(script or [])
        self.hold_first = hold_first
        self.requests: list[ProviderRequest] = []
        self.messages: dict[str, str] = {}  # token -> sid: what the provider would send
        self.first_received = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def settings_env(self) -> dict[str, str]:
        return {
            "SMS_BASE_URL": self.url,
            "SMS_ACCOUNT_SID": "AC123",
            "SMS_AUTH_TOKEN": "token",
            "SMS_FROM": "+15550000000",
            "SMS_TIMEOUT": "5",
        }

    def handle_error(self, request, client_address) -> None:
        pass  # the held answer to a killed worker goes nowhere: expected


class _SmsHandler(BaseHTTPRequestHandler):
    server: SmsProvider

    def do_POST(self) -> None:
        provider = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != SMS_PATH:
            return self._answer(404, {"code": 20404})
        key = self.headers.get("I-Twilio-Idempotency-Token", "")
        with provider.lock:
            provider.requests.append(ProviderRequest(time.monotonic(), key, parse_qs(body.decode())))
            first = len(provider.requests) == 1
            status = provider.script.pop(0) if provider.script else 201
            if status < 300:
                sid = provider.messages.setdefault(key, f"SM{len(provider.messages) + 1:032d}")
        if first and provider.hold_first:
            provider.first_received.set()
            provider.release.wait(provider.hold_first)
        if status < 300:
            self._answer(status, {"sid": sid, "status": "queued"})
        else:
            self._answer(status, {"code": 20500, "message": "Internal Server Error"})

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args) -> None:
        pass


Server = TypeVar("Server", bound=ThreadingHTTPServer)


@contextmanager
def serving(provider: Server) -> Iterator[Server]:
    """A local HTTP server with a `release` event (a held answer) on a thread, for the
    block; shut down after it (the SMS provider here, the webhook receiver elsewhere)."""
    thread = threading.Thread(target=provider.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        provider.release.set()
        provider.shutdown()
        provider.server_close()
        thread.join(timeout=10)


def smtp_env(smtp_server) -> dict[str, str]:
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": smtp_server.host,
        "EMAIL_PORT": str(smtp_server.port),
        "EMAIL_TIMEOUT": "5",
        "DEFAULT_FROM_EMAIL": "Appease <no-reply@appease.example>",
    }


# --- 1. A worker killed mid-send ----------------------------------------------------------


def sweep_until(condition: Callable[[], object], *, what: str, workers: Workers, timeout: float = 120):
    """Poll `condition` while sweeping every DELIVERY_SWEEP_EVERY, as beat does."""
    every = settings.DELIVERY_SWEEP_EVERY.total_seconds()
    last = {"swept": time.monotonic()}

    def swept_and_checked():
        if time.monotonic() - last["swept"] >= every:
            deliveries_sweep()
            last["swept"] = time.monotonic()
        return condition()

    return wait_until(swept_and_checked, what=what, timeout=timeout, logs=workers.logs())


def test_a_worker_killed_mid_send_is_reclaimed_by_the_sweeper_and_the_provider_makes_one_message(broker, workers):
    """The provider has the first request when the worker dies: the outbox cannot know
    whether it was sent, so it sends again with the same idempotency token. Two requests
    reach the provider; one that honours the token makes one message. With the default
    lease and sweep period; the time to redelivery is printed (not asserted: it depends
    on where in the heartbeat the kill falls, and on the machine)."""
    with serving(SmsProvider(hold_first=10)) as provider:
        # given: a worker with the default lease (no override), and an SMS delivery it picks up
        broker.start()
        env = provider.settings_env()
        worker = workers.start(**env)
        delivery = issue(channel="sms").deliveries.get()
        # when: the provider has the request and the worker is SIGKILLed before it answers
        assert provider.first_received.wait(TIMEOUT), f"the provider got nothing\n{workers.logs()}"
        worker.kill()
        killed_at = time.monotonic()
        provider.release.set()
        # then: the row is stuck in `sending` under the dead worker's lease
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == (Delivery.Status.SENDING, 1)
        # when: a worker is back (the broker still holds the killed worker's unacked
        # message, but only hands it out again after its visibility timeout, an hour),
        # and beat's sweeper runs every DELIVERY_SWEEP_EVERY
        workers.start(**env)

        def sent() -> bool:
            delivery.refresh_from_db()
            return delivery.status == Delivery.Status.SENT

        # then: the lease runs out (nobody renews it), the sweeper reclaims the row, and
        # the live worker sends it
        sweep_until(sent, what="the delivery to be sent again", workers=workers)
        print(
            f"\nredelivered {time.monotonic() - killed_at:.1f} s after the kill "
            f"(lease {settings.DELIVERY_LEASE.total_seconds():g} s, renewed every "
            f"{settings.DELIVERY_LEASE_RENEW_EVERY.total_seconds():g} s; sweep every "
            f"{settings.DELIVERY_SWEEP_EVERY.total_seconds():g} s; 133-134 s with the old 120 s lease)"
        )
        key = f"delivery-{delivery.pk}"
        assert [request.key for request in provider.requests] == [key, key]  # two HTTP requests...
        assert provider.messages == {key: delivery.provider_message_id}  # ...one message
        assert delivery.attempts == 2
        # The killed attempt left no outcome to log; the counter still counts it.
        assert list(delivery.attempt_log.values_list("number", "outcome", "status_code")) == [(2, "sent", 201)]
        assert Issuance.objects.get(pk=delivery.issuance_id).status == Issuance.Status.DELIVERED


def test_a_send_slower_than_its_lease_keeps_it_by_heartbeat_and_is_sent_once(broker, workers):
    """The lease is short (2 s) and the provider holds the answer well past it: the
    worker renews the lease while it waits, the sweeper (running all along) never takes
    the row, and the provider gets one request."""
    with serving(SmsProvider(hold_first=TIMEOUT)) as provider:
        broker.start()
        workers.start(**{**provider.settings_env(), "SMS_TIMEOUT": "60", "DELIVERY_LEASE_SECONDS": "2"})
        delivery = issue(channel="sms").deliveries.get()
        assert provider.first_received.wait(TIMEOUT), f"the provider got nothing\n{workers.logs()}"
        delivery.refresh_from_db()
        first_lease_end = delivery.lease_expires_at
        # when: well past the first lease, with sweeps all along
        leases = set()

        def renewed_past_the_first_lease() -> bool:
            deliveries_sweep(grace=timedelta(0))
            delivery.refresh_from_db()
            assert delivery.status == Delivery.Status.SENDING, "the sweeper took a row whose worker is alive"
            leases.add(delivery.lease_expires_at)
            return timezone.now() > first_lease_end + timedelta(seconds=2) and len(leases) >= 3

        wait_until(renewed_past_the_first_lease, what="the lease to be renewed", logs=workers.logs())
        provider.release.set()
        # then
        delivery = wait_for_status(delivery, {Delivery.Status.SENT}, workers)
        assert len(provider.requests) == 1
        assert delivery.attempts == 1
        assert list(delivery.attempt_log.values_list("number", "outcome")) == [(1, "sent")]


# --- 2. The broker is down (or hangs) when a rep issues -----------------------------------

ISSUANCES = "/api/v1/issuances"


@pytest.fixture
def rep_and_body():
    csr = staff_user(policy=policy_create(day_cost_amount=Decimal("100.00")))
    offer = offer_create(value_amount=Decimal("5.00"), cost_amount=Decimal("3.00"))
    reason_create("late-parcel")
    client = APIClient()
    client.force_login(csr)

    def body() -> dict:
        return {"customer_id": customer_create().pk, "offer_id": offer.pk, "reason_code": "late-parcel", "note": "late"}

    return client, body


def timed_issue(client: APIClient, body: dict):
    started = time.monotonic()
    response = client.post(ISSUANCES, body, format="json")
    return response, time.monotonic() - started


def test_issuing_while_the_broker_is_down_answers_at_once_and_the_sweeper_sends_it_later(
    broker, workers, rep_and_body, smtp_server
):
    client, body = rep_and_body
    # given: nothing listens on the broker's port
    # when
    response, elapsed = timed_issue(client, body())
    # then: the rep gets the issuance at once; the delivery waits in the database
    assert response.status_code == 201, response.json()
    assert elapsed < PROMPT, f"the API took {elapsed:.1f} s with the broker down"
    delivery = Delivery.objects.get(issuance_id=response.json()["id"])
    assert (delivery.status, delivery.attempts) == (Delivery.Status.PENDING, 0)
    # when: the broker is back, with a worker, and the sweeper runs (a beat would)
    broker.start()
    workers.start(**smtp_env(smtp_server))
    assert deliveries_sweep(grace=timedelta(0)) == 1
    # and this process publishes again without being restarted
    response, elapsed = timed_issue(client, body())
    assert response.status_code == 201, response.json()
    later = Delivery.objects.get(issuance_id=response.json()["id"])
    # then: both are sent, each once
    wait_for_status(delivery, {Delivery.Status.SENT}, workers)
    wait_for_status(later, {Delivery.Status.SENT}, workers)
    message_ids = sorted(message["Message-ID"] for message in smtp_server.handler.messages)
    assert message_ids == sorted(f"<delivery-{pk}@appease>" for pk in (delivery.pk, later.pk))


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel's backlog) but never answers:
    a Redis that hangs (stopped with SIGSTOP, stuck on a disk, behind a broken proxy)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        # Bounded even if the publish has no timeout: closing the listener resets the
        # connections waiting in its backlog, so a hung request ends (late, and fails).
        watchdog = threading.Timer(PROMPT * 6, listener.close)
        watchdog.start()
        try:
            yield listener.getsockname()[1]
        finally:
            watchdog.cancel()


def test_issuing_while_the_broker_hangs_answers_promptly_and_keeps_the_delivery(rep_and_body, silent_port):
    client, body = rep_and_body
    # given: a broker that takes connections and never answers
    with publishing_to(f"redis://127.0.0.1:{silent_port}/0"):
        # when
        response, elapsed = timed_issue(client, body())
    # then: the publish timed out (socket_timeout) instead of holding the request forever
    assert response.status_code == 201, response.json()
    assert elapsed < PROMPT, f"the API took {elapsed:.1f} s with the broker hanging"
    delivery = Delivery.objects.get(issuance_id=response.json()["id"])
    assert delivery.status == Delivery.Status.PENDING


# --- 3. The provider fails three times, then accepts: the task schedules the retries ---


def test_provider_500_three_times_then_201_is_retried_by_the_task_itself(broker, workers):
    with serving(SmsProvider(script=[500, 500, 500])) as provider:
        # given: backoff 0.5-1 s, 1-2 s, 2-4 s; no sweeper and no beat run in this test,
        # so only the task's own apply_async(countdown=...) can send the retries
        broker.start()
        workers.start(**provider.settings_env(), DELIVERY_BACKOFF_BASE_SECONDS="1")
        # when
        delivery = issue(channel="sms").deliveries.get()
        # then
        delivery = wait_for_status(delivery, {Delivery.Status.SENT, Delivery.Status.DEAD}, workers)
        assert (delivery.status, delivery.attempts) == (Delivery.Status.SENT, 4)
        attempts = list(delivery.attempt_log.values_list("number", "outcome", "status_code"))
        assert attempts == [(1, "transient", 500), (2, "transient", 500), (3, "transient", 500), (4, "sent", 201)]
        key = f"delivery-{delivery.pk}"
        assert [request.key for request in provider.requests] == [key] * 4
        assert provider.messages == {key: delivery.provider_message_id}
        # each retry waited at least the lower bound of its backoff (base * 2**(n-1) / 2)
        gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(provider.requests)]
        assert all(gap >= minimum * 0.95 for gap, minimum in zip(gaps, [0.5, 1, 2], strict=True)), gaps


# --- 4. The same task delivered to two worker processes at once --------------------------


def test_the_same_task_in_two_worker_processes_at_once_sends_once(broker, workers):
    from appease.delivery.tasks import delivery_send_task

    with serving(SmsProvider(hold_first=1)) as provider:
        # given: two workers, and a delivery whose own enqueue is held back
        broker.start()
        for _ in range(2):
            workers.start(**provider.settings_env())
        with publishing_to("memory://"):  # the on-commit enqueue goes nowhere
            delivery = issue(channel="sms").deliveries.get()
        # when: the same message reaches both workers (the first holds it for a second
        # at the provider, so the second runs while the first is mid-send)
        for _ in range(2):
            delivery_send_task.delay(str(delivery.pk))
        # then
        delivery = wait_for_status(delivery, {Delivery.Status.SENT}, workers)
        wait_until(
            lambda: sum(" succeeded in " in worker.log.read_text() for worker in workers.started) == 2,
            what="both workers to finish the task",
            logs=workers.logs(),
        )
        assert len(provider.requests) == 1
        assert delivery.attempts == 1
        outcomes = sorted(
            line.rsplit(": ", 1)[1].strip("'")
            for worker in workers.started
            for line in worker.log.read_text().splitlines()
            if " succeeded in " in line
        )
        assert outcomes == ["not_due", "sent"]


# --- 5. An SMTP outage longer than the old retry horizon -------------------------------------

# The default schedule (2 s base, steps capped at 300 s, a 30-minute horizon) shrunk ten
# times, same proportions and logic: 0.2 s base, 30 s cap, 3-minute horizon. The old
# schedule (6 attempts) gave up after its 6th attempt; scaled, 3.1-6.2 s.
SHRUNK = {
    "DELIVERY_BACKOFF_BASE_SECONDS": "0.2",
    "DELIVERY_BACKOFF_MAX_SECONDS": "30",
    "DELIVERY_RETRY_HORIZON_SECONDS": "180",
}
OLD_ATTEMPTS = 6


def test_an_smtp_outage_longer_than_the_old_horizon_dead_letters_nothing_and_each_is_sent_once(broker, workers):
    from aiosmtpd.controller import Controller

    from tests.delivery.channels.conftest import RecordingHandler

    handler = RecordingHandler()
    port = free_port()
    smtp = Controller(handler, hostname="127.0.0.1", port=port)
    smtp.start()
    env = {**smtp_env(SimpleNamespace(host="127.0.0.1", port=port)), **SHRUNK}
    try:
        # given: a worker on the shrunk schedule, and a delivery that goes through
        broker.start()
        workers.start(**env)
        first = issue(channel="email").deliveries.get()
        wait_for_status(first, {Delivery.Status.SENT}, workers)
        # when: the SMTP server stops, and five appeasements are given meanwhile
        smtp.stop()
        stopped_at = time.monotonic()
        deliveries = [issue(channel="email").deliveries.get() for _ in range(5)]

        def failed(delivery: Delivery) -> int:
            return delivery.attempt_log.filter(outcome="transient").count()

        # and it stays down until every one has failed more often than the old schedule
        # allowed (it would have made each of them dead)
        sweep_until(
            lambda: all(failed(delivery) >= OLD_ATTEMPTS for delivery in deliveries),
            what=f"{OLD_ATTEMPTS} failed attempts each",
            workers=workers,
        )
        assert not Delivery.objects.filter(status=Delivery.Status.DEAD).exists()
        smtp = Controller(handler, hostname="127.0.0.1", port=port)
        smtp.start()
        returned_at = time.monotonic()

        # then: every one is sent after it returns
        def all_sent() -> bool:
            return Delivery.objects.filter(pk__in=[d.pk for d in deliveries], status=Delivery.Status.SENT).count() == 5

        sweep_until(all_sent, what="every delivery to be sent", workers=workers)
        print(
            f"\nSMTP down {returned_at - stopped_at:.1f} s (the old horizon, shrunk alike: 3.1-6.2 s); "
            f"all sent {time.monotonic() - returned_at:.1f} s after it returned"
        )
        # exactly once each, by Message-ID, and nothing dead
        received = Counter(message["Message-ID"] for message in handler.messages)
        assert received == Counter(f"<delivery-{pk}@appease>" for pk in [first.pk, *(d.pk for d in deliveries)])
        for delivery in deliveries:
            delivery.refresh_from_db()
            assert delivery.attempts > OLD_ATTEMPTS
            outcomes = list(delivery.attempt_log.values_list("outcome", flat=True))
            assert outcomes == ["transient"] * (delivery.attempts - 1) + ["sent"]
        assert not Delivery.objects.filter(status=Delivery.Status.DEAD).exists()
    finally:
        with contextlib.suppress(Exception):
            smtp.stop()


# --- 6. A delivery that kills its worker every time ----------------------------------------


def test_a_delivery_whose_worker_is_lost_on_every_attempt_ends_dead(settings):
    # given: the last allowed attempt was claimed, and its worker died too (no process
    # here: the row is what a killed worker leaves behind)
    settings.DELIVERY_MAX_ATTEMPTS = 3
    delivery = issue(channel="sms").deliveries.get()
    expired = timezone.now() - timedelta(seconds=1)
    Delivery.objects.filter(pk=delivery.pk).update(status="sending", attempts=3, lease_expires_at=expired)
    # when
    assert deliveries_sweep() == 0
    # then: a dead letter for the rep to resend, not a row reclaimed forever
    delivery.refresh_from_db()
    assert (delivery.status, delivery.failure_reason, delivery.lease_expires_at) == ("dead", "exhausted", None)
    assert Issuance.objects.get(pk=delivery.issuance_id).status == Issuance.Status.FAILED
