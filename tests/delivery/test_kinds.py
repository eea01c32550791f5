"""The outbox knows no caller: a kind of message registered by its owner (a composer and
an outcome hook) is all it needs to send it, and a kind nobody registered is a dead
letter at once, with its reason, never a retry loop."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured

from appease.core.context import Actor
from appease.delivery import kinds
from appease.delivery.channels.base import OutboundMessage, PermanentError
from appease.delivery.kinds import Outcome, UnknownKind, register
from appease.delivery.models import Delivery, DeliveryAttempt
from appease.delivery.services import deliveries_requeue, delivery_create, delivery_send, delivery_status_record
from tests.factories import customer_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def registry(monkeypatch):
    """The kinds the apps registered, plus whatever a test registers, for this test only."""
    monkeypatch.setattr(kinds, "_kinds", dict(kinds._kinds))


def note_compose(delivery: Delivery) -> OutboundMessage:
    return OutboundMessage(
        channel=delivery.channel,
        to=delivery.address,
        subject=f"A note ({delivery.language})",
        text="Just a note.",
        html=None,
        idempotency_key=delivery.idempotency_key,
        metadata={"delivery_id": str(delivery.pk)},
    )


@pytest.fixture
def heard():
    """A test-only `note` kind; its outcome hook writes down what it is told, with the
    delivery row as the transaction it runs in sees it."""
    seen: list[tuple[Outcome, str]] = []

    def on_outcome(delivery: Delivery, outcome: Outcome) -> None:
        seen.append((outcome, Delivery.objects.get(pk=delivery.pk).status))

    register("note", compose=note_compose, on_outcome=on_outcome)
    return seen


def test_a_registered_kind_goes_out_and_its_hook_hears_each_outcome(heard):
    # given a customer and a kind of message the outbox has never heard of but by registration
    customer = customer_create(email="ada@example.com", language="es")
    delivery = delivery_create(customer=customer, kind="note", channel="email", actor=Actor())

    # when it is sent (the memory email backend), then the provider says it was delivered
    assert delivery_send(delivery_id=delivery.pk) == "sent"
    delivery.refresh_from_db()
    delivery_status_record(provider_message_id=delivery.provider_message_id, provider_status="delivered")

    # then the composed message went out, and the hook heard both, the row already saying so
    (message,) = mail.outbox
    assert (message.to, message.subject, message.body.strip()) == (["ada@example.com"], "A note (es)", "Just a note.")
    assert [(o.status, o.reported, row_status) for o, row_status in heard] == [
        ("sent", False, "sent"),
        ("delivered", True, "delivered"),
    ]
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED
    assert heard[0][0].at == delivery.sent_at


def test_the_hook_hears_a_permanent_failure(heard, settings):
    # given a channel whose provider refuses the address
    settings.DELIVERY_ADAPTERS = {**settings.DELIVERY_ADAPTERS, "chat": f"{__name__}.Refusing"}
    customer = customer_create(channel_handle="@ada", preferred_channel="chat")
    delivery = delivery_create(customer=customer, kind="note", channel="chat")

    # when it is sent
    assert delivery_send(delivery_id=delivery.pk) == "failed"

    # then the hook heard the failure, with the row already failed
    [(outcome, row_status)] = heard
    assert (outcome.status, outcome.reported, row_status) == ("failed", False, "failed")


def test_the_hook_runs_in_the_transaction_that_records_the_outcome():
    # given a kind whose hook fails
    def on_outcome(delivery, outcome):
        raise RuntimeError("the owner's bug")

    register("note", compose=note_compose, on_outcome=on_outcome)
    delivery = delivery_create(customer=customer_create(), kind="note", channel="email")

    # when it is sent
    with pytest.raises(RuntimeError):
        delivery_send(delivery_id=delivery.pk)

    # then nothing of the outcome was recorded: the row is left to its lease (the
    # sweeper hands it on), as when a worker dies mid-send
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENDING
    assert not DeliveryAttempt.objects.filter(delivery=delivery).exists()


class Refusing:
    def send(self, message):
        raise PermanentError("invalid_address", "no such handle")


def test_a_kind_nobody_registered_is_refused_at_creation():
    with pytest.raises(UnknownKind):
        delivery_create(customer=customer_create(), kind="nobodys", channel="email")
    assert not Delivery.objects.exists()


def test_a_row_of_a_kind_nobody_registered_is_dead_at_once_with_its_reason(django_capture_on_commit_callbacks):
    # given a row whose kind no app registers any more (renamed, or an older worker)
    customer = customer_create()
    delivery = delivery_create(customer=customer, kind="follow_up", channel="email")
    Delivery.objects.filter(pk=delivery.pk).update(kind="retired")

    # when a worker picks it up
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        outcome = delivery_send(delivery_id=delivery.pk)

    # then it is a dead letter saying why, after one attempt, and nothing is scheduled again
    assert outcome == "dead"
    assert callbacks == []
    delivery.refresh_from_db()
    assert (delivery.status, delivery.failure_reason, delivery.attempts) == ("dead", "unknown_kind", 1)
    assert "retired" in delivery.last_error
    assert str(delivery.failure_reason_label) == "No app sends this kind of message"
    (attempt,) = DeliveryAttempt.objects.filter(delivery=delivery)
    assert attempt.outcome == DeliveryAttempt.Outcome.PERMANENT
    assert mail.outbox == []
    # and an operator's requeue leaves it dead until a worker knows the kind
    assert [reason for _, reason in deliveries_requeue(actor=Actor()).skipped] == ["unknown kind"]


def test_a_kind_belongs_to_one_owner():
    register("note", compose=note_compose)
    register("note", compose=note_compose)  # the same registration again: harmless
    with pytest.raises(ImproperlyConfigured):
        register("note", compose=lambda delivery: note_compose(delivery))
