"""TwilioSmsAdapter against a real local HTTP server playing the provider."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from werkzeug import Response

from appease.delivery.channels.base import PermanentError, SendResult, TransientError, adapter_for
from appease.delivery.channels.sms import TwilioSmsAdapter
from tests.delivery.channels.conftest import free_port, make_message

PATH = "/2010-04-01/Accounts/AC0123456789/Messages.json"
TO = "+5511987654321"
TEXT = "Pedimos desculpas. Seu código: ABCD-EFGH-JKLM"


@pytest.fixture
def sms(settings, httpserver):
    settings.SMS_BASE_URL = httpserver.url_for("/").rstrip("/")
    settings.SMS_ACCOUNT_SID = "AC0123456789"
    settings.SMS_AUTH_TOKEN = "token-xyz"
    settings.SMS_FROM = "+15005550006"
    settings.SMS_TIMEOUT = 0.5
    settings.DELIVERY_ADAPTERS = {**settings.DELIVERY_ADAPTERS, "sms": "appease.delivery.channels.sms.TwilioSmsAdapter"}
    return httpserver


def sms_message(**overrides):
    return make_message(**{"channel": "sms", "to": TO, "subject": "", "text": TEXT, **overrides})


def test_a_201_with_a_sid_is_sent(sms):
    # given
    sms.expect_oneshot_request(PATH, method="POST").respond_with_json(
        {"sid": "SM0123456789abcdef", "status": "queued"}, status=201
    )

    # when
    result = adapter_for("sms").send(sms_message(idempotency_key="delivery-9"))

    # then
    assert result == SendResult(provider_message_id="SM0123456789abcdef", status_code=201)
    [(request, _response)] = sms.log
    assert request.content_type == "application/x-www-form-urlencoded"
    assert request.form.to_dict() == {"To": TO, "From": "+15005550006", "Body": TEXT}
    assert request.authorization.type == "basic"
    assert (request.authorization.username, request.authorization.password) == ("AC0123456789", "token-xyz")
    assert request.headers["I-Twilio-Idempotency-Token"] == "delivery-9"


def test_a_200_with_a_sid_is_sent_too(sms):
    sms.expect_oneshot_request(PATH, method="POST").respond_with_json({"sid": "SM1"}, status=200)

    assert adapter_for("sms").send(sms_message()).provider_message_id == "SM1"


def test_a_2xx_without_a_sid_is_not_taken_for_sent(sms):
    sms.expect_oneshot_request(PATH, method="POST").respond_with_data("accepted", status=202)

    with pytest.raises(TransientError) as caught:
        adapter_for("sms").send(sms_message())

    assert caught.value.status_code == 202


def test_a_500_is_transient(sms):
    sms.expect_oneshot_request(PATH, method="POST").respond_with_json({"code": 20500, "message": "oops"}, status=500)

    with pytest.raises(TransientError) as caught:
        adapter_for("sms").send(sms_message())

    assert caught.value.status_code == 500
    assert caught.value.retry_after is None


def test_a_429_is_transient_with_retry_after_in_seconds(sms):
    sms.expect_oneshot_request(PATH, method="POST").respond_with_json(
        {"code": 20429, "message": "Too Many Requests"}, status=429, headers={"Retry-After": "7"}
    )

    with pytest.raises(TransientError) as caught:
        adapter_for("sms").send(sms_message())

    assert caught.value.status_code == 429
    assert caught.value.retry_after == 7


def test_a_503_with_retry_after_as_an_http_date(sms):
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    sms.expect_oneshot_request(PATH, method="POST").respond_with_data("down", status=503, headers={"Retry-After": when})

    with pytest.raises(TransientError) as caught:
        adapter_for("sms").send(sms_message())

    assert 25 <= caught.value.retry_after <= 30


def test_a_408_is_transient(sms):
    sms.expect_oneshot_request(PATH, method="POST").respond_with_data("", status=408)

    with pytest.raises(TransientError):
        adapter_for("sms").send(sms_message())


def test_a_response_slower_than_the_timeout_is_transient(sms):
    # given a provider that takes longer than SMS_TIMEOUT (0.5 s) to answer
    answered, release = threading.Event(), threading.Event()

    def slow(request):
        # Holds the answer until the client has given up (bounded): no race with the clock.
        release.wait(30)
        answered.set()
        return Response('{"sid": "SMlate"}', status=201, content_type="application/json")

    sms.expect_oneshot_request(PATH, method="POST").respond_with_handler(slow)

    # when
    with pytest.raises(TransientError) as caught:
        adapter_for("sms").send(sms_message())

    # then
    # then: the client gave up on its timeout, before any answer came
    assert not answered.is_set()
    assert "timed out" in caught.value.detail
    release.set()
    assert answered.wait(30)  # the server is single-threaded: let it finish before the next test


def test_a_provider_that_is_down_is_transient(settings):
    adapter = TwilioSmsAdapter(
        base_url=f"http://127.0.0.1:{free_port()}",
        account_sid="AC1",
        auth_token="t",
        from_number="+15005550006",
        timeout=1,
    )

    with pytest.raises(TransientError) as caught:
        adapter.send(sms_message())

    assert "ConnectError" in caught.value.detail


@pytest.mark.parametrize(
    ("code", "reason"),
    [(21211, "invalid_address"), (21614, "invalid_address"), (21610, "opted_out"), (21408, "rejected")],
)
def test_a_400_is_permanent_with_the_reason_its_code_gives(sms, code, reason):
    # given the provider's error echoes the number, as Twilio's does
    sms.expect_oneshot_request(PATH, method="POST").respond_with_json(
        {"code": code, "message": f"The 'To' number {TO} is not valid.", "status": 400}, status=400
    )

    # when
    with pytest.raises(PermanentError) as caught:
        adapter_for("sms").send(sms_message())

    # then
    assert caught.value.reason == reason
    assert caught.value.status_code == 400
    assert str(code) in caught.value.detail
    assert TO not in str(caught.value)
    assert TEXT not in str(caught.value)


@pytest.mark.parametrize("status", [404, 405, 409, 413, 422])
def test_other_4xx_are_permanent_rejected(sms, status):
    sms.expect_oneshot_request(PATH, method="POST").respond_with_data("no", status=status)

    with pytest.raises(PermanentError) as caught:
        adapter_for("sms").send(sms_message())

    assert caught.value.reason == "rejected"
    assert caught.value.status_code == status


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_permanent_unauthorized(sms, status):
    sms.expect_oneshot_request(PATH, method="POST").respond_with_json({"code": 20003}, status=status)

    with pytest.raises(PermanentError) as caught:
        adapter_for("sms").send(sms_message())

    assert caught.value.reason == "unauthorized"


@pytest.mark.parametrize("to", ["5511987654321", "+0551198765", "+55 11 98765-4321", "maria@example.com", "+1"])
def test_a_number_not_in_e164_is_refused_without_calling_the_provider(sms, to):
    with pytest.raises(PermanentError) as caught:
        adapter_for("sms").send(sms_message(to=to))

    assert caught.value.reason == "invalid_address"
    assert sms.log == []
