"""Scale-out with real processes: two web processes, two Celery workers and one beat on
one PostgreSQL database and one broker, as the Procfile runs them, in production
settings, with traffic across both web processes and a worker SIGKILLed mid-send.

- Web: two `gunicorn --config deploy/gunicorn.conf.py` (2 workers, 2 threads each),
  each on its own free port. Worker: two `celery worker -Ofair` (concurrency 2); beat:
  `celery beat` with the production schedule (the delivery sweeper every half lease),
  each started by `deploy/entrypoint.sh` as every deployment starts them. All on the pytest
  database, a private redis-server as broker (db 0) and shared cache (db 1), with DEBUG
  off: fresh secrets (this process uses the same code keys, to read the codes),
  SECURE_SSL_REDIRECT on, and every request sent as the TLS-terminating proxy would
  forward it (`X-Forwarded-Proto: https`).
- Email goes to an aiosmtpd sink in this process. Each worker sends through its own
  port of the sink (two relays, one mailbox), so the test knows which worker a message
  came from; every message is held a moment before the 250, so sends are in flight.
- Traffic: 60 issuances with their own Idempotency-Keys (alternating web processes,
  some sent twice at once, some retried later through the other process), and for each
  code issued a redemption through the other process: some three times at once under
  different keys (other orders trying the same code), every one replayed.
- Worker 1 is SIGKILLed (not SIGTERM: no warm shutdown) while the sink holds one of its
  messages. Only beat's sweeper brings its deliveries back, with the production lease
  (DELIVERY_LEASE, renewed by a heartbeat while a send runs) and sweep period; the time
  it takes is printed, not asserted.

Then: every issuance delivered exactly once by Message-ID (what a receiver deduplicates
on; a second copy, with the same Message-ID, only of a delivery the sweeper reclaimed),
no code redeemed twice, every retry, twin and replay answered as the first time. See
docs/deploy.md, docs/delivery.md ("The outbox"), docs/adr/0001, 0004 and 0006.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from secrets import token_urlsafe
from urllib.parse import quote

import httpx
import pytest
from aiosmtpd.controller import Controller
from cryptography.fernet import Fernet
from django.conf import settings
from django.db import connection

from appease.core.models import IdempotencyKey, StaffAPIKey
from appease.delivery.models import Delivery
from appease.issuance.models import Issuance
from coupons import codes
from coupons.models import Code, Redemption
from tests.delivery.channels.conftest import free_port
from tests.delivery.test_faults import RedisServer, publishing_to, wait_until
from tests.factories import customer_create, merchant_with_key, offer_create, policy_create, reason_create, staff_user

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server on PATH (a private broker)"),
]

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
BIN = Path(sys.executable).parent
START_TIMEOUT = 60  # seconds, for a process to answer or be ready
DELIVERED_WITHIN = 90  # seconds after the kill, for every delivery to be sent
ISSUANCES = 60
CUSTOMERS = 10
HOLD = 0.1  # seconds the sink holds every message before its 250
TRAP_NTH = 3  # the sink holds worker 1's third message until worker 1 is dead
REASON = "late-parcel"
# What the TLS-terminating proxy adds; without it production settings redirect to https.
PROXIED = {"X-Forwarded-Proto": "https"}


# --- The SMTP sink: one mailbox, one port per worker ---------------------------------------


@dataclass
class Reception:
    port: int
    message_id: str
    to: tuple[str, ...]
    text: str
    acknowledged: bool = False  # the sink answered 250
    abandoned: bool = False  # the client was gone before the sink answered


class Mailbox:
    """Every message the sink received, in order. `trap_port`'s `trap_nth` message is
    held (no answer) until `release` is set: a send that is certainly in flight."""

    def __init__(self, *, hold: float, trap_port: int, trap_nth: int) -> None:
        self.hold = hold
        self.trap_port = trap_port
        self.trap_nth = trap_nth
        self.receptions: list[Reception] = []
        self.trapped: Reception | None = None
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._on_trap_port = 0

    def record(self, reception: Reception) -> bool:
        """Keep `reception`; True if it is the one to hold until released."""
        with self._lock:
            self.receptions.append(reception)
            if reception.port != self.trap_port:
                return False
            self._on_trap_port += 1
            if self._on_trap_port != self.trap_nth:
                return False
            self.trapped = reception
            return True

    def snapshot(self) -> list[Reception]:
        with self._lock:
            return list(self.receptions)


class SinkHandler:
    def __init__(self, mailbox: Mailbox, port: int) -> None:
        self.mailbox = mailbox
        self.port = port

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        reception = Reception(
            port=self.port,
            message_id=str(message["Message-ID"]),
            to=tuple(envelope.rcpt_tos),
            text=body.get_content() if body is not None else "",
        )
        trapped = self.mailbox.record(reception)
        try:
            if trapped:
                deadline = time.monotonic() + START_TIMEOUT
                while not self.mailbox.release.is_set() and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
            else:
                await asyncio.sleep(self.mailbox.hold)
        except asyncio.CancelledError:
            # aiosmtpd cancels the session when the client's connection drops.
            reception.abandoned = True
            raise
        reception.acknowledged = True
        return "250 2.0.0 queued"


# --- Processes --------------------------------------------------------------------------


def database_url() -> str:
    """The pytest database (test_<name>) as a URL for the other processes."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = quote(db.get("HOST") or "", safe="")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{credentials}@{host}{port}/{quote(db['NAME'], safe='')}"


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path

    def logs(self) -> str:
        return f"--- {self.name} (exit {self.popen.poll()}) ---\n{self.log.read_text(errors='replace')[-20_000:]}"

    def assert_running(self) -> None:
        assert self.popen.poll() is None, f"{self.name} exited with {self.popen.returncode}\n{self.logs()}"

    def posts_served(self, path: str) -> int:
        """POSTs to `path` this web process answered (gunicorn's JSON access log)."""
        served = 0
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:  # a line not from the JSON formatter (a crash's traceback)
                continue
            if isinstance(entry, dict) and entry.get("logger") == "gunicorn.access":
                served += entry.get("method") == "POST" and entry.get("path") == path
        return served

    def kill(self) -> None:
        """SIGKILL the whole process group: the main process and its children."""
        os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)


