"""The channel adapter interface: one message in, a provider id or a typed error out.

The delivery outbox calls `adapter_for(channel).send(message)` and decides what to do
from the outcome alone: `SendResult` (sent), `TransientError` (try again later, after
`retry_after` if given) or `PermanentError` (give up; `reason` says why). Adapters never
retry, sleep or touch the database.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol, runtime_checkable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

CHANNELS = ("email", "sms", "chat", "social", "webhook")

# PermanentError.reason values.
INVALID_ADDRESS = "invalid_address"  # the address/number/handle does not exist or is malformed
OPTED_OUT = "opted_out"  # the recipient unsubscribed (SMS STOP, blocked the sender)
REJECTED = "rejected"  # the provider refused this message for another reason
UNAUTHORIZED = "unauthorized"  # the provider refused our credentials: a configuration error
DISABLED = "disabled"  # the channel has no provider configured

# Used as the local part of an email Message-ID and as an HTTP header value, so it is
# kept to characters that are valid in both.
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=-]{0,199}")


@dataclass(frozen=True)
class OutboundMessage:
    channel: str  # "email" | "sms" | "chat" | "social" | "webhook"
    to: str  # email address, E.164 phone, or chat/social handle
    subject: str  # email only ("" otherwise)
    text: str  # plain text (SMS/chat body, email text part)
    html: str | None  # email HTML part
    # Stable per delivery, e.g. "delivery-<uuid>"; sent to providers so a resend after a
    # crash can be deduplicated (docs/delivery.md says what that does and does not guarantee).
    idempotency_key: str
    metadata: dict  # e.g. {"delivery_id": ..., "issuance_id": ...}; never contains the code

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"unknown channel {self.channel!r}")
        if not _IDEMPOTENCY_KEY.fullmatch(self.idempotency_key):
            raise ValueError("idempotency_key must be 1-200 characters of [A-Za-z0-9._:+=-]")


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str
    status_code: int | None = None  # HTTP status or SMTP reply code


class DeliveryError(Exception):
    """A send that did not go through. `detail` is safe to log: it never holds the
    message text or a full address (provider error texts often echo the recipient, so
    only their numeric codes are kept)."""

    def __init__(self, detail: str, *, status_code: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status_code = status_code

    def __reduce__(self):
        # Keyword-only arguments would otherwise be lost when pickled (Celery, logging).
        return _rebuild, (type(self), self.__dict__)


class TransientError(DeliveryError):
    """Worth trying again later, after `retry_after` seconds if the provider said."""

    def __init__(self, detail: str, *, status_code: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(detail, status_code=status_code)
        self.retry_after = retry_after


class PermanentError(DeliveryError):
    """Sending the same message again cannot succeed; `reason` is one of
    `invalid_address`, `opted_out`, `rejected`, `unauthorized`, `disabled`."""

    def __init__(self, reason: str, detail: str, *, status_code: int | None = None) -> None:
        super().__init__(detail, status_code=status_code)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


def _rebuild(cls: type[DeliveryError], state: dict) -> DeliveryError:
    error = cls.__new__(cls)
    Exception.__init__(error, state["detail"])
    error.__dict__.update(state)
    return error


@runtime_checkable
class ChannelAdapter(Protocol):
    def send(self, message: OutboundMessage) -> SendResult: ...


class DisabledAdapter:
    """A channel with no provider configured (DEBUG off): every send fails permanently,
    so the delivery is marked failed at once instead of retried."""

    def __init__(self, channel: str) -> None:
        self.channel = channel

    @classmethod
    def from_settings(cls, channel: str) -> DisabledAdapter:
        return cls(channel)

    def send(self, message: OutboundMessage) -> SendResult:
        raise PermanentError(DISABLED, f"no provider is configured for the {self.channel} channel")


def adapter_for(channel: str) -> ChannelAdapter:
    """The adapter for `channel`, from `settings.DELIVERY_ADAPTERS` (channel: dotted path).

    A class with a `from_settings(channel)` classmethod is built with it (reading its own
    settings); any other callable is called with no arguments. Adapters are cheap to make
    and hold no connection between sends, so one is built per call.
    """
    try:
        path = settings.DELIVERY_ADAPTERS[channel]
    except KeyError:
        raise ImproperlyConfigured(f"DELIVERY_ADAPTERS has no adapter for the {channel!r} channel.") from None
    factory = import_string(path)
    from_settings = getattr(factory, "from_settings", None)
    adapter = from_settings(channel) if from_settings is not None else factory()
    if not isinstance(adapter, ChannelAdapter):
        raise ImproperlyConfigured(f"DELIVERY_ADAPTERS[{channel!r}] = {path!r} has no send() method.")
    return adapter


def mask_address(to: str) -> str:
    """A recipient shortened for logs: `j***@example.com`, `+44***789`, `@al***ith`."""
    if "@" in to[1:]:
        local, _, domain = to.rpartition("@")
        return f"{local[:1]}***@{domain}"
    if len(to) > 8:
        return f"{to[:3]}***{to[-3:]}"
    return f"{to[:2]}***"


def retry_after_seconds(value: str | None) -> float | None:
    """An HTTP Retry-After header in seconds (it is delay-seconds or an HTTP-date);
    None if absent or unreadable, never negative."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
