"""Outbound webhooks end to end against a real local HTTP server (pytest-httpserver):
events written by the owning services, sent by the outbox's `delivery_send`, signed,
retried, dead-lettered, guarded against private networks, never redirected."""

from __future__ import annotations

import json
import threading
from datetime import UTC, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from werkzeug import Request, Response

from appease.core.context import Actor
from appease.delivery.channels.endpoint import address_blocked
from appease.delivery.models import Delivery
from appease.delivery.services import deliveries_requeue, delivery_send
from appease.issuance.services.issuance import issuance_create, issuance_void
from appease.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from appease.webhooks.services import (
    webhook_endpoint_create,
    webhook_endpoint_rotate_secret,
    webhook_event_emit,
)
from appease.webhooks.signing import verify
from coupons import codes
from coupons.services.redemption import redemption_create, redemption_reverse
from tests.factories import customer_create, merchant_with_key, offer_create, policy_create, reason_create, staff_user
from tests.webhooks.test_schema import assert_documented

pytestmark = pytest.mark.django_db

HOOK = "/hook"


def emit(type: str = "issuance.created", data: dict | None = None) -> WebhookEvent:
    with transaction.atomic():
        return webhook_event_emit(type=type, data=data or {"issuance_id": "x"})


def webhook_deliveries(event: WebhookEvent | None = None):
    rows = Delivery.objects.filter(kind="webhook").order_by("created_at")
    return rows.filter(webhook__event=event) if event is not None else rows


def send_all() -> list[str]:
    """Send every pending webhook delivery once (what a worker does)."""
    return [
        delivery_send(delivery_id=pk)
        for pk in webhook_deliveries().filter(status="pending").values_list("pk", flat=True)
    ]


def due_now(delivery: Delivery) -> None:
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


def requests_to(httpserver, path: str = HOOK) -> list[Request]:
    return [request for request, _response in httpserver.log if request.path == path]


# --- signing ---------------------------------------------------------------------------


def test_the_signature_verifies_with_the_documented_function_and_nothing_else_does(httpserver, make_endpoint):
    # given
    _endpoint, secret = make_endpoint(httpserver.url_for(HOOK), ["issuance.created"])
    httpserver.expect_request(HOOK, method="POST").respond_with_data("ok")
    event = emit(data={"issuance_id": "abc", "face_value": {"amount": "5.00", "currency": "EUR"}})
    # when
    assert send_all() == ["sent"]
    # then
    (request,) = requests_to(httpserver)
    body, header = request.get_data(), request.headers["Appease-Signature"]
    assert verify(body, header, secret)
    assert json.loads(body) == {
        "id": str(event.pk),
        "type": "issuance.created",
        "created": event.created.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": {"issuance_id": "abc", "face_value": {"amount": "5.00", "currency": "EUR"}},
    }
    assert request.headers["Appease-Event-Id"] == str(event.pk)
    assert request.headers["Content-Type"] == "application/json"
    assert header.count("v1=") == 1
    # a changed body, another secret, a replay after the tolerance: refused
    assert not verify(body.replace(b"abc", b"abd"), header, secret)
    assert not verify(body, header, secret + "x")
    timestamp = int(header.split(",")[0].removeprefix("t="))
    assert not verify(body, header, secret, now=timestamp + 301)
    assert verify(body, header, secret, now=timestamp + 299)
    assert not verify(body, "v1=" + header.split("v1=")[1], secret)  # no t=
    # the attempt is logged as sent with the receiver's status
    delivery = webhook_deliveries(event).get()
    assert (delivery.status, delivery.attempts, delivery.customer_id) == ("sent", 1, None)
    assert list(delivery.attempt_log.values_list("outcome", "status_code")) == [("sent", 200)]


# --- retries, timeouts, dead letters ---------------------------------------------------


def test_a_500_is_retried_with_the_same_event_id_and_body(httpserver, make_endpoint):
    # given: the receiver fails once, then accepts
    _endpoint, secret = make_endpoint(httpserver.url_for(HOOK), ["issuance.created"])
    httpserver.expect_ordered_request(HOOK).respond_with_data("down", status=500)
    httpserver.expect_ordered_request(HOOK).respond_with_data("ok", status=204)
    event = emit()
    delivery = webhook_deliveries(event).get()
    # when
    assert delivery_send(delivery_id=delivery.pk) == "retry"
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.next_attempt_at > timezone.now()
    assert delivery_send(delivery_id=delivery.pk) == "not_due"  # the backoff holds it
    due_now(delivery)
    assert delivery_send(delivery_id=delivery.pk) == "sent"
    # then
    first, second = requests_to(httpserver)
    assert first.get_data() == second.get_data()
    assert first.headers["Appease-Event-Id"] == second.headers["Appease-Event-Id"] == str(event.pk)
    assert verify(second.get_data(), second.headers["Appease-Signature"], secret)
    assert list(delivery.attempt_log.values_list("outcome", "status_code")) == [("transient", 500), ("sent", 204)]


