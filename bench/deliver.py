"""Benchmark: issue → the customer's server has the message, through the delivery outbox.

Run `bench/deliver` from a clone where `make install` has been run. Needs PostgreSQL on
loopback and `redis-server` on PATH (a private one is started on a free port; the shared
Redis is not used). The database in DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/appease_bench_deliver) is DROPPED and re-created.

1. Seeds reps with staff API keys and a budget that never runs out, customers with an
   email address and a phone number, one offer with pre-generated codes, a reason code.
2. Starts, all on 127.0.0.1: a redis-server (the broker, and the cache), an SMTP server
   (aiosmtpd) and a Twilio-compatible SMS provider (an HTTP server) in this process,
   gunicorn like production (DEBUG off), and ONE Celery worker (solo pool by default).
3. Ceiling: the same sends done directly, `adapter.send()` from this process (no API, no
   outbox, no broker, no worker), at the paced rate: what the transport alone costs.
4. Paced: --count issuances over POST /api/v1/issuances at --rate per second, half by
   email, half by SMS, each from its own client thread. Latency = from the moment the
   request leaves the client to the moment the SMTP server / SMS provider has the message.
5. Burst: --burst issuances at once (--burst-clients concurrent clients), the same way.
6. Checks: every issuance reached its server exactly once, every delivery is `sent`.

Times are taken in this process (client and servers alike), with one clock. The
breakdown (API answer, queue, send) uses the rows' timestamps, from the same machine.
Everything started here is stopped here; bench/deliver's trap is the backstop.
"""

from __future__ import annotations

import argparse
import dataclasses
import email
import email.policy
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.redeem import free_port, gunicorn

CELERY = common.ROOT / ".venv" / "bin" / "celery"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/appease_bench_deliver"
AIM_P95_MS = 1000
SMS_PATH = "/2010-04-01/Accounts/ACbench/Messages.json"


_kind = common._kind


def _kind_with_ours(cmdline: str) -> str:
    """bench/common's CPU kinds, plus the two processes this benchmark adds."""
    if "/celery " in cmdline:
        return "celery worker"
    if cmdline.startswith("redis-server"):
        return "redis-server"
    return _kind(cmdline)


common._kind = _kind_with_ours


# --- The receiving end: an SMTP server and an SMS provider, in this process -------------


class Received:
    """When each message reached its server: idempotency key -> [wall times]."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = {}

    def record(self, key: str) -> None:
        now = time.time()
        with self.lock:
            self.times.setdefault(key, []).append(now)

    def first(self, key: str) -> float | None:
        with self.lock:
            times = self.times.get(key)
            return times[0] if times else None


class SmtpHandler:
    def __init__(self, received: Received) -> None:
        self.received = received

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        # Message-ID: <delivery-<uuid>@appease>, the key the outbox gave the delivery
        self.received.record(str(message["Message-ID"]).strip("<>").split("@")[0])
        return "250 2.0.0 queued"


class SmsProvider(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, received: Received) -> None:
        super().__init__(("127.0.0.1", port), SmsHandler)
        self.received = received
        self.sids = itertools.count(1)


class SmsHandler(BaseHTTPRequestHandler):
    server: SmsProvider
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.record(self.headers.get("I-Twilio-Idempotency-Token", ""))
        body = json.dumps({"sid": f"SM{next(self.server.sids):032d}", "status": "queued"}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:
        pass


@contextmanager
def receivers(*, smtp_port: int, sms_port: int) -> Iterator[Received]:
    from aiosmtpd.controller import Controller

    received = Received()
    controller = Controller(SmtpHandler(received), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    provider = SmsProvider(sms_port, received)
    thread = threading.Thread(target=provider.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        provider.shutdown()
        provider.server_close()
        thread.join(timeout=10)
        controller.stop()


# --- Processes: redis-server and one Celery worker ---------------------------------------


@contextmanager
def process(command: list[str], *, name: str, run_dir: Path, ready) -> Iterator[subprocess.Popen]:
    """A subprocess in its own process group, its pid in run_dir (bench/deliver's trap
    kills what is left), stopped with SIGTERM then SIGKILL on the way out."""
    log = (run_dir / f"{name}.log").open("w")
    child = subprocess.Popen(
        command, cwd=common.ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    pidfile = run_dir / f"{name}.pid"
    pidfile.write_text(str(child.pid))
    try:
        deadline = time.monotonic() + 60
        while not ready(run_dir / f"{name}.log"):
            if child.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{name} did not start; see {log.name}:\n{Path(log.name).read_text()[-3000:]}")
            time.sleep(0.1)
        yield child
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait(timeout=10)
        log.close()
        pidfile.unlink(missing_ok=True)


def redis_server(port: int, run_dir: Path):
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    command += ["--daemonize", "no", "--dir", str(run_dir)]
    return process(command, name="redis", run_dir=run_dir, ready=lambda log: "Ready to accept" in log.read_text())


def celery_worker(args, run_dir: Path):
    command = [str(CELERY), "-A", "appease", "worker", f"--pool={args.pool}", f"--concurrency={args.concurrency}"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", "celery", "--loglevel=INFO"]
    return process(command, name="worker", run_dir=run_dir, ready=lambda log: " ready." in log.read_text())


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """os.environ with `values`, for the processes started inside; restored after."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# --- Seeding ---------------------------------------------------------------------------


