"""deploy/gunicorn.conf.py: loaded as gunicorn loads it (a module run from its path), its
settings and hooks checked, and once for real: gunicorn started with it."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from cryptography.fernet import Fernet
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "deploy" / "gunicorn.conf.py"


def load_conf(monkeypatch, **env):
    names = ("DEBUG", "LOG_FORMAT", "APPEASE_METRICS_DIR", "PROMETHEUS_MULTIPROC_DIR", "RUNTIME_DIRECTORY")
    for name in (*names, "APPEASE_UNIT", "BIND", "GUNICORN_BIND", "PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("gunicorn_conf", CONF)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_in_production_gunicorn_logs_json_lines_with_djangos_formatter(monkeypatch):
    # given the production environment
    # when gunicorn loads its config
    conf = load_conf(monkeypatch, DEBUG="0")

    # then its access and error logs go through the formatter and filters Django's use
    logging_config = conf.logconfig_dict
    assert logging_config["formatters"]["json"] == settings.LOGGING["formatters"]["json"]
    for logger in ("gunicorn.error", "gunicorn.access"):
        handler = logging_config["handlers"][logging_config["loggers"][logger]["handlers"][0]]
        assert handler["formatter"] == "json"
        assert "redact" in handler["filters"] and "request_id" in handler["filters"]
    assert logging_config["handlers"]["access"]["filters"][0] == "access"  # before redact drops the atoms
    assert "%(q)s" not in conf.access_log_format and "%(r)s" not in conf.access_log_format


def test_in_the_demo_gunicorn_logs_plain_lines(monkeypatch):
    conf = load_conf(monkeypatch, DEBUG="1")

    assert not hasattr(conf, "logconfig_dict")
    assert conf.LOG_FORMAT == "plain"


def test_each_unit_has_its_own_metrics_folder_emptied_at_start(monkeypatch, tmp_path):
    # given two gunicorn units on one machine, one metrics base, and a stale file
    first = load_conf(monkeypatch, APPEASE_METRICS_DIR=str(tmp_path), BIND="127.0.0.1:8001")
    second = load_conf(monkeypatch, APPEASE_METRICS_DIR=str(tmp_path), BIND="127.0.0.1:8002")
    assert first.METRICS_DIR != second.METRICS_DIR
    Path(first.METRICS_DIR).mkdir(parents=True)
    (Path(first.METRICS_DIR) / "counter_4242.db").write_bytes(b"stale")
    Path(second.METRICS_DIR).mkdir(parents=True)
    (Path(second.METRICS_DIR) / "counter_4343.db").write_bytes(b"other unit")

    # when the first unit starts
    first.on_starting(server=None)

    # then its folder is empty, the other unit's untouched, and its workers write there
    assert list(Path(first.METRICS_DIR).iterdir()) == []
    assert (Path(second.METRICS_DIR) / "counter_4343.db").exists()
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == first.METRICS_DIR


def test_a_dead_workers_live_gauges_are_removed(monkeypatch, tmp_path):
    # given a unit's folder with a worker's live gauge files, its counters, and another worker's
    conf = load_conf(monkeypatch, PROMETHEUS_MULTIPROC_DIR=str(tmp_path), APPEASE_UNIT="web-1")
    conf.on_starting(server=None)
    folder = Path(conf.METRICS_DIR)
    for name in ("gauge_livesum_4242.db", "gauge_liveall_4242.db", "counter_4242.db", "gauge_livesum_4343.db"):
        (folder / name).write_bytes(b"")

    # when gunicorn reports that worker 4242 exited
    conf.child_exit(server=None, worker=SimpleNamespace(pid=4242))

    # then its live gauges are gone (prometheus_client's mark_process_dead), its counters
    # stay (they still add up), and the other worker's files too
    assert sorted(path.name for path in folder.iterdir()) == ["counter_4242.db", "gauge_livesum_4343.db"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_gunicorn_started_with_the_config_writes_json_lines(tmp_path):
    # given gunicorn with the production config and environment
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_ALLOW"))},
        "DJANGO_SETTINGS_MODULE": "appease.settings",
        "DEBUG": "0",
        "SECRET_KEY": "k3Yq-9vLm" * 7,
        "CODE_HASH_KEY": "h" * 40,
        "CODE_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "appease.example.com",
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "WEB_THREADS": "1",
        "APPEASE_METRICS_DIR": str(tmp_path / "metrics"),
        "APPEASE_UNIT": "web-test",
        "APPEASE_VAR_DIR": str(tmp_path / "var"),
        # collectstatic's folder (WhiteNoise warns on stderr, not in JSON, when it is missing)
        "STATIC_ROOT": str(tmp_path),
    }
    log = tmp_path / "gunicorn.log"
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 (a fixed command; only the environment varies)
            [gunicorn, "appease.wsgi:application", "--config", str(CONF)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # when a load balancer probes it over plain HTTP with an IP Host
        deadline, status = time.monotonic() + 60, None
        while time.monotonic() < deadline and status is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/healthz", headers={"Host": "10.0.0.5"}).status_code
            except httpx.HTTPError:
                assert process.poll() is None, log.read_text()
                time.sleep(0.3)
        assert status == 200, log.read_text()
        # and a visitor's request through the proxy (HTTPS said by X-Forwarded-Proto)
        page = httpx.get(
            f"http://127.0.0.1:{port}/accounts/login/",
            headers={"Host": "appease.example.com", "X-Forwarded-Proto": "https", "X-Request-ID": "req-gunicorn-01"},
        )
        assert page.status_code == 200, log.read_text()
        time.sleep(0.5)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)

    # then every line it wrote is one JSON object: its own messages and the access line
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert {"time", "level", "logger", "message"} <= set(lines[0])
    assert any(line["logger"] == "gunicorn.error" and "Booting worker" in line["message"] for line in lines)
    access = [line for line in lines if line["logger"] == "gunicorn.access"]
    assert access and access[0]["method"] == "GET" and access[0]["path"] == "/healthz"
    assert access[0]["status"] == 200 and isinstance(access[0]["ms"], int)
    assert access[1]["path"] == "/accounts/login/" and access[1]["request_id"] == "req-gunicorn-01"
    # and its workers wrote their metrics to this unit's folder
    assert (tmp_path / "metrics" / "web-test").is_dir()


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def test_it_binds_gunicorn_bind_else_every_interface_on_port(monkeypatch):
    assert load_conf(monkeypatch).bind == "0.0.0.0:8000"
    assert load_conf(monkeypatch, PORT="5123").bind == "0.0.0.0:5123"  # a PaaS's
    assert load_conf(monkeypatch, PORT="5123", GUNICORN_BIND="127.0.0.1:9001").bind == "127.0.0.1:9001"
