"""The journey harness: the product started as an operator starts it, once for the whole
folder, and a real Chromium for the people who use it.

One stack per run (package scope), shared by every journey:

- a fresh PostgreSQL database `journeys_<pid>` on the server DATABASE_URL names (dropped
  at the end), and the Redis database REDIS_URL names (flushed before and after: broker
  and cache);
- `deploy/entrypoint.sh release` (migrate, collectstatic into a temporary STATIC_ROOT),
  then the data: `demo_data` (the only step with DEBUG on: it refuses to run otherwise),
  the journeys' own customers and offers (tests/journeys/seed.py) and a small history for
  the reports (`generate_history`);
- `deploy/entrypoint.sh web`, `worker` and `beat`, as the Procfile and the Dockerfile run
  them, with DEBUG=0 and fresh secrets: static files from the application, https behind
  the TLS proxy's `X-Forwarded-Proto` header (the browser sends it on every request), HSTS,
  secure cookies;
- an in-process SMTP server (aiosmtpd) that every email reaches, and a local HTTP server
  standing in for the SMS provider and the chat and social gateways.

Every process is started in its own process group and stopped (SIGTERM, then SIGKILL)
when the folder is done, failed or interrupted; a process that outlives this one is sent
SIGTERM by the kernel (PR_SET_PDEATHSIG). Logs, screenshots of failed journeys and the
pages' HTML are kept under the run's temporary folder (or JOURNEYS_ARTEFACTS), printed at
the end.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import email
import email.policy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from secrets import token_urlsafe
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from aiosmtpd.controller import Controller
from cryptography.fernet import Fernet
from django.utils import translation

from tests.browser.conftest import CHROMIUM
from tests.delivery.channels.conftest import free_port
from tests.scale.test_scale_out import PROXIED, Cluster

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ENTRYPOINT = str(ROOT / "deploy" / "entrypoint.sh")
SEED = ["python", "manage.py", "shell", "--command", "from tests.journeys.seed import run; run()"]
RELEASE_TIMEOUT = 600  # seconds, for migrate, collectstatic and the data (a busy machine)
START_TIMEOUT = 90  # seconds, for a process to answer or be ready
PAGE_TIMEOUT = 30_000  # milliseconds, for anything a page shows
VIEWPORT = {"width": 1366, "height": 768}
SMS_ACCOUNT = "AC-journeys"
# The reports' history: small, so it is made in seconds, spread over 90 days.
HISTORY = ["--issuances", "1500", "--reps", "6", "--customers", "300", "--days", "90", "--processes", "1", "--yes"]


def wait_until(condition: Callable[[], object], *, what: str, timeout: float, logs: Callable[[], str] = str):
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds
    with `logs()` (read only then: the processes' logs as they are at the failure)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{logs()}")
        time.sleep(0.1)


def in_language(language: str, text: str) -> str:
    """`text` as the product's catalogs translate it into `language`."""
    with translation.override(language):
        return translation.gettext(text)


# --- Mail: an SMTP server in this process ---------------------------------------------------


@dataclass(frozen=True)
class Mail:
    to: tuple[str, ...]
    subject: str
    text: str
    message_id: str


class Mailbox:
    """Every message the SMTP server accepted, in order."""

    def __init__(self) -> None:
        self._messages: list[Mail] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        mail = Mail(
            to=tuple(address.lower() for address in envelope.rcpt_tos),
            subject=str(message["Subject"] or ""),
            text=body.get_content() if body is not None else "",
            message_id=str(message["Message-ID"] or ""),
        )
        with self._lock:
            self._messages.append(mail)
        return "250 2.0.0 queued"

    def messages(self, to: str | None = None) -> list[Mail]:
        with self._lock:
            return [mail for mail in self._messages if to is None or to.lower() in mail.to]

    def wait_for(self, to: str, *, matching: Callable[[Mail], bool] = bool, after: int = 0, timeout: float = 90):
        """The first message to `to` (past the first `after` of them) that `matching` accepts."""

        def found():
            return next((mail for mail in self.messages(to)[after:] if matching(mail)), None)

        return wait_until(found, what=f"a message to {to}", timeout=timeout, logs=lambda: repr(self.messages(to)))