def test_a_timeout_is_retried(httpserver, make_endpoint, private_allowed):
    # given: the receiver answers after the timeout once, then at once
    private_allowed.WEBHOOKS_TIMEOUT = 0.5

    gave_up, finished = threading.Event(), threading.Event()

    def slow(request):
        # late: answers only once the sender has given up on it (bounded if it never does)
        gave_up.wait(10)
        finished.set()
        return Response("late")

    make_endpoint(httpserver.url_for(HOOK), ["issuance.created"])
    httpserver.expect_ordered_request(HOOK).respond_with_handler(slow)
    httpserver.expect_ordered_request(HOOK).respond_with_data("ok")
    delivery = webhook_deliveries(emit()).get()
    # when / then
    assert delivery_send(delivery_id=delivery.pk) == "retry"
    gave_up.set()
    assert "timed out" in delivery.attempt_log.get().detail
    assert finished.wait(10)  # the test server answers one request at a time
    due_now(delivery)
    assert delivery_send(delivery_id=delivery.pk) == "sent"
    assert len(requests_to(httpserver)) == 2


def test_after_the_attempt_limit_it_is_a_dead_letter_that_one_requeue_sends(
    httpserver, make_endpoint, supervisor, private_allowed
):
    # given: a receiver down for good, and an attempt limit of 3
    private_allowed.DELIVERY_MAX_ATTEMPTS = 3
    make_endpoint(httpserver.url_for(HOOK), ["issuance.created"])
    httpserver.expect_request(HOOK).respond_with_data("down", status=503)
    delivery = webhook_deliveries(emit()).get()
    # when
    outcomes = []
    for _ in range(3):
        due_now(delivery)
        outcomes.append(delivery_send(delivery_id=delivery.pk))
    # then
    assert outcomes == ["retry", "retry", "dead"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.failure_reason) == ("dead", "exhausted")
    # when: the receiver is back and the dead letter is sent again (the admin's action)
    httpserver.clear()
    httpserver.expect_request(HOOK).respond_with_data("ok")
    outcome = deliveries_requeue(actor=Actor(user=supervisor), ids=[delivery.pk], via="admin")
    assert [d.pk for d in outcome.requeued] == [delivery.pk]
    assert delivery_send(delivery_id=delivery.pk) == "sent"
    assert len(requests_to(httpserver)) == 1


def test_a_4xx_fails_at_once_but_408_and_429_are_retried(httpserver, make_endpoint):
    make_endpoint(httpserver.url_for(HOOK), ["issuance.created"])
    httpserver.expect_ordered_request(HOOK).respond_with_data("slow down", status=429)
    httpserver.expect_ordered_request(HOOK).respond_with_data("timeout", status=408)
    httpserver.expect_ordered_request(HOOK).respond_with_data("gone", status=410)
    delivery = webhook_deliveries(emit()).get()
    results = []
    for _ in range(3):
        due_now(delivery)
        results.append(delivery_send(delivery_id=delivery.pk))
    assert results == ["retry", "retry", "failed"]
    delivery.refresh_from_db()
    assert delivery.failure_reason == "rejected"


# --- subscriptions ---------------------------------------------------------------------


