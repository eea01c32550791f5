"""gunicorn settings for production (Procfile: web). Every value can be overridden by
the environment variable named beside it."""

import os
import re
import shutil
import tempfile
from pathlib import Path

from appease.core.observability import JSON_FORMATTER

# GUNICORN_BIND (BIND, its former name), else every interface on PORT (a PaaS sets it).
bind = os.environ.get("GUNICORN_BIND") or os.environ.get("BIND") or f"0.0.0.0:{os.environ.get('PORT') or '8000'}"
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
threads = int(os.environ.get("WEB_THREADS", "2"))
worker_class = "gthread"
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "5000"))  # recycle workers: bounded memory
max_requests_jitter = 500
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# --- Logs ---------------------------------------------------------------------------
# As Django's (appease/settings.py, LOGGING): JSON lines unless LOG_FORMAT=plain, which is
# the default with DEBUG on. No query strings in access lines: they may hold ids.
accesslog = "-"
errorlog = "-"
_debug = os.environ.get("DEBUG", "1").strip().lower() in {"1", "true", "yes", "on"}
LOG_FORMAT = os.environ.get("LOG_FORMAT") or ("plain" if _debug else "json")
if LOG_FORMAT == "json":
    # The message is a short human line; GunicornAccessFilter lifts method, path, status,
    # bytes, ms and the response's X-Request-ID into fields of the same JSON line.
    access_log_format = '%(m)s %(U)s %(s)s %(B)s %(M)sms "%(a)s"'
    _filters = ["request_id", "redact"]
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "appease.core.observability.RequestIdFilter"},
            "redact": {"()": "appease.core.observability.RedactFilter"},
            "access": {"()": "appease.core.observability.GunicornAccessFilter"},
        },
        "formatters": {"json": dict(JSON_FORMATTER)},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": _filters,
                "stream": "ext://sys.stdout",
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                # The atoms first: RedactFilter renders the message and drops them.
                "filters": ["access", *_filters],
                "stream": "ext://sys.stdout",
            },
        },
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
        },
    }
else:
    access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms %({x-request-id}o)s'

# --- Prometheus -----------------------------------------------------------------------
# Every worker process writes its metrics to one folder and /metrics adds them up. The
# folder is this unit's own (two gunicorn units on a machine must not share one: each
# empties it at start): <base>/<APPEASE_UNIT>, the unit's name defaulting to its bind
# address, the base APPEASE_METRICS_DIR (else $RUNTIME_DIRECTORY, what systemd's
# RuntimeDirectory= gives, else the temp folder). Only gunicorn's workers get
# PROMETHEUS_MULTIPROC_DIR: set for every process (migrate, celery) it would make each
# write metric files there, and fail where the folder does not exist.
METRICS_BASE = (
    os.environ.get("APPEASE_METRICS_DIR")
    or os.environ.get("PROMETHEUS_MULTIPROC_DIR")  # an older environment file's
    or os.environ.get("RUNTIME_DIRECTORY", str(Path(tempfile.gettempdir()) / "appease-metrics"))
)
UNIT = os.environ.get("APPEASE_UNIT") or "web-" + re.sub(r"[^A-Za-z0-9_.-]", "_", bind)
METRICS_DIR = str(Path(METRICS_BASE) / UNIT)


def on_starting(server):
    """In the master, before any worker: an empty folder of this unit's own, and every
    worker (forked from here) writes to it."""
    shutil.rmtree(METRICS_DIR, ignore_errors=True)
    Path(METRICS_DIR).mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = METRICS_DIR


def child_exit(server, worker):
    """A worker is gone (recycled, killed): its live gauges stop counting."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, METRICS_DIR)


# --- Control socket -------------------------------------------------------------------
# gunicorn (25.1+) listens on a Unix socket for `gunicornc`; its default,
# ~/.gunicorn/gunicorn.ctl (or $XDG_RUNTIME_DIR/gunicorn.ctl), is one path for every
# master of a user: a second unit takes it over and removes it when it stops. Each unit
# gets its own, <dir>/<APPEASE_UNIT>.ctl: GUNICORN_CONTROL_SOCKET names it outright, else
# the folder is systemd's $RUNTIME_DIRECTORY, else $XDG_RUNTIME_DIR, else ~/.gunicorn.
_control_dir = (
    os.environ.get("RUNTIME_DIRECTORY")
    or os.environ.get("XDG_RUNTIME_DIR")
    or str(Path(os.environ.get("HOME") or Path.home()) / ".gunicorn")
)
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET") or str(Path(_control_dir) / f"{UNIT}.ctl")
