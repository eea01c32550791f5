"""Benchmark: POST /api/v1/redemptions under load, against two ceilings.

Run `bench/redeem` (it installs wrk if missing, then runs this) from a clone where
`make install` has been run. Needs PostgreSQL and Redis on loopback. The database in
DATABASE_URL (default postgres://postgres@127.0.0.1:5432/appease_bench) is DROPPED
and re-created.

1. Seeds --codes issued codes through the services (code_batch_request and
   code_batch_generate, then one UPDATE marks them issued), writes their plaintexts
   to a file for wrk, and makes a merchant with an API key.
2. Ceiling 1: pgbench runs the service's conditional UPDATE alone (32 clients, every
   transaction a different issued code). The codes are reset to issued afterwards.
3. Ceiling 2: a bare DRF view (bench/bareview.py, served with bench.settings) that
   runs only that UPDATE, under the same gunicorn and the same wrk load. Reset again.
4. The real API under the same gunicorn and wrk load (with --profile, py-spy says
   where the workers' CPU goes), then a light-load run (2 connections) of it.
5. Checks: no code redeemed twice, one redemption per redeemed code, one ledger row
   per redemption, and the 201s wrk received match the redemptions; then how many
   queries one redemption makes (CaptureQueriesContext).

Every run prints the CPU the benchmark used and the CPU other processes took
meanwhile: on a shared machine the figures are only as good as that share.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager, nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

BENCH = Path(__file__).resolve().parent
GUNICORN = common.ROOT / ".venv" / "bin" / "gunicorn"
AIM_RATIO = 0.7
AIM_P99_MS = 50
LIGHT_CODES = 5_000


# --- Seeding -------------------------------------------------------------------------


def seed(*, count: int, light: int, run_dir: Path) -> dict:
    from decimal import Decimal

    from django.db import connection

    from coupons import codes
    from coupons.models import Code, Merchant, MerchantAPIKey, Offer
    from coupons.services.inventory import code_batch_generate, code_batch_request

    offer = Offer(
        name="Bench: 5 off",
        kind=Offer.Kind.AMOUNT_OFF,
        description="5 off your next order",
        value_amount=Decimal("5.00"),
        currency="USD",
        validity_days=30,
    )
    offer.full_clean()
    offer.save()
    # `count` codes for the loaded runs, `light` for the light-load run, and one spare
    # for the query-count probe at the end.
    batch = code_batch_request(offer=offer, quantity=count + light + 1)
    start = time.perf_counter()
    code_batch_generate(batch_id=batch.pk)
    print(f"generated {batch.quantity:,} codes in {time.perf_counter() - start:.1f} s")
    with connection.cursor() as cursor:
        # Seeding shortcut (no issue ledger rows): the benchmark is about redemption.
        cursor.execute(
            "UPDATE coupons_code SET status = 'issued', issued_at = now(), expires_at = now() + interval '30 days' "
            "WHERE batch_id = %s",
            [batch.pk],
        )
    rows = list(Code.objects.filter(batch=batch).order_by("pk").values_list("pk", "ciphertext"))
    ids = [pk for pk, _ in rows]
    if ids[-1] - ids[0] + 1 != len(ids):
        raise SystemExit("the seeded code ids are not contiguous; pgbench's id range would be wrong")
    plaintexts = [codes.decrypt(ciphertext) for _, ciphertext in rows]
    spare = plaintexts.pop()
    codes_path = run_dir / "codes.txt"
    codes_path.write_text("\n".join(plaintexts[:count]) + "\n")
    light_path = run_dir / "codes-light.txt"
    light_path.write_text("\n".join(plaintexts[count:]) + "\n")
    merchant = Merchant.objects.create(name="Bench shop")
    _api_key, key = MerchantAPIKey.objects.create_key(name="bench checkout", merchant=merchant)
    vacuum()
    return {
        "batch_id": batch.pk,
        "first_id": ids[0],
        "codes_path": codes_path,
        "light_path": light_path,
        "api_key": key,
        "spare": spare,
    }


def vacuum() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def reset(*, batch_id: int) -> int:
    """Put the codes a ceiling run redeemed back to issued."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE coupons_code SET status = 'issued', redeemed_at = NULL WHERE batch_id = %s AND status = 'redeemed'",
            [batch_id],
        )
        flipped = cursor.rowcount
    vacuum()
    return flipped


