"""Health, readiness, metrics, and log lines that follow a request into its tasks
without ever carrying a whole code, email address or phone number."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.core.cache import cache
from pythonjsonlogger.json import JsonFormatter

from appease.celery import app
from appease.core.observability import RedactFilter, RequestIdFilter, redact, request_id_var
from tests.factories import staff_user
from tests.issuance.test_issuance import give

pytestmark = pytest.mark.django_db


def test_liveness_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok" and ready.json()["checks"]["broker"] == "ok"


def test_degraded_not_unavailable_when_the_broker_is_unreachable(client):
    # A web process serves without the broker (the outbox's sweeper enqueues later): a
    # load balancer must not take it out of rotation (docs/adr/0008-cache-outage.md).
    previous = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        response = client.get("/readyz")
    finally:
        app.conf.broker_url = previous

    assert response.status_code == 200
    assert response.json()["status"] == "degraded" and response.json()["degraded"] == ["broker"]
    assert response.json()["checks"]["broker"].startswith("error")
    assert response.json()["checks"]["database"] == "ok"


def scrape(client, **headers):
    cache.delete("metrics:business")
    return client.get("/metrics", **headers)


def test_metrics_need_the_token_or_in_the_demo_the_local_machine(client, settings):
    settings.DEBUG = True
    assert scrape(client, REMOTE_ADDR="10.1.2.3").status_code == 403
    assert scrape(client, REMOTE_ADDR="127.0.0.1").status_code == 200
    settings.METRICS_TOKEN = "s3cret-token"
    assert scrape(client, REMOTE_ADDR="127.0.0.1").status_code == 403
    assert scrape(client, HTTP_AUTHORIZATION="Bearer wrong", REMOTE_ADDR="127.0.0.1").status_code == 403
    assert scrape(client, HTTP_AUTHORIZATION="Bearer s3cret-token", REMOTE_ADDR="10.1.2.3").status_code == 200


def test_in_production_metrics_need_the_token_even_from_the_local_machine(client, settings):
    """Behind a proxy on the same host, every visitor arrives from 127.0.0.1."""
    settings.DEBUG = False
    settings.METRICS_TOKEN = ""

    response = scrape(client, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7")

    assert response.status_code == 403


def test_metrics_show_the_business_and_the_requests(client, settings):
    settings.DEBUG = True
    csr = staff_user()
    from tests.feedback.conftest import policy_create  # a roomy budget

    csr.profile.policy = policy_create(day_cost_amount=1000)
    csr.profile.save()
    give(csr)
    give(csr)

    body = scrape(client, REMOTE_ADDR="127.0.0.1").content.decode()

    assert 'appease_issuances{status="issued"} 2.0' in body
    assert 'appease_deliveries{channel="email",status="pending"} 2.0' in body
    assert "appease_delivery_queue_depth 2.0" in body
    assert "django_http_requests_latency_seconds_by_view_method" in body


def test_failed_lookups_are_counted(api, client, settings):
    settings.DEBUG = True

    def failures() -> float:
        body = scrape(client, REMOTE_ADDR="127.0.0.1").content.decode()
        lines = [line for line in body.splitlines() if line.startswith("appease_failed_lookups_total")]
        return sum(float(line.split()[-1]) for line in lines)

    before = failures()
    response = api.post(
        "/api/v1/codes/validate",
        {"code": "ABCD-EFGH-JKLM-NPQR-S", "order_total": "50", "currency": "USD"},
        format="json",
    )
    assert response.json() == {"valid": False, "reason": "unknown"}

    assert failures() == before + 1


def test_redaction_keeps_only_what_identifies_nothing():
    line = redact("code ABCD-EFGH-JKLM-NPQR-S for maria.lopez@example.com, +34 612 345 678 (order 2026-11-22)")

    assert line == "code ****-PQRS for m***@example.com, ***678 (order 2026-11-22)"


def test_a_log_line_is_json_with_the_request_id_and_nothing_personal():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactFilter())
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s"))
    logger = logging.getLogger("appease.test")
    logger.addHandler(handler)
    token = request_id_var.set("req-abcdef12")
    try:
        logger.warning("sent %s to %s", "ABCD-EFGH-JKLM-NPQR-S", "ana@example.com")
    finally:
        request_id_var.reset(token)
        logger.removeHandler(handler)

    record = json.loads(stream.getvalue())
    assert record["request_id"] == "req-abcdef12"
    assert record["message"] == "sent ****-PQRS to a***@example.com"


def test_the_request_id_travels_into_the_tasks_a_request_enqueues(client, django_capture_on_commit_callbacks):
    """The API's request id goes into the task's headers and comes back in the worker."""
    published = []

    from celery.signals import before_task_publish

    def capture(headers=None, **kwargs):
        published.append(dict(headers or {}))

    before_task_publish.connect(capture, weak=False)
    try:
        csr = staff_user()
        from tests.feedback.conftest import policy_create

        csr.profile.policy = policy_create(day_cost_amount=1000)
        csr.profile.save()
        client.force_login(csr)
        from tests.factories import customer_create, offer_create, reason_create

        with django_capture_on_commit_callbacks(execute=True):
            client.post(
                "/api/v1/issuances",
                {
                    "customer_id": customer_create().pk,
                    "offer_id": offer_create().pk,
                    "reason_code": reason_create().code,
                },
                content_type="application/json",
                HTTP_X_REQUEST_ID="req-trace-0001",
            )
    finally:
        before_task_publish.disconnect(capture)

    assert [headers.get("request_id") for headers in published] == ["req-trace-0001"]

    @app.task
    def probe():
        return request_id_var.get()

    assert probe.apply(headers={"request_id": "req-trace-0001"}).get() == "req-trace-0001"


CODE, EMAIL, PHONE = "ABCD-EFGH-JKLM-NPQR-S", "maria.lopez@example.com", "+34 612 345 678"


@pytest.fixture(params=["plain", "json"])
def log_output(request, settings):
    """What the configured console handler writes, with the formatter of each LOG_FORMAT."""
    from logging.config import DictConfigurator

    handler = next(handler for handler in logging.getLogger().handlers if handler.get_name() == "console")
    formatter = DictConfigurator({}).configure_formatter(dict(settings.LOGGING["formatters"][request.param]))
    stream = io.StringIO()
    previous_stream, previous_formatter = handler.setStream(stream), handler.formatter
    handler.setFormatter(formatter)
    try:
        yield stream
    finally:
        handler.setStream(previous_stream)
        handler.setFormatter(previous_formatter)


def assert_nothing_personal(text: str) -> None:
    for whole in (CODE, CODE.replace("-", ""), EMAIL, PHONE, PHONE.replace(" ", ""), "612 345 678"):
        assert whole not in text
    assert "****-PQRS" in text and "m***@example.com" in text and "***678" in text


def test_arguments_of_a_log_call_are_redacted(log_output, caplog):
    # given a logger of ours
    # when a code, an email address and a phone number are passed as %s arguments
    logging.getLogger("appease.test").warning("sent %s to %s and %s", CODE, EMAIL, PHONE)

    # then neither the written line nor the record other handlers get carries them whole
    assert_nothing_personal(log_output.getvalue())
    assert_nothing_personal(caplog.records[-1].getMessage())


def test_an_exception_message_is_redacted(log_output, caplog):
    # given an exception whose message holds a code, an email address and a phone number
    try:
        raise ValueError(f"no customer {EMAIL} / {PHONE} for code {CODE}")
    except ValueError:
        # when it is logged with its traceback
        logging.getLogger("appease.test").exception("delivery failed")

    # then the traceback is written, redacted
    written = log_output.getvalue()
    assert "ValueError: no customer" in written and "Traceback" in written
    assert_nothing_personal(written)
    assert caplog.records[-1].exc_info is None
    assert_nothing_personal(caplog.records[-1].exc_text)


def test_extra_fields_are_redacted(log_output, caplog):
    # given the JSON lines carry every `extra` field
    # when codes, email addresses and phone numbers are passed in `extra`, nested too
    logging.getLogger("appease.test").info(
        "delivered", extra={"code": CODE, "customer": {"email": EMAIL, "phones": [PHONE]}}
    )

    # then none reaches the line or the record whole
    record = caplog.records[-1]
    assert_nothing_personal(f"{record.code} {record.customer}")
    written = log_output.getvalue()
    for whole in (CODE, EMAIL, PHONE):
        assert whole not in written
    if written.startswith("{"):  # the JSON formatter writes the extra fields
        line = json.loads(written)
        assert line["code"] == "****-PQRS"
        assert line["customer"] == {"email": "m***@example.com", "phones": ["***678"]}


def test_a_structured_message_is_redacted_and_stays_structured(log_output):
    # when a dict is logged (python-json-logger merges it into the line)
    logging.getLogger("appease.test").info({"event": "sent", "to": EMAIL, "code": CODE, "phone": PHONE})

    # then its values are redacted (and in JSON it is still fields of the line)
    written = log_output.getvalue()
    assert_nothing_personal(written)
    if written.startswith("{"):
        assert json.loads(written)["to"] == "m***@example.com"


@pytest.fixture
def production_http(settings):
    """DEBUG off, HTTPS enforced, one public host name: what a load balancer meets."""
    settings.DEBUG = False
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.ALLOWED_HOSTS = ["appease.example.com"]
    return settings


def test_the_load_balancer_probes_over_plain_http_with_an_ip_host(client, production_http):
    # given production settings, and a probe over plain HTTP, Host an IP, no X-Forwarded-Proto
    # when it asks for liveness and readiness
    live = client.get("/healthz", HTTP_HOST="10.0.0.5")
    ready = client.get("/readyz", HTTP_HOST="10.0.0.5")

    # then both answer, with each check
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    assert ready.status_code == 200, ready.content
    assert ready.json()["status"] == "ready"
    assert ready.json()["checks"]["database"] == "ok" and ready.json()["checks"]["broker"] == "ok"


def test_every_other_path_still_meets_allowed_hosts_and_the_https_redirect(client, production_http):
    # given production settings
    # when anything else is asked for with an IP Host, or over plain HTTP
    by_ip = client.get("/accounts/login/", HTTP_HOST="10.0.0.5")
    plain = client.get("/accounts/login/", HTTP_HOST="appease.example.com")

    # then the IP is refused and plain HTTP is sent to HTTPS
    assert by_ip.status_code == 400
    assert plain.status_code == 301 and plain["Location"].startswith("https://appease.example.com/")


def test_readiness_over_plain_http_says_degraded_when_the_broker_is_down(client, production_http):
    # given a broker nothing listens on (a real connection attempt to a closed port)
    previous = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        # when the load balancer probes
        ready = client.get("/readyz", HTTP_HOST="10.0.0.5")
        live = client.get("/healthz", HTTP_HOST="10.0.0.5")
    finally:
        app.conf.broker_url = previous

    # then still in rotation (requests are served; the outbox waits for the broker), with
    # the failing check named; alive too
    assert ready.status_code == 200
    assert ready["Content-Type"] == "application/json"
    body = ready.json()
    assert body["status"] == "degraded" and body["degraded"] == ["broker"]
    assert body["checks"]["broker"].startswith("error") and body["checks"]["database"] == "ok"
    assert live.status_code == 200


def test_readiness_over_plain_http_says_503_when_the_database_is_down(client, production_http, monkeypatch):
    # given a database nothing listens on (a real connection attempt to a closed port)
    import psycopg

    from tests.delivery.channels.conftest import free_port

    def unreachable() -> str:
        psycopg.connect(host="127.0.0.1", port=free_port(), dbname="appease", connect_timeout=5)
        return "ok"

    monkeypatch.setattr("appease.health._check_database", unreachable)

    # when the load balancer probes
    ready = client.get("/readyz", HTTP_HOST="10.0.0.5")

    # then out of rotation, with the failing check named
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert ready.json()["checks"]["database"] == "error: OperationalError"


def test_a_json_line_stays_json_with_long_numbers_in_it(settings):
    # given the JSON formatter and a record carrying a ten-digit id and a byte count
    from logging.config import DictConfigurator

    formatter = DictConfigurator({}).configure_formatter(dict(settings.LOGGING["formatters"]["json"]))
    record = logging.makeLogRecord(
        {"msg": "sent to %s", "args": (EMAIL,), "order_id": 1234567890, "bytes": 2147483648, "request_id": ""}
    )

    # when it is written
    line = json.loads(formatter.format(record))

    # then the numbers are numbers and the strings are redacted
    assert line["order_id"] == 1234567890 and line["bytes"] == 2147483648
    assert line["message"] == "sent to m***@example.com"