@dataclass
class Cluster:
    directory: Path
    broker_port: int
    secret_key: str = field(default_factory=lambda: token_urlsafe(50))
    started: list[Process] = field(default_factory=list)
    # Run in each child before exec (a subclass may ask the kernel to stop it with us).
    preexec = None

    def environment(self, extra: dict[str, str]) -> dict[str, str]:
        env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR") if key in os.environ}
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"  # the entrypoint's celery
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "appease.settings",
                "DEBUG": "0",  # production settings: no demo secrets, https only
                "ALLOWED_HOSTS": "127.0.0.1",
                "SECRET_KEY": self.secret_key,
                # This process's keys (fresh, see `deployment`): it reads the codes too.
                "CODE_HASH_KEY": settings.CODE_HASH_KEY,
                "CODE_ENCRYPTION_KEYS": ",".join(settings.CODE_ENCRYPTION_KEYS),
                "DATABASE_URL": database_url(),
                "CELERY_BROKER_URL": f"redis://127.0.0.1:{self.broker_port}/0",
                "REDIS_URL": f"redis://127.0.0.1:{self.broker_port}/1",  # one cache for every process
                "APPEASE_VAR_DIR": str(self.directory / "var"),
                "LOG_LEVEL": "INFO",
                **extra,
            }
        )
        return env

    def spawn(self, name: str, command: list[str], extra: dict[str, str]) -> Process:
        log = self.directory / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(  # noqa: S603 (fixed commands; only the environment varies)
                command,
                cwd=ROOT,
                env=self.environment(extra),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped or killed as one
                preexec_fn=self.preexec,
            )
        process = Process(name, popen, log)
        self.started.append(process)
        return process

    def web(self, name: str) -> tuple[Process, str]:
        """`deploy/entrypoint.sh web`: gunicorn with deploy/gunicorn.conf.py."""
        port = free_port()
        command = [str(ENTRYPOINT), "web"]
        # JSON lines (as in production): the access log is counted per path.
        extra = {"BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2", "WEB_THREADS": "2", "LOG_FORMAT": "json"}
        return self.spawn(name, command, extra), f"http://127.0.0.1:{port}"

    def worker(self, name: str, *, smtp_port: int) -> Process:
        """`deploy/entrypoint.sh worker`, sending email through `smtp_port`."""
        command = [str(ENTRYPOINT), "worker", f"--hostname={name}@%h"]
        extra = {
            "WORKER_CONCURRENCY": "2",
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(smtp_port),
            "EMAIL_TIMEOUT": "10",
            "DEFAULT_FROM_EMAIL": "Appease <no-reply@appease.example>",
        }
        return self.spawn(name, command, extra)

    def beat(self, name: str) -> Process:
        """`deploy/entrypoint.sh beat`: the production schedule (RedBeat, in this run's Redis)."""
        return self.spawn(name, [str(ENTRYPOINT), "beat"], {})

    def wait_web(self, process: Process, url: str) -> None:
        def ready() -> bool:
            process.assert_running()
            try:
                return httpx.get(f"{url}/readyz", headers=PROXIED, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, what=f"{process.name} to answer /readyz", timeout=START_TIMEOUT, logs=process.logs())

    def wait_worker(self, process: Process) -> None:
        def ready() -> bool:
            process.assert_running()
            return " ready." in process.log.read_text(errors="replace")

        wait_until(ready, what=f"{process.name} to be ready", timeout=START_TIMEOUT, logs=process.logs())

    def wait_beat(self, process: Process) -> None:
        def ready() -> bool:
            process.assert_running()
            return "beat: Starting..." in process.log.read_text(errors="replace")

        wait_until(ready, what=f"{process.name} to be ready", timeout=START_TIMEOUT, logs=process.logs())

    def logs(self) -> str:
        return "\n".join(process.logs() for process in self.started)

    def stop_all(self, *, grace: float = 15) -> None:
        """SIGTERM every process group at once (gunicorn's graceful stop, Celery's warm
        shutdown), then SIGKILL whatever is still there after `grace` seconds."""
        running = [process for process in self.started if process.popen.poll() is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            if process.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.popen.pid, signal.SIGKILL)
                process.popen.wait(timeout=10)


