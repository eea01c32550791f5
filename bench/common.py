"""Shared set-up for the benchmarks: environment, a fresh database, Django.

Assumes `make install` has been run (the .venv exists). Only loopback services are used.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/appease_bench"


def bench_environment() -> dict[str, str]:
    """Production-like settings (DEBUG off), with throwaway secrets unless given.

    The code-hash and encryption keys must be the same in every process that touches
    the bench database (seeding, the server, checks): a script sets them once in its
    environment and every process it starts inherits them. Any of these variables
    already set in the environment wins (DATABASE_URL to use another database).
    """
    from cryptography.fernet import Fernet

    env = {
        "DATABASE_URL": DEFAULT_DATABASE_URL,
        "DJANGO_SETTINGS_MODULE": "appease.settings",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CODE_HASH_KEY": secrets.token_urlsafe(32),
        "CODE_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
        # code_batch_request enqueues the generation on commit; the benchmarks call
        # code_batch_generate themselves, so the message goes to an in-memory broker
        # that nobody reads instead of a real queue.
        "CELERY_BROKER_URL": "memory://localhost/",
        # The API's request quota still counts every request (its Redis round trip is
        # part of what is measured) but never refuses one: a load generator is one caller.
        "API_RATE_LIMIT_PER_KEY": "1000000000",
        "API_RATE_LIMIT_PER_USER": "1000000000",
        "API_RATE_LIMIT_PER_IP": "1000000000",
    }
    env.update({key: value for key, value in os.environ.items() if key in env})
    return env


def apply_environment() -> dict[str, str]:
    env = bench_environment()
    os.environ.update(env)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return env


def database_name(url: str) -> str:
    return urlparse(url).path.lstrip("/")


def recreate_database(url: str) -> None:
    """Drop and create the bench database. Refuses a name without "bench" in it."""
    import psycopg

    name = database_name(url)
    if "bench" not in name:
        raise SystemExit(f"refusing to drop {name!r}: the bench database's name must contain 'bench'")
    admin_url = urlparse(url)._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def migrate() -> None:
    subprocess.run(
        [str(PYTHON), str(ROOT / "manage.py"), "migrate", "--no-input", "-v", "0"],
        check=True,
        env=os.environ.copy(),
        timeout=1200,  # bounded, but a loaded machine (a CI runner) can take minutes
    )


def parse_args(parser, *, smoke: dict):
    """The benchmark's arguments, with `--smoke`: the sizes in `smoke` (tiny, seconds)
    instead of the defaults, arguments given on the command line still winning. A smoke
    run goes end to end and runs every check, so a schema change that breaks the
    benchmark fails CI (`make bench-smoke`); its figures measure nothing and are written
    nowhere (docs/benchmarks.md holds full runs only)."""
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, seconds: proves the benchmark still runs (CI)"
    )
    known, _ = parser.parse_known_args()
    if known.smoke:
        parser.set_defaults(**smoke)
    args = parser.parse_args()
    if args.smoke:
        print("SMOKE RUN: tiny sizes; the checks count, the figures do not (do not copy them anywhere)", flush=True)
    return args


def django_setup() -> None:
    import django

    django.setup()


@contextmanager
def timed(results: dict[str, float], name: str):
    start = time.perf_counter()
    yield
    results[name] = time.perf_counter() - start


def rule(title: str) -> None:
    print(f"\n== {title} ==", flush=True)


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine skews every figure."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


# --- CPU accounting ------------------------------------------------------------------
# The machine may be shared: every figure says how much CPU went to the benchmark and
# how much to other processes while it ran.

_TICK = os.sysconf("SC_CLK_TCK")


def _machine_busy_seconds() -> float:
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / _TICK


def _processes() -> dict[int, tuple[int, float, str]]:
    """pid -> (parent pid, CPU seconds, command line)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        utime, stime = (int(value) for value in fields[11:13])
        found[int(entry.name)] = (int(fields[1]), (utime + stime) / _TICK, cmdline)
    return found


def _ours(processes: dict[int, tuple[int, float, str]], database: str) -> set[int]:
    """This process tree and the PostgreSQL backends serving `database`."""
    mine = {os.getpid()}
    changed = True
    while changed:
        changed = False
        for pid, (ppid, _cpu, _cmd) in processes.items():
            if ppid in mine and pid not in mine:
                mine.add(pid)
                changed = True
    backends = {
        pid for pid, (_ppid, _cpu, cmd) in processes.items() if cmd.startswith("postgres: ") and f" {database} " in cmd
    }
    return mine | backends


