import json
import time
from urllib.parse import urlencode

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from appease.delivery.callbacks import twilio_signature
from appease.delivery.channels.webhook import sign
from appease.delivery.models import Delivery
from appease.issuance.models import Issuance
from tests.delivery.test_outbox import issue

pytestmark = pytest.mark.django_db

WEBHOOK = "/api/v1/delivery/callbacks/webhook"
SMS = "/api/v1/delivery/callbacks/sms"


def sent_delivery(provider_id: str) -> Delivery:
    delivery = issue().deliveries.get()
    Delivery.objects.filter(pk=delivery.pk).update(status="sent", provider_message_id=provider_id)
    Issuance.objects.filter(pk=delivery.issuance_id).update(status="delivered")
    return delivery


def post_webhook(body: dict, *, secret="s3cret", timestamp=None, signature=None):  # noqa: S107
    raw = json.dumps(body)
    timestamp = str(timestamp or int(time.time()))
    headers = {
        "HTTP_X_APPEASE_TIMESTAMP": timestamp,
        "HTTP_X_APPEASE_SIGNATURE": signature or sign(secret, timestamp, raw),
    }
    return APIClient().post(WEBHOOK, data=raw, content_type="application/json", **headers)


@pytest.fixture(autouse=True)
def secrets(settings):
    settings.WEBHOOK_SECRET = "s3cret"
    settings.SMS_AUTH_TOKEN = "token"


def test_a_signed_webhook_callback_marks_delivered():
    delivery = sent_delivery("wa-1")
    response = post_webhook({"id": "wa-1", "status": "delivered"})
    assert response.status_code == 204
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED
    assert delivery.status_events.get().provider_status == "delivered"


def test_a_bounce_marks_the_delivery_and_the_issuance_failed():
    delivery = sent_delivery("wa-2")
    post_webhook({"id": "wa-2", "status": "bounced"})
    delivery.refresh_from_db()
    assert (delivery.status, delivery.failure_reason) == ("failed", "bounced")
    assert Issuance.objects.get(pk=delivery.issuance_id).status == Issuance.Status.FAILED


@pytest.mark.parametrize(
    "tamper",
    [
        {"signature": "sha256=" + "0" * 64},
        {"secret": "not-the-secret"},
        {"timestamp": int(time.time()) - 3600},
        {"signature": "nonsense"},
    ],
)
def test_unsigned_or_wrongly_signed_callbacks_are_refused_and_change_nothing(tamper):
    delivery = sent_delivery("wa-3")
    response = post_webhook({"id": "wa-3", "status": "failed"}, **tamper)
    assert response.status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT
    assert not delivery.status_events.exists()


def test_missing_signature_headers_are_refused():
    sent_delivery("wa-4")
    response = APIClient().post(WEBHOOK, {"id": "wa-4", "status": "failed"}, format="json")
    assert response.status_code == 403


@pytest.mark.parametrize("path", [WEBHOOK, SMS])
def test_a_refusal_has_the_error_body_the_schema_describes(path):
    """Found by the fuzzer: the schema said a 403 had no body; it is the usual error."""
    content_type = "application/json" if path == WEBHOOK else "application/x-www-form-urlencoded"
    response = APIClient().post(path, "", content_type=content_type)
    assert response.status_code == 403
    assert response.json()["error"] == "bad_signature"
    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert schema["paths"][path]["post"]["responses"]["403"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }


def test_a_twilio_signed_status_callback():
    delivery = sent_delivery("SM77")
    params = {"MessageSid": "SM77", "MessageStatus": "delivered", "To": "+34612345678"}
    url = "http://testserver" + SMS
    form = "application/x-www-form-urlencoded"
    good = APIClient().post(
        SMS, urlencode(params), content_type=form, HTTP_X_TWILIO_SIGNATURE=twilio_signature("token", url, params)
    )
    assert good.status_code == 204
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED
    bad = APIClient().post(
        SMS, urlencode(params), content_type=form, HTTP_X_TWILIO_SIGNATURE=twilio_signature("other", url, params)
    )
    assert bad.status_code == 403


def test_a_signed_callback_without_its_fields_is_400_and_records_nothing():
    """Found by the fuzzer (signed callbacks): a signed SMS callback without MessageStatus,
    or a webhook body that is a list, answered 204 and recorded an empty status."""
    from appease.delivery.models import DeliveryStatusEvent

    # given
    sent_delivery("SM78")
    params = {"MessageSid": "SM78"}
    url = "http://testserver" + SMS
    form = "application/x-www-form-urlencoded"
    # when
    sms = APIClient().post(
        SMS, urlencode(params), content_type=form, HTTP_X_TWILIO_SIGNATURE=twilio_signature("token", url, params)
    )
    webhook = post_webhook(["SM78", "delivered"])
    nul = post_webhook({"id": "SM78", "status": "deliv\x00ered"})
    # then
    assert (sms.status_code, list(sms.json()["fields"])) == (400, ["MessageStatus"])
    assert (webhook.status_code, sorted(webhook.json()["fields"])) == (400, ["id", "status"])
    assert (nul.status_code, list(nul.json()["fields"])) == (400, ["status"])
    assert not DeliveryStatusEvent.objects.exists()
