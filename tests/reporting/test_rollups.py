"""The rollups (reporting.models, kept by reporting.services.rollups_refresh): every
figure read from them equals the live one; a refresh rewrites today, yesterday and the
older days something changed since the last one; the nightly restatement mends the rest;
two refreshes at once never both write."""

from __future__ import annotations

import io
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from appease.core.context import Actor
from appease.delivery.models import Delivery
from appease.issuance.models import Issuance, ReasonCode, Team
from appease.issuance.services.issuance import issuance_void
from coupons.models import Merchant, Offer
from coupons.services.redemption import redemption_create
from feedback.models import Case, FollowUp
from reporting import models as rollups
from reporting import selectors
from reporting.filters import ReportFilter
from reporting.models import RollupState
from reporting.services import rollups_refresh
from tests.factories import customer_create, issued_code, offer_create, reason_create, staff_user

pytestmark = pytest.mark.django_db

SELECTORS = {
    "totals": lambda f: selectors.totals(f, "USD"),
    "per rep": lambda f: selectors.by_dimension(f, "USD", "rep"),
    "per reason": lambda f: selectors.by_dimension(f, "EUR", "reason_code"),
    "per incident type": lambda f: selectors.by_dimension(f, "USD", "incident_type"),
    "per offer": lambda f: selectors.by_dimension(f, "BRL", "offer"),
    "per channel": lambda f: selectors.by_dimension(f, "USD", "channel"),
    "per rep and reason": lambda f: selectors.by_rep_and_reason(f, "USD"),
    "over time": lambda f: selectors.over_time(f, "USD", "week"),
    "approvals": selectors.approvals,
    "value redeemed": lambda f: selectors.value_redeemed(f, "USD"),
    "60-second goal": selectors.speed,
    "60-second goal per start": selectors.speed_by_start,
    "delivery speed": selectors.delivery_speed,
    "delivery failures": selectors.delivery_failures,
    "cases": selectors.cases_by_type_and_priority,
    "cases per rep": selectors.cases_handled,
    "resolution": selectors.resolution,
    "satisfaction": selectors.satisfaction,
}


@pytest.fixture
def history(db):
    call_command(
        "generate_history", issuances=600, reps=12, customers=80, days=60, seed=11, stdout=io.StringIO()
    )  # writes the rollups as it ends


def filter_sets():
    rep = Issuance.objects.filter(csr__isnull=False).values_list("csr", flat=True).first()
    today = timezone.localdate()
    return [
        {},
        {"date_from": (today - timedelta(days=20)).isoformat(), "date_to": (today - timedelta(days=3)).isoformat()},
        {"team": Team.objects.order_by("pk").values_list("pk", flat=True).first()},
        {"rep": rep},
        {"reason_code": ReasonCode.objects.order_by("pk").values_list("pk", flat=True).first()},
        {"incident_type": "late_delivery"},
        {"offer": Offer.objects.order_by("pk").values_list("pk", flat=True).first()},
        {"channel": "sms"},
        {"team": Team.objects.order_by("pk").values_list("pk", flat=True).first(), "channel": "email"},
        {"team": Team.objects.order_by("pk").values_list("pk", flat=True).first(), "incident_type": "billing"},
    ]


def test_every_figure_from_the_rollups_equals_the_live_one(history):
    # given a history, its rollups written; when each figure is read both ways, under
    # each filter; then they agree (and the rollups were used where they could be)
    assert rollups.RepReasonDay.objects.exists() and rollups.CaseDay.objects.exists()
    compared = 0
    for data in filter_sets():
        for name, figure in SELECTORS.items():
            from_rollups, live = figure(ReportFilter(data)), figure(ReportFilter(data, rollups=False))
            assert from_rollups == live, (name, data)
            compared += 1
    assert compared == len(SELECTORS) * 10


def test_the_rollups_answer_what_they_hold_and_the_live_rows_the_rest(history):
    from reporting.facts import CASES, DELIVERIES, ISSUANCES

    everyone, team = ReportFilter({}), ReportFilter({"team": Team.objects.first().pk})
    offer = ReportFilter({"offer": Offer.objects.first().pk})
    rep = ReportFilter({"rep": Issuance.objects.filter(csr__isnull=False).first().csr_id})
    assert rep.dimensions() and team.dimensions() and offer.dimensions()

    assert ISSUANCES.facts(everyone).source == "RepDay"  # the smallest that holds the totals
    assert ISSUANCES.facts(everyone, by=["offer"]).source == "IssuanceDay"
    assert ISSUANCES.facts(team, by=["offer"]).source == "TeamIssuanceDay"  # its per-team twin
    assert ISSUANCES.facts(rep, by=["reason_code"]).source == "RepReasonDay"
    assert ISSUANCES.facts(rep, by=["offer"]).source == "live issuances"  # no rollup has rep × offer
    assert ISSUANCES.facts(offer, by=["rep"]).source == "live issuances"
    assert CASES.facts(everyone, by=["rep"], measures=["cases"]).source == "RepCaseDay"
    assert CASES.facts(everyone).source == "CaseDay"
    assert DELIVERIES.facts(team).source == "TeamDeliveryDay"
    assert DELIVERIES.facts(rep).source == "live deliveries"