@dataclass
class Deployment:
    cluster: Cluster
    webs: list[str]  # base URLs
    web_processes: list[Process]
    workers: list[Process]
    beat: Process
    mailbox: Mailbox


@pytest.fixture
def deployment(transactional_db, tmp_path, settings):
    """Two web processes, two workers, one beat, a private broker and the SMTP sink;
    every process stopped (its whole group) before the database is flushed."""
    # DEBUG off refuses the demo keys: fresh ones, shared by this process (which reads
    # the codes the web processes store) and every process it starts.
    settings.CODE_HASH_KEY = token_urlsafe(32)
    settings.CODE_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    broker = RedisServer(port=free_port(), directory=tmp_path)
    cluster = Cluster(directory=tmp_path, broker_port=broker.port)
    smtp_ports = [free_port(), free_port()]
    mailbox = Mailbox(hold=HOLD, trap_port=smtp_ports[0], trap_nth=TRAP_NTH)
    controllers: list[Controller] = []
    try:
        broker.start()
        for port in smtp_ports:
            controller = Controller(SinkHandler(mailbox, port), hostname="127.0.0.1", port=port)
            controller.start()
            controllers.append(controller)
        with publishing_to(broker.url):  # this process's sweeper publishes there too
            webs = [cluster.web(f"web{n}") for n in (1, 2)]
            workers = [cluster.worker(f"worker{n}", smtp_port=port) for n, port in enumerate(smtp_ports, start=1)]
            for process, url in webs:
                cluster.wait_web(process, url)
            for process in workers:
                cluster.wait_worker(process)
            beat = cluster.beat("beat")
            cluster.wait_beat(beat)
            yield Deployment(
                cluster, [url for _, url in webs], [process for process, _ in webs], workers, beat, mailbox
            )
    finally:
        mailbox.release.set()
        try:
            cluster.stop_all()
        finally:
            for controller in controllers:
                controller.stop()
            broker.stop()
            print(cluster.logs())  # shown by pytest only when the test failed


# --- Traffic ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    web: int
    key: str
    sent: dict
    status: int
    body: dict
    replayed: bool


@dataclass
class Story:
    """What one issuance's client saw, from the issue to the last redemption replay."""

    key: str
    first: list[Answer]  # one, or two sent at once to both web processes
    retries: list[Answer]
    issuance_id: str
    code_id: int
    plaintext: str
    concurrent_redemption: bool
    redemptions: list[Answer]
    redemption_replays: list[Answer]


