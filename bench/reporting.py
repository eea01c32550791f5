"""Benchmark: the supervisor reports (/admin/reports/…) on a year of history.

Run `bench/reporting` from a clone where `make install` has been run. Needs PostgreSQL
(DATABASE_URL, default postgres://postgres@127.0.0.1:5432/bench_reporting): that
database is DROPPED and re-created, migrated, then filled by `manage.py
generate_history` (1,000,000 issuances over 365 days by default) and VACUUM ANALYZEd.

Measures, in one run:
1. the generator: seconds per table and in all (it writes the rollups as it ends);
2. the rollups: the nightly restatement of every day, the minute's refresh, their sizes;
   the anomaly scans of the standard windows, as beat runs them;
3. every report page rendered server-side by Django's test Client, a supervisor
   logged in (DEBUG off, as in production): one warm-up render, then --renders timed
   renders, for the default period (the last 90 days), for the whole year (the last
   365 days) and for one team (some figures then come from the live rows): median
   and max milliseconds, the SQL statements and the milliseconds spent in them, so
   what is left is Django, the templates and plotly;
4. (run before the pages) the CSV export of the issuance list for the whole year,
   streamed: time to the first row, rows per second over each tenth of the file, and
   the process's peak resident memory (VmRSS) while streaming, against before;
5. the ceiling, in the same run: each page's SELECT statements, as Django ran them,
   run by pgbench alone.
Pages over the 500 ms aim get their slowest statements EXPLAIN ANALYZEd.

Options: --issuances N, --renders N, --reuse (keep the database and its history:
no drop, no generation; for repeated measurements).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_reporting"
AIM_MS = 500
HOST = "127.0.0.1"  # in ALLOWED_HOSTS of the bench environment
PAGES = [
    ("issuances", "/admin/reports/"),
    ("redemption", "/admin/reports/redemption/"),
    ("speed", "/admin/reports/speed/"),
    ("cases", "/admin/reports/cases/"),
    ("return", "/admin/reports/return/"),
    ("reps", "/admin/reports/reps/"),
    ("rep detail", "/admin/reports/reps/{rep}/"),
    ("anomalies", "/admin/reports/anomalies/"),
    ("list (page 1)", "/admin/reports/issuances/"),
    ("customers", "/admin/reports/customers/"),  # the issuances page fetches it once drawn
]


# --- Set-up ------------------------------------------------------------------------------


def generate(*, issuances: int, database: str) -> None:
    from django.core.management import call_command

    with common.CpuMeter(database) as meter:
        call_command("generate_history", issuances=issuances, stdout=sys.stdout)
    print(f"generate_history: {meter.wall:.1f} s wall; {meter.summary()}")


def vacuum() -> float:
    from django.db import connection

    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return time.perf_counter() - start


def table_sizes() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, n_live_tup, pg_size_pretty(pg_total_relation_size(relid)) "
            "FROM pg_stat_user_tables ORDER BY pg_total_relation_size(relid) DESC LIMIT 9"
        )
        for name, rows, size in cursor.fetchall():
            print(f"  {name:<28} {rows:>10,} rows {size:>10}")


def supervisor():
    from django.contrib.auth.models import Group, User

    from appease.core.roles import SUPERVISOR
    from appease.issuance.models import StaffProfile

    user = User.objects.create_user(username="bench.supervisor", password=None, is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=SUPERVISOR)[0])
    StaffProfile.objects.create(user=user)
    return user


def typical_rep() -> int:
    """The rep with the median number of issuances over the year."""
    from django.db.models import Count

    from appease.issuance.models import Issuance

    counts = list(
        Issuance.objects.exclude(csr=None).values("csr").annotate(n=Count("pk")).order_by("n").values_list("csr", "n")
    )
    return counts[len(counts) // 2][0]


# --- Pages -------------------------------------------------------------------------------


def render(client, path: str) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        start = time.perf_counter()
        response = client.get(path)
        body = response.content
        seconds = time.perf_counter() - start
    queries = captured.captured_queries
    return {
        "ms": seconds * 1000,
        "sql_ms": sum(float(query["time"]) for query in queries) * 1000,
        "queries": queries,
        "status": response.status_code,
        "kb": len(body) / 1024,
    }


def measure_page(client, name: str, path: str, renders: int) -> dict:
    try:
        warm = render(client, path)
    except Exception as error:  # a page that fails is a finding, not the end of the run
        return {"name": name, "path": path, "error": f"{type(error).__name__}: {str(error)[:120]}"}
    if warm["status"] != 200:
        return {"name": name, "path": path, "error": f"HTTP {warm['status']}"}
    if warm["ms"] > 15_000:
        renders = min(renders, 2)  # a page this slow: fewer renders, same figures
    runs = [render(client, path) for _ in range(renders)]
    times = [run["ms"] for run in runs]
    return {
        "name": name,
        "path": path,
        "status": runs[-1]["status"],
        "median": statistics.median(times),
        "max": max(times),
        "sql_ms": statistics.median(run["sql_ms"] for run in runs),
        "count": len(runs[-1]["queries"]),
        "kb": runs[-1]["kb"],
        "renders": len(runs),
        "queries": runs[-1]["queries"],
    }


def page_table(results: list[dict]) -> None:
    print(f"{'page':<16} {'median ms':>10} {'max ms':>8} {'SQL ms':>8} {'rest ms':>8} {'queries':>8} {'KB':>6}")
    for r in results:
        if "error" in r:
            print(f"{r['name']:<16} FAILED: {r['error']}")
            continue
        flag = "" if r["median"] < AIM_MS else "  over the aim"
        print(
            f"{r['name']:<16} {r['median']:>10,.0f} {r['max']:>8,.0f} {r['sql_ms']:>8,.0f} "
            f"{r['median'] - r['sql_ms']:>8,.0f} {r['count']:>8} {r['kb']:>6,.0f}{flag}"
        )


def explain_slowest(results: list[dict], *, top: int = 2, explained: set) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) the slowest statements of each page over the aim."""
    from django.db import connection

    for r in results:
        if "error" in r or r["median"] < AIM_MS:
            continue
        slowest = sorted(r["queries"], key=lambda query: -float(query["time"]))[:top]
        for query in slowest:
            sql = query["sql"]
            if sql in explained or not sql.lstrip().upper().startswith("SELECT"):
                continue
            explained.add(sql)
            print(f"\n-- {r['name']} ({r['path']}): {float(query['time']) * 1000:,.0f} ms")
            print(_shorten(sql))
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                plan = [row[0] for row in cursor.fetchall()]
            for line in plan[:40]:
                print("   " + line)
            if len(plan) > 40:
                print(f"   … {len(plan) - 40} more lines")


