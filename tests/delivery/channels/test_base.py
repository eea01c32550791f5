"""The interface: messages, errors, the adapter registry, Retry-After."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from django.core.exceptions import ImproperlyConfigured

from appease.delivery.channels.base import (
    ChannelAdapter,
    DisabledAdapter,
    PermanentError,
    SendResult,
    TransientError,
    adapter_for,
    mask_address,
    retry_after_seconds,
)
from appease.delivery.channels.email import EmailAdapter
from appease.delivery.channels.sms import TwilioSmsAdapter
from appease.delivery.channels.webhook import WebhookAdapter
from tests.delivery.channels.conftest import make_message


def test_a_message_needs_a_known_channel():
    with pytest.raises(ValueError, match="channel"):
        make_message(channel="fax")


@pytest.mark.parametrize("key", ["", "delivery 1", "delivery-1\r\nBcc: x", "<delivery-1>", "a@b", "x" * 201])
def test_an_idempotency_key_unusable_in_a_header_or_message_id_is_refused(key):
    with pytest.raises(ValueError, match="idempotency_key"):
        make_message(idempotency_key=key)


def test_a_message_is_immutable():
    message = make_message()

    with pytest.raises(AttributeError):
        message.to = "someone@example.com"


def test_adapter_for_builds_each_configured_adapter_from_its_settings(settings, tmp_path):
    # given every channel configured
    settings.DELIVERY_ADAPTERS = {
        "email": "appease.delivery.channels.email.EmailAdapter",
        "sms": "appease.delivery.channels.sms.TwilioSmsAdapter",
        "chat": "appease.delivery.channels.webhook.WebhookAdapter",
        "social": "appease.delivery.channels.base.DisabledAdapter",
    }
    settings.EMAIL_TIMEOUT = 12
    settings.SMS_BASE_URL = "https://sms.example.com"
    settings.SMS_ACCOUNT_SID = "AC1"
    settings.SMS_AUTH_TOKEN = "tok"
    settings.SMS_FROM = "+15005550006"
    settings.SMS_TIMEOUT = 4
    settings.CHAT_WEBHOOK_URL = "https://chat.example.com/send"
    settings.WEBHOOK_SECRET = "s"
    settings.WEBHOOK_TIMEOUT = 3

    # when
    email, sms, chat, social = (adapter_for(channel) for channel in ("email", "sms", "chat", "social"))

    # then
    assert isinstance(email, EmailAdapter) and email.timeout == 12
    assert isinstance(sms, TwilioSmsAdapter) and sms.timeout == 4
    assert sms.url == "https://sms.example.com/2010-04-01/Accounts/AC1/Messages.json"
    assert isinstance(chat, WebhookAdapter) and chat.url == "https://chat.example.com/send" and chat.timeout == 3
    assert isinstance(social, DisabledAdapter)
    assert all(isinstance(adapter, ChannelAdapter) for adapter in (email, sms, chat, social))


def test_a_channel_with_no_adapter_is_improperly_configured(settings):
    settings.DELIVERY_ADAPTERS = {"email": "appease.delivery.channels.email.EmailAdapter"}

    with pytest.raises(ImproperlyConfigured, match="sms"):
        adapter_for("sms")


def test_a_path_to_something_that_cannot_send_is_improperly_configured(settings):
    settings.DELIVERY_ADAPTERS = {"sms": "builtins.object"}

    with pytest.raises(ImproperlyConfigured, match="send"):
        adapter_for("sms")


def test_a_webhook_channel_without_its_url_is_improperly_configured(settings):
    settings.DELIVERY_ADAPTERS = {"social": "appease.delivery.channels.webhook.WebhookAdapter"}
    settings.SOCIAL_WEBHOOK_URL = ""

    with pytest.raises(ImproperlyConfigured, match="social"):
        adapter_for("social")


def test_a_disabled_channel_fails_permanently(settings):
    settings.DELIVERY_ADAPTERS = {"chat": "appease.delivery.channels.base.DisabledAdapter"}

    with pytest.raises(PermanentError) as caught:
        adapter_for("chat").send(make_message(channel="chat", to="@maria"))

    assert caught.value.reason == "disabled"


def test_errors_keep_their_attributes_through_pickle():
    transient = TransientError("sms provider answered 429", status_code=429, retry_after=7.0)
    permanent = PermanentError("opted_out", "sms provider refused the message: 400", status_code=400)

    again_transient = pickle.loads(pickle.dumps(transient))  # noqa: S301 (our own bytes)
    again_permanent = pickle.loads(pickle.dumps(permanent))  # noqa: S301

    assert (again_transient.detail, again_transient.status_code, again_transient.retry_after) == (
        "sms provider answered 429",
        429,
        7.0,
    )
    assert (again_permanent.reason, again_permanent.detail, again_permanent.status_code) == (
        "opted_out",
        "sms provider refused the message: 400",
        400,
    )
    assert str(again_permanent) == "opted_out: sms provider refused the message: 400"


def test_send_result_defaults():
    assert SendResult("id-1") == SendResult(provider_message_id="id-1", status_code=None)


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ("", None), ("7", 7.0), (" 120 ", 120.0), ("1.5", 1.5), ("-3", 0.0), ("soon", None), ("inf", None)],
)
def test_retry_after_in_seconds(header, expected):
    assert retry_after_seconds(header) == expected


def test_retry_after_as_an_http_date():
    future = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    past = format_datetime(datetime.now(UTC) - timedelta(seconds=90), usegmt=True)

    assert 85 <= retry_after_seconds(future) <= 90
    assert retry_after_seconds(past) == 0.0


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("maria.garcia@example.com", "m***@example.com"),
        ("+5511987654321", "+55***321"),
        ("@maria_garcia", "@ma***cia"),
        ("@bo", "@b***"),
    ],
)
def test_mask_address_keeps_only_a_hint_for_logs(address, masked):
    assert mask_address(address) == masked