class CpuMeter:
    """Wall time, and the CPU seconds used by the benchmark and by everything else.

    Samples /proc twice a second, so processes that end during the run (a server's
    workers, pgbench's backends) are still counted, give or take half a second each.
    """

    def __init__(self, database: str) -> None:
        self.database = database
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._ours: set[int] = set()
        self._commands: dict[int, str] = {}
        self._stop = threading.Event()

    def _sample(self, *, initial: bool = False) -> None:
        processes = _processes()
        self._ours |= _ours(processes, self.database)
        for pid, (_ppid, cpu, cmd) in processes.items():
            self._first.setdefault(pid, cpu if initial else 0.0)
            self._last[pid] = cpu
            self._commands.setdefault(pid, cmd)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._sample()

    def __enter__(self) -> CpuMeter:
        self._wall = time.perf_counter()
        self._busy = _machine_busy_seconds()
        self._sample(initial=True)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sample()
        self.wall = time.perf_counter() - self._wall
        self.busy = _machine_busy_seconds() - self._busy
        self.by_kind: dict[str, float] = {}
        for pid in self._ours:
            if pid in self._last:
                kind = _kind(self._commands[pid])
                self.by_kind[kind] = self.by_kind.get(kind, 0.0) + self._last[pid] - self._first[pid]
        self.ours = sum(self.by_kind.values())
        self.others = max(0.0, self.busy - self.ours)

    def summary(self) -> str:
        cores = len(os.sched_getaffinity(0))
        ranked = sorted(self.by_kind.items(), key=lambda item: -item[1])
        kinds = ", ".join(f"{kind} {seconds:.1f}" for kind, seconds in ranked)
        return (
            f"CPU: benchmark {self.ours:.1f} s ({kinds}), other processes {self.others:.1f} s "
            f"({self.others / (self.wall * cores):.0%} of the machine's {cores} cores over {self.wall:.1f} s)"
        )


def _kind(cmdline: str) -> str:
    if cmdline.startswith("postgres: "):
        return "postgres"
    for kind in ("gunicorn", "wrk", "pgbench", "py-spy"):
        if kind in cmdline.split(" ", 1)[0] or f"/{kind} " in cmdline or cmdline.startswith(f"{kind} "):
            return kind
    return "bench script"


# --- pgbench ceilings ------------------------------------------------------------------


def pgbench(*, script: Path, defines: dict[str, object], clients: int, jobs: int, duration: int, run_dir: Path) -> dict:
    """Run a pgbench script against the bench database; throughput and latency percentiles."""
    import re
    from urllib.parse import urlparse as parse

    url = parse(os.environ["DATABASE_URL"])
    command = [
        "pgbench",
        f"--host={url.hostname or '127.0.0.1'}",
        f"--port={url.port or 5432}",
        f"--username={url.username or 'postgres'}",
        "--no-vacuum",
        f"--client={clients}",
        f"--jobs={jobs}",
        f"--time={duration}",
        *(f"--define={name}={value}" for name, value in defines.items()),
        f"--file={script}",
        "--log",
        f"--log-prefix={run_dir / 'pgbench'}",
        database_name(os.environ["DATABASE_URL"]),
    ]
    env = os.environ.copy()
    if url.password:
        env["PGPASSWORD"] = url.password
    out = subprocess.run(
        command, check=False, capture_output=True, text=True, env=env, timeout=duration + 120, cwd=run_dir
    )
    if out.returncode != 0:  # say why: a schema change the script missed shows up here first
        raise SystemExit(f"pgbench failed ({out.returncode}) on {script}:\n{out.stderr[-2000:]}")
    transactions = int(re.search(r"number of transactions actually processed: (\d+)", out.stdout).group(1))
    tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout).group(1))
    latencies = []
    for log in run_dir.glob("pgbench.*"):
        latencies.extend(int(line.split()[2]) for line in log.read_text().splitlines())
        log.unlink()
    latencies.sort()

    def percentile(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] / 1000

    return {
        "transactions": transactions,
        "rps": tps,
        "p50": percentile(50),
        "p95": percentile(95),
        "p99": percentile(99),
    }
