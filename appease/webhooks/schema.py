"""The events in the OpenAPI schema: each event type is a callback of
`POST /api/v1/webhook-endpoints` (what Appease will send to the registered `url`), with
its envelope and an example `data` (docs/integrations.md, "Outbound webhooks", has the
same examples and the signature check)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiCallback, OpenApiExample, OpenApiRequest, OpenApiResponse, extend_schema
from rest_framework import serializers

from appease.webhooks.models import EventType

ISSUANCE = {
    "issuance_id": "0f6d4a0e-8d0a-4b8e-9d4c-1c2b3a4d5e6f",
    "status": "issued",
    "customer_id": 42,
    "customer_external_id": "crm-1042",
    "offer_id": 3,
    "reason_code": "late-delivery",
    "channel": "email",
    "face_value": {"amount": "5.00", "currency": "EUR"},
    "code_last4": "7KQ2",
    "case_id": None,
    "auto_rule_id": None,
    "created_at": "2026-12-07T12:00:00.123456Z",
    "issued_at": "2026-12-07T12:00:00.120000Z",
    "decided_at": None,
    "voided_at": None,
}
DELIVERY = {
    "delivery_id": "0b6c7a1e-6d8f-4a52-9a0e-2f3b1c4d5e6f",
    "kind": "appeasement",
    "channel": "sms",
    "status": "sent",
    "failure_reason": "",
    "issuance_id": "0f6d4a0e-8d0a-4b8e-9d4c-1c2b3a4d5e6f",
    "customer_id": 42,
    "attempts": 1,
    "at": "2026-12-07T12:00:01Z",
}
REDEMPTION = {
    "redemption_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
    "status": "active",
    "merchant_id": 1,
    "order_id": "SO-1001",
    "offer_id": 3,
    "code_last4": "7KQ2",
    "order_total": {"amount": "20.00", "currency": "EUR"},
    "discount": {"amount": "5.00", "currency": "EUR"},
    "balance_after": None,
    "redeemed_at": "2026-12-07T13:00:00Z",
    "reversed_at": None,
}
CASE = {
    "case_id": 7,
    "status": "open",
    "source": "widget",
    "incident_type": "late_delivery",
    "priority": "high",
    "channel": "email",
    "intervention": None,
    "customer_id": 42,
    "customer_external_id": "crm-1042",
    "created_at": "2026-12-07T11:00:00Z",
    "resolved_at": None,
}
FOLLOW_UP = {
    "follow_up_id": "3c2b1a0f-9e8d-4c7b-a6f5-e4d3c2b1a0f9",
    "case_id": 7,
    "issuance_id": None,
    "customer_id": 42,
    "solved": True,
    "csat": 5,
    "answered_at": "2026-12-09T10:00:00Z",
}
ANOMALY = {
    "kind": "rep_rate",
    "subject_id": 12,
    "value": 0.61,
    "baseline": 0.22,
    "score": 4.8,
    "window_days": 30,
    "date_from": "2026-11-08",
    "date_to": "2026-12-07",
}

EXAMPLE_DATA: dict[str, dict] = {
    EventType.ISSUANCE_CREATED: ISSUANCE,
    EventType.ISSUANCE_APPROVED: {**ISSUANCE, "decided_at": "2026-12-07T12:10:00Z"},
    EventType.ISSUANCE_REJECTED: {**ISSUANCE, "status": "rejected", "decided_at": "2026-12-07T12:10:00Z"},
    EventType.ISSUANCE_VOIDED: {**ISSUANCE, "status": "voided", "voided_at": "2026-12-08T09:00:00Z"},
    EventType.DELIVERY_SENT: DELIVERY,
    EventType.DELIVERY_FAILED: {**DELIVERY, "status": "dead", "failure_reason": "exhausted", "attempts": 25},
    EventType.REDEMPTION_CREATED: REDEMPTION,
    EventType.REDEMPTION_REVERSED: {**REDEMPTION, "status": "reversed", "reversed_at": "2026-12-07T15:00:00Z"},
    EventType.CASE_OPENED: CASE,
    EventType.CASE_RESOLVED: {**CASE, "status": "resolved", "resolved_at": "2026-12-07T11:40:00Z"},
    EventType.FOLLOW_UP_ANSWERED: FOLLOW_UP,
    EventType.ANOMALY_FLAGGED: ANOMALY,
}


class WebhookEventSerializer(serializers.Serializer):
    """What every webhook POST carries: the same bytes on every attempt."""

    id = serializers.UUIDField(help_text="The event's id: deduplicate on it (a retry sends the same id).")
    type = serializers.ChoiceField(choices=EventType.choices)
    created = serializers.DateTimeField(help_text="When the event happened (UTC).")
    data = serializers.DictField(help_text="The event's subject; codes appear as their last four characters only.")


DESCRIPTION = (
    "Appease POSTs this JSON to the endpoint's `url`, signed: header "
    '`Appease-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the endpoint\'s '
    "secret>` (a second `v1=` during a secret rotation), and `Appease-Event-Id`. Reject a "
    "timestamp more than 5 minutes off. Answer 2xx to acknowledge; 408, 429, 5xx and timeouts "
    "are retried with backoff, other answers are final."
)


def _callback(event: EventType) -> OpenApiCallback:
    example = {
        "id": "5d7f9c1a-2b3e-4f5a-8b6c-7d8e9f0a1b2c",
        "type": event.value,
        "created": "2026-12-07T12:00:00.125000Z",
        "data": EXAMPLE_DATA[event],
    }
    return OpenApiCallback(
        name=event.value,
        path="{$request.body#/url}",
        decorator=extend_schema(
            summary=str(event.label),
            description=DESCRIPTION,
            request=OpenApiRequest(WebhookEventSerializer, examples=[OpenApiExample(event.value, value=example)]),
            responses={200: OpenApiResponse(description="Received (any 2xx).")},
        ),
    )


EVENT_CALLBACKS = [_callback(event) for event in EventType]
