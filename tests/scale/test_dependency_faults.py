"""Dependency faults against the production set-up: a real gunicorn (deploy/gunicorn.conf.py,
2 workers, DEBUG off, behind a TLS-terminating proxy's header) on the pytest database.

- Redis stopped, then Redis hung (accepting connections, answering nothing): every
  endpoint family answers without a 5xx (checkout validate, redeem and reverse, issuance,
  customers, feedback intake, merchant events, health, metrics, a staff login); the
  guessing guard still stops the guesser at its limit (counted in the database); /readyz
  says "degraded" with 200; the outage is logged once per process, not per request; the
  `appease_cache_degraded` gauge says so; then Redis comes back and the processes go back
  to it, without a restart.
- PostgreSQL unreachable: a 503 JSON answer (not Django's HTML 500); cut in the middle of
  a redemption's and an issuance's transaction: 503, and nothing of either written; then
  back: the same requests succeed, without a restart.

Redis is a private redis-server on a free port (broker db 0, cache db 1, as one Redis
serves both in production) behind an in-process TCP proxy that can stop or hang it;
PostgreSQL is the shared server behind another such proxy. See docs/deploy.md ("When Redis
is down") and docs/adr/0008-cache-outage.md. Latencies are printed, not asserted.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from decimal import Decimal
from secrets import token_urlsafe
from urllib.parse import quote

import httpx
import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.db import connection, transaction

from appease.core.models import StaffAPIKey
from coupons.models import Code
from feedback.models import FeedbackSite
from tests import factories
from tests.delivery.channels.conftest import free_port
from tests.delivery.test_faults import RedisServer, wait_until
from tests.factories import customer_create, merchant_with_key, offer_create, policy_create, reason_create, staff_user
from tests.netfaults import TcpProxy
from tests.scale.test_scale_out import BIN, PROXIED, START_TIMEOUT, Cluster, Process

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server on PATH (a private Redis)"),
]

REASON = "late-parcel"
LIMIT = 3  # FAILED_LOOKUP_LIMIT of the web process
METRICS_TOKEN = token_urlsafe(16)
CLIENT_TIMEOUT = 30  # seconds: a request that takes longer is a hang, and fails the test


@dataclass
class Web:
    process: Process
    url: str
    redis: TcpProxy
    database: TcpProxy
    cluster: Cluster
    latencies: dict[str, float] = field(default_factory=dict)

    def call(self, name: str, method: str, path: str, *, headers: dict | None = None, **kwargs) -> httpx.Response:
        started = time.monotonic()
        response = httpx.request(
            method, f"{self.url}{path}", headers={**PROXIED, **(headers or {})}, timeout=CLIENT_TIMEOUT, **kwargs
        )
        self.latencies[name] = max(self.latencies.get(name, 0.0), time.monotonic() - started)
        return response

    def log(self) -> str:
        return self.process.log.read_text(errors="replace")


def proxied_database_url(port: int) -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    # No TLS between the processes and the proxy: the proxy reads the statements.
    return f"postgres://{credentials}@127.0.0.1:{port}/{quote(db['NAME'], safe='')}?sslmode=disable"


@pytest.fixture
def web(transactional_db, tmp_path, settings):
    """One gunicorn on a private Redis and the pytest database, each behind a proxy."""
    settings.CODE_HASH_KEY = token_urlsafe(32)
    settings.CODE_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    # The web process's hasher (production's), so the staff login below is checked there.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    db = connection.settings_dict
    redis_server = RedisServer(port=free_port(), directory=tmp_path)
    redis_proxy = database_proxy = None
    cluster = None
    try:
        redis_server.start()
        redis_proxy = TcpProxy(("127.0.0.1", redis_server.port))
        database_proxy = TcpProxy((db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)))
        cluster = Cluster(directory=tmp_path, broker_port=redis_proxy.port)
        extra = {
            "DATABASE_URL": proxied_database_url(database_proxy.port),
            "METRICS_TOKEN": METRICS_TOKEN,
            "FAILED_LOOKUP_LIMIT": str(LIMIT),
            # One window for the whole test: a window boundary cannot reset the count.
            "FAILED_LOOKUP_WINDOW_SECONDS": "86400",
            "CACHE_RETRY_SECONDS": "2",
            # Behind one proxy: the guesser below has its own address (X-Forwarded-For).
            "NUM_PROXIES": "1",
        }
        # Cluster.web's gunicorn, with these settings on top of the cluster's.
        port = free_port()
        command = [str(BIN / "gunicorn"), "appease.wsgi:application", "--config", "deploy/gunicorn.conf.py"]
        process = cluster.spawn(
            "web",
            command,
            {"BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2", "WEB_THREADS": "2", "LOG_FORMAT": "json", **extra},
        )
        url = f"http://127.0.0.1:{port}"
        cluster.wait_web(process, url)
        yield Web(process, url, redis_proxy, database_proxy, cluster)
    finally:
        if cluster is not None:
            cluster.stop_all()
            print(cluster.logs())  # shown by pytest only when the test failed
        for proxy in (redis_proxy, database_proxy):
            if proxy is not None:
                proxy.close()
        redis_server.stop()


@dataclass
class World:
    staff: dict[str, str]
    merchant: dict[str, str]
    guesser: dict[str, str]  # another merchant's key, from another address
    site_key: str
    customer_id: int
    offer_id: int
    codes: list[str]
    username: str


def world(n_codes: int = 4) -> World:
    csr = staff_user(policy=policy_create(day_cost_amount=Decimal("10000.00")), username="rep")
    _token, staff_key = StaffAPIKey.objects.create_key(name="faults", user=csr)
    offer = offer_create(generate_on_demand=True)
    reason_create(REASON)
    _merchant, merchant_key = merchant_with_key()
    _guesser, guesser_key = merchant_with_key()
    site = FeedbackSite.objects.create(name="Shop")
    codes = []
    for _ in range(n_codes):
        with transaction.atomic():
            codes.append(factories.issued_code(offer).plaintext)
    return World(
        staff={"Authorization": f"Token {staff_key}"},
        merchant={"Authorization": f"Api-Key {merchant_key}"},
        guesser={"Authorization": f"Api-Key {guesser_key}", "X-Forwarded-For": "203.0.113.50"},
        site_key=site.public_key,
        customer_id=customer_create().pk,
        offer_id=offer.pk,
        codes=codes,
        username=csr.username,
    )


def order(code: str, n: int) -> dict:
    return {"code": code, "order_id": f"F-{n}", "order_total": "40.00", "currency": "USD"}


def log_in(web: Web, username: str) -> httpx.Response:
    """A staff login through the form, as a browser behind the proxy sends it (the
    CSRF cookie is Secure: sent by hand over the test's plain http)."""
    page = web.call("login page", "GET", "/accounts/login/")
    token = page.cookies["csrftoken"]
    origin = web.url.replace("http://", "https://")
    return web.call(
        "login",
        "POST",
        "/accounts/login/",
        data={"username": username, "password": "pw", "csrfmiddlewaretoken": token},
        headers={"Cookie": f"csrftoken={token}", "Origin": origin, "Referer": f"{origin}/accounts/login/"},
    )


def every_family(web: Web, w: World, n: int, *, code: str) -> dict[str, httpx.Response]:
    """One request of each endpoint family; the code is redeemed then reversed."""
    answers = {
        "healthz": web.call("healthz", "GET", "/healthz"),
        "readyz": web.call("readyz", "GET", "/readyz"),
        "validate": web.call("validate", "POST", "/api/v1/codes/validate", headers=w.merchant, json=order(code, n)),
    }
    answers["redeem"] = web.call("redeem", "POST", "/api/v1/redemptions", headers=w.merchant, json=order(code, n))
    redemption = answers["redeem"].json().get("id")
    answers["reverse"] = web.call(
        "reverse", "POST", f"/api/v1/redemptions/{redemption}/reverse", headers=w.merchant, json={"reason": "refund"}
    )
    answers["issue"] = web.call(
        "issue",
        "POST",
        "/api/v1/issuances",
        headers={**w.staff, "Idempotency-Key": f"issue-{n}"},
        json={"customer_id": w.customer_id, "offer_id": w.offer_id, "reason_code": REASON, "note": f"fault {n}"},
    )
    answers["customer"] = web.call(
        "customer", "POST", "/api/v1/customers", headers=w.staff, json={"name": f"Kim {n}", "email": f"kim{n}@ex.com"}
    )
    answers["customers"] = web.call("customers", "GET", "/api/v1/customers", headers=w.staff, params={"q": "kim"})
    answers["feedback"] = web.call(
        "feedback",
        "POST",
        "/api/v1/feedback",
        json={"site_key": w.site_key, "rating": 1, "text": "My parcel is late", "email": f"f{n}@example.com"},
    )
    answers["event"] = web.call(
        "event",
        "POST",
        "/api/v1/events",
        headers=w.merchant,
        json={"event_id": f"E-{n}", "event_type": "delivery_delayed", "data": {"delay_minutes": 30}},
    )
    answers["metrics"] = web.call("metrics", "GET", "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    answers["login"] = log_in(web, w.username)
    return answers


EXPECTED = {
    "healthz": 200,
    "readyz": 200,
    "validate": 200,
    "redeem": 201,
    "reverse": 200,
    "issue": 201,
    "customer": 201,
    "customers": 200,
    "feedback": 201,
    "event": 202,
    "metrics": 200,
    "login": 302,
}


def statuses(answers: dict[str, httpx.Response]) -> dict[str, int]:
    return {name: answer.status_code for name, answer in answers.items()}


def degraded_gauge(web: Web) -> float | None:
    answer = web.call("metrics", "GET", "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    found = re.search(r"^appease_cache_degraded(?:\{[^}]*\})? (\S+)$", answer.text, re.MULTILINE)
    return float(found.group(1)) if found else None


@pytest.mark.parametrize("fault", ["stopped", "hung"])
def test_every_endpoint_family_survives_redis_stopped_or_hung_and_recovers(web, fault):
    # given: a world, and every family answering with Redis up
    w = world()
    unknown = [f"WRONGCODE{i:04d}" for i in range(LIMIT + 2)]
    before = every_family(web, w, 0, code=w.codes[0])
    assert statuses(before) == EXPECTED, {k: (a.status_code, a.text[:300]) for k, a in before.items()}
    assert before["readyz"].json()["status"] == "ready"

    # when: Redis stops (connections refused) or hangs (accepted, never answered)
    web.redis.down() if fault == "stopped" else web.redis.hang()
    during = every_family(web, w, 1, code=w.codes[1])
    again = every_family(web, w, 2, code=w.codes[2])  # the breaker open: no wait at all
    guesses = [
        web.call("guess", "POST", "/api/v1/codes/validate", headers=w.guesser, json=order(code, 9)) for code in unknown
    ]

    # then: every family answered, no 5xx, as with Redis
    for answers in (during, again):
        assert statuses(answers) == EXPECTED, {k: (a.status_code, a.text[:300]) for k, a in answers.items()}
    assert during["validate"].json()["valid"] is True
    assert again["readyz"].json()["status"] == "degraded"
    assert "cache" in again["readyz"].json()["degraded"]  # and the broker, when it refuses
    # the guessing guard held its limit, counted in the database (the guesser's key and
    # address are blocked for the window; the checkout's are not)
    assert [g.status_code for g in guesses] == [200] * LIMIT + [429, 429]
    assert all(g.json() == {"valid": False, "reason": "unknown"} for g in guesses[:LIMIT])
    # logged once per web process (2 workers), not once per request; and in the metric
    wait_until(lambda: degraded_gauge(web) == 1.0, what="appease_cache_degraded 1", logs=web.log())
    said = web.log().count("cache unavailable")
    assert 1 <= said <= 2, said
    assert "Internal Server Error" not in web.log()

    # when: Redis is back
    web.redis.up()

    # then: the processes use it again, without a restart
    def ready() -> bool:
        answer = web.call("readyz", "GET", "/readyz")
        return answer.status_code == 200 and answer.json()["status"] == "ready"

    wait_until(ready, what="/readyz ready again", timeout=START_TIMEOUT, logs=web.log())
    after = every_family(web, w, 3, code=w.codes[3])
    assert statuses(after) == EXPECTED
    wait_until(lambda: degraded_gauge(web) == 0.0, what="appease_cache_degraded 0", logs=web.log())
    assert "cache available again" in web.log()
    print(
        f"redis {fault}: slowest answer per family during the outage (s): "
        + ", ".join(f"{name} {seconds:.2f}" for name, seconds in sorted(web.latencies.items()))
    )


def row_counts() -> dict[str, int]:
    """Rows in every table of ours (and auth's)."""
    labels = ("appease", "coupons", "feedback", "reporting", "auth")
    return {m._meta.label: m._default_manager.count() for m in apps.get_models() if m._meta.app_label in labels}


def test_postgresql_unavailable_is_a_503_writes_nothing_half_and_recovers(web):
    # given
    w = world(n_codes=2)
    redeem = {"headers": w.merchant, "json": order(w.codes[0], 1)}
    issue = {
        "headers": w.staff,
        "json": {"customer_id": w.customer_id, "offer_id": w.offer_id, "reason_code": REASON, "note": "pg"},
    }
    assert web.call("warm", "POST", "/api/v1/codes/validate", **redeem).status_code == 200

    # when: PostgreSQL cannot be reached at all
    web.database.down()
    down = {
        "redeem": web.call("redeem", "POST", "/api/v1/redemptions", **redeem),
        "issue": web.call("issue", "POST", "/api/v1/issuances", **issue),
        "feedback": web.call(
            "feedback", "POST", "/api/v1/feedback", json={"site_key": w.site_key, "rating": 1, "text": "late"}
        ),
        "readyz": web.call("readyz", "GET", "/readyz"),
        "healthz": web.call("healthz", "GET", "/healthz"),
    }

    # then: a clear 503 in the API's shape, the probe says unavailable, the process lives
    for name in ("redeem", "issue", "feedback"):
        answer = down[name]
        assert answer.status_code == 503, (name, answer.status_code, answer.text[:300])
        assert answer.headers["content-type"].startswith("application/json")
        assert answer.json()["error"] == "service_unavailable" and answer.headers["Retry-After"]
    assert down["readyz"].status_code == 503 and down["readyz"].json()["checks"]["database"].startswith("error")
    assert down["healthz"].status_code == 200

    # when: the connection is cut in the middle of a redemption's, then an issuance's,
    # transaction (their first row written, the next one on its way)
    counts = row_counts()
    web.database.up()
    web.database.cut_on(b'INSERT INTO "coupons_redemption"')
    mid_redeem = web.call("redeem", "POST", "/api/v1/redemptions", **redeem)
    web.database.up()
    web.database.cut_on(b'INSERT INTO "appease_delivery"')
    mid_issue = web.call("issue", "POST", "/api/v1/issuances", **issue)

    # then: 503 for both, and not one row anywhere changed
    assert web.database.cuts == 2
    assert (mid_redeem.status_code, mid_issue.status_code) == (503, 503), (mid_redeem.text, mid_issue.text)
    assert row_counts() == counts
    assert Code.objects.filter(status=Code.Status.REDEEMED).count() == 0

    # when: PostgreSQL is back
    web.database.up()

    # then: the same requests succeed, once, without a restart
    def redeemed() -> httpx.Response | None:
        answer = web.call("redeem", "POST", "/api/v1/redemptions", **redeem)
        return answer if answer.status_code != 503 else None

    assert wait_until(redeemed, what="a redemption after PostgreSQL is back", logs=web.log()).status_code == 201
    assert web.call("issue", "POST", "/api/v1/issuances", **issue).status_code == 201
    assert web.call("readyz", "GET", "/readyz").status_code == 200
    assert Code.objects.filter(status=Code.Status.REDEEMED).count() == 1
    print(
        "postgresql: slowest answer per request (s): "
        + ", ".join(f"{name} {seconds:.2f}" for name, seconds in sorted(web.latencies.items()))
    )