# --- Keeping them up to date --------------------------------------------------------------


def given_on(day_offset: int, *, offer=None, reason=None, rep=None) -> Issuance:
    """An appeasement with a code, given `day_offset` days ago (the code still valid)."""
    offer = offer or offer_create(value_amount=Decimal("5"), cost_amount=Decimal("3"), validity_days=365)
    issued = issued_code(offer)
    when = timezone.now() - timedelta(days=day_offset)
    issuance = Issuance.objects.create(
        csr=rep or staff_user(),
        customer=customer_create(),
        offer=offer,
        reason_code=reason or reason_create(),
        channel="email",
        code=issued.code,
        status=Issuance.Status.DELIVERED,
        currency=offer.currency,
        face_value_amount=offer.value_amount,
        cost_amount=offer.cost_amount,
        issued_at=when,
    )
    Issuance.objects.filter(pk=issuance.pk).update(created_at=when)
    issuance.plaintext = issued.plaintext
    return issuance


def figures(**data) -> dict:
    filters = ReportFilter({"date_from": (timezone.localdate() - timedelta(days=89)).isoformat(), **data})
    return selectors.totals(filters, "USD")


def test_a_refresh_rewrites_today_and_the_old_days_something_changed(client):
    # given: one appeasement given 40 days ago, one 50 days ago, the rollups refreshed
    old, older = given_on(40), given_on(50)
    rollups_refresh()
    assert (figures()["count"], figures()["used"]) == (2, 0)
    # and one given today
    given_on(0)

    # when: the old one's code is redeemed at a checkout, the older one voided, and beat refreshes
    redemption_create(
        merchant=Merchant.objects.create(name="Shop"),
        raw_code=old.plaintext,
        order_id="o-1",
        order_total=Decimal("30"),
        currency="USD",
    )
    issuance_void(actor=Actor(user=staff_user("Supervisor")), issuance_id=older.pk, reason="Given twice")
    state = rollups_refresh()

    # then: today (new) and both old days (changed) are right, and only those were rewritten
    assert (figures()["count"], figures()["used"]) == (2, 1)  # today's, and the redeemed old one
    assert figures(date_to=(timezone.localdate() - timedelta(days=45)).isoformat())["count"] == 0
    assert state.days_rewritten == 4  # today, yesterday (REPORTING_RECENT_DAYS), 40 and 50 days ago


def test_what_no_timestamp_shows_is_mended_by_the_nightly_restatement():
    # given: an appeasement given 20 days ago, its delivery sent then, the rollups refreshed
    issuance = given_on(20)
    delivery = Delivery.objects.create(
        issuance=issuance,
        customer=issuance.customer,
        channel="email",
        address="x@example.com",
        language="en",
        status=Delivery.Status.SENT,
        next_attempt_at=issuance.created_at,
        sent_at=issuance.issued_at + timedelta(seconds=5),
    )
    rollups_refresh()
    within = lambda: selectors.delivery_speed(ReportFilter({}))[0]["within_10"]  # noqa: E731
    assert within() == 1

    # when: something changes an old day without a timestamp a refresh looks at
    Delivery.objects.filter(pk=delivery.pk).update(sent_at=issuance.issued_at + timedelta(minutes=2))
    rollups_refresh()
    # then: the minute's refresh does not see it; the restatement does
    assert within() == 1
    rollups_refresh(restate=True)
    assert within() == 0


def test_an_answered_follow_up_or_a_closed_case_rewrites_the_case_day():
    # given: a case opened 30 days ago, resolved, its follow-up sent; the rollups refreshed
    case = Case.objects.create(source="api", subject="Late", incident_type="late_delivery", status="resolved")
    Case.objects.filter(pk=case.pk).update(created_at=timezone.now() - timedelta(days=30))
    follow_up = FollowUp.objects.create(
        case=case,
        customer=customer_create(),
        status="sent",
        due_at=timezone.now(),
        expires_at=timezone.now() + timedelta(days=7),
        intervention="apology",
    )
    rollups_refresh()
    assert selectors.satisfaction(ReportFilter({}))["answers"] == 0

    # when: the customer answers now, and the case closes confirmed
    FollowUp.objects.filter(pk=follow_up.pk).update(status="answered", answered_at=timezone.now(), solved=True, csat=5)
    Case.objects.filter(pk=case.pk).update(status="confirmed", closed_at=timezone.now())
    rollups_refresh()

    # then
    assert selectors.satisfaction(ReportFilter({}))["answers"] == 1
    assert selectors.resolution(ReportFilter({}))["confirmed"] == 1


