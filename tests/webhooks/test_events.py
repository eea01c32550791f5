"""The events the feedback and reporting services emit, and what their payloads hold."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from appease.webhooks.models import WebhookEvent
from feedback.services.surveys import survey_answer, survey_token
from tests.factories import customer_create
from tests.feedback.conftest import csr  # noqa: F401  (a fixture)
from tests.feedback.test_surveys import sent_follow_up
from tests.webhooks.test_schema import assert_documented

pytestmark = pytest.mark.django_db

EVERYTHING = [
    "case.opened",
    "case.resolved",
    "follow_up.answered",
    "anomaly.flagged",
]


def test_a_case_opened_resolved_and_its_follow_up_answered_are_events_without_personal_data(make_endpoint, csr):  # noqa: F811
    # given
    make_endpoint("https://hooks.example.com/x", EVERYTHING)
    customer = customer_create(language="es", external_id="crm-9", name="Pat Secret")
    # when
    follow_up = sent_follow_up(csr, customer)
    survey_answer(token=survey_token(follow_up), solved=True, csat=5, comment="call me on +34 612 345 678")
    # then
    events = {event.type: event.payload for event in WebhookEvent.objects.order_by("created")}
    assert list(events) == ["case.opened", "case.resolved", "follow_up.answered"]
    case = follow_up.case
    assert events["case.opened"]["case_id"] == case.pk
    assert events["case.opened"]["customer_external_id"] == "crm-9"
    assert events["case.resolved"]["status"] == "resolved"
    assert events["case.resolved"]["resolved_at"].endswith("Z")
    assert events["follow_up.answered"] == {
        "follow_up_id": str(follow_up.pk),
        "case_id": case.pk,
        "issuance_id": None,  # a case's follow-up: no appeasement of its own
        "customer_id": customer.pk,
        "solved": True,
        "csat": 5,
        "answered_at": events["follow_up.answered"]["answered_at"],
    }
    text = json.dumps(events)
    for personal in ("Pat Secret", customer.email, "612 345", "parcel", "Refunded"):
        assert personal not in text
    assert_documented(WebhookEvent.objects.all())


def test_only_new_anomaly_flags_are_events(make_endpoint):
    from reporting.models import AnomalyScan
    from reporting.services import anomaly_scans_run

    # given: a history with planted anomalies
    call_command("generate_history", issuances=600, reps=12, customers=80, days=60, seed=11, stdout=io.StringIO())
    make_endpoint("https://hooks.example.com/x", ["anomaly.flagged"])
    # when: beat scans twice
    anomaly_scans_run()
    first = list(WebhookEvent.objects.values_list("payload", flat=True))
    anomaly_scans_run()
    # then: each window's flags were told once, the second scan told nothing new
    flags = sum(len(scan.flags) for scan in AnomalyScan.objects.all())
    assert flags and len(first) == flags
    assert WebhookEvent.objects.count() == flags
    names = {flag["subject"] for scan in AnomalyScan.objects.all() for flag in scan.flags}
    assert not any(name in json.dumps(first) for name in names)
    assert_documented(WebhookEvent.objects.all())
    assert {payload["kind"] for payload in first} <= {
        "rep_rate",
        "rep_value",
        "rep_repeat_customer",
        "customer_many_reps",
        "offer_low_redemption",
    }