def _shorten(sql: str, limit: int = 900) -> str:
    return sql if len(sql) <= limit else sql[:limit] + f" … ({len(sql):,} characters)"


# --- The CSV export ------------------------------------------------------------------------


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def stream_csv(client, path: str, *, sample_every: int = 20_000) -> dict:
    before = rss_kb()
    start = time.perf_counter()
    response = client.get(path)
    rows = -1  # the header
    first = None
    peak = before
    marks = []  # (rows, seconds)
    size = 0
    sample_at = sample_every
    for chunk in response.streaming_content:
        if first is None:
            first = time.perf_counter() - start
            marks.append((0, first))
        rows += chunk.count(b"\n")
        size += len(chunk)
        if rows >= sample_at:
            sample_at += sample_every
            peak = max(peak, rss_kb())
            marks.append((rows, time.perf_counter() - start))
    seconds = time.perf_counter() - start
    response.close()
    peak = max(peak, rss_kb())
    marks.append((rows, seconds))
    return {
        "status": response.status_code,
        "rows": rows,
        "mb": size / 1e6,
        "seconds": seconds,
        "first": first or seconds,
        "before_kb": before,
        "peak_kb": peak,
        "marks": marks,
    }


def tenths(marks: list[tuple[int, float]], rows: int) -> list[float]:
    """Rows per second over each tenth of the rows."""
    rates, previous = [], (0, marks[0][1] if marks else 0.0)
    for n in range(1, 11):
        target = rows * n / 10
        point = next((mark for mark in marks if mark[0] >= target), marks[-1])
        if point[1] > previous[1]:
            rates.append((point[0] - previous[0]) / (point[1] - previous[1]))
        previous = point
    return rates


