"""deploy/entrypoint.sh, the one script with the process commands (the Procfile, the
Dockerfile, compose.yaml and the systemd units run it): each subcommand started for real,
in production settings (DEBUG off), the way an operator's machine runs it, with the
virtualenv's bin/ on PATH. SQLite and the file-system broker, so it runs anywhere; the
same commands on PostgreSQL and Redis are the journey suite's and test_beat.py's."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from secrets import token_urlsafe

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.delivery.channels.conftest import free_port
from tests.delivery.test_faults import wait_until

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
BIN = Path(sys.executable).parent
START_TIMEOUT = 120  # seconds: generous, the machine may be loaded
PROXIED = {"Host": "appease.example.com", "X-Forwarded-Proto": "https"}

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A production environment of its own: nothing from this process's but PATH (with the
    virtualenv's bin/ first: the script uses the python, gunicorn and celery found there)."""
    env = {key: os.environ[key] for key in ("HOME", "LANG", "LC_ALL", "TMPDIR") if key in os.environ}
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}/usr/local/bin{os.pathsep}/usr/bin{os.pathsep}/bin",
            "DEBUG": "0",
            "SECRET_KEY": token_urlsafe(50),
            "CODE_HASH_KEY": token_urlsafe(32),
            "CODE_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "ALLOWED_HOSTS": "appease.example.com",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'appease.sqlite3'}",
            "APPEASE_VAR_DIR": str(tmp_path / "var"),
            "STATIC_ROOT": str(tmp_path / "static"),
            "APPEASE_METRICS_DIR": str(tmp_path / "metrics"),
            **extra,
        }
    )
    return env


