"""Webhooks in the admin: an endpoint added through the service (audited, the secret shown
once), deleted softly, and dead webhooks sent again with one click."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from appease.core.models import AuditEvent
from appease.delivery.models import Delivery
from appease.delivery.services import delivery_send
from appease.webhooks.models import WebhookEndpoint
from appease.webhooks.services import signing_secrets
from tests.webhooks.test_outbound import HOOK, emit, requests_to, webhook_deliveries

pytestmark = pytest.mark.django_db


def test_a_supervisor_adds_an_endpoint_and_sees_the_secret_once(client, supervisor, settings):
    # given
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    client.force_login(supervisor)
    # when: a private address first, then a good one
    refused = client.post(
        "/admin/webhooks/webhookendpoint/add/",
        {"url": "http://169.254.169.254/x", "events": ["case.opened"], "is_active": "on", "description": ""},
    )
    assert refused.status_code == 200 and not WebhookEndpoint.objects.exists()
    assert "private" in refused.content.decode()
    added = client.post(
        "/admin/webhooks/webhookendpoint/add/",
        {"url": "https://hooks.example.com/a", "events": ["case.opened", "issuance.created"], "is_active": "on"},
    )
    shown = client.get(added["Location"])
    # then: shown on the page, and never in a cookie on the way (the flash message that
    # carries it is kept server-side, in the session; Django's default storage would set
    # a signed, compressed but readable `messages` cookie)
    endpoint = WebhookEndpoint.objects.get()
    secret = signing_secrets(endpoint)[0]
    assert secret in shown.content.decode()
    assert "messages" not in added.cookies and "messages" not in shown.cookies
    assert endpoint.events == ["issuance.created", "case.opened"] and endpoint.created_by == supervisor
    assert secret not in client.get(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/").content.decode()
    assert AuditEvent.objects.filter(action="webhook_endpoint.create", actor=supervisor).exists()
    # when: deleted, with a delivery pointing at it
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    emit("case.opened")
    deleted = client.post(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/delete/", {"post": "yes"}, follow=True)
    assert deleted.status_code == 200
    endpoint.refresh_from_db()
    assert endpoint.deleted_at is not None and not endpoint.is_active
    assert AuditEvent.objects.filter(action="webhook_endpoint.delete").exists()


def test_dead_webhooks_are_listed_and_sent_again_with_one_click(client, supervisor, httpserver, make_endpoint):
    # given: a dead webhook
    make_endpoint(httpserver.url_for(HOOK), ["issuance.created"])
    delivery = webhook_deliveries(emit()).get()
    Delivery.objects.filter(pk=delivery.pk).update(status="dead", failure_reason="exhausted", attempts=25)
    link = delivery.webhook
    client.force_login(supervisor)
    listed = client.get("/admin/webhooks/webhookdelivery/", {"dead": "yes"}).content.decode()
    assert "issuance.created" in listed
    # when
    response = client.post(
        "/admin/webhooks/webhookdelivery/",
        {"action": "redeliver", "index": "0", "_selected_action": [str(link.pk)]},
        follow=True,
    )
    # then
    assert "1 webhooks queued again." in response.content.decode()
    httpserver.expect_request(HOOK).respond_with_data("ok")
    assert delivery_send(delivery_id=delivery.pk) == "sent"
    assert len(requests_to(httpserver)) == 1
    assert AuditEvent.objects.get(action="delivery.requeue").after["via"] == "admin"


def test_the_requeue_command_takes_the_webhook_channel(make_endpoint):
    make_endpoint("https://hooks.example.com/a", ["issuance.created"])
    delivery = webhook_deliveries(emit()).get()
    Delivery.objects.filter(pk=delivery.pk).update(status="dead", failure_reason="exhausted")
    call_command("deliveries_requeue", "--channel", "webhook", stdout=__import__("io").StringIO())
    assert Delivery.objects.get(pk=delivery.pk).status == "pending"
