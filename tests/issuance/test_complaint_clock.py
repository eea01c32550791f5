"""The 60-second clock starts at the complaint: the case's opening, a telephony or
helpdesk link's `started_at`, or the rep's Start (first keystroke); the issuance keeps
the start and where it came from, and the speed report says which start it used."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from appease.core.context import Actor
from appease.issuance.models import Issuance
from feedback.services.cases import case_claim, case_issue
from reporting import selectors
from reporting.filters import ReportFilter
from reporting.services import rollups_refresh
from tests.factories import customer_create, offer_create, policy_create, reason_create, staff_user
from tests.feedback.conftest import open_case

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return {
        "csr": staff_user(policy=policy_create(day_cost_amount=Decimal("100"))),
        "customer": customer_create(),
        "offer": offer_create(),
        "reason": reason_create("late-parcel"),
    }


def _give(client, world, **extra):
    # confirm_repeat: these tests give the same offer to one customer several times
    # (otherwise the page asks the rep to confirm a repeat within minutes).
    body = {
        "offer": world["offer"].pk,
        "reason_code": world["reason"].pk,
        "channel": "email",
        "note": "",
        "confirm_repeat": "1",
        **extra,
    }
    return client.post(f"/csr/customers/{world['customer'].pk}/issue/", body)


def test_a_link_with_started_at_starts_the_clock_and_the_issuance_keeps_it(world, client):
    client.force_login(world["csr"])
    started = (timezone.now() - timedelta(seconds=40)).replace(microsecond=0)

    page = client.get(f"/csr/customers/{world['customer'].pk}/", {"started_at": started.isoformat()})
    form = page.context["form"]
    assert (form["complaint_started_at"].value(), form["complaint_start_source"].value()) == (
        started.isoformat(),
        "link",
    )

    _give(client, world, complaint_started_at=started.isoformat(), complaint_start_source="link")
    issuance = Issuance.objects.get()
    assert (issuance.complaint_started_at, issuance.complaint_start_source) == (started, "link")
    assert issuance.seconds_to_issue >= 40


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-12-07T09:30:00", "with its offset"),  # naive: whose 09:30?
        ("yesterday", "ISO 8601"),
        ("2026-13-45T99:00:00+00:00", "ISO 8601"),
        ("9999-12-31T23:59:59+00:00", "future"),
    ],
)
def test_a_bad_started_at_in_a_link_is_said_and_starts_nothing(world, client, value, message):
    client.force_login(world["csr"])

    page = client.get(f"/csr/customers/{world['customer'].pk}/", {"started_at": value})

    assert page.status_code == 200
    assert message in page.context["start_link_error"]
    assert page.context["form"]["complaint_started_at"].value() in (None, "")


def test_the_reps_start_is_kept_with_its_source(world, client):
    client.force_login(world["csr"])
    started = timezone.now() - timedelta(seconds=25)

    _give(client, world, complaint_started_at=started.isoformat(), complaint_start_source="rep")

    issuance = Issuance.objects.get()
    assert issuance.complaint_start_source == "rep"
    assert issuance.seconds_to_issue >= 25


def test_not_started_is_not_timed(world, client):
    client.force_login(world["csr"])

    _give(client, world)

    issuance = Issuance.objects.get()
    assert (issuance.complaint_started_at, issuance.complaint_start_source, issuance.seconds_to_issue) == (
        None,
        "",
        None,
    )


@pytest.mark.parametrize("value", ["2026-12-07T09:30:00", "not a time", "9999-01-01T00:00:00+00:00"])
def test_a_bad_start_posted_by_the_page_is_a_field_error_and_gives_nothing(world, client, value):
    client.force_login(world["csr"])

    response = _give(client, world, complaint_started_at=value, complaint_start_source="rep")

    assert response.status_code == 400
    assert not Issuance.objects.exists()


def test_a_case_times_from_its_opening_and_the_api_from_its_caller(world):
    case = open_case(customer=world["customer"])
    case_claim(actor=Actor(user=world["csr"]), case_id=case.pk)
    from_case = case_issue(
        actor=Actor(user=world["csr"]), case_id=case.pk, offer=world["offer"], reason_code=world["reason"]
    )
    api = APIClient()
    api.force_login(world["csr"])
    started = timezone.now() - timedelta(seconds=10)
    response = api.post(
        "/api/v1/issuances",
        {
            "customer_id": world["customer"].pk,
            "offer_id": world["offer"].pk,
            "reason_code": "late-parcel",
            "complaint_started_at": started.isoformat(),
        },
        format="json",
    )

    assert (from_case.complaint_started_at, from_case.complaint_start_source) == (case.created_at, "case")
    assert response.status_code == 201, response.json()
    assert response.json()["complaint_start_source"] == "api"


def test_the_speed_report_says_which_start_it_used_live_and_from_the_rollups(world, client):
    # given: one timed from a link within 60 s, one from the rep's Start after 90 s,
    # one from before the source was kept (the page's opening)
    client.force_login(world["csr"])
    now = timezone.now()
    _give(client, world, complaint_started_at=(now - timedelta(seconds=30)).isoformat(), complaint_start_source="link")
    _give(client, world, complaint_started_at=(now - timedelta(seconds=90)).isoformat(), complaint_start_source="rep")
    _give(client, world, complaint_started_at=(now - timedelta(seconds=20)).isoformat(), complaint_start_source="rep")
    Issuance.objects.filter(pk=Issuance.objects.order_by("created_at").last().pk).update(complaint_start_source="")

    # when the report reads the live rows, then the rollups
    live = selectors.speed_by_start(ReportFilter({}, rollups=False))
    rollups_refresh()
    rolled = selectors.speed_by_start(ReportFilter({}))

    # then both say the same, per start
    expected = [
        {"source": "rep", "timed": 1, "within": 0},
        {"source": "link", "timed": 1, "within": 1},
        {"source": "", "timed": 1, "within": 1},
    ]
    assert live == rolled == expected
    supervisor = staff_user("Supervisor")
    client.force_login(supervisor)
    page = client.get("/admin/reports/speed/").content.decode()
    assert "The telephony or helpdesk link" in page and "The rep&#x27;s Start" in page