def run(args: list[str], env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 (the entrypoint with fixed arguments)
        [str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, timeout=600, check=False, **kwargs
    )


class Started:
    """One long-running subcommand, its output in a file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], directory: Path) -> None:
        self.name = name
        self.log = directory / f"{name}.log"
        with self.log.open("wb") as out:
            self.popen = subprocess.Popen(  # noqa: S603 (the entrypoint with fixed arguments)
                [str(ENTRYPOINT), *args], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def assert_running(self) -> None:
        assert self.popen.poll() is None, f"{self.name} exited with {self.popen.returncode}:\n{self.text()}"

    def command_line(self) -> str:
        return Path(f"/proc/{self.popen.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()

    def terminate(self, *, timeout: float = 60) -> int:
        """SIGTERM to the process the script started, and only to it: exec means that is
        the server itself, which stops its own children."""
        self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout=timeout)

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)


def test_without_a_subcommand_it_lists_them_and_fails(tmp_path):
    result = run([], production_env(tmp_path))

    assert result.returncode == 2
    for subcommand in ("web", "worker", "beat", "migrate", "release"):
        assert re.search(rf"^deploy/entrypoint\.sh {subcommand} ", result.stderr, re.MULTILINE), result.stderr


def test_anything_else_is_run_as_given_in_place_of_the_script(tmp_path):
    # given the virtualenv's bin/ on PATH, and a caller in another folder
    env = production_env(tmp_path)

    # when a command that is not a subcommand is given
    result = run(["sh", "-c", "pwd; command -v python"], env, cwd=tmp_path)
    shell = run(["python", "-c", "import os, sys; print(os.getpid(), sys.prefix)"], env, cwd=tmp_path)

    # then it runs from the project folder, with the PATH's python
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == str(ROOT)
    assert result.stdout.splitlines()[1] == str(BIN / "python")
    assert shell.returncode == 0 and shell.stdout.split()[1] == sys.prefix


def test_a_command_run_through_it_is_the_process_started(tmp_path):
    # given a command started through the script (as a process manager starts it)
    process = subprocess.Popen(  # noqa: S603
        [str(ENTRYPOINT), "sh", "-c", "echo $$"], env=production_env(tmp_path), stdout=subprocess.PIPE, text=True
    )
    out, _ = process.communicate(timeout=60)

    # then it is exec'd: the same process id, so the manager's signals reach it
    assert int(out) == process.pid


def test_release_web_worker_and_beat_in_production(tmp_path):
    env = production_env(tmp_path, WEB_CONCURRENCY="1", WEB_THREADS="2", WORKER_CONCURRENCY="1")

    # when the release step runs: the migrations and collectstatic
    release = run(["release"], env)
    assert release.returncode == 0, release.stdout + release.stderr
    manifest = json.loads((tmp_path / "static" / "staticfiles.json").read_text())["paths"]
    assert (tmp_path / "appease.sqlite3").exists()
    # and migrate again is nothing to do
    migrate = run(["migrate"], env)
    assert migrate.returncode == 0 and "No migrations to apply" in migrate.stdout, migrate.stdout + migrate.stderr

    port = free_port()
    started: list[Started] = []
    try:
        web = Started("web", ["web"], {**env, "GUNICORN_BIND": f"127.0.0.1:{port}"}, tmp_path)
        worker = Started("worker", ["worker"], env, tmp_path)
        beat = Started("beat", ["beat"], env, tmp_path)
        started += [web, worker, beat]
        url = f"http://127.0.0.1:{port}"

        # then each becomes the server itself (exec), not a shell around it
        for process, words in (
            (web, ("gunicorn", "deploy/gunicorn.conf.py")),
            (worker, ("celery", " worker ")),
            (beat, ("celery", " beat ")),
        ):
            wait_until(
                lambda process=process, words=words: all(word in process.command_line() for word in words),
                what=f"{process.name} to exec {words}",
                timeout=START_TIMEOUT,
            )

        # and web answers, and once beat ticked, /readyz says how long ago
        def beat_seen() -> dict | None:
            for process in started:
                process.assert_running()
            try:
                checks = httpx.get(f"{url}/readyz", timeout=5).json()["checks"]
            except (httpx.HTTPError, ValueError):
                return None
            return checks if checks.get("beat") == "ok" else None

        checks = wait_until(beat_seen, what="/readyz with beat's heartbeat", timeout=START_TIMEOUT)
        assert checks["database"] == "ok" and checks["broker"] == "ok"
        assert 0 <= checks["beat_age_s"] <= 30

        # and the worker runs what beat sends (the delivery sweeper, every 15 s)
        wait_until(
            lambda: worker.assert_running() or re.search(r"deliveries_sweep_task\[[^]]+\] succeeded", worker.text()),
            what="the worker to run beat's delivery sweep",
            timeout=START_TIMEOUT,
            logs=worker.text() + beat.text(),
        )

        # and the static files come from the application, hashed and cached for good
        page = httpx.get(f"{url}/admin/login/", headers=PROXIED, timeout=30)
        assert page.status_code == 200, web.text()
        stylesheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page.text)
        assert f"/static/{manifest['admin/css/base.css']}" in stylesheets
        for path in [*stylesheets, f"/static/{manifest['vendor/plotly.min.js']}"]:
            response = httpx.get(f"{url}{path}", headers=PROXIED, timeout=30)
            assert response.status_code == 200, path
            assert "immutable" in response.headers["Cache-Control"], path
        widget = httpx.get(f"{url}/static/feedback-widget.js", headers=PROXIED, timeout=30)
        assert widget.status_code == 200 and widget.headers["Cache-Control"] == "max-age=3600, public"

        # and the health checks the Dockerfile and compose.yaml run say healthy
        web_env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}"}
        for check in ("web", "worker", "beat"):
            result = run(["python", "deploy/healthcheck.py", check], web_env)
            assert result.returncode == 0, (check, result.stderr)

        # when each is sent SIGTERM (what systemd, compose and honcho send)
        # then each stops by itself, cleanly
        for process in started:
            assert process.terminate() == 0, process.text()
        # and web's health check says so
        assert run(["python", "deploy/healthcheck.py", "web"], web_env).returncode == 1
    finally:
        for process in started:
            if process.popen.poll() is None:
                process.kill_group()