# --- The SMS provider and the chat/social gateways: a local HTTP server -------------------


class Gateways:
    """One HTTP server answering as a Twilio-compatible SMS provider
    (POST /2010-04-01/Accounts/<sid>/Messages.json) and as the chat and social webhook
    gateways (POST /chat, /social), and as a merchant's webhook receiver (POST /hooks),
    recording what each was sent."""

    def __init__(self) -> None:
        from pytest_httpserver import HTTPServer
        from werkzeug import Response

        self._response = Response
        self.server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
        self.received: list[dict] = []
        self.hooks: list[tuple[bytes, str]] = []  # what the merchant's webhook receiver got
        self._lock = threading.Lock()

    def start(self) -> None:
        self.server.start()
        sms = re.compile(r"^/2010-04-01/Accounts/[^/]+/Messages\.json$")
        self.server.expect_request(sms, method="POST").respond_with_handler(self._sms)
        self.server.expect_request(re.compile(r"^/(chat|social)$"), method="POST").respond_with_handler(self._webhook)
        self.server.expect_request("/hooks", method="POST").respond_with_handler(self._hook)

    def stop(self) -> None:
        self.server.clear()
        if self.server.is_running():
            self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url_for("").rstrip("/")

    def _record(self, entry: dict) -> int:
        with self._lock:
            self.received.append(entry)
            return len(self.received)

    def _sms(self, request):
        n = self._record({"channel": "sms", "to": request.form.get("To", ""), "text": request.form.get("Body", "")})
        return self._response(json.dumps({"sid": f"SM{n:032d}", "status": "queued"}), 201, mimetype="application/json")

    def _webhook(self, request):
        body = request.get_json(force=True, silent=True) or {}
        n = self._record({"channel": body.get("channel", ""), "to": body.get("to", ""), "text": body.get("text", "")})
        return self._response(json.dumps({"id": f"msg-{n}"}), 200, mimetype="application/json")

    def messages(self, to: str | None = None) -> list[dict]:
        with self._lock:
            return [entry for entry in self.received if to is None or entry["to"] == to]

    def _hook(self, request):
        """A merchant's webhook receiver: keeps the raw body and the signature header."""
        with self._lock:
            self.hooks.append((request.get_data(), request.headers.get("Appease-Signature", "")))
        return self._response("", 204)

    def hook_bodies(self) -> list[tuple[bytes, str]]:
        with self._lock:
            return list(self.hooks)


# --- The database and Redis of the run ------------------------------------------------------


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A database of its own on the server `server_url` names, dropped afterwards."""
    import psycopg
    from psycopg import sql

    name = f"journeys_{os.getpid()}"
    admin_url = _with_database(server_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        # Left by a run that was killed (SIGKILL: no teardown): its process is gone and
        # nothing is connected. A run still going, here or elsewhere, is connected.
        stale = admin.execute(
            "SELECT datname FROM pg_database WHERE datname ~ '^journeys_[0-9]+$' AND datname NOT IN "
            "(SELECT datname FROM pg_stat_activity WHERE datname IS NOT NULL)"
        ).fetchall()
        for (old,) in stale:
            if not Path(f"/proc/{old.removeprefix('journeys_')}").exists():
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(old)))
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_database(server_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextlib.contextmanager
def emptied_redis(url: str) -> Iterator[str]:
    """The Redis database `url` names, empty before and after (the broker's queues and the
    cache: nothing left over from other tests reaches the worker)."""
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


# --- The processes ----------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the process that started it dies, however
    it dies (kept across exec). The last line of defence against a stray process."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Stack(Cluster):
    """The product's processes, with one environment: production settings and this run's
    database, Redis, mail and gateways. (Cluster: tests/scale/test_scale_out.py.)"""

    settings: dict[str, str] = field(default_factory=dict)
    preexec = staticmethod(_die_with_parent)

    def environment(self, extra: dict[str, str]) -> dict[str, str]:
        env = {key: os.environ[key] for key in ("HOME", "LANG", "LC_ALL", "TMPDIR") if key in os.environ}
        # This virtualenv's python, gunicorn and celery first on PATH, as in the image.
        env["PATH"] = os.pathsep.join([str(BIN), os.environ.get("PATH", "/usr/bin:/bin")])
        return {**env, **self.settings, **extra}

    def entrypoint(self, name: str, *args: str, extra: dict[str, str] | None = None) -> str:
        """`deploy/entrypoint.sh args...` run to its end (a release step, a data load):
        its output; fails with it."""
        process = self.spawn(name, [ENTRYPOINT, *args], extra or {})
        try:
            process.popen.wait(timeout=RELEASE_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            raise AssertionError(f"{name} took over {RELEASE_TIMEOUT} s\n{process.logs()}") from None
        assert process.popen.returncode == 0, process.logs()
        return process.log.read_text(errors="replace")


@dataclass
class Product:
    """What the journeys see of the running product."""

    url: str  # the web process, as the browser and API clients reach it
    mailbox: Mailbox
    gateways: Gateways
    merchant_key: str  # printed by demo_data
    site_key: str  # the demo feedback site's public key, printed by demo_data
    stack: Stack
    artefacts: Path
    database_url: str  # the run's database: for what a journey counts behind the pages

    def logs(self) -> str:
        return self.stack.logs()

    def query(self, sql: str, *params) -> list[tuple]:
        """Rows from the running product's database (its own connection, autocommit)."""
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as connection:
            cursor = connection.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def api(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {**PROXIED, **kwargs.pop("headers", {})}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)


