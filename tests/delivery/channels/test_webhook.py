"""WebhookAdapter against a real local HTTP server playing the chat/social gateway, and
the signature scheme."""

from __future__ import annotations

import json
import threading
import time

import pytest
from werkzeug import Response

from appease.delivery.channels.base import PermanentError, SendResult, TransientError, adapter_for
from appease.delivery.channels.webhook import WebhookAdapter, sign, verify
from tests.delivery.channels.conftest import free_port, make_message

SECRET = "whsec-test-secret"
TEXT = "Sentimos el retraso. Tu código: ABCD-EFGH-JKLM"


@pytest.fixture
def gateway(settings, httpserver):
    settings.CHAT_WEBHOOK_URL = httpserver.url_for("/chat/messages")
    settings.SOCIAL_WEBHOOK_URL = httpserver.url_for("/social/messages")
    settings.WEBHOOK_SECRET = SECRET
    settings.WEBHOOK_TIMEOUT = 0.5
    settings.DELIVERY_ADAPTERS = {
        **settings.DELIVERY_ADAPTERS,
        "chat": "appease.delivery.channels.webhook.WebhookAdapter",
        "social": "appease.delivery.channels.webhook.WebhookAdapter",
    }
    return httpserver


def chat_message(**overrides):
    return make_message(**{"channel": "chat", "to": "whatsapp:+34600111222", "subject": "", "text": TEXT, **overrides})


def test_a_201_with_an_id_is_sent_signed_and_keyed(gateway):
    # given
    gateway.expect_oneshot_request("/chat/messages", method="POST").respond_with_json({"id": "wamid.123"}, status=201)
    message = chat_message(idempotency_key="delivery-5", metadata={"delivery_id": 5, "issuance_id": 2})

    # when
    before = int(time.time())
    result = adapter_for("chat").send(message)

    # then
    assert result == SendResult(provider_message_id="wamid.123", status_code=201)
    [(request, _response)] = gateway.log
    body = request.get_data()
    assert request.content_type == "application/json"
    assert json.loads(body) == {
        "channel": "chat",
        "to": "whatsapp:+34600111222",
        "text": TEXT,
        "idempotency_key": "delivery-5",
        "metadata": {"delivery_id": 5, "issuance_id": 2},
    }
    assert request.headers["Idempotency-Key"] == "delivery-5"
    timestamp = request.headers["X-Appease-Timestamp"]
    assert before <= int(timestamp) <= time.time()
    signature = request.headers["X-Appease-Signature"]
    assert signature.startswith("sha256=")
    assert verify(SECRET, timestamp, body, signature)


def test_the_social_channel_posts_to_its_own_url(gateway):
    gateway.expect_oneshot_request("/social/messages", method="POST").respond_with_json({"id": 991}, status=200)

    result = adapter_for("social").send(chat_message(channel="social", to="@maria_g"))

    assert result.provider_message_id == "991"
    assert json.loads(gateway.log[0][0].get_data())["channel"] == "social"


def test_a_2xx_without_an_id_is_transient(gateway):
    gateway.expect_oneshot_request("/chat/messages", method="POST").respond_with_data("ok", status=200)

    with pytest.raises(TransientError):
        adapter_for("chat").send(chat_message())


def test_a_500_is_transient(gateway):
    gateway.expect_oneshot_request("/chat/messages", method="POST").respond_with_json({"error": "boom"}, status=500)

    with pytest.raises(TransientError) as caught:
        adapter_for("chat").send(chat_message())

    assert caught.value.status_code == 500


def test_a_429_is_transient_with_retry_after(gateway):
    gateway.expect_oneshot_request("/chat/messages", method="POST").respond_with_json(
        {"error": "rate_limited"}, status=429, headers={"Retry-After": "7"}
    )

    with pytest.raises(TransientError) as caught:
        adapter_for("chat").send(chat_message())

    assert caught.value.retry_after == 7
    assert caught.value.status_code == 429


def test_a_503_honours_retry_after_too(gateway):
    gateway.expect_oneshot_request("/chat/messages", method="POST").respond_with_data(
        "", status=503, headers={"Retry-After": "120"}
    )

    with pytest.raises(TransientError) as caught:
        adapter_for("chat").send(chat_message())

    assert caught.value.retry_after == 120


def test_a_response_slower_than_the_timeout_is_transient(gateway):
    answered, release = threading.Event(), threading.Event()

    def slow(request):
        # Holds the answer until the client has given up (bounded): no race with the clock.
        release.wait(30)
        answered.set()
        return Response('{"id": "late"}', status=201, content_type="application/json")

    gateway.expect_oneshot_request("/chat/messages", method="POST").respond_with_handler(slow)

    with pytest.raises(TransientError) as caught:
        adapter_for("chat").send(chat_message())

    # then: the client gave up on its timeout, before any answer came
    assert not answered.is_set()
    assert "timed out" in caught.value.detail
    release.set()
    assert answered.wait(30)  # the server is single-threaded: let it finish before the next test


