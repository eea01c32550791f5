"""Chat and social channels (WhatsApp, Messenger, X, in-app) through a gateway that takes
one signed JSON POST per message, and the signature scheme its callbacks use too."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from appease.delivery.channels import _http
from appease.delivery.channels.base import (
    INVALID_ADDRESS,
    OPTED_OUT,
    REJECTED,
    OutboundMessage,
    PermanentError,
    SendResult,
    TransientError,
)

SIGNATURE_PREFIX = "sha256="
# The gateway's {"error": ...} values that name a permanent reason; any other is `rejected`.
_PERMANENT_ERRORS = {"invalid_recipient": INVALID_ADDRESS, "opted_out": OPTED_OUT}


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def sign(secret: str, timestamp: int | str, body: bytes | str) -> str:
    """`sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>` over the exact body bytes."""
    mac = hmac.new(_as_bytes(secret), f"{timestamp}.".encode() + _as_bytes(body), hashlib.sha256)
    return SIGNATURE_PREFIX + mac.hexdigest()


def verify(
    secret: str,
    timestamp: int | str,
    body: bytes | str,
    signature: str,
    tolerance: int = 300,
    *,
    now: float | None = None,
) -> bool:
    """Whether `signature` is ours for this timestamp and body, and the timestamp is within
    `tolerance` seconds of now (either way), so a captured request cannot be replayed
    later. Compared in constant time."""
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance:
        return False
    expected = sign(secret, sent_at, body)
    return hmac.compare_digest(expected.encode(), _as_bytes(signature or ""))


class WebhookAdapter:
    """POST {"channel", "to", "text", "idempotency_key", "metadata"} to the gateway, signed
    with `X-Appease-Timestamp` and `X-Appease-Signature`; the answer is {"id": ...}."""

    provider = "webhook gateway"

    def __init__(self, *, url: str, secret: str, timeout: float = 5.0, client: httpx.Client | None = None) -> None:
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.client = client

    @classmethod
    def from_settings(cls, channel: str) -> WebhookAdapter:
        url = {"chat": settings.CHAT_WEBHOOK_URL, "social": settings.SOCIAL_WEBHOOK_URL}.get(channel)
        if not url:
            raise ImproperlyConfigured(f"No webhook URL is configured for the {channel!r} channel.")
        return cls(url=url, secret=settings.WEBHOOK_SECRET, timeout=settings.WEBHOOK_TIMEOUT)

    def send(self, message: OutboundMessage) -> SendResult:
        if not message.to.strip():
            raise PermanentError(INVALID_ADDRESS, "the recipient handle is empty")
        body = json.dumps(
            {
                "channel": message.channel,
                "to": message.to,
                "text": message.text,
                "idempotency_key": message.idempotency_key,
                "metadata": message.metadata,
            },
            ensure_ascii=False,
            separators=(",", ":"),
            default=str,  # UUIDs, dates in metadata
        ).encode()
        timestamp = int(time.time())
        response = _http.post(
            self.url,
            provider=self.provider,
            timeout=self.timeout,
            client=self.client,
            content=body,
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": message.idempotency_key,
                "X-Appease-Timestamp": str(timestamp),
                "X-Appease-Signature": sign(self.secret, timestamp, body),
            },
        )
        answer = _http.json_or_empty(response)
        if response.is_success:
            provider_id = answer.get("id")
            if isinstance(provider_id, str | int) and not isinstance(provider_id, bool) and str(provider_id):
                return SendResult(provider_message_id=str(provider_id), status_code=response.status_code)
            raise TransientError(
                f"{self.provider} answered {response.status_code} without an id", status_code=response.status_code
            )
        error = answer.get("error")
        error = error if isinstance(error, str) else ""
        raise _http.error_for(
            response,
            provider=self.provider,
            reason=_PERMANENT_ERRORS.get(error, REJECTED),
            # Logged only when it is a short token that cannot be the recipient echoed back.
            code=error if error.isidentifier() and len(error) <= 40 and error not in message.to else "",
        )
