"""Delivery settings: settings are read at import time, so each case runs in a fresh
interpreter (as tests/appease/test_settings.py does)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from cryptography.fernet import Fernet

PROD = {
    "DEBUG": "0",
    "SECRET_KEY": "s" * 50,
    "CODE_HASH_KEY": "h" * 40,
    "CODE_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "ALLOWED_HOSTS": "appease.example.com",
}
SMS = {
    "SMS_BASE_URL": "https://api.twilio.com/",
    "SMS_ACCOUNT_SID": "AC0123",
    "SMS_AUTH_TOKEN": "token",
    "SMS_FROM": "+15005550006",
}
OURS = (*PROD, *SMS, "CHAT_WEBHOOK_URL", "SOCIAL_WEBHOOK_URL", "WEBHOOK_SECRET")
PRINT_ADAPTERS = (
    "import json, django; django.setup(); from django.conf import settings; "
    "print(json.dumps({'adapters': settings.DELIVERY_ADAPTERS, 'sms_base_url': settings.SMS_BASE_URL}))"
)


def start_django(**env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in OURS}
    return subprocess.run(  # noqa: S603 (a fixed command; only the environment varies)
        [sys.executable, "-c", PRINT_ADAPTERS],
        env={**clean, "DJANGO_SETTINGS_MODULE": "appease.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def adapters(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_demo_sends_sms_chat_and_social_to_the_log_adapter():
    config = adapters(start_django(DEBUG="1"))

    assert config["adapters"] == {
        "email": "appease.delivery.channels.email.EmailAdapter",
        "sms": "appease.delivery.channels.console.LogAdapter",
        "chat": "appease.delivery.channels.console.LogAdapter",
        "social": "appease.delivery.channels.console.LogAdapter",
        "webhook": "appease.delivery.channels.endpoint.EndpointAdapter",  # endpoints registered at run time
    }


def test_production_uses_the_configured_providers_and_disables_the_rest():
    config = adapters(
        start_django(**PROD, **SMS, CHAT_WEBHOOK_URL="https://gw.example.com/chat", WEBHOOK_SECRET="whsec")
    )

    assert config["adapters"] == {
        "email": "appease.delivery.channels.email.EmailAdapter",
        "sms": "appease.delivery.channels.sms.TwilioSmsAdapter",
        "chat": "appease.delivery.channels.webhook.WebhookAdapter",
        "social": "appease.delivery.channels.base.DisabledAdapter",
        "webhook": "appease.delivery.channels.endpoint.EndpointAdapter",
    }
    assert config["sms_base_url"] == "https://api.twilio.com"


def test_an_sms_provider_without_its_token_is_improperly_configured_with_debug_off():
    env = {**PROD, **SMS}
    del env["SMS_AUTH_TOKEN"]

    result = start_django(**env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SMS_AUTH_TOKEN" in result.stderr


def test_an_sms_provider_without_account_or_sender_is_improperly_configured():
    result = start_django(DEBUG="1", SMS_BASE_URL="http://127.0.0.1:9/")

    assert result.returncode != 0
    assert "SMS_ACCOUNT_SID" in result.stderr


def test_a_webhook_without_its_secret_is_improperly_configured_with_debug_off():
    result = start_django(**PROD, SOCIAL_WEBHOOK_URL="https://gw.example.com/social")

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "WEBHOOK_SECRET" in result.stderr


def test_with_debug_on_a_local_fake_provider_needs_no_real_secret():
    config = adapters(start_django(DEBUG="1", CHAT_WEBHOOK_URL="http://127.0.0.1:8025/chat"))

    assert config["adapters"]["chat"] == "appease.delivery.channels.webhook.WebhookAdapter"