def test_each_endpoint_gets_exactly_the_events_it_subscribed_to(httpserver, make_endpoint, supervisor):
    # given: A wants issuances, B redemptions and voids, C everything but is switched off
    make_endpoint(httpserver.url_for("/a"), ["issuance.created", "issuance.voided"])
    make_endpoint(httpserver.url_for("/b"), ["redemption.created", "redemption.reversed", "issuance.voided"])
    off, _secret = make_endpoint(httpserver.url_for("/c"), ["issuance.created", "redemption.created"])
    WebhookEndpoint.objects.filter(pk=off.pk).update(is_active=False)
    for path in ("/a", "/b", "/c"):
        httpserver.expect_request(path).respond_with_data("ok")
    # when: the real services issue, redeem, reverse and void
    rep = staff_user(policy=policy_create(currency="EUR"))
    offer = offer_create(value_amount=Decimal("5.00"), currency="EUR")
    issuance = issuance_create(
        actor=Actor(user=rep),
        customer=customer_create(external_id="crm-1", currency="EUR"),
        offer=offer,
        reason_code=reason_create(),
    )
    plaintext = codes.decrypt(issuance.code.ciphertext)
    merchant, _key = merchant_with_key()
    redemption = redemption_create(
        merchant=merchant, raw_code=plaintext, order_id="o-1", order_total=Decimal("20.00"), currency="EUR"
    )
    redemption_reverse(merchant=merchant, redemption_id=redemption.pk, reason="cancelled")
    issuance_void(actor=Actor(user=supervisor), issuance_id=issuance.pk, reason="mistake")
    assert set(send_all()) == {"sent"}

    # then
    def types(path):
        return [json.loads(request.get_data())["type"] for request in requests_to(httpserver, path)]

    assert sorted(types("/a")) == ["issuance.created", "issuance.voided"]
    assert sorted(types("/b")) == ["issuance.voided", "redemption.created", "redemption.reversed"]
    assert types("/c") == []
    # the payloads: ids, money as strings with the currency, the code's last four only
    bodies = [request.get_data().decode() for request, _ in httpserver.log]
    assert not any(plaintext in body for body in bodies)
    assert not any(issuance.customer.email in body or issuance.customer.name in body for body in bodies)
    created = next(json.loads(b)["data"] for b in bodies if json.loads(b)["type"] == "issuance.created")
    assert created["code_last4"] == plaintext.replace("-", "")[-4:] == issuance.code.last4
    assert created["face_value"] == {"amount": "5.00", "currency": "EUR"}
    assert created["customer_external_id"] == "crm-1"
    redeemed = next(json.loads(b)["data"] for b in bodies if json.loads(b)["type"] == "redemption.created")
    assert redeemed["discount"] == {"amount": "5.00", "currency": "EUR"}
    assert redeemed["redeemed_at"].endswith("Z")
    assert_documented(WebhookEvent.objects.all())


def test_nothing_is_written_when_no_endpoint_subscribes_and_nothing_when_the_caller_rolls_back(make_endpoint):
    assert emit("case.opened") is None
    make_endpoint("http://127.0.0.1:9/hook", ["case.opened"])
    with pytest.raises(RuntimeError), transaction.atomic():
        webhook_event_emit(type="case.opened", data={"case_id": 1})
        raise RuntimeError("the owning service failed")
    assert (WebhookEvent.objects.count(), webhook_deliveries().count()) == (0, 0)


def test_a_customer_message_sent_or_failed_is_an_event_but_a_webhook_is_never_one_itself(
    httpserver, make_endpoint, private_allowed
):
    # given: an endpoint for delivery events, and an appeasement whose email is sent
    make_endpoint(httpserver.url_for(HOOK), ["delivery.sent", "delivery.failed"])
    httpserver.expect_request(HOOK).respond_with_data("ok")
    rep = staff_user(policy=policy_create())
    issuance = issuance_create(
        actor=Actor(user=rep), customer=customer_create(), offer=offer_create(), reason_code=reason_create()
    )
    email = issuance.deliveries.get()
    # when
    assert delivery_send(delivery_id=email.pk) == "sent"
    # then: one delivery.sent event, sent; sending it made no further event
    event = WebhookEvent.objects.get()
    assert (event.type, event.payload["delivery_id"], event.payload["channel"]) == (
        "delivery.sent",
        str(email.pk),
        "email",
    )
    assert send_all() == ["sent"]
    assert WebhookEvent.objects.count() == 1
    assert send_all() == []
    assert_documented([event])


# --- SSRF and redirects ----------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104  (an address to refuse, not to bind)
        "::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "fd00::1",
    ],
)
def test_private_loopback_link_local_and_reserved_addresses_are_blocked(address):
    import ipaddress

    assert address_blocked(ipaddress.ip_address(address))


