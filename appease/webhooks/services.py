"""Outbound webhooks: endpoints (made, changed, deleted, their secret rotated), events
emitted by the apps that own them, and what the outbox needs to send one.

- `webhook_event_emit(type=, data=)` is called by the owning service in its own
  transaction: it writes the event and one `webhook` delivery per active endpoint
  subscribed to the type, so an event is sent if and only if what it tells committed.
- `webhook_compose(delivery)` builds the signed POST at each attempt (a fresh `t`); the
  body is the same bytes every time, so a receiver deduplicates on the event `id`.
- `webhook_customer_delivery_outcome` turns the outcome of a message to a customer into
  `delivery.sent` / `delivery.failed`; a webhook's own outcome is never an event (no loops).
See docs/adr/0011-outbound-webhooks.md and docs/integrations.md.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from appease.core.audit import audit_event_record
from appease.core.context import Actor
from appease.core.idempotency import idempotency_key_complete
from appease.delivery.channels.base import DISABLED, OutboundMessage, PermanentError
from appease.delivery.channels.endpoint import address_blocked
from appease.delivery.kinds import Outcome
from appease.delivery.models import WEBHOOK_CHANNEL, Delivery
from appease.delivery.services import delivery_create
from appease.webhooks.models import EventType, WebhookDelivery, WebhookEndpoint, WebhookEvent
from appease.webhooks.signing import signature_header

SECRET_PREFIX = "whsec_"  # noqa: S105  (a prefix, not a secret)
MAX_URL_LENGTH = 255  # the outbox keeps the URL as the delivery's address


# --- secrets ---------------------------------------------------------------------------


def _cipher() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in settings.CODE_ENCRYPTION_KEYS])


def _seal(secret: str) -> str:
    return _cipher().encrypt(secret.encode()).decode()


def _unseal(token: str) -> str:
    return _cipher().decrypt(token.encode()).decode()


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def secret_fingerprint(secret: str) -> str:
    """What an idempotent replay keeps of a secret: its hash, to tell whether it is still
    the endpoint's (never the secret itself)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def signing_secrets(endpoint: WebhookEndpoint, *, now: datetime | None = None) -> list[str]:
    """The secrets that sign a request now: the current one, then the previous one while
    its overlap lasts."""
    now = now or timezone.now()
    keys = [_unseal(endpoint.secret_encrypted)]
    if (
        endpoint.previous_secret_encrypted
        and endpoint.previous_secret_expires_at
        and endpoint.previous_secret_expires_at > now
    ):
        keys.append(_unseal(endpoint.previous_secret_encrypted))
    return keys


# --- endpoints -------------------------------------------------------------------------


def endpoint_url_checked(url: str) -> str:
    url = (url or "").strip()
    if len(url) > MAX_URL_LENGTH:
        raise ValidationError({"url": _("Keep the URL under %(max)d characters.") % {"max": MAX_URL_LENGTH}})
    try:
        URLValidator(schemes=["https", "http"])(url)
    except ValidationError:
        raise ValidationError({"url": _("Enter an http or https URL.")}) from None
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise ValidationError({"url": _("Leave credentials out of the URL; requests are signed.")})
    host = (parts.hostname or "").strip("[]")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    # The send-time check resolves names too; this only turns away the obvious at once.
    blocked = (literal is not None and address_blocked(literal)) or host == "localhost" or host.endswith(".localhost")
    if blocked and not settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS:
        raise ValidationError({"url": _("Webhooks may not be sent to a loopback, private or reserved address.")})
    return url


def endpoint_events_checked(events) -> list[str]:
    if not isinstance(events, list | tuple) or not events:
        raise ValidationError({"events": _("Choose at least one event.")})
    unknown = [str(event) for event in events if event not in EventType.values]
    if unknown:
        raise ValidationError(
            {
                "events": _("Unknown event(s): %(unknown)s. Choose from: %(known)s.")
                % {"unknown": ", ".join(unknown[:5]), "known": ", ".join(EventType.values)}
            }
        )
    return [event for event in EventType.values if event in events]  # vocabulary order, no duplicates


def _snapshot(endpoint: WebhookEndpoint) -> dict:
    # Never a secret in the audit log.
    return {
        "url": endpoint.url,
        "events": list(endpoint.events),
        "is_active": endpoint.is_active,
        "description": endpoint.description,
    }