def seed(*, reps: int, customers: int, codes: int) -> dict:
    from django.contrib.auth.models import Group, User

    from appease.core.models import StaffAPIKey
    from appease.issuance.models import Customer, LimitBudget, LimitPolicy, ReasonCode, StaffProfile
    from coupons.models import Offer
    from coupons.services.inventory import code_batch_generate, code_batch_request

    offer = Offer(
        name="Bench: 5 off",
        kind=Offer.Kind.AMOUNT_OFF,
        description="5 off your next order",
        value_amount=Decimal("5.00"),
        cost_amount=Decimal("3.00"),
        currency="USD",
        validity_days=30,
        low_inventory_threshold=0,
    )
    offer.full_clean()
    offer.save()
    code_batch_generate(batch_id=code_batch_request(offer=offer, quantity=codes).pk)
    reason = ReasonCode.objects.create(code="late-delivery", label="Late delivery", incident_type="late_delivery")
    policy = LimitPolicy.objects.create(name="Bench reps", over_limit="approval")
    LimitBudget.objects.create(policy=policy, currency="USD", day_cost_amount=Decimal("1000000"))
    group, _created = Group.objects.get_or_create(name="CSR")
    tokens = []
    for n in range(reps):
        user = User.objects.create_user(f"rep{n:02d}", password=None)
        user.groups.add(group)
        StaffProfile.objects.create(user=user, policy=policy)
        tokens.append(StaffAPIKey.objects.create_key(name="bench", user=user)[1])
    Customer.objects.bulk_create(
        Customer(name=f"Customer {n}", email=f"customer{n}@example.com", phone=f"+3461{n:07d}", external_id=f"c{n}")
        for n in range(customers)
    )
    return {
        "offer_id": offer.pk,
        "reason": reason.code,
        "tokens": tokens,
        "customers": list(Customer.objects.order_by("pk").values_list("pk", flat=True)),
    }


# --- Load --------------------------------------------------------------------------------


@dataclasses.dataclass
class Issued:
    channel: str
    sent_at: float  # wall time the request left the client
    answered_at: float = 0.0
    status: int = 0
    issuance_id: str | None = None


