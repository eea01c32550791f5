"""The kinds of message the outbox sends, each registered by the app that owns it.

The outbox knows no caller: a delivery row names its kind (`Delivery.kind`), and the
owner registers, in its `AppConfig.ready()`, what the outbox needs to know of it:

- `compose(delivery) -> OutboundMessage`: the channel-ready message. The outbox calls it
  at send time in the customer's language, on the shop's clock
  (`appease.delivery.messages.message_compose`); `message_render` renders the kind's
  templates for each channel.
- `on_outcome(delivery, outcome)`, optional: told when a delivery of the kind is sent,
  delivered, failed or dead, in the transaction that records it (what the owner keeps in
  step with the delivery, as the issuance keeps its status).
- `requeue_refusal(delivery) -> str`, optional: why a dead delivery must stay dead when
  an operator sends dead deliveries again ("" when it may go).

Apart from the kinds, an app may listen to every delivery's outcome
(`outcome_listener_register(listener)`, from its `ready()`): the webhooks app tells
subscribed endpoints that a message to a customer was sent or failed. Listeners are told
after the kind's own hook, in the same transaction.

A row of a kind nobody registered (a kind renamed, or an old worker in a rolling deploy)
is not retried: it is dead at once, with the reason `unknown_kind`, and can be requeued
once a worker knows the kind. `delivery_create` refuses an unknown kind outright.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from appease.delivery.channels.base import OutboundMessage
    from appease.delivery.models import Delivery


@dataclass(frozen=True)
class Outcome:
    """What became of a delivery, as its kind's `on_outcome` hook is told."""

    status: str  # Delivery.Status: "sent", "delivered", "failed" or "dead"
    at: datetime
    # True when a provider's status callback said so, about a message already sent
    # (delivered, or failed after it left: a bounce); False when our own attempt decided.
    reported: bool = False


@dataclass(frozen=True)
class MessageKind:
    kind: str
    compose: Callable[[Delivery], OutboundMessage]
    on_outcome: Callable[[Delivery, Outcome], None] | None = None
    requeue_refusal: Callable[[Delivery], str] | None = None


class UnknownKind(LookupError):
    """No app registered this kind of message."""


_kinds: dict[str, MessageKind] = {}


def register(
    kind: str,
    *,
    compose: Callable[[Delivery], OutboundMessage],
    on_outcome: Callable[[Delivery, Outcome], None] | None = None,
    requeue_refusal: Callable[[Delivery], str] | None = None,
) -> MessageKind:
    """Make `kind` sendable (from the owning app's `ready()`). Registering the same
    functions again is harmless; another app taking a registered kind is an error."""
    kind = str(kind)  # a TextChoices member is keyed by its value
    entry = MessageKind(kind=kind, compose=compose, on_outcome=on_outcome, requeue_refusal=requeue_refusal)
    known = _kinds.get(kind)
    if known is not None and known != entry:
        raise ImproperlyConfigured(f"The {kind!r} message kind is registered already ({known.compose.__module__}).")
    _kinds[kind] = entry
    return entry


def kind_for(kind: str) -> MessageKind:
    """The registration of `kind`; UnknownKind if no app registered it."""
    try:
        return _kinds[str(kind)]
    except KeyError:
        raise UnknownKind(f"no message kind {kind!r} is registered") from None


_listeners: list[Callable[[Delivery, Outcome], None]] = []


def outcome_listener_register(listener: Callable[[Delivery, Outcome], None]) -> None:
    """Tell `listener(delivery, outcome)` of every delivery's outcome, of any kind, in
    the transaction that records it (from an app's `ready()`; registering it twice is
    harmless). A listener that must not hear of its own deliveries checks the kind."""
    if listener not in _listeners:
        _listeners.append(listener)


def outcome_listeners() -> tuple[Callable[[Delivery, Outcome], None], ...]:
    return tuple(_listeners)