def _printed(output: str, pattern: str, what: str) -> str:
    found = re.search(pattern, output)
    assert found, f"{what} not found in demo_data's output:\n{output}"
    return found.group(1)


def _artefacts(tmp_path_factory) -> Path:
    wanted = os.environ.get("JOURNEYS_ARTEFACTS")
    if wanted:
        path = Path(wanted)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("journeys")


@pytest.fixture(scope="package")
def product(tmp_path_factory) -> Iterator[Product]:
    if not shutil.which(CHROMIUM):
        pytest.skip(f"needs Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)")
    artefacts = _artefacts(tmp_path_factory)
    directory = artefacts / "stack"
    directory.mkdir(exist_ok=True)
    mailbox, gateways = Mailbox(), Gateways()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    stack: Stack | None = None

    def stop() -> None:
        if stack is not None:
            stack.stop_all()

    atexit.register(stop)  # an interrupted run still stops what it started
    try:
        with (
            fresh_database(os.environ["DATABASE_URL"]) as database_url,
            emptied_redis(os.environ["REDIS_URL"]) as redis,
        ):
            smtp.start()
            gateways.start()
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            static_root = directory / "static"
            stack = Stack(directory=directory, broker_port=0, settings={})
            stack.settings = {
                "DJANGO_SETTINGS_MODULE": "appease.settings",
                "DEBUG": "0",
                "SECRET_KEY": token_urlsafe(50),
                "CODE_HASH_KEY": token_urlsafe(32),
                "CODE_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
                "ALLOWED_HOSTS": "127.0.0.1",
                # The browser reaches http://127.0.0.1:<port> and says https the way the TLS
                # proxy does (X-Forwarded-Proto): its Origin is the http one.
                "CSRF_TRUSTED_ORIGINS": url,
                "PUBLIC_URL": url,
                "DATABASE_URL": database_url,
                "REDIS_URL": redis,
                "STATIC_ROOT": str(static_root),
                "APPEASE_VAR_DIR": str(directory / "var"),
                "LOG_LEVEL": "INFO",
                "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "EMAIL_HOST": "127.0.0.1",
                "EMAIL_PORT": str(smtp.port),
                "DEFAULT_FROM_EMAIL": "Casa Verde <care@casaverde.example>",
                "SMS_BASE_URL": gateways.url,
                "SMS_ACCOUNT_SID": SMS_ACCOUNT,
                "SMS_AUTH_TOKEN": token_urlsafe(20),
                "SMS_FROM": "+15005550006",
                "CHAT_WEBHOOK_URL": f"{gateways.url}/chat",
                "SOCIAL_WEBHOOK_URL": f"{gateways.url}/social",
                "WEBHOOK_SECRET": token_urlsafe(32),
                # the merchant's webhook receiver is this machine's gateway server (loopback)
                "WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "1",
                # The loop closes while the journeys watch: the follow-up is due at once
                # (beat sends due ones every minute); the reports' rollups every 10 s.
                "FOLLOW_UP_DELAY_MINUTES": "0",
                "REPORTING_REFRESH_SECONDS": "10",
            }
            # Every process is stopped before the database is dropped and Redis emptied.
            try:
                # The release, as an operator runs it, then the data.
                stack.entrypoint("release", "release")
                demo = stack.entrypoint("demo_data", "python", "manage.py", "demo_data", extra={"DEBUG": "1"})
                stack.entrypoint("seed", *SEED)
                stack.entrypoint("history", "python", "manage.py", "generate_history", *HISTORY)
                merchant_key = _printed(demo, r"export APPEASE_KEY='([^']+)'", "the merchant API key")
                site_key = _printed(demo, r"site key (\S+)", "the feedback site key")

                # The processes, as the Procfile and the Dockerfile run them.
                web_settings = {"PORT": str(port), "WEB_CONCURRENCY": "2", "WEB_THREADS": "4"}
                web = stack.spawn("web", [ENTRYPOINT, "web"], web_settings)
                worker = stack.spawn("worker", [ENTRYPOINT, "worker"], {"WORKER_CONCURRENCY": "2"})
                beat = stack.spawn("beat", [ENTRYPOINT, "beat"], {})
                stack.wait_web(web, url)
                stack.wait_worker(worker)
                stack.wait_beat(beat)
                yield Product(url, mailbox, gateways, merchant_key, site_key, stack, artefacts, database_url)
                for process in (web, worker, beat):
                    process.assert_running()
            finally:
                stop()
    finally:
        atexit.unregister(stop)
        gateways.stop()
        with contextlib.suppress(AttributeError):  # never started
            smtp.stop()
        print(f"journeys: logs, screenshots and pages under {artefacts}")