def test_a_gateway_that_is_down_is_transient():
    adapter = WebhookAdapter(url=f"http://127.0.0.1:{free_port()}/chat", secret=SECRET, timeout=1)

    with pytest.raises(TransientError):
        adapter.send(chat_message())


@pytest.mark.parametrize(
    ("status", "error", "reason"),
    [
        (400, "invalid_recipient", "invalid_address"),
        (404, "invalid_recipient", "invalid_address"),
        (400, "opted_out", "opted_out"),
        (403, "opted_out", "unauthorized"),  # 401/403 are about our credentials, whatever the body says
        (400, "message_too_long", "rejected"),
        (422, "", "rejected"),
        (401, "bad_signature", "unauthorized"),
    ],
)
def test_4xx_are_permanent_with_the_reason_the_body_gives(gateway, status, error, reason):
    gateway.expect_oneshot_request("/chat/messages", method="POST").respond_with_json(
        {"error": error, "message": "whatsapp:+34600111222 cannot receive messages"}, status=status
    )

    with pytest.raises(PermanentError) as caught:
        adapter_for("chat").send(chat_message())

    assert caught.value.reason == reason
    assert caught.value.status_code == status
    assert "+34600111222" not in str(caught.value)
    assert TEXT not in str(caught.value)


def test_an_error_token_that_echoes_the_handle_is_not_logged(gateway):
    gateway.expect_oneshot_request("/social/messages", method="POST").respond_with_json(
        {"error": "maria_g"}, status=400
    )

    with pytest.raises(PermanentError) as caught:
        adapter_for("social").send(chat_message(channel="social", to="@maria_g"))

    assert "maria_g" not in caught.value.detail


def test_a_408_is_transient(gateway):
    gateway.expect_oneshot_request("/chat/messages", method="POST").respond_with_data("", status=408)

    with pytest.raises(TransientError):
        adapter_for("chat").send(chat_message())


# --- sign / verify -------------------------------------------------------------------

BODY = b'{"event":"delivered","id":"wamid.123"}'


def test_sign_is_hmac_sha256_of_timestamp_dot_body():
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()

    assert sign(SECRET, 1700000000, BODY) == f"sha256={expected}"
    assert sign(SECRET, "1700000000", BODY.decode()) == f"sha256={expected}"


def test_verify_accepts_a_fresh_genuine_signature():
    now = time.time()
    timestamp = int(now) - 10

    assert verify(SECRET, timestamp, BODY, sign(SECRET, timestamp, BODY), now=now)
    assert verify(SECRET, str(timestamp), BODY, sign(SECRET, timestamp, BODY))


def test_verify_rejects_a_wrong_signature():
    timestamp = int(time.time())

    assert not verify(SECRET, timestamp, BODY, sign("another-secret", timestamp, BODY))
    assert not verify(SECRET, timestamp, BODY, "sha256=" + "0" * 64)
    assert not verify(SECRET, timestamp, BODY, "")


def test_verify_rejects_a_modified_body():
    timestamp = int(time.time())
    signature = sign(SECRET, timestamp, BODY)

    assert not verify(SECRET, timestamp, BODY.replace(b"delivered", b"failed"), signature)


def test_verify_rejects_a_signature_moved_to_another_timestamp():
    timestamp = int(time.time())
    signature = sign(SECRET, timestamp, BODY)

    assert not verify(SECRET, timestamp + 1, BODY, signature)


@pytest.mark.parametrize("age", [301, 3600, -301])
def test_verify_rejects_a_stale_or_future_timestamp(age):
    now = time.time()
    timestamp = int(now) - age

    assert not verify(SECRET, timestamp, BODY, sign(SECRET, timestamp, BODY), now=now)


def test_verify_tolerance_is_configurable():
    now = 1_700_000_000
    timestamp = now - 600

    assert verify(SECRET, timestamp, BODY, sign(SECRET, timestamp, BODY), tolerance=900, now=now)
    assert not verify(SECRET, timestamp, BODY, sign(SECRET, timestamp, BODY), tolerance=300, now=now)


@pytest.mark.parametrize("timestamp", ["", "yesterday", None, "1.5e9"])
def test_verify_rejects_an_unreadable_timestamp(timestamp):
    assert not verify(SECRET, timestamp, BODY, sign(SECRET, str(timestamp), BODY))
