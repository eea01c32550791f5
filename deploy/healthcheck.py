"""Health checks for containers and supervisors: exit status 0 when healthy, 1 when not.
The Dockerfile's HEALTHCHECK runs the web one; compose.yaml gives the worker and beat
containers theirs (docs/deploy.md).

    python deploy/healthcheck.py web      gunicorn here answers /healthz (PORT, GUNICORN_BIND)
    python deploy/healthcheck.py worker   the Celery worker of this host answers a ping
    python deploy/healthcheck.py beat     beat ticked within BEAT_STALE_SECONDS (appease/beat.py)
"""

from __future__ import annotations

import os
import socket
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "appease.settings")


def web() -> bool:
    bind = os.environ.get("GUNICORN_BIND") or os.environ.get("BIND") or f"0.0.0.0:{os.environ.get('PORT') or '8000'}"
    host, _, port = bind.rpartition(":")
    host = host.strip("[]")
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104 (a bind, not ours)
    url = f"http://[{host}]:{port}/healthz" if ":" in host else f"http://{host}:{port}/healthz"
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (http to this container only)
        return response.status == 200


def worker() -> bool:
    from appease.celery import app

    return bool(app.control.ping(destination=[f"celery@{socket.gethostname()}"], timeout=5))


def beat() -> bool:
    import django

    django.setup()
    from django.conf import settings

    from appease.beat import beat_heartbeat_get

    heartbeat = beat_heartbeat_get()
    return bool(heartbeat) and time.time() - heartbeat["at"] <= settings.BEAT_STALE_SECONDS


CHECKS = {"web": web, "worker": worker, "beat": beat}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in CHECKS:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(CHECKS)}")
    try:
        healthy = CHECKS[sys.argv[1]]()
    except Exception as error:  # unreachable, refused, timed out: unhealthy, and why
        print(f"{sys.argv[1]}: {type(error).__name__}: {error}", file=sys.stderr)
        healthy = False
    sys.exit(0 if healthy else 1)