def test_public_addresses_are_not_blocked():
    import ipaddress

    assert not address_blocked(ipaddress.ip_address("93.184.216.34"))
    assert not address_blocked(ipaddress.ip_address("2606:2800:220:1::"))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/h",
        "http://10.0.0.5/h",
        "http://169.254.169.254/latest",
        "http://localhost/h",
        "http://[::1]/h",
    ],
)
def test_registering_a_private_address_is_refused_while_the_setting_is_off(supervisor, settings, url):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    with pytest.raises(ValidationError) as refused:
        webhook_endpoint_create(actor=Actor(user=supervisor), url=url, events=["case.opened"])
    assert "url" in refused.value.message_dict
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.255.255.1", "169.254.169.254"])
def test_at_send_time_every_resolved_address_is_checked_and_a_private_one_is_never_contacted(
    httpserver, make_endpoint, private_allowed, host
):
    # given: an endpoint registered while allowed (or whose name later resolves inside)
    port = httpserver.port
    make_endpoint(f"http://{host}:{port}{HOOK}", ["issuance.created"])
    httpserver.expect_request(HOOK).respond_with_data("ok")
    delivery = webhook_deliveries(emit()).get()
    # when: the guard is on
    private_allowed.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    assert delivery_send(delivery_id=delivery.pk) == "failed"
    # then: refused before connecting (10.255.255.1 would have timed out), never retried
    delivery.refresh_from_db()
    assert (delivery.status, delivery.failure_reason) == ("failed", "blocked_address")
    assert requests_to(httpserver) == []


def test_with_the_setting_on_the_local_receiver_is_reached_by_name_with_its_host_header(httpserver, make_endpoint):
    make_endpoint(f"http://localhost:{httpserver.port}{HOOK}", ["issuance.created"])
    httpserver.expect_request(HOOK).respond_with_data("ok")
    assert send_all() == [] and emit() and send_all() == ["sent"]
    (request,) = requests_to(httpserver)
    assert request.headers["Host"] == f"localhost:{httpserver.port}"


def test_a_redirect_is_not_followed(httpserver, make_endpoint):
    # given: the endpoint redirects to another path of the same server
    make_endpoint(httpserver.url_for(HOOK), ["issuance.created"])
    httpserver.expect_request(HOOK).respond_with_response(
        Response("", status=302, headers={"Location": httpserver.url_for("/elsewhere")})
    )
    httpserver.expect_request("/elsewhere").respond_with_data("ok")
    emit()
    # when
    result = send_all()
    # then: a failed attempt (retried later), and the target never saw a request
    assert result == ["retry"]
    assert len(requests_to(httpserver)) == 1
    assert requests_to(httpserver, "/elsewhere") == []
    assert webhook_deliveries().get().attempt_log.get().status_code == 302


# --- rotation --------------------------------------------------------------------------


def test_rotation_signs_with_both_secrets_during_the_overlap_then_with_the_new_one_only(
    httpserver, make_endpoint, supervisor
):
    # given
    endpoint, old = make_endpoint(httpserver.url_for(HOOK), ["issuance.created"])
    httpserver.expect_request(HOOK).respond_with_data("ok")
    # when: rotated
    endpoint, new = webhook_endpoint_rotate_secret(actor=Actor(user=supervisor), endpoint_id=endpoint.pk)
    assert new != old
    emit()
    send_all()
    # then: two v1 entries, each receiver's secret verifies
    (during,) = requests_to(httpserver)
    header = during.headers["Appease-Signature"]
    assert header.count("v1=") == 2
    assert verify(during.get_data(), header, old) and verify(during.get_data(), header, new)
    # when: the overlap is over
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
    )
    emit()
    send_all()
    # then: the new secret only
    after = requests_to(httpserver)[1]
    header = after.headers["Appease-Signature"]
    assert header.count("v1=") == 1
    assert verify(after.get_data(), header, new) and not verify(after.get_data(), header, old)


def test_the_secret_is_stored_encrypted_and_a_deleted_endpoint_gets_nothing_more(httpserver, make_endpoint, supervisor):
    from appease.webhooks.services import webhook_endpoint_delete

    endpoint, secret = make_endpoint(httpserver.url_for(HOOK), ["issuance.created"])
    assert secret.startswith("whsec_") and secret not in endpoint.secret_encrypted
    delivery = webhook_deliveries(emit()).get()
    webhook_endpoint_delete(actor=Actor(user=supervisor), endpoint_id=endpoint.pk)
    # a delivery already queued fails (its endpoint is gone); no new event is queued
    assert delivery_send(delivery_id=delivery.pk) == "failed"
    assert emit() is None
    assert requests_to(httpserver) == []
    assert WebhookDelivery.objects.count() == 1


def test_only_a_webhook_may_have_no_customer():
    from django.db import IntegrityError

    common = {"channel": "email", "address": "x@example.com", "language": "en", "next_attempt_at": timezone.now()}
    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.create(kind="follow_up", **common)
    Delivery.objects.create(kind="webhook", **{**common, "channel": "webhook", "address": "https://h.example.com"})