def issue_one(*, port: int, token: str, body: dict) -> Issued:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/issuances",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Token {token}"},
        method="POST",
    )
    issued = Issued(channel=body["channel"], sent_at=time.time())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (http://127.0.0.1 only)
            issued.status = response.status
            issued.issuance_id = str(json.load(response)["id"])
    except urllib.error.HTTPError as error:
        issued.status = error.code
    issued.answered_at = time.time()
    return issued


def run_load(*, port: int, seeded: dict, customers: Iterator[int], count: int, rate: float | None, clients: int):
    """`count` issuances, alternately by email and SMS: at `rate` per second (one every
    1/rate s, whatever the answers take), or all at once when rate is None."""
    channels = itertools.cycle(["email", "sms"])
    bodies = [
        {
            "customer_id": next(customers),
            "offer_id": seeded["offer_id"],
            "reason_code": seeded["reason"],
            "note": "bench",
            "channel": next(channels),
        }
        for _ in range(count)
    ]
    tokens = seeded["tokens"]
    start = time.monotonic()
    futures = []
    with ThreadPoolExecutor(max_workers=clients) as pool:
        for n, body in enumerate(bodies):
            if rate:
                time.sleep(max(0.0, start + n / rate - time.monotonic()))
            futures.append(pool.submit(issue_one, port=port, token=tokens[n % len(tokens)], body=body))
    return [future.result() for future in futures]


def wait_received(received: Received, keys: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(received.first(key) is not None for key in keys):
            return
        time.sleep(0.1)


def delivery_keys(issued: list[Issued]) -> dict[str, tuple[str, str]]:
    """issuance id -> (delivery key, delivery id)."""
    from appease.delivery.models import Delivery

    ids = [item.issuance_id for item in issued if item.issuance_id]
    return {
        str(issuance_id): (f"delivery-{pk}", str(pk))
        for pk, issuance_id in Delivery.objects.filter(issuance_id__in=ids).values_list("pk", "issuance_id")
    }


def measure(*, issued: list[Issued], received: Received, timeout: float) -> dict:
    """Latencies (ms) per channel, and the breakdown from the rows' timestamps."""
    from appease.delivery.models import Delivery, DeliveryAttempt

    keys = delivery_keys(issued)
    wait_received(received, [key for key, _ in keys.values()], timeout)
    rows = {
        str(pk): (created, started)
        for pk, created, started in DeliveryAttempt.objects.filter(
            delivery_id__in=[pk for _, pk in keys.values()], number=1
        ).values_list("delivery_id", "delivery__created_at", "started_at")
    }
    result: dict = {"errors": sum(item.status != 201 for item in issued), "missing": 0}
    for channel in ("email", "sms"):
        total, api, queue, send = [], [], [], []
        for item in issued:
            if item.channel != channel or item.issuance_id not in keys:
                continue
            key, pk = keys[item.issuance_id]
            at = received.first(key)
            if at is None:
                result["missing"] += 1
                continue
            total.append((at - item.sent_at) * 1000)
            api.append((item.answered_at - item.sent_at) * 1000)
            if pk in rows:
                created, started = rows[pk]
                queue.append((started.timestamp() - created.timestamp()) * 1000)
                send.append((at - started.timestamp()) * 1000)
        result[channel] = {"total": total, "api": api, "queue": queue, "send": send}
    # The provider has the message a moment before the worker commits `sent`: wait
    # (bounded) for the rows too, so the check does not race the last commit.
    sent_rows = Delivery.objects.filter(pk__in=[pk for _, pk in keys.values()], status=Delivery.Status.SENT)
    deadline = time.monotonic() + 10
    while sent_rows.count() < len(keys) and time.monotonic() < deadline:
        time.sleep(0.2)
    result["sent"] = sent_rows.count()
    result["deliveries"] = len(keys)
    result["duplicates"] = sum(len(received.times.get(key, [])) > 1 for key, _ in keys.values())
    return result


def ceiling(*, count: int, rate: float, received: Received) -> dict:
    """The same sends, straight through the adapters: the messages of deliveries from the
    warm-up, composed as the worker composes them, with fresh idempotency keys."""
    from appease.delivery.channels.base import adapter_for
    from appease.delivery.messages import message_compose
    from appease.delivery.models import Delivery

    result = {}
    for channel in ("email", "sms"):
        delivery = Delivery.objects.filter(channel=channel).select_related("issuance__customer").first()
        message = message_compose(delivery=delivery)
        latencies = []
        start = time.monotonic()
        for n in range(count):
            time.sleep(max(0.0, start + n / rate - time.monotonic()))
            key = f"ceiling-{channel}-{n}"
            sent_at = time.time()
            adapter_for(channel).send(dataclasses.replace(message, idempotency_key=key))
            wait_received(received, [key], 10)
            latencies.append((received.first(key) - sent_at) * 1000)
        result[channel] = latencies
    return result


# --- Report ------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] if ordered else float("nan")


HEADER = "| run | channel | messages | p50 ms | p95 ms | p99 ms | max ms |\n|---|---|---:|---:|---:|---:|---:|"


def row(run: str, channel: str, values: list[float]) -> str:
    return (
        f"| {run} | {channel} | {len(values)} | {percentile(values, 50):.0f} | {percentile(values, 95):.0f} "
        f"| {percentile(values, 99):.0f} | {max(values, default=float('nan')):.0f} |"
    )


def breakdown(run: str, result: dict) -> list[str]:
    lines = []
    for channel in ("email", "sms"):
        parts = result[channel]
        lines.append(
            f"  {run}, {channel}: p50 / p95 ms  API answer {percentile(parts['api'], 50):.0f} / "
            f"{percentile(parts['api'], 95):.0f}  row written → worker starts the send "
            f"{percentile(parts['queue'], 50):.0f} / {percentile(parts['queue'], 95):.0f}  "
            f"send started → received {percentile(parts['send'], 50):.0f} / {percentile(parts['send'], 95):.0f}"
        )
    return lines


def check(name: str, result: dict, expected: int) -> bool:
    checks = [
        (f"{name}: every request answered 201", result["errors"] == 0, f"{result['errors']} not"),
        (
            f"{name}: every delivery sent and received",
            result["sent"] == result["deliveries"] == expected and result["missing"] == 0,
            f"{result['sent']} sent of {result['deliveries']} deliveries for {expected} requests, "
            f"{result['missing']} never received",
        ),
        (f"{name}: no message received twice", result["duplicates"] == 0, f"{result['duplicates']} twice"),
    ]
    for label, ok, detail in checks:
        print(f"CHECK {'OK    ' if ok else 'FAILED'} {label}{'' if ok else ': ' + detail}")
    return all(ok for _, ok, _ in checks)


# --- Main ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300, help="issuances in the paced run")
    parser.add_argument("--rate", type=float, default=10, help="issuances per second in the paced run")
    parser.add_argument("--burst", type=int, default=200, help="issuances in the burst run (0: skip)")
    parser.add_argument("--burst-clients", type=int, default=20, help="concurrent clients in the burst")
    parser.add_argument("--ceiling", type=int, default=100, help="direct sends per channel in the ceiling run")
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--worker-class", default="gthread")
    parser.add_argument("--threads", type=int, default=2, help="threads per gunicorn worker (gthread)")
    parser.add_argument("--pool", default="solo", help="the Celery worker's pool (solo, prefork, threads)")
    parser.add_argument("--concurrency", type=int, default=1, help="the Celery worker's concurrency")
    args = common.parse_args(
        parser, smoke={"count": 10, "rate": 5, "burst": 10, "burst_clients": 2, "ceiling": 5, "reps": 2, "workers": 1}
    )

    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    env = common.apply_environment()
    database = common.database_name(env["DATABASE_URL"])
    run_dir = Path(os.environ.get("BENCH_RUN_DIR") or tempfile.mkdtemp(prefix="appease-bench-"))
    redis_port, smtp_port, sms_port = free_port(), free_port(), free_port()
    os.environ.update(
        {
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/1",
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(smtp_port),
            "DEFAULT_FROM_EMAIL": "Appease <no-reply@appease.example>",
            "SMS_BASE_URL": f"http://127.0.0.1:{sms_port}",
            "SMS_ACCOUNT_SID": "ACbench",
            "SMS_AUTH_TOKEN": "bench-token",
            "SMS_FROM": "+15550000000",
        }
    )

    common.rule("set-up")
    print(f"CPU: {common.cpu_model()}, {len(os.sched_getaffinity(0))} cores; load average: {common.loadavg()}")
    print(
        f"gunicorn: {args.workers} workers, {args.worker_class}, {args.threads} threads; Celery: ONE worker, "
        f"pool {args.pool}, concurrency {args.concurrency}; broker and cache: a private redis-server"
    )
    print(f"database: {database} (dropped, re-created, migrated)")
    common.recreate_database(env["DATABASE_URL"])
    common.migrate()
    common.django_setup()
    customers_needed = args.count + args.burst + 20
    seeded = seed(reps=args.reps, customers=customers_needed, codes=customers_needed + 100)
    customers = iter(seeded["customers"])
    print(f"seeded {args.reps} reps, {customers_needed} customers (email and phone), one offer with codes")

    ok = True
    results: dict[str, dict] = {}
    meters: dict[str, common.CpuMeter] = {}
    with ExitStack() as running:
        received = running.enter_context(receivers(smtp_port=smtp_port, sms_port=sms_port))
        running.enter_context(redis_server(redis_port, run_dir))
        # Only the server and the worker use the real broker. This process keeps bench/
        # common's in-memory one: seeding enqueues a code generation it does itself.
        # (Celery reads CELERY_BROKER_URL from the environment before its settings.)
        with environment(CELERY_BROKER_URL=f"redis://127.0.0.1:{redis_port}/0"):
            running.enter_context(celery_worker(args, run_dir))
            port, _server = running.enter_context(
                gunicorn(settings_module="appease.settings", args=args, run_dir=run_dir)
            )
        # Warm-up: imports done, connections open, in the server and the worker alike.
        warm = run_load(port=port, seeded=seeded, customers=customers, count=20, rate=20, clients=4)
        ok &= check("warm-up", measure(issued=warm, received=received, timeout=60), 20)

        common.rule(f"ceiling: adapter.send() from this process, {args.ceiling} per channel at {args.rate:g}/s")
        with common.CpuMeter(database) as meters["ceiling"]:
            results["ceiling"] = ceiling(count=args.ceiling, rate=args.rate, received=received)
        print(HEADER)
        for channel in ("email", "sms"):
            print(row("ceiling: direct send", channel, results["ceiling"][channel]))
        print(meters["ceiling"].summary())

        common.rule(f"paced: {args.count} issuances at {args.rate:g}/s, half email, half SMS")
        with common.CpuMeter(database) as meters["paced"]:
            issued = run_load(
                port=port, seeded=seeded, customers=customers, count=args.count, rate=args.rate, clients=16
            )
            results["paced"] = measure(issued=issued, received=received, timeout=120)
        print(HEADER)
        for channel in ("email", "sms"):
            print(row("paced", channel, results["paced"][channel]["total"]))
        print("\n".join(breakdown("paced", results["paced"])))
        print(meters["paced"].summary())
        ok &= check("paced", results["paced"], args.count)

        if args.burst:
            common.rule(f"burst: {args.burst} issuances at once, {args.burst_clients} clients")
            with common.CpuMeter(database) as meters["burst"]:
                issued = run_load(
                    port=port,
                    seeded=seeded,
                    customers=customers,
                    count=args.burst,
                    rate=None,
                    clients=args.burst_clients,
                )
                results["burst"] = measure(issued=issued, received=received, timeout=300)
            span = (max(item.answered_at for item in issued) - min(item.sent_at for item in issued)) * 1000
            print(f"the {args.burst} requests were answered within {span:.0f} ms")
            print(HEADER)
            for channel in ("email", "sms"):
                print(row("burst", channel, results["burst"][channel]["total"]))
            print("\n".join(breakdown("burst", results["burst"])))
            print(meters["burst"].summary())
            ok &= check("burst", results["burst"], args.burst)

    common.rule("summary: issue → received (ms)")
    print(HEADER)
    for channel in ("email", "sms"):
        print(row(f"paced, {args.rate:g}/s", channel, results["paced"][channel]["total"]))
    if "burst" in results:
        for channel in ("email", "sms"):
            print(row(f"burst of {args.burst}", channel, results["burst"][channel]["total"]))
    for channel in ("email", "sms"):
        print(row("ceiling: direct adapter.send()", channel, results["ceiling"][channel]))
    for channel in ("email", "sms"):
        added = percentile(results["paced"][channel]["total"], 50) - percentile(results["ceiling"][channel], 50)
        print(f"what the API and the outbox add to a {channel} at p50: {added:.0f} ms")
    for name, meter in meters.items():
        print(f"{name}: {meter.summary()}")
    for channel in ("email", "sms"):
        p95 = percentile(results["paced"][channel]["total"], 95)
        print(f"AIM paced p95 < {AIM_P95_MS} ms ({channel}): {'met' if p95 < AIM_P95_MS else 'MISSED'} ({p95:.0f} ms)")
    print(f"load average at the end: {common.loadavg()}")
    print("CHECKS:", "OK" if ok else "FAILED")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