# --- The ceiling ---------------------------------------------------------------------------


def page_sql(queries: list[dict]) -> str:
    """A page's SELECT statements as Django ran them (parameters inlined), one script."""
    return "".join(f"{q['sql']};\n" for q in queries if q["sql"].lstrip().upper().startswith("SELECT"))


def rollup_figures() -> None:
    """The nightly restatement and the minute's refresh, timed; the rollups' sizes."""
    from django.db import connection

    from reporting.services import rollups_refresh

    start = time.perf_counter()
    state = rollups_refresh(restate=True)
    print(f"restatement (every day of the history): {time.perf_counter() - start:.1f} s, {state.days_rewritten} days")
    minutes = []
    for _ in range(5):
        start = time.perf_counter()
        rollups_refresh()
        minutes.append((time.perf_counter() - start) * 1000)
    print(f"the minute's refresh (today, yesterday, changed days): median {statistics.median(minutes):,.0f} ms")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, n_live_tup, pg_size_pretty(pg_total_relation_size(relid)) FROM pg_stat_user_tables "
            "WHERE relname LIKE 'reporting\\_%%' ORDER BY pg_total_relation_size(relid) DESC"
        )
        for name, rows, size in cursor.fetchall():
            print(f"  {name:<28} {rows:>10,} rows {size:>10}")


def anomaly_scan_figures() -> None:
    from reporting.models import AnomalyScan
    from reporting.services import anomaly_scans_run

    start = time.perf_counter()
    kept = anomaly_scans_run()
    print(f"all windows: {time.perf_counter() - start:.1f} s, {kept} flags kept")
    for scan in AnomalyScan.objects.order_by("days"):
        print(f"  last {scan.days:>3} days: {scan.seconds:6.1f} s, {len(scan.flags)} flags")


def pgbench_latency(sql: str, *, transactions: int = 5) -> float:
    """Average latency (ms) of the script `sql` run by pgbench alone, one client, after one run to warm up."""
    from urllib.parse import urlparse

    url = urlparse(os.environ["DATABASE_URL"])
    with tempfile.TemporaryDirectory() as directory:
        script = Path(directory) / "aggregate.sql"
        script.write_text(sql)
        command = [
            "pgbench",
            f"--host={url.hostname or '127.0.0.1'}",
            f"--port={url.port or 5432}",
            f"--username={url.username or 'postgres'}",
            "--no-vacuum",
            "--client=1",
            f"--file={script}",
            common.database_name(os.environ["DATABASE_URL"]),
        ]
        subprocess.run([*command, "--transactions=1"], check=True, capture_output=True, timeout=600)
        out = subprocess.run(
            [*command, f"--transactions={transactions}"], check=True, capture_output=True, text=True, timeout=600
        )
    return float(re.search(r"latency average = ([\d.]+) ms", out.stdout).group(1))