@transaction.atomic
def webhook_endpoint_create(
    *,
    actor: Actor,
    url: str,
    events: list[str],
    description: str = "",
    is_active: bool = True,
    idempotency_key=None,
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint. Returns it and its signing secret, which is shown this once
    (the row keeps it encrypted)."""
    errors = {}
    try:
        url = endpoint_url_checked(url)
    except ValidationError as error:
        errors.update(error.message_dict)
    try:
        events = endpoint_events_checked(events)
    except ValidationError as error:
        errors.update(error.message_dict)
    if errors:
        raise ValidationError(errors)
    secret = _new_secret()
    endpoint = WebhookEndpoint.objects.create(
        url=url,
        events=events,
        description=description[:200],
        is_active=is_active,
        secret_encrypted=_seal(secret),
        created_by=actor.user,
    )
    audit_event_record(actor=actor, action="webhook_endpoint.create", obj=endpoint, after=_snapshot(endpoint))
    if idempotency_key is not None:
        idempotency_key_complete(
            record=idempotency_key,
            response_status=201,
            result={"endpoint_id": endpoint.pk, "secret_sha256": secret_fingerprint(secret)},
        )
    return endpoint, secret


def _locked(endpoint_id) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id, deleted_at__isnull=True).first()
    if endpoint is None:
        raise WebhookEndpoint.DoesNotExist
    return endpoint


@transaction.atomic
def webhook_endpoint_update(*, actor: Actor, endpoint_id, **changes) -> WebhookEndpoint:
    """Change an endpoint's `url`, `events`, `is_active` or `description`."""
    endpoint = _locked(endpoint_id)
    before = _snapshot(endpoint)
    errors = {}
    for field, value in changes.items():
        try:
            if field == "url":
                endpoint.url = endpoint_url_checked(value)
            elif field == "events":
                endpoint.events = endpoint_events_checked(value)
            elif field == "is_active":
                endpoint.is_active = bool(value)
            elif field == "description":
                endpoint.description = (value or "")[:200]
            else:
                raise ValueError(f"not a field an endpoint may change: {field}")
        except ValidationError as error:
            errors.update(error.message_dict)
    if errors:
        raise ValidationError(errors)
    endpoint.save()
    after = _snapshot(endpoint)
    if after != before:
        audit_event_record(actor=actor, action="webhook_endpoint.update", obj=endpoint, before=before, after=after)
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, actor: Actor, endpoint_id) -> WebhookEndpoint:
    """Stop sending to an endpoint for good. The row stays for its deliveries' history;
    its deliveries still waiting fail (their kind's composer refuses a deleted endpoint)."""
    endpoint = _locked(endpoint_id)
    before = _snapshot(endpoint)
    endpoint.deleted_at = timezone.now()
    endpoint.is_active = False
    endpoint.save(update_fields=["deleted_at", "is_active", "updated_at"])
    audit_event_record(actor=actor, action="webhook_endpoint.delete", obj=endpoint, before=before)
    return endpoint


@transaction.atomic
def webhook_endpoint_rotate_secret(*, actor: Actor, endpoint_id, idempotency_key=None) -> tuple[WebhookEndpoint, str]:
    """A new signing secret, shown this once. The one it replaces still signs beside it
    (a second `v1=`) for WEBHOOKS_ROTATION_OVERLAP, so the receiver can switch without
    dropping a request; a rotation during an overlap ends the older overlap."""
    endpoint = _locked(endpoint_id)
    secret = _new_secret()
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted
    endpoint.previous_secret_expires_at = timezone.now() + settings.WEBHOOKS_ROTATION_OVERLAP
    endpoint.secret_encrypted = _seal(secret)
    endpoint.save()
    audit_event_record(
        actor=actor,
        action="webhook_endpoint.rotate_secret",
        obj=endpoint,
        after={"previous_secret_expires_at": endpoint.previous_secret_expires_at.isoformat()},
    )
    if idempotency_key is not None:
        idempotency_key_complete(
            record=idempotency_key,
            response_status=200,
            result={"endpoint_id": endpoint.pk, "secret_sha256": secret_fingerprint(secret)},
        )
    return endpoint, secret


# --- events ----------------------------------------------------------------------------


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, as every time in a payload."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def money(amount: Decimal | None, currency: str) -> dict | None:
    """An amount as a string with its currency: {"amount": "10.00", "currency": "EUR"}."""
    if amount is None:
        return None
    return {"amount": str(amount), "currency": currency}


