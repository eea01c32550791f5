"""The webhook endpoints API: supervisors only, the secret in the creating (or rotating)
answer only, Idempotency-Key honoured, errors in the one JSON shape."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from appease.core.models import AuditEvent, StaffAPIKey
from appease.webhooks.models import WebhookEndpoint
from appease.webhooks.services import signing_secrets
from tests.factories import staff_user

pytestmark = pytest.mark.django_db

ENDPOINTS = "/api/v1/webhook-endpoints"
BODY = {"url": "https://hooks.example.com/appease", "events": ["issuance.created", "redemption.created"]}


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def boss(db):
    return client_for(staff_user("Supervisor"))


def test_a_supervisor_registers_an_endpoint_and_sees_its_secret_once(boss):
    # when
    created = boss.post(ENDPOINTS, {**BODY, "description": "ERP"}, format="json")
    # then
    assert created.status_code == 201, created.json()
    body = created.json()
    endpoint = WebhookEndpoint.objects.get(pk=body["id"])
    assert body["secret"] == signing_secrets(endpoint)[0]
    assert (body["url"], body["events"], body["is_active"]) == (BODY["url"], BODY["events"], True)
    listed = boss.get(ENDPOINTS).json()
    assert listed["count"] == 1 and "secret" not in listed["results"][0]
    assert "secret" not in boss.get(f"{ENDPOINTS}/{endpoint.pk}").json()
    audit = AuditEvent.objects.get(action="webhook_endpoint.create")
    assert body["secret"] not in str(audit.after)


def test_a_retry_with_the_same_idempotency_key_replays_the_answer_and_makes_nothing_new(boss):
    first = boss.post(ENDPOINTS, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = boss.post(ENDPOINTS, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert WebhookEndpoint.objects.count() == 1
    # after a rotation the replay no longer carries the (superseded) secret
    boss.post(f"{ENDPOINTS}/{first.json()['id']}/rotate-secret")
    late = boss.post(ENDPOINTS, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert late.status_code == 201 and "secret" not in late.json()


def test_patch_delete_and_rotate(boss):
    endpoint_id = boss.post(ENDPOINTS, BODY, format="json").json()["id"]
    detail = f"{ENDPOINTS}/{endpoint_id}"
    patched = boss.patch(detail, {"events": ["case.opened"], "is_active": False}, format="json")
    assert patched.status_code == 200
    assert (patched.json()["events"], patched.json()["is_active"]) == (["case.opened"], False)
    old = signing_secrets(WebhookEndpoint.objects.get(pk=endpoint_id))[0]
    rotated = boss.post(f"{detail}/rotate-secret")
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != old
    assert rotated.json()["previous_secret_expires_at"] is not None
    assert signing_secrets(WebhookEndpoint.objects.get(pk=endpoint_id)) == [rotated.json()["secret"], old]
    assert boss.delete(detail).status_code == 204
    assert boss.get(detail).status_code == 404
    assert boss.patch(detail, {"is_active": True}, format="json").status_code == 404
    assert boss.post(f"{detail}/rotate-secret").status_code == 404
    assert boss.get(ENDPOINTS).json()["count"] == 0
    actions = list(AuditEvent.objects.order_by("pk").values_list("action", flat=True))
    assert actions == [
        "webhook_endpoint.create",
        "webhook_endpoint.update",
        "webhook_endpoint.rotate_secret",
        "webhook_endpoint.delete",
    ]


def test_a_rep_may_not_and_a_staff_key_works_for_a_supervisor(db):
    rep = client_for(staff_user("CSR"))
    assert rep.get(ENDPOINTS).status_code == 403
    assert rep.post(ENDPOINTS, BODY, format="json").status_code == 403
    assert APIClient().get(ENDPOINTS).status_code in (401, 403)
    _key, token = StaffAPIKey.objects.create_key(name="ops", user=staff_user("Supervisor"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.post(ENDPOINTS, BODY, format="json").status_code == 201
    assert not WebhookEndpoint.objects.filter(created_by__groups__name="CSR").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**BODY, "events": ["issuance.eaten"]}, "events"),
        ({**BODY, "events": []}, "events"),
        ({**BODY, "events": "issuance.created"}, "events"),
        ({**BODY, "url": "ftp://example.com/x"}, "url"),
        ({**BODY, "url": "http://169.254.169.254/latest/meta-data"}, "url"),
        ({**BODY, "url": "https://user:pw@example.com/x"}, "url"),
        ({**BODY, "url": "https://example.com/" + "a" * 300}, "url"),
        ({**BODY, "url": "https://exa\x00mple.com/"}, "url"),
        ({"events": BODY["events"]}, "url"),
    ],
)
def test_hostile_input_is_a_400_naming_the_field_and_changes_nothing(boss, settings, body, field):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    response = boss.post(ENDPOINTS, body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["error"] == "invalid"
    assert field in response.json()["fields"]
    assert not WebhookEndpoint.objects.exists()


def test_bad_ids_are_404_not_500(boss):
    assert boss.get(f"{ENDPOINTS}/999999").status_code == 404
    assert boss.get(f"{ENDPOINTS}/99999999999999999999999").status_code == 404
    assert boss.patch(f"{ENDPOINTS}/999999", {"url": []}, format="json").status_code == 404
