"""Service-level targets: business hours, due times per priority, breaches escalated
once by the beat task (with the clock passed in: a frozen `now`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.test import override_settings

from appease.context import Actor
from feedback.models import Case, CaseEvent, PriorityLevel
from feedback.services.cases import case_claim
from feedback.services.sla import add_business_seconds, due_times, sla_breaches_escalate
from tests.factories import customer_create
from tests.feedback.conftest import open_case

pytestmark = pytest.mark.django_db

MADRID = ZoneInfo("Europe/Madrid")
HOURS = {"FEEDBACK_TIME_ZONE": "Europe/Madrid", "FEEDBACK_BUSINESS_HOURS": ("09:00", "18:00")}


@override_settings(**HOURS, FEEDBACK_BUSINESS_DAYS=[0, 1, 2, 3, 4])
@pytest.mark.parametrize(
    ("start", "seconds", "due"),
    [
        # within the day
        (datetime(2026, 11, 18, 10, 0, tzinfo=MADRID), 3600, datetime(2026, 11, 18, 11, 0, tzinfo=MADRID)),
        # runs past closing: continues at the next opening
        (datetime(2026, 11, 18, 17, 30, tzinfo=MADRID), 3600, datetime(2026, 11, 19, 9, 30, tzinfo=MADRID)),
        # before opening: starts at nine
        (datetime(2026, 11, 18, 6, 0, tzinfo=MADRID), 900, datetime(2026, 11, 18, 9, 15, tzinfo=MADRID)),
        # Friday evening: Monday morning
        (datetime(2026, 11, 20, 17, 0, tzinfo=MADRID), 2 * 3600, datetime(2026, 11, 23, 10, 0, tzinfo=MADRID)),
        # a Saturday complaint
        (datetime(2026, 11, 21, 12, 0, tzinfo=MADRID), 60, datetime(2026, 11, 23, 9, 1, tzinfo=MADRID)),
        # three business days of nine hours
        (datetime(2026, 11, 18, 9, 0, tzinfo=MADRID), 27 * 3600, datetime(2026, 11, 20, 18, 0, tzinfo=MADRID)),
    ],
)
def test_business_seconds_skip_nights_and_weekends(start, seconds, due):
    assert add_business_seconds(start, seconds) == due


@override_settings(**HOURS, FEEDBACK_BUSINESS_DAYS=[0, 1, 2, 3, 4])
def test_critical_runs_around_the_clock_and_high_counts_business_hours():
    saturday_night = datetime(2026, 11, 21, 23, 0, tzinfo=MADRID)
    critical = PriorityLevel.objects.get(priority="critical")
    high = PriorityLevel.objects.get(priority="high")

    assert due_times(critical, saturday_night)[0] == saturday_night + timedelta(seconds=60)
    assert due_times(high, saturday_night)[0] == datetime(2026, 11, 23, 9, 15, tzinfo=MADRID)


def vip(email: str):
    return customer_create(email=email, tier="platinum", lifetime_value_amount=Decimal("5000"))


def test_a_critical_case_must_be_answered_within_a_minute():
    # an outage (40) for a platinum customer (20) who gave one star (15): 75 points
    case = open_case(customer=vip("v@example.com"), incident_type="service_outage", rating=1, text="All down!!!")

    assert case.priority == "critical"
    assert case.first_response_due_at - case.created_at == timedelta(seconds=60)


def test_breaches_are_marked_escalated_and_counted_once(supervisor, csr):
    late = open_case(customer=vip("a@example.com"), incident_type="service_outage", rating=1)
    answered = open_case(customer=vip("b@example.com"), incident_type="service_outage", rating=1)
    case_claim(actor=Actor(user=csr), case_id=answered.pk)
    frozen = late.created_at + timedelta(seconds=61)

    first = sla_breaches_escalate(now=frozen)
    again = sla_breaches_escalate(now=frozen + timedelta(seconds=30))

    assert (first, again) == (1, 0)
    late.refresh_from_db()
    assert late.first_response_breached_at == frozen and late.escalated_at == frozen
    assert Case.objects.get(pk=answered.pk).first_response_breached_at is None
    assert CaseEvent.objects.filter(case=late, kind=CaseEvent.Kind.SLA_BREACHED).count() == 1
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [supervisor.email]
    assert f"#{late.pk}" in mail.outbox[0].body


def test_a_resolution_breach_is_its_own_breach(supervisor, csr):
    case = open_case(email="c@example.com")
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    case.refresh_from_db()

    assert sla_breaches_escalate(now=case.resolution_due_at + timedelta(seconds=1)) == 1

    case.refresh_from_db()
    assert case.first_response_breached_at is None and case.resolution_breached_at is not None
