"""Service-level targets: business hours, due times per priority, breaches escalated
once by the beat task (with the clock passed in: a frozen `now`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.test import override_settings

from appease.core.context import Actor
from feedback.models import Case, CaseEvent, PriorityLevel
from feedback.services.cases import case_call_log, case_claim
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
    case_call_log(actor=Actor(user=csr), case_id=answered.pk, text="Called: the outage is being fixed")
    frozen = late.created_at + timedelta(seconds=61)

    first = sla_breaches_escalate(now=frozen)
    again = sla_breaches_escalate(now=frozen + timedelta(seconds=30))

    assert (first, again) == (1, 0)
    late.refresh_from_db()
    assert late.first_response_breached_at == frozen and late.escalated_at == frozen
    assert (late.first_response_breaches, late.resolution_breaches) == (1, 0)
    assert Case.objects.get(pk=answered.pk).first_response_breached_at is None
    assert CaseEvent.objects.filter(case=late, kind=CaseEvent.Kind.SLA_BREACHED).count() == 1
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [supervisor.email]
    assert f"#{late.pk}" in mail.outbox[0].body


def test_a_resolution_breach_is_its_own_breach(supervisor, csr):
    case = open_case(email="c@example.com")
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    case_call_log(actor=Actor(user=csr), case_id=case.pk, text="Called: looking into it")
    case.refresh_from_db()

    assert sla_breaches_escalate(now=case.resolution_due_at + timedelta(seconds=1)) == 1

    case.refresh_from_db()
    assert case.first_response_breached_at is None and case.resolution_breached_at is not None


def test_a_reopened_case_keeps_the_count_of_its_breaches_and_can_breach_again(csr, client, settings):
    from feedback.services.cases import case_resolve
    from feedback.services.surveys import follow_ups_send, survey_answer, survey_token

    # given: a case that missed its first response, was then worked and resolved
    case = open_case(email="d@example.com")
    assert sla_breaches_escalate(now=case.first_response_due_at + timedelta(seconds=1)) == 1
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    case_resolve(actor=Actor(user=csr), case_id=case.pk, note="Sorted")
    follow_up = case.follow_ups.get()
    follow_ups_send(now=follow_up.due_at)

    # when: the customer says it was not solved (the case reopens, fresh targets)
    survey_answer(token=survey_token(follow_up), solved=False)

    # then: "breached in this round" is cleared, the count of breaches is not
    case.refresh_from_db()
    assert case.status == Case.Status.OPEN and case.first_response_breached_at is None
    assert (case.first_response_breaches, case.resolution_breaches) == (1, 0)

    # when: the reopened case misses its new first-response target too
    assert sla_breaches_escalate(now=case.first_response_due_at + timedelta(seconds=1)) == 1

    # then: breached (and escalated) again, counted twice, and the metric says 2
    case.refresh_from_db()
    assert case.first_response_breached_at is not None and case.first_response_breaches == 2
    assert case.events.filter(kind=CaseEvent.Kind.SLA_BREACHED).count() == 2
    settings.DEBUG = True
    from django.core.cache import cache

    cache.delete("metrics:business")
    body = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    assert 'appease_sla_breaches_total{target="first_response"} 2.0' in body
    assert 'appease_sla_breaches_total{target="resolution"} 0.0' in body


def test_the_breach_counts_are_filled_from_the_timeline_for_existing_cases():
    import importlib

    from django.apps import apps

    migration = importlib.import_module("feedback.migrations.0004_case_breach_counts")
    # given: cases from before the counters: one that breached twice (two rounds), one
    # with a breach timestamp but no timeline line (a bulk-loaded row), one never late
    twice = open_case(email="e@example.com")
    for _ in range(2):
        CaseEvent.objects.create(case=twice, kind=CaseEvent.Kind.SLA_BREACHED, data={"target": "first_response"})
    CaseEvent.objects.create(case=twice, kind=CaseEvent.Kind.SLA_BREACHED, data={"target": "resolution"})
    loaded = open_case(email="f@example.com")
    Case.objects.filter(pk=loaded.pk).update(resolution_breached_at=loaded.created_at)
    never = open_case(email="g@example.com")

    # when
    migration.fill(apps, None)

    # then
    counts = dict(Case.objects.values_list("pk", "first_response_breaches"))
    resolution = dict(Case.objects.values_list("pk", "resolution_breaches"))
    assert (counts[twice.pk], resolution[twice.pk]) == (2, 1)
    assert (counts[loaded.pk], resolution[loaded.pk]) == (0, 1)
    assert (counts[never.pk], resolution[never.pk]) == (0, 0)


def test_feedback_that_raises_a_cases_priority_tightens_its_targets_never_loosens_them():
    from feedback.services.intake import CustomerRef, feedback_submit

    # given: a normal case (late delivery 20 + gold customer 16 + three stars 3 = 39)
    customer = customer_create(email="h@example.com", tier="gold", lifetime_value_amount=Decimal("1000"))
    case = open_case(customer=customer, rating=3, text="Where is my parcel?")
    assert case.priority == "normal"
    normal_first, normal_resolution = case.first_response_due_at, case.resolution_due_at
    # a supervisor had pulled the first response in, earlier than high would give
    earlier = case.created_at + timedelta(seconds=30)
    Case.objects.filter(pk=case.pk).update(first_response_due_at=earlier)

    # when: one star about the same incident joins it (20 + 16 + 15 = 51: high)
    feedback_submit(
        actor=Actor(),
        source=Case.Source.API,
        ref=CustomerRef(email="h@example.com"),
        rating=1,
        text="Still nothing!",
        incident_type="late_delivery",
    )

    # then: high, with high's resolution target counted from when the case opened; the
    # earlier first-response target stays where it was
    case.refresh_from_db()
    high = PriorityLevel.objects.get(priority="high")
    assert (case.priority, case.priority_score) == ("high", 51)
    assert case.resolution_due_at == due_times(high, case.created_at)[1] < normal_resolution
    assert case.first_response_due_at == earlier < normal_first


def test_the_default_targets_count_business_days_of_the_configured_hours():
    # the bands loaded for the tests, with the default 09:00–18:00
    targets = {
        level.priority: (level.first_response_seconds, level.resolution_seconds)
        for level in PriorityLevel.objects.all()
    }

    assert targets == {
        "critical": (60, 4 * 3600),
        "high": (15 * 60, 9 * 3600),  # 15 minutes; 1 business day
        "normal": (4 * 3600, 27 * 3600),  # 4 business hours; 3 business days
        "low": (9 * 3600, 45 * 3600),  # 1 and 5 business days (no case by default)
    }


@override_settings(**HOURS, FEEDBACK_BUSINESS_DAYS=[0, 1, 2, 3, 4])
def test_a_high_case_opened_on_wednesday_morning_is_due_thursday_morning():
    wednesday = datetime(2026, 11, 18, 10, 0, tzinfo=MADRID)

    first, resolution = due_times(PriorityLevel.objects.get(priority="high"), wednesday)

    assert first == datetime(2026, 11, 18, 10, 15, tzinfo=MADRID)
    assert resolution == datetime(2026, 11, 19, 10, 0, tzinfo=MADRID)  # one business day later


@override_settings(FEEDBACK_BUSINESS_HOURS=("08:00", "16:00"))
def test_a_business_day_is_the_configured_opening_hours():
    from feedback.defaults import business_day_seconds, priority_levels

    assert business_day_seconds() == 8 * 3600
    assert {row[0]: row[4] for row in priority_levels()}["normal"] == 3 * 8 * 3600


def test_bands_still_at_the_old_figures_get_business_days_and_edited_ones_stay():
    import importlib

    from django.apps import apps

    migration = importlib.import_module("feedback.migrations.0007_business_day_targets")
    # given: the old starting figures, except a normal resolution a supervisor set
    PriorityLevel.objects.filter(priority="high").update(resolution_seconds=24 * 3600)
    PriorityLevel.objects.filter(priority="normal").update(resolution_seconds=2 * 3600)
    PriorityLevel.objects.filter(priority="low").update(first_response_seconds=24 * 3600, resolution_seconds=7 * 86400)

    # when
    migration.forward(apps, None)

    # then
    levels = {level.priority: level for level in PriorityLevel.objects.all()}
    assert levels["high"].resolution_seconds == 9 * 3600
    assert levels["normal"].resolution_seconds == 2 * 3600
    assert (levels["low"].first_response_seconds, levels["low"].resolution_seconds) == (9 * 3600, 45 * 3600)