def test_a_refresh_is_safe_to_repeat(history):
    def rows():
        return {
            model.__name__: sorted(
                tuple(value for key, value in row.items() if key != "id") for row in model.objects.values()
            )
            for model in (rollups.IssuanceDay, rollups.RepReasonDay, rollups.DeliveryDay, rollups.OutcomeDay)
        }

    before = rows()
    rollups_refresh()
    rollups_refresh(restate=True)
    assert rows() == before


def test_the_report_pages_say_how_fresh_the_figures_are(client):
    given_on(1)
    client.force_login(staff_user("Supervisor"))
    assert "Figures as of" not in client.get("/admin/reports/").content.decode()

    rollups_refresh()
    page = client.get("/admin/reports/")

    assert "Figures as of" in page.content.decode() and "days in UTC" in page.content.decode()
    assert page.context["totals"]["count"] == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_refreshes_at_once_never_both_write():
    # given: a refresh holding the state row (a long one: the nightly restatement, say)
    given_on(1)
    rollups_refresh()
    held, release = threading.Event(), threading.Event()
    results = {}

    def long_refresh():
        from django.db import transaction

        with transaction.atomic():
            RollupState.objects.select_for_update().get(pk=1)
            held.set()
            release.wait(10)
        connection.close()

    def second():
        results["second"] = rollups_refresh()
        connection.close()

    first = threading.Thread(target=long_refresh)
    first.start()
    held.wait(10)
    # when: beat's next refresh comes
    other = threading.Thread(target=second)
    other.start()
    other.join(10)
    release.set()
    first.join(10)

    # then: it stepped aside at once instead of waiting or writing beside it
    assert results == {"second": None}
    assert rollups_refresh() is not None


# --- Anomaly scans ----------------------------------------------------------------------------


def test_the_anomalies_page_reads_beats_scan_of_its_window_and_counts_the_rest_now(client, history, settings):
    from reporting.models import AnomalyScan
    from reporting.services import anomaly_scans_run

    client.force_login(staff_user("Supervisor"))
    today = timezone.localdate()
    last_90 = {"date_from": (today - timedelta(days=89)).isoformat(), "date_to": today.isoformat()}
    live = client.get("/admin/reports/anomalies/", last_90).context["flags"]
    assert live  # the history plants anomalies

    # when beat has scanned the windows
    kept = anomaly_scans_run()

    # then the page's default window comes from the scan, with the same flags
    assert kept == sum(len(scan.flags) for scan in AnomalyScan.objects.all())
    assert set(AnomalyScan.objects.values_list("days", flat=True)) == set(settings.REPORTING_ANOMALY_WINDOWS)
    page = client.get("/admin/reports/anomalies/")
    assert page.context["scan"].days == 90
    assert [(i["flag"].kind, i["flag"].subject_id) for i in page.context["flags"]] == [
        (i["flag"].kind, i["flag"].subject_id) for i in live
    ]
    assert [i["flag"].evidence for i in page.context["flags"]] == [i["flag"].evidence for i in live]
    # worded in the reader's language, though beat computed them in another
    spanish = client.get("/admin/reports/anomalies/", HTTP_ACCEPT_LANGUAGE="es")
    assert spanish.context["scan"] is not None
    assert "compensaciones por caso atendido" in spanish.content.decode()
    # a filter, or another period, is counted now
    team = Team.objects.first().pk
    assert client.get("/admin/reports/anomalies/", {**last_90, "team": team}).context["scan"] is None
    other = {"date_from": (today - timedelta(days=40)).isoformat()}
    assert client.get("/admin/reports/anomalies/", other).context["scan"] is None
    # and a scan beat has not renewed in two of its intervals is not trusted
    AnomalyScan.objects.update(computed_at=timezone.now() - timedelta(minutes=31))
    assert client.get("/admin/reports/anomalies/").context["scan"] is None


def test_the_customers_figure_is_fetched_after_the_page(client):
    given_on(1)
    rollups_refresh()
    client.force_login(staff_user("Supervisor"))

    page = client.get("/admin/reports/").content.decode()
    counted = client.get(
        "/admin/reports/customers/", {"date_from": (timezone.localdate() - timedelta(days=9)).isoformat()}
    )

    assert 'data-customers="/admin/reports/customers/?' in page
    assert counted.json() == {"customers": 1}
    client.force_login(staff_user("CSR"))
    assert client.get("/admin/reports/customers/").status_code in (302, 403)