# --- Main ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issuances", type=int, default=1_000_000)
    parser.add_argument("--renders", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="keep the database and its history as they are")
    args = common.parse_args(parser, smoke={"issuances": 2_000, "renders": 1})

    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    env = common.apply_environment()
    database = common.database_name(env["DATABASE_URL"])
    common.rule("set-up")
    if not args.reuse:
        print(f"database: {database} (dropped, re-created, migrated)")
        common.recreate_database(env["DATABASE_URL"])
        common.migrate()
    common.django_setup()

    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        print(cursor.fetchone()[0])
        cursor.execute("SHOW shared_buffers")
        print(f"shared_buffers {cursor.fetchone()[0]}")
    print(f"CPU: {common.cpu_model()}, {len(os.sched_getaffinity(0))} cores; load average: {common.loadavg()}")

    if not args.reuse:
        common.rule(f"generate_history: {args.issuances:,} issuances")
        generate(issuances=args.issuances, database=database)
        print(f"VACUUM ANALYZE: {vacuum():.1f} s")
    print("largest tables:")
    table_sizes()
    common.rule("rollups")
    rollup_figures()
    common.rule("anomaly scans (beat, every 15 minutes)")
    anomaly_scan_figures()

    user = supervisor() if not args.reuse else None
    if user is None:
        from django.contrib.auth.models import User

        user = User.objects.filter(username="bench.supervisor").first() or supervisor()
    client = Client(HTTP_HOST=HOST)
    client.force_login(user)
    rep = typical_rep()
    # The last 365 days (today included): one of the anomaly scans' standard windows.
    year = f"date_from={(timezone.localdate() - timedelta(days=364)).isoformat()}"
    from appease.issuance.models import Team

    team = Team.objects.order_by("pk").values_list("pk", flat=True).first()
    periods = [
        ("default period (last 90 days)", ""),
        ("whole year (the last 365 days)", year),
        ("last 90 days, one team (some figures from the live rows)", f"team={team}"),
    ]

    # The export first: the process's resident memory is not yet inflated by the pages.
    common.rule("CSV export of the issuance list, whole year, streamed")
    export = stream_csv(client, f"/admin/reports/issuances/?export=issuances&{year}")
    rates = tenths(export["marks"], export["rows"])
    growth = (export["peak_kb"] - export["before_kb"]) / 1024
    print(
        f"status {export['status']}: {export['rows']:,} rows, {export['mb']:.1f} MB in {export['seconds']:.1f} s "
        f"({export['rows'] / export['seconds']:,.0f} rows/s); first row after {export['first']:.2f} s"
    )
    print("rows/s per tenth of the file: " + ", ".join(f"{rate:,.0f}" for rate in rates))
    print(
        f"VmRSS: {export['before_kb'] / 1024:.0f} MB before, peak {export['peak_kb'] / 1024:.0f} MB while streaming "
        f"(+{growth:.1f} MB)"
    )

    # A failing page is reported (its exception, once); Django's error log would print
    # the whole traceback at every render.
    logging.getLogger("django.request").setLevel(logging.CRITICAL)
    summary = {}
    explained: set = set()
    for title, query in periods:
        common.rule(f"pages, {title}: 1 warm-up + {args.renders} renders each")
        results = []
        with common.CpuMeter(database) as meter:
            for name, path in PAGES:
                path = path.format(rep=rep)
                full = f"{path}?{query}" if query else path
                results.append(measure_page(client, name, full, args.renders))
                last = results[-1]
                done = last.get("error") or f"{last['median']:,.0f} ms"
                print(f"  {last['name']}: {done}", flush=True)
        page_table(results)
        print(meter.summary())
        summary[title] = results
        explain_slowest(results, explained=explained)

    common.rule("ceiling: each page's SQL alone (pgbench, the statements Django ran, one client)")
    ceilings = {}
    for title, results in summary.items():
        print(title)
        for r in results:
            if "error" in r:
                continue
            ceilings[(title, r["name"])] = alone = pgbench_latency(page_sql(r["queries"]))
            print(f"  {r['name']:<16} page {r['median']:>7,.0f} ms; its SQL alone {alone:>7,.0f} ms")

    common.rule("summary")
    for title, results in summary.items():
        ok = [r for r in results if "error" not in r and r["median"] < AIM_MS]
        print(f"{title}: {len(ok)} of {len(results)} rows under {AIM_MS} ms")
        page_table(results)
    print(f"CSV: {export['rows'] / export['seconds']:,.0f} rows/s, VmRSS +{growth:.1f} MB")
    print(f"load average at the end: {common.loadavg()}")


if __name__ == "__main__":
    main()