# --- Load ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(*, settings_module: str, args, run_dir: Path):
    """A gunicorn like production's (DEBUG off, several workers); stopped on exit."""
    port = free_port()
    env = os.environ.copy()
    env["DJANGO_SETTINGS_MODULE"] = settings_module
    pidfile = run_dir / "gunicorn.pid"
    command = [
        str(GUNICORN),
        "appease.wsgi:application",
        f"--workers={args.workers}",
        f"--worker-class={args.worker_class}",
        f"--threads={args.threads}",
        f"--bind=127.0.0.1:{port}",
        "--backlog=2048",
        "--timeout=30",
        "--graceful-timeout=5",
        "--log-level=warning",
        f"--pid={pidfile}",
    ]
    log = (run_dir / f"gunicorn-{settings_module}.log").open("w")
    server = subprocess.Popen(
        command, cwd=common.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/redemptions", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # 401/403/405: it answers
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"gunicorn did not start; see {log.name}") from None
                time.sleep(0.3)
        yield port, server
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)
        log.close()
        pidfile.unlink(missing_ok=True)


def warm_up(*, port: int, api_key: str, args) -> None:
    """2 s of GETs (405 after authentication): imports done, connections open."""
    subprocess.run(
        [
            "wrk",
            f"-t{args.wrk_threads}",
            f"-c{args.connections}",
            "-d2s",
            "-H",
            f"Authorization: Api-Key {api_key}",
            f"http://127.0.0.1:{port}/api/v1/redemptions",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


def run_wrk(*, port: int, api_key: str, codes_path: Path, threads: int, connections: int, duration: int) -> dict:
    env = os.environ.copy()
    env["BENCH_API_KEY"] = api_key
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout=10s",
        "-s",
        str(BENCH / "redeem.lua"),
        f"http://127.0.0.1:{port}/api/v1/redemptions",
        "--",
        str(codes_path),
        str(threads),
    ]
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env, timeout=duration + 120)
    line = next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))
    result = {key: int(value) for key, value in (item.split("=") for item in line.split()[1:])}
    seconds = result["duration_us"] / 1e6
    return {
        **result,
        "rps": result["requests"] / seconds,
        "p50": result["p50_us"] / 1000,
        "p95": result["p95_us"] / 1000,
        "p99": result["p99_us"] / 1000,
        "in_flight": result["sent"] - result["requests"],
    }


def run_pgbench(*, seeded: dict, count: int, args, run_dir: Path) -> dict:
    result = common.pgbench(
        script=BENCH / "redeem_update.sql",
        defines={"lo": seeded["first_id"], "cnt": count, "clients": args.connections, "n": 0},
        clients=args.connections,
        jobs=args.wrk_threads,
        duration=args.duration,
        run_dir=run_dir,
    )
    return {**result, "wrapped": result["transactions"] > count}


# --- Profile --------------------------------------------------------------------------

PY_SPY = common.ROOT / ".venv" / "bin" / "py-spy"
# Where a worker's time goes, by the first of these frames found in a sampled stack
# (most specific first). py-spy samples the thread holding the GIL only: CPU, not waits.
PROFILE_PARTS = [
    ("connection health check (SELECT 1)", "close_if_health_check_failed"),
    ("API key authentication (SELECT key + merchant)", "MerchantApiKeyAuthentication.authenticate"),
    ("guessing guard: Redis read", "CodeLookupGuard.check"),
    ("input validation", "is_valid"),
    ("code look-up (SELECT code + offer)", "code_get_by_plaintext"),
    ("conditional UPDATE", "QuerySet.update"),
    ("ledger INSERT", "code_redeemed_event"),
    ("redemption INSERT", "QuerySet.create"),
    ("BEGIN / COMMIT", "Atomic.__"),
    ("rest of the service", "redemption_create"),
    ("output serializer", "Serializer.data"),
    ("rest of the request: WSGI, middleware, DRF", "WSGIHandler.__call__"),
    ("gunicorn, outside requests", ""),
]


