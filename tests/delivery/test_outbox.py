"""The delivery outbox, against a real SMTP server and a local HTTP server playing the
SMS provider (tests/delivery/channels/conftest.py)."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from celery.signals import before_task_publish
from django.utils import timezone
from werkzeug import Response

from appease.core.context import Actor
from appease.delivery.models import Delivery, DeliveryAttempt
from appease.delivery.services import deliveries_sweep, delivery_send
from appease.issuance.models import Issuance
from appease.issuance.services.deliveries import delivery_resend
from appease.issuance.services.issuance import issuance_create
from coupons import codes
from tests.factories import customer_create, offer_create, policy_create, reason_create, staff_user

pytestmark = pytest.mark.django_db

SMS_PATH = "/2010-04-01/Accounts/AC123/Messages.json"


@pytest.fixture
def published():
    """Every task message published to the broker: (task name, args)."""
    seen = []

    def record(sender=None, body=None, headers=None, **kwargs):
        seen.append((headers["task"], list(body[0])))

    before_task_publish.connect(record, weak=False)
    yield seen
    before_task_publish.disconnect(record)


@pytest.fixture
def sms_provider(settings, httpserver):
    settings.SMS_BASE_URL = httpserver.url_for("").rstrip("/")
    settings.SMS_ACCOUNT_SID = "AC123"
    settings.SMS_AUTH_TOKEN = "token"
    settings.SMS_FROM = "+15550000000"
    settings.DELIVERY_ADAPTERS = {**settings.DELIVERY_ADAPTERS, "sms": "appease.delivery.channels.sms.TwilioSmsAdapter"}
    return httpserver


def issue(*, channel=None, customer=None, offer=None):
    csr = staff_user(policy=policy_create())
    return issuance_create(
        actor=Actor(user=csr),
        customer=customer or customer_create(phone="+34612345678"),
        offer=offer or offer_create(value_amount=Decimal("5.00")),
        reason_code=reason_create(),
        channel=channel,
    )


def due_now(delivery: Delivery) -> None:
    """The backoff has elapsed: what the clock would do."""
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


def test_issuing_writes_a_pending_delivery_and_enqueues_only_its_id_on_commit(
    django_capture_on_commit_callbacks, published
):
    # when
    with django_capture_on_commit_callbacks(execute=True):
        issuance = issue()
    # then
    delivery = Delivery.objects.get(issuance=issuance)
    assert (delivery.status, delivery.channel, delivery.attempts) == ("pending", "email", 0)
    assert published == [("appease.delivery.tasks.delivery_send_task", [str(delivery.pk)])]
    plaintext = codes.decrypt(issuance.code.ciphertext)
    assert plaintext not in json.dumps(published)


def test_nothing_is_enqueued_when_the_transaction_rolls_back(django_capture_on_commit_callbacks, published):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        issue()
    assert published == []
    assert len(callbacks) == 1  # runs only if the issuance commits


def test_email_reaches_a_real_smtp_server_with_text_and_html(smtp_server):
    # given
    issuance = issue()
    delivery = issuance.deliveries.get()
    # when
    assert delivery_send(delivery_id=delivery.pk) == "sent"
    # then
    (message,) = smtp_server.handler.messages
    plaintext = codes.decrypt(issuance.code.ciphertext)
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert plaintext in text and plaintext in html
    assert "$5.00" in text  # money as the customer's language writes it (Babel)
    assert "sorry" in message["Subject"].lower()
    assert message["Message-ID"] == f"<delivery-{delivery.pk}@appease>"
    delivery.refresh_from_db()
    issuance.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT
    assert issuance.status == Issuance.Status.DELIVERED
    assert issuance.delivered_at is not None
    (attempt,) = DeliveryAttempt.objects.filter(delivery=delivery)
    assert (attempt.number, attempt.outcome, attempt.channel) == (1, "sent", "email")


def test_a_sent_row_is_never_sent_again(smtp_server):
    delivery = issue().deliveries.get()
    assert delivery_send(delivery_id=delivery.pk) == "sent"
    assert delivery_send(delivery_id=delivery.pk) == "not_due"
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(hours=1))
    assert delivery_send(delivery_id=delivery.pk) == "not_due"
    assert len(smtp_server.handler.messages) == 1


def test_sms_provider_500_three_times_then_200_is_delivered_with_four_attempts_logged(sms_provider):
    # given
    for _ in range(3):
        sms_provider.expect_ordered_request(SMS_PATH, method="POST").respond_with_data("oops", status=500)
    sms_provider.expect_ordered_request(SMS_PATH, method="POST").respond_with_json({"sid": "SM42"}, status=201)
    issuance = issue(channel="sms")
    delivery = issuance.deliveries.get()
    # when
    outcomes = []
    for _ in range(4):
        outcomes.append(delivery_send(delivery_id=delivery.pk))
        due_now(delivery)
    # then
    assert outcomes == ["retry", "retry", "retry", "sent"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.provider_message_id) == ("sent", 4, "SM42")
    attempts = list(delivery.attempt_log.values_list("number", "outcome", "status_code"))
    assert attempts == [(1, "transient", 500), (2, "transient", 500), (3, "transient", 500), (4, "sent", 201)]
    body = sms_provider.log[-1][0].form["Body"]
    assert codes.decrypt(issuance.code.ciphertext) in body


def test_retry_after_and_backoff_set_the_due_time(sms_provider):
    sms_provider.expect_request(SMS_PATH, method="POST").respond_with_response(
        Response("slow down", status=429, headers={"Retry-After": "7"})
    )
    delivery = issue(channel="sms").deliveries.get()
    before = timezone.now()
    assert delivery_send(delivery_id=delivery.pk) == "retry"
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.PENDING
    assert delivery.next_attempt_at >= before + timedelta(seconds=7)
    assert delivery_send(delivery_id=delivery.pk) == "not_due"  # not before its time


def test_transient_errors_up_to_the_limit_make_a_dead_letter(sms_provider, settings):
    settings.DELIVERY_MAX_ATTEMPTS = 3
    sms_provider.expect_request(SMS_PATH, method="POST").respond_with_data("down", status=503)
    issuance = issue(channel="sms")
    delivery = issuance.deliveries.get()
    outcomes = []
    for _ in range(3):
        outcomes.append(delivery_send(delivery_id=delivery.pk))
        due_now(delivery)
    assert outcomes == ["retry", "retry", "dead"]
    delivery.refresh_from_db()
    issuance.refresh_from_db()
    assert (delivery.status, delivery.failure_reason) == ("dead", "exhausted")
    assert issuance.status == Issuance.Status.FAILED


def test_an_invalid_number_fails_at_once_and_the_rep_resends_by_email(sms_provider, smtp_server):
    # given: the provider says the number does not exist
    sms_provider.expect_request(SMS_PATH, method="POST").respond_with_json(
        {"code": 21211, "message": "The 'To' number +34612345678 is not a valid phone number."}, status=400
    )
    issuance = issue(channel="sms")
    failed = issuance.deliveries.get()
    # when
    assert delivery_send(delivery_id=failed.pk) == "failed"
    # then
    failed.refresh_from_db()
    assert (failed.status, failed.failure_reason, failed.attempts) == ("failed", "invalid_address", 1)
    assert "+34612345678" not in failed.last_error
    # when: one click, another channel
    rep = issuance.csr
    again = delivery_resend(actor=Actor(user=rep), issuance_id=issuance.pk, channel="email")
    assert delivery_send(delivery_id=again.pk) == "sent"
    # then
    issuance.refresh_from_db()
    assert issuance.status == Issuance.Status.DELIVERED
    assert again.resend_of == failed
    assert len(smtp_server.handler.messages) == 1


def test_resend_is_refused_while_the_last_message_is_on_its_way(smtp_server):
    from appease.core.exceptions import ApplicationError

    # given: the appeasement's message is still waiting to be sent
    issuance = issue()
    # when / then: a second one now would be a double click, not a decision
    with pytest.raises(ApplicationError) as refused:
        delivery_resend(actor=Actor(user=issuance.csr), issuance_id=issuance.pk, channel="email")
    assert refused.value.code == "delivery_in_flight"
    # when: it went out, the rep may send it again (the customer lost it)
    delivery_send(delivery_id=issuance.deliveries.get().pk)
    again = delivery_resend(actor=Actor(user=issuance.csr), issuance_id=issuance.pk, channel="email")
    # then: one more message, sent once
    assert delivery_send(delivery_id=again.pk) == "sent"
    assert delivery_send(delivery_id=again.pk) != "sent"
    assert len(smtp_server.handler.messages) == 2


def test_sweeper_enqueues_what_is_due_and_reclaims_an_expired_lease(published):
    # given: one delivery whose enqueue was lost, one whose worker died mid-send
    lost = issue().deliveries.get()
    crashed = issue().deliveries.get()
    past = timezone.now() - timedelta(minutes=5)
    Delivery.objects.filter(pk=lost.pk).update(next_attempt_at=past)
    Delivery.objects.filter(pk=crashed.pk).update(status="sending", lease_expires_at=past, attempts=1)
    fresh = issue().deliveries.get()  # just created: its own enqueue is still on its way
    # when
    deliveries_sweep(grace=timedelta(seconds=10))
    # then
    sent_ids = {args[0] for name, args in published if name == "appease.delivery.tasks.delivery_send_task"}
    assert str(lost.pk) in sent_ids
    crashed.refresh_from_db()
    assert (crashed.status, crashed.lease_expires_at) == ("pending", None)
    assert str(fresh.pk) not in sent_ids


def test_soft_offer_sends_an_apology_without_a_code(smtp_server):
    apology = offer_create(kind="apology", value_amount=Decimal("0"), cost_amount=Decimal("0"), description="Sorry")
    issuance = issue(offer=apology)
    delivery_send(delivery_id=issuance.deliveries.get().pk)
    (message,) = smtp_server.handler.messages
    assert "truly sorry" in message.get_body(("plain",)).get_content()
    assert "Your code" not in message.get_body(("plain",)).get_content()


def test_sms_fits_its_segments_and_keeps_the_whole_code(sms_provider, settings):
    from appease.delivery.channels.sms import segments

    settings.SMS_MAX_SEGMENTS = 2
    sms_provider.expect_request(SMS_PATH, method="POST").respond_with_json({"sid": "SM1"}, status=201)
    offer = offer_create(description="Um vale de desconto muito generoso para a sua próxima compra " * 3)
    issuance = issue(channel="sms", offer=offer)
    delivery_send(delivery_id=issuance.deliveries.get().pk)
    body = sms_provider.log[-1][0].form["Body"]
    assert codes.decrypt(issuance.code.ciphertext) in body
    counted = segments(body)
    assert counted.segments <= 2
    # the attempt log says how many segments the message used (what the provider bills)
    attempt = issuance.deliveries.get().attempt_log.get()
    assert attempt.detail.startswith(f"{counted.segments} SMS segment(s), {counted.encoding}")


@pytest.mark.parametrize(
    ("language", "greeting", "code_label"),
    [
        ("es", "Hola, Lucía:", "Tu código:"),
        ("pt-br", "Olá, Lucía,", "Seu código:"),
        ("en", "Hello Lucía,", "Your code:"),
    ],
)
def test_the_message_is_in_the_customers_language(smtp_server, language, greeting, code_label):
    customer = customer_create(name="Lucía Pérez", language=language)
    issuance = issue(customer=customer)
    delivery_send(delivery_id=issuance.deliveries.get().pk)
    (message,) = smtp_server.handler.messages
    text = message.get_body(("plain",)).get_content()
    assert greeting in text
    assert f"{code_label} {codes.decrypt(issuance.code.ciphertext)}" in text