class Api:
    def __init__(self, webs: list[str], *, staff_key: str, merchant_key: str) -> None:
        self.webs = webs
        self.staff = f"Token {staff_key}"
        self.merchant = f"Api-Key {merchant_key}"

    def _post(self, web: int, path: str, authorization: str, key: str, body: dict) -> Answer:
        headers = {"Authorization": authorization, "Idempotency-Key": key, **PROXIED}
        response = httpx.post(f"{self.webs[web]}{path}", json=body, headers=headers, timeout=30)
        try:
            data = response.json()
        except ValueError:
            data = {"raw": response.text[:2000]}
        replayed = response.headers.get("Idempotent-Replayed") == "true"
        return Answer(web, key, body, response.status_code, data, replayed)

    def issue(self, web: int, key: str, body: dict) -> Answer:
        return self._post(web, "/api/v1/issuances", self.staff, key, body)

    def redeem(self, web: int, key: str, body: dict) -> Answer:
        return self._post(web, "/api/v1/redemptions", self.merchant, key, body)


def together(*calls: Callable[[], Answer]) -> list[Answer]:
    """Run `calls` in threads released at the same moment."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = calls[i]()
        except Exception as error:
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for result in results:
        if not isinstance(result, Answer):
            raise AssertionError(f"a concurrent request failed: {result!r}")
    return results


def scenario(api: Api, i: int, *, customer_id: int, offer_id: int) -> Story:
    """Issuance `i` through web process i % 2, its code redeemed through the other one."""
    home, away = i % 2, 1 - i % 2
    key = f"issue-{i}"
    body = {"customer_id": customer_id, "offer_id": offer_id, "reason_code": REASON, "note": f"scale-out {i}"}
    try:
        if i % 6 == 0:  # a client that sent the same request twice at once, to both processes
            first = together(lambda: api.issue(home, key, body), lambda: api.issue(away, key, body))
        else:
            first = [api.issue(home, key, body)]
        retries = []
        if i % 3 == 1 or i % 6 == 0:  # a client that lost the answer and retries, elsewhere
            retries.append(api.issue(away, key, body))
        created = [answer for answer in first if answer.status == 201]
        assert created, f"issuance {key}: no 201 in {first}"
        issuance_id = created[0].body["id"]
        issuance = Issuance.objects.select_related("code").get(pk=issuance_id)
        plaintext = codes.decrypt(issuance.code.ciphertext)

        order = {"code": plaintext, "order_total": "40.00", "currency": "USD"}

        def redeem(web: int, n: int) -> Callable[[], Answer]:
            return lambda: api.redeem(web, f"redeem-{i}-{n}", {**order, "order_id": f"order-{i}-{n}"})

        # Every third code: three checkouts try it at once, each under its own key.
        concurrent = i % 3 == 0
        redemptions = together(redeem(away, 0), redeem(home, 1), redeem(away, 2)) if concurrent else [redeem(away, 0)()]
        replays = [api.redeem(home, answer.key, answer.sent) for answer in redemptions]
        return Story(key, first, retries, issuance_id, issuance.code_id, plaintext, concurrent, redemptions, replays)
    finally:
        connection.close()


# --- The test ------------------------------------------------------------------------------


def test_two_web_processes_and_two_workers_one_killed_deliver_every_issuance_once_and_redeem_every_code_once(
    deployment,
):
    started = time.monotonic()
    mailbox, webs = deployment.mailbox, deployment.webs
    worker1, worker2 = deployment.workers
    # given: a rep with an API token and a roomy budget, customers, an offer, a merchant
    csr = staff_user(policy=policy_create(day_cost_amount=Decimal("10000.00")))
    _token, staff_key = StaffAPIKey.objects.create_key(name="scale-out", user=csr)
    customers = [customer_create() for _ in range(CUSTOMERS)]
    offer = offer_create(generate_on_demand=True)
    reason_create(REASON)
    _merchant, merchant_key = merchant_with_key()
    api = Api(webs, staff_key=staff_key, merchant_key=merchant_key)

    # when: traffic across both web processes, and worker 1 killed mid-send
    pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="client")
    try:
        traffic_started = time.monotonic()
        futures = [
            pool.submit(scenario, api, i, customer_id=customers[i % CUSTOMERS].pk, offer_id=offer.pk)
            for i in range(ISSUANCES)
        ]
        wait_until(
            lambda: mailbox.trapped is not None or any(f.done() and f.exception() for f in futures),
            what="worker 1 to be mid-send",
            timeout=START_TIMEOUT,
            logs=deployment.cluster.logs(),
        )
        assert mailbox.trapped is not None, [f.exception() for f in futures if f.done() and f.exception()]
        traffic_running = sum(not future.done() for future in futures)
        killed_at = time.monotonic()
        worker1.kill()
        wait_until(lambda: mailbox.trapped.abandoned, what="the sink to see worker 1 gone", timeout=10)
        mailbox.release.set()

        # then: beat's sweeper gets everything worker 1 held sent by worker 2
        deadline = killed_at + DELIVERED_WITHIN
        traffic_took = None
        while True:
            failed = [future.exception() for future in futures if future.done() and future.exception()]
            if failed:
                raise failed[0]
            if all(future.done() for future in futures):
                traffic_took = traffic_took or time.monotonic() - traffic_started
                undelivered = Issuance.objects.exclude(status=Issuance.Status.DELIVERED).count()
                unsent = Delivery.objects.exclude(status=Delivery.Status.SENT).count()
                if Issuance.objects.count() >= ISSUANCES and not undelivered and not unsent:
                    break
            if time.monotonic() > deadline:
                rows = list(Delivery.objects.exclude(status="sent").values_list("pk", "status", "attempts"))
                raise AssertionError(
                    f"not every delivery was sent {DELIVERED_WITHIN} s after the kill: {rows}\n"
                    f"{deployment.cluster.logs()}"
                )
            time.sleep(1)
        all_sent_after_kill = time.monotonic() - killed_at
        stories = [future.result() for future in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)

    worker2.popen.poll()
    assert worker2.popen.returncode is None, f"worker 2 died\n{worker2.logs()}"
    deployment.beat.assert_running()
    sweeps = deployment.beat.log.read_text(errors="replace").count("Sending due task deliveries-sweep")
    assert sweeps >= 1, deployment.beat.logs()
    # Production settings: plain http is sent to https, not served (the health probes are
    # answered before the redirect, for load balancers; a page is not).
    plain = httpx.get(f"{webs[0]}/admin/login/", timeout=30)
    secure = webs[0].replace("http://", "https://") + "/admin/login/"
    assert (plain.status_code, plain.headers.get("location")) == (301, secure)
    assert httpx.get(f"{webs[0]}/readyz", timeout=30).status_code == 200
    answers = [a for s in stories for a in (*s.first, *s.retries, *s.redemptions, *s.redemption_replays)]
    assert not [a for a in answers if a.status >= 500], "server errors"
    assert traffic_running, "the kill came after the traffic had ended"
    # Both web processes served, and their access logs account for every request sent.
    served = {
        path: [web.posts_served(path) for web in deployment.web_processes]
        for path in ("/api/v1/issuances", "/api/v1/redemptions")
    }
    assert all(count > 0 for counts in served.values() for count in counts), served
    assert sum(map(sum, served.values())) == len(answers), served

    # Issuances: one per Idempotency-Key, and every retry answered with the same one.
    issuance_ids = {story.issuance_id for story in stories}
    assert len(issuance_ids) == ISSUANCES
    assert Issuance.objects.count() == ISSUANCES
    assert set(map(str, Issuance.objects.values_list("pk", flat=True))) == issuance_ids
    keys = IdempotencyKey.objects.filter(scope="issuances.create")
    assert keys.count() == ISSUANCES == len({story.key for story in stories})
    # A twin sent at once to the other process waits for the first answer and replays it.
    for story in stories:
        for answer in story.first:
            assert (answer.status, answer.body["id"]) == (201, story.issuance_id), answer
        if len(story.first) == 2:
            assert sorted(answer.replayed for answer in story.first) == [False, True], story.first
        for answer in story.retries:
            assert (answer.status, answer.body["id"], answer.replayed) == (201, story.issuance_id, True), answer

    # Deliveries: every issuance delivered, by one delivery row each.
    deliveries = {str(d.issuance_id): d for d in Delivery.objects.all()}
    assert Delivery.objects.count() == len(deliveries) == ISSUANCES
    assert not Issuance.objects.exclude(status=Issuance.Status.DELIVERED).exists()
    by_message_id = {f"<delivery-{d.pk}@appease>": d for d in deliveries.values()}
    assert {d.provider_message_id for d in deliveries.values()} == set(by_message_id)

    # The sink: one message per issuance by Message-ID (stable across resends: what a
    # receiver deduplicates on). A second copy only of a delivery the sweeper reclaimed
    # from the killed worker (attempts > 1); every other delivery reached it exactly once.
    receptions = mailbox.snapshot()
    received = Counter(r.message_id for r in receptions)
    acknowledged = Counter(r.message_id for r in receptions if r.acknowledged)
    assert set(received) == set(by_message_id), "a message that is no delivery, or a delivery never received"
    assert set(acknowledged) == set(by_message_id), "a delivery marked sent that the sink never accepted"
    twice = {mid for mid, count in received.items() if count > 1}
    assert all(by_message_id[mid].attempts > 1 for mid in twice), [(mid, received[mid]) for mid in twice]
    # Exactly once as the receiver sees it: one Message-ID per issuance, and every copy of
    # it the same message (the same code to the same address).
    per_issuance = Counter(str(by_message_id[mid].issuance_id) for mid in received)
    assert set(per_issuance) == {story.issuance_id for story in stories} and set(per_issuance.values()) == {1}
    for mid in twice:
        copies = {(r.to, r.text) for r in receptions if r.message_id == mid and r.acknowledged}
        assert len(copies) <= 1, copies
    once = {mid for mid, delivery in by_message_id.items() if delivery.attempts == 1}
    assert all(received[mid] == 1 for mid in once)
    # The message held when worker 1 died: reclaimed after its lease, sent again, accepted once.
    abandoned = {r.message_id for r in receptions if r.abandoned}
    trapped = mailbox.trapped.message_id
    assert trapped in abandoned
    for mid in abandoned:
        assert by_message_id[mid].attempts >= 2
        assert acknowledged[mid] == 1
    # What was delivered is the issued code, to the customer.
    issuances = {str(i.pk): i for i in Issuance.objects.select_related("customer")}
    plaintexts = {story.issuance_id: story.plaintext for story in stories}
    for reception in receptions:
        issuance_id = str(by_message_id[reception.message_id].issuance_id)
        assert reception.to == (issuances[issuance_id].customer.email,)
        assert plaintexts[issuance_id] in reception.text

    # Redemptions: each code once; the others at once got the documented 409; every
    # replay answered exactly as the first time.
    for story in stories:
        statuses = sorted(answer.status for answer in story.redemptions)
        assert statuses == ([201, 409, 409] if story.concurrent_redemption else [201]), story.redemptions
        for answer in story.redemptions:
            if answer.status == 409:
                assert answer.body["error"] == "already_redeemed", answer
        for first, replay in zip(story.redemptions, story.redemption_replays, strict=True):
            assert (replay.status, replay.body, replay.replayed) == (first.status, first.body, True), replay
    redemptions = Redemption.objects.all()
    assert redemptions.count() == ISSUANCES
    per_code = Counter(redemptions.filter(status="active").values_list("code_id", flat=True))
    assert set(per_code) == {story.code_id for story in stories}
    assert set(per_code.values()) == {1}
    assert Code.objects.filter(pk__in=per_code, status=Code.Status.REDEEMED).count() == ISSUANCES
    won = {a.body["id"] for s in stories for a in s.redemptions if a.status == 201}
    assert won == set(map(str, redemptions.values_list("pk", flat=True)))

    reclaimed = sum(d.attempts > 1 for d in deliveries.values())
    first_port = {}
    for reception in receptions:
        first_port.setdefault(reception.message_id, reception.port)
    twice_from_killed = sum(first_port[mid] == mailbox.trap_port for mid in twice)
    print(
        f"scale-out: {time.monotonic() - started:.1f} s; {len(answers)} requests "
        f"({sum(len(s.first) + len(s.retries) for s in stories)} issuance, "
        f"{sum(len(s.redemptions) + len(s.redemption_replays) for s in stories)} redemption), "
        f"{sum(len(s.first) == 2 for s in stories)} twins replayed, in {traffic_took:.1f} s; "
        f"worker 1 killed with {traffic_running} of {ISSUANCES} clients still running, "
        f"everything sent {all_sent_after_kill:.1f} s later ({sweeps} beat sweeps; lease "
        f"{settings.DELIVERY_LEASE.total_seconds():g} s, "
        f"sweep every {settings.DELIVERY_SWEEP_EVERY.total_seconds():g} s); "
        f"sink: {len(receptions)} receptions of {len(received)} messages, {len(abandoned)} abandoned, "
        f"{len(twice)} received twice ({twice_from_killed} first sent by worker 1); "
        f"{reclaimed} deliveries reclaimed; "
        f"{len(won)} redemptions, {sum(a.status == 409 for s in stories for a in s.redemptions)} refused at once; "
        f"POSTs served per web process: {served}"
    )