@contextmanager
def profiled(*, server: subprocess.Popen, seconds: int, run_dir: Path):
    """py-spy on every gunicorn worker while the block runs; prints the breakdown after."""
    if not PY_SPY.exists():
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy (a bench tool, not a requirement)")
    workers = [pid for pid, (ppid, _cpu, _cmd) in common._processes().items() if ppid == server.pid]
    options = [f"--duration={seconds}", "--rate=50", "--gil", "--nonblocking", "--format=raw"]
    spies = [
        subprocess.Popen(
            [str(PY_SPY), "record", f"--pid={pid}", *options, f"--output={run_dir / f'spy-{pid}.txt'}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in workers
    ]
    try:
        yield
    finally:
        for spy in spies:
            try:
                spy.wait(timeout=seconds + 30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait(timeout=10)
    parts = dict.fromkeys((name for name, _ in PROFILE_PARTS), 0)
    for output in run_dir.glob("spy-*.txt"):
        for line in output.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            name = next(name for name, marker in PROFILE_PARTS if marker in stack)
            parts[name] += int(count)
        output.unlink()
    total = sum(parts.values()) or 1
    print(f"where the workers' CPU goes (py-spy, {total:,} samples of the thread holding the GIL):")
    for name, samples in parts.items():
        print(f"  {samples / total:6.1%}  {name}")


# --- Checks --------------------------------------------------------------------------


def check(*, seeded: dict, runs: list[dict]) -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM coupons_redemption")
        redemptions = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM (SELECT code_id FROM coupons_redemption WHERE status = 'active' "
            "GROUP BY code_id HAVING count(*) > 1) AS twice"
        )
        twice = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM coupons_code WHERE batch_id = %s AND status = 'redeemed'", [seeded["batch_id"]]
        )
        redeemed = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM coupons_codeevent WHERE kind = 'redeemed'")
        ledger = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM coupons_redemption r JOIN coupons_code c ON c.id = r.code_id "
            "WHERE c.status <> 'redeemed'"
        )
        orphans = cursor.fetchone()[0]
    real = {key: sum(run[key] for run in runs) for key in runs[0] if isinstance(runs[0][key], int)}
    received = real["s201"]
    in_flight = real["in_flight"]
    checks = [
        ("no code has two active redemptions", twice == 0, f"{twice} codes"),
        ("redemptions == codes in status redeemed", redemptions == redeemed, f"{redemptions:,} vs {redeemed:,}"),
        ("every redemption's code is redeemed", orphans == 0, f"{orphans} not"),
        ("one ledger row per redemption", ledger == redemptions, f"{ledger:,} vs {redemptions:,}"),
        (
            "201s received == redemptions (up to the requests cut off in flight when wrk stopped)",
            received <= redemptions <= received + in_flight,
            f"201s {received:,}, redemptions {redemptions:,}, in flight at the end {in_flight}",
        ),
        ("no refusals or errors under load", real["s409"] + real["s4xx"] + real["s5xx"] + real["other"] == 0, ""),
        ("wrk never ran out of fresh codes", not real["exhausted"], ""),
    ]
    print(
        f"responses: 201 {real['s201']:,}, 409 {real['s409']:,}, other 4xx {real['s4xx']:,}, 5xx {real['s5xx']:,}; "
        f"socket errors: connect {real['connect_errors']}, read {real['read_errors']}, "
        f"write {real['write_errors']}, timeout {real['timeouts']}"
    )
    for name, ok, detail in checks:
        print(f"CHECK {'OK    ' if ok else 'FAILED'} {name}{': ' + detail if detail else ''}")
    return all(ok for _, ok, _ in checks)


def probe_queries(*, seeded: dict) -> list[str]:
    """The SQL one redemption runs, through the whole Django stack, in this process."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    body = {"code": seeded["spare"], "order_id": "probe", "order_total": "40.00", "currency": "USD"}
    with CaptureQueriesContext(connection) as captured:
        response = client.post(
            "/api/v1/redemptions",
            data=json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Api-Key {seeded['api_key']}",
        )
    if response.status_code != 201:
        raise SystemExit(f"probe redemption answered {response.status_code}: {response.content[:200]!r}")
    return [query["sql"] for query in captured.captured_queries]


# --- Main ----------------------------------------------------------------------------


def measured(result: dict, meter: common.CpuMeter) -> dict:
    """Add the CPU the benchmark's processes spent per request, and the others' share."""
    done = result.get("transactions", result.get("requests"))
    cores = len(os.sched_getaffinity(0))
    return {**result, "cpu_ms": meter.ours * 1000 / max(done, 1), "others": meter.others / (meter.wall * cores)}


HEADER = (
    "| run | requests/s | p50 ms | p95 ms | p99 ms | CPU ms/request | other processes' CPU |\n"
    "|---|---:|---:|---:|---:|---:|---:|"
)


def row(name: str, result: dict) -> str:
    return (
        f"| {name} | {result['rps']:,.0f} | {result['p50']:.1f} | {result['p95']:.1f} | {result['p99']:.1f} "
        f"| {result['cpu_ms']:.2f} | {result['others']:.0%} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=200_000, help="issued codes to seed (enough for every run)")
    parser.add_argument("--duration", type=int, default=20, help="seconds per run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--worker-class", default="gthread")
    parser.add_argument("--threads", type=int, default=2, help="threads per gunicorn worker (gthread)")
    parser.add_argument("--only-real", action="store_true", help="skip the two ceilings")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the workers during the real run (costs some throughput)"
    )
    parser.add_argument(
        "--light-connections", type=int, default=2, help="connections of the light-load run of the real API (0: skip)"
    )
    args = common.parse_args(
        parser,
        smoke={"codes": 2_000, "duration": 2, "connections": 2, "wrk_threads": 1, "workers": 1, "light_connections": 1},
    )
    # The codes file, logs and gunicorn's pidfile; bench/redeem makes it and removes it.
    if os.environ.get("BENCH_RUN_DIR"):
        run(args, run_dir=Path(os.environ["BENCH_RUN_DIR"]))
    else:
        with tempfile.TemporaryDirectory(prefix="appease-bench-") as run_dir:
            run(args, run_dir=Path(run_dir))


def run(args, *, run_dir: Path) -> None:
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/1")
    env = common.apply_environment()
    database = common.database_name(env["DATABASE_URL"])

    common.rule("set-up")
    print(f"CPU: {common.cpu_model()}, {len(os.sched_getaffinity(0))} cores; load average: {common.loadavg()}")
    print(
        f"gunicorn: {args.workers} workers, {args.worker_class}, {args.threads} threads; "
        f"wrk: {args.wrk_threads} threads, {args.connections} connections, {args.duration} s per run"
    )
    print(f"database: {database} (dropped, re-created, migrated); cache: {os.environ['REDIS_URL']}")
    common.recreate_database(env["DATABASE_URL"])
    common.migrate()
    common.django_setup()
    seeded = seed(count=args.codes, light=LIGHT_CODES, run_dir=run_dir)
    print(f"seeded {args.codes:,} issued codes (ids from {seeded['first_id']}), a merchant and its API key")

    results: dict[str, dict] = {}
    load = {
        "api_key": seeded["api_key"],
        "codes_path": seeded["codes_path"],
        "threads": args.wrk_threads,
        "connections": args.connections,
        "duration": args.duration,
    }
    meters: dict[str, common.CpuMeter] = {}

    if not args.only_real:
        common.rule("ceiling 1: pgbench, the conditional UPDATE alone")
        with common.CpuMeter(database) as meters["pgbench"]:
            results["pgbench"] = run_pgbench(seeded=seeded, count=args.codes, args=args, run_dir=run_dir)
        results["pgbench"] = measured(results["pgbench"], meters["pgbench"])
        print(HEADER, row("pgbench", results["pgbench"]), meters["pgbench"].summary(), sep="\n")
        if results["pgbench"]["wrapped"]:
            print("WARNING: pgbench ran out of fresh codes (some UPDATEs found nothing): seed more with --codes")
        print(f"reset {reset(batch_id=seeded['batch_id']):,} codes to issued")

        common.rule("ceiling 2: bare DRF view, the UPDATE alone (bench.settings)")
        with gunicorn(settings_module="bench.settings", args=args, run_dir=run_dir) as (port, _server):
            warm_up(port=port, api_key=seeded["api_key"], args=args)
            with common.CpuMeter(database) as meters["bare"]:
                results["bare"] = run_wrk(port=port, **load)
        results["bare"] = measured(results["bare"], meters["bare"])
        print(HEADER, row("bare view", results["bare"]), meters["bare"].summary(), sep="\n")
        print(f"201 {results['bare']['s201']:,}, 409 {results['bare']['s409']:,}, errors {results['bare']['s5xx']}")
        print(f"reset {reset(batch_id=seeded['batch_id']):,} codes to issued")

    common.rule("the real API: POST /api/v1/redemptions")
    with gunicorn(settings_module="appease.settings", args=args, run_dir=run_dir) as (port, server):
        warm_up(port=port, api_key=seeded["api_key"], args=args)
        spy = profiled(server=server, seconds=args.duration, run_dir=run_dir) if args.profile else nullcontext()
        with common.CpuMeter(database) as meters["real"], spy:
            results["real"] = run_wrk(port=port, **load)
        if args.light_connections:
            # The same API with almost no queue: what one request costs, not the wait.
            with common.CpuMeter(database) as meters["light"]:
                results["light"] = run_wrk(
                    port=port,
                    api_key=seeded["api_key"],
                    codes_path=seeded["light_path"],
                    threads=1,
                    connections=args.light_connections,
                    duration=min(10, args.duration),
                )
        time.sleep(1)  # let the requests cut off at the end finish on the server
    results["real"] = measured(results["real"], meters["real"])
    print(HEADER, row("real", results["real"]), meters["real"].summary(), sep="\n")
    if "light" in results:
        results["light"] = measured(results["light"], meters["light"])
        print(row(f"real, {args.light_connections} connections", results["light"]), meters["light"].summary(), sep="\n")

    common.rule("checks")
    ok = check(seeded=seeded, runs=[results[key] for key in ("real", "light") if key in results])
    queries = probe_queries(seeded=seeded)
    print(f"one redemption runs {len(queries)} SQL statements (CaptureQueriesContext):")
    for sql in queries:
        print(f"  {sql[:150]}{'…' if len(sql) > 150 else ''}")

    common.rule("summary")
    print(HEADER)
    names = {
        "real": f"real API, {args.connections} connections",
        "light": f"real API, {args.light_connections} connections (light load)",
        "bare": f"ceiling 2: bare DRF view, {args.connections} connections",
        "pgbench": f"ceiling 1: pgbench UPDATE, {args.connections} clients",
    }
    for key in ("real", "light", "bare", "pgbench"):
        if key in results:
            print(row(names[key], results[key]))
    for key in ("real", "light", "bare", "pgbench"):
        if key in meters:
            print(f"{names[key]}: {meters[key].summary()}")
    real = results["real"]
    if "bare" in results:
        ratio = real["rps"] / results["bare"]["rps"]
        print(
            f"throughput real / bare view: {ratio:.2f}   real / pgbench: {real['rps'] / results['pgbench']['rps']:.2f}"
        )
        print(
            f"CPU per request, bare view / real: {results['bare']['cpu_ms'] / real['cpu_ms']:.2f}   "
            f"pgbench / real: {results['pgbench']['cpu_ms'] / real['cpu_ms']:.2f} "
            "(the throughput ratio the CPU alone predicts, whatever else runs on the machine)"
        )
        print(f"AIM real >= {AIM_RATIO} x bare view: {'met' if ratio >= AIM_RATIO else 'MISSED'} ({ratio:.2f})")
    print(f"AIM p99 < {AIM_P99_MS} ms: {'met' if real['p99'] < AIM_P99_MS else 'MISSED'} ({real['p99']:.1f} ms)")
    print(f"load average at the end: {common.loadavg()}")
    print("CHECKS:", "OK" if ok else "FAILED")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