# --- The browser -------------------------------------------------------------------------------


@pytest.fixture(scope="package")
def browser(product, chromium):
    # The run's one Chromium (tests/conftest.py), once the product is up.
    return chromium


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.journey_failed = report.failed
    return report


BROWSER_LOCALES = {"en": "en-US", "es": "es-ES", "pt-br": "pt-BR"}


class People:
    """Browser contexts for the people of one journey, each with their own cookies, at
    1366x768, in their browser's language, sending what the TLS proxy adds. Each page of a
    failed journey is saved (screenshot and HTML) under the artefacts folder."""

    def __init__(self, browser, product: Product, name: str) -> None:
        self.browser = browser
        self.product = product
        self.name = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)[:120]
        self.contexts = []

    def new_page(self, language: str = "en"):
        locale = BROWSER_LOCALES[language]
        context = self.browser.new_context(
            viewport=VIEWPORT,
            locale=locale,
            base_url=self.product.url,
            extra_http_headers={**PROXIED, "Accept-Language": f"{locale},{language};q=0.9"},
            accept_downloads=True,
        )
        context.set_default_timeout(PAGE_TIMEOUT)
        self.contexts.append(context)
        return context.new_page()

    def save(self) -> None:
        for n, context in enumerate(self.contexts):
            for m, page in enumerate(context.pages):
                stem = self.product.artefacts / f"{self.name}-{n}-{m}"
                with contextlib.suppress(Exception):  # a page that crashed: save what can be saved
                    page.screenshot(path=f"{stem}.png", full_page=True)
                    Path(f"{stem}.html").write_text(page.content())

    def close(self) -> None:
        for context in self.contexts:
            with contextlib.suppress(Exception):
                context.close()


@pytest.fixture
def people(request, browser, product) -> Iterator[People]:
    crowd = People(browser, product, request.node.name)
    try:
        yield crowd
    finally:
        if getattr(request.node, "journey_failed", True):
            crowd.save()
        crowd.close()


@pytest.fixture(autouse=True)
def _fast_and_isolated():
    """Overrides tests/conftest.py's: no cache.clear() here. The product's broker and cache
    share REDIS_URL's database with this process, and clearing it between journeys would
    drop queued tasks from under the running worker."""
    yield
    translation.deactivate()