def webhook_event_emit(*, type: str, data: dict | Callable[[], dict]) -> WebhookEvent | None:
    """Record that `type` happened and queue it to every active endpoint subscribed to it,
    in the caller's transaction. `data` holds ids, amounts as strings with a currency,
    UTC times and at most a code's last four: never a code or a customer's personal data.
    It may be a function that builds it, called only when some endpoint wants the event.
    Nothing is written when none does (None)."""
    if type not in EventType.values:
        raise ValueError(f"unknown webhook event type {type!r}")
    endpoints = [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(is_active=True, deleted_at__isnull=True).only(
            "pk", "url", "events"
        )
        if type in endpoint.events
    ]
    if not endpoints:
        return None
    # Through JSON once: what is stored is exactly what is sent (dates, Decimals as text).
    payload = json.loads(json.dumps(data() if callable(data) else data, default=str))
    event = WebhookEvent.objects.create(type=type, created=timezone.now(), payload=payload)
    for endpoint in endpoints:
        delivery = delivery_create(kind=Delivery.Kind.WEBHOOK, channel=WEBHOOK_CHANNEL, address=endpoint.url)
        WebhookDelivery.objects.create(delivery=delivery, event=event, endpoint=endpoint)
    return event


def webhook_body(event: WebhookEvent) -> bytes:
    """The body every attempt of this event sends, byte for byte."""
    envelope = {"id": str(event.pk), "type": event.type, "created": iso(event.created), "data": event.payload}
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def webhook_compose(delivery: Delivery) -> OutboundMessage:
    """The `webhook` kind's composer: the event's body, signed now with the endpoint's
    secrets, to the endpoint's URL as it is now (a corrected URL takes effect on retry)."""
    link = WebhookDelivery.objects.select_related("event", "endpoint").get(delivery=delivery)
    endpoint = link.endpoint
    if endpoint.deleted_at is not None or not endpoint.is_active:
        raise PermanentError(DISABLED, "webhook endpoint deleted or inactive")
    body = webhook_body(link.event)
    return OutboundMessage(
        channel=WEBHOOK_CHANNEL,
        to=endpoint.url,
        subject="",
        text=body.decode(),
        html=None,
        idempotency_key=delivery.idempotency_key,
        metadata={
            "delivery_id": str(delivery.pk),
            "headers": {
                "Appease-Event-Id": str(link.event.pk),
                "Appease-Event-Type": link.event.type,
                "Appease-Signature": signature_header(signing_secrets(endpoint), body),
            },
        },
    )


def webhook_requeue_refusal(delivery: Delivery) -> str:
    """A dead webhook goes again unless its endpoint was deleted or switched off."""
    link = WebhookDelivery.objects.select_related("endpoint").filter(delivery=delivery).first()
    if link is None:
        return "no webhook event"
    if link.endpoint.deleted_at is not None or not link.endpoint.is_active:
        return "endpoint inactive"
    return ""


def webhook_customer_delivery_outcome(delivery: Delivery, outcome: Outcome) -> None:
    """A message to a customer was sent, or failed (or was given up): `delivery.sent` or
    `delivery.failed`. A webhook's own delivery is never an event (no loops)."""
    if delivery.kind == Delivery.Kind.WEBHOOK:
        return
    if outcome.status == Delivery.Status.SENT:
        type = EventType.DELIVERY_SENT
    elif outcome.status in (Delivery.Status.FAILED, Delivery.Status.DEAD):
        type = EventType.DELIVERY_FAILED
    else:
        return  # `delivered` callbacks are not an event of the vocabulary
    failure = "" if outcome.status == Delivery.Status.SENT else (delivery.failure_reason or "")
    if outcome.status != Delivery.Status.SENT and not failure:
        failure = Delivery.objects.filter(pk=delivery.pk).values_list("failure_reason", flat=True).first() or ""
    webhook_event_emit(
        type=type,
        data={
            "delivery_id": str(delivery.pk),
            "kind": delivery.kind,
            "channel": delivery.channel,
            "status": outcome.status,
            "failure_reason": failure,
            "issuance_id": delivery.issuance_id,
            "customer_id": delivery.customer_id,
            "attempts": delivery.attempts,
            "at": iso(outcome.at),
        },
    )
