"""The supervisor reports: each aggregate against a small data set computed by hand,
currencies never added together, who may see them, query counts pinned per page, and
the streamed CSV exports."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from appease.issuance.models import Issuance
from coupons.models import Code, Merchant, Redemption
from feedback.models import Case
from reporting import selectors
from reporting.services import rollups_refresh
from tests.factories import (
    customer_create,
    gift_card_offer_create,
    issued_code,
    offer_create,
    reason_create,
    staff_user,
)

pytestmark = pytest.mark.django_db

REPORT_PAGES = [
    "/admin/reports/",
    "/admin/reports/redemption/",
    "/admin/reports/speed/",
    "/admin/reports/cases/",
    "/admin/reports/recovery/",
    "/admin/reports/recovery/appeasements/",
    "/admin/reports/return/",
    "/admin/reports/reps/",
    "/admin/reports/anomalies/",
    "/admin/reports/issuances/",
]


def give(csr, offer, reason, *, status=Issuance.Status.DELIVERED, started=None, customer=None, ago=timedelta(days=1)):
    now = timezone.now() - ago
    code = issued_code(offer).code if not offer.is_soft and status != Issuance.Status.PENDING_APPROVAL else None
    issuance = Issuance.objects.create(
        csr=csr,
        customer=customer or customer_create(),
        offer=offer,
        reason_code=reason,
        channel="email",
        code=code,
        status=status,
        currency=offer.currency,
        face_value_amount=offer.value_amount,
        cost_amount=offer.cost_amount,
        issued_at=now,
        complaint_started_at=(now - started) if started is not None else None,
        breached_limits=[{"limit": "day_cost"}] if status in ("pending_approval", "rejected") else [],
    )
    Issuance.objects.filter(pk=issuance.pk).update(created_at=now)
    return issuance


def redeem(issuance, amount):
    """What the checkout did: a redemption row, and the code's state after it."""
    code = issuance.code
    Redemption.objects.create(
        code=code,
        merchant=Merchant.objects.get_or_create(name="Shop")[0],
        order_id=f"o-{code.pk}",
        order_total_amount=Decimal("100"),
        discount_amount=amount,
        currency=code.currency,
        single_use=code.balance_amount is None,
        redeemed_at=timezone.now(),
    )
    if code.balance_amount is None:
        Code.objects.filter(pk=code.pk).update(status="redeemed", redeemed_at=timezone.now())
    else:
        Code.objects.filter(pk=code.pk).update(balance_amount=code.balance_amount - amount)


@pytest.fixture
def history():
    """Two reps, two reasons, USD and EUR offers:

    ana: 3 × five-off (late; one redeemed; 30 s, 45 s and 200 s after the complaint),
         1 × gift card (rude; 20 of 50 used)
    bob: 2 × five-off (rude), 1 × ten-euro-off (late), 1 rejected gift card, 1 voided five-off
    """
    ana, bob = staff_user(username="ana"), staff_user(username="bob")
    late, rude = reason_create("late", "late_delivery"), reason_create("rude", "staff_attitude")
    five = offer_create(name="Five off", value_amount=Decimal("5"), cost_amount=Decimal("3"))
    gift = gift_card_offer_create(name="Gift", value_amount=Decimal("50"), cost_amount=Decimal("40"))
    euro = offer_create(name="Ten euro", value_amount=Decimal("10"), cost_amount=Decimal("6"), currency="EUR")
    first = give(ana, five, late, started=timedelta(seconds=30))
    give(ana, five, late, started=timedelta(seconds=45))
    give(ana, five, late, started=timedelta(seconds=200))
    card = give(ana, gift, rude)
    give(bob, five, rude)
    give(bob, five, rude)
    give(bob, euro, late)
    give(bob, gift, rude, status=Issuance.Status.REJECTED)
    give(bob, five, rude, status=Issuance.Status.VOIDED)
    redeem(first, Decimal("5"))
    redeem(card, Decimal("20"))
    rollups_refresh(restate=True)  # what beat does every minute
    return {"ana": ana, "bob": bob, "late": late, "rude": rude, "five": five, "gift": gift, "euro": euro}


def test_totals_count_every_currency_but_add_money_of_one_only(history, report):
    usd = selectors.totals(report(), "USD")
    eur = selectors.totals(report(), "EUR")

    assert usd["count"] == eur["count"] == 7  # rejected and voided are not given
    assert (usd["face"], usd["cost"]) == (Decimal("75"), Decimal("55"))  # 5 × 5 + 50; 5 × 3 + 40
    assert (eur["face"], eur["cost"]) == (Decimal("10"), Decimal("6"))
    assert (usd["with_code"], usd["used"]) == (7, 2)  # the redeemed five-off, the part-used gift card


def test_per_rep_stacked_by_reason(history, report):
    rows = {
        (row["csr__username"], row["reason_code__label"]): (row["count"], row["face"])
        for row in selectors.by_rep_and_reason(report(), "USD")
    }

    late, rude = history["late"].label, history["rude"].label
    assert rows == {
        ("ana", late): (3, Decimal("15")),
        ("ana", rude): (1, Decimal("50")),
        ("bob", rude): (2, Decimal("10")),
        ("bob", late): (1, Decimal("0")),  # one issuance, in EUR: no USD value
    }


def test_per_dimension_with_redemption(history, report):
    per_offer = {row["label"]: row for row in selectors.by_dimension(report(), "USD", "offer")}

    assert (per_offer["Five off"]["count"], per_offer["Five off"]["used"], per_offer["Five off"]["with_code"]) == (
        5,
        1,
        5,
    )
    assert (per_offer["Gift"]["count"], per_offer["Gift"]["used"]) == (1, 1)
    assert per_offer["Ten euro"]["face"] == Decimal("0")  # EUR, not counted in a USD sum


def test_approvals(history, report):
    assert selectors.approvals(report()) == {"requested": 1, "granted": 0, "rejected": 1, "waiting": 0}


def test_outstanding_liability_per_currency(history, report):
    rows = {row["currency"]: row for row in selectors.liability(report())}

    # USD: four unredeemed five-offs at face (20) + the gift card's remaining 30
    assert (rows["USD"]["codes"], rows["USD"]["total"]) == (5, Decimal("50"))
    assert rows["EUR"]["total"] == Decimal("10")


def test_value_given_and_redeemed(history, report):
    (row,) = selectors.value_redeemed(report(), "USD")

    assert (row["issued"], row["redeemed"]) == (Decimal("75"), Decimal("25"))


def test_the_sixty_second_goal(history, report):
    rows = selectors.speed(report())

    assert sum(row["timed"] for row in rows) == 3
    assert sum(row["within"] for row in rows) == 2


def test_resolution_rate_counts_customers_confirmations_not_closed_calls(report):
    for status in ["confirmed", "confirmed", "confirmed", "unconfirmed", "resolved", "open"]:
        Case.objects.create(source="api", subject="x", incident_type="late_delivery", status=status)

    figures = selectors.resolution(report())

    assert (figures["confirmed"], figures["unconfirmed"], figures["still_open"]) == (3, 1, 1)
    assert figures["rate"] == 0.75


# --- Pages -----------------------------------------------------------------------------
@pytest.mark.parametrize("path", REPORT_PAGES)
def test_reps_and_anonymous_people_cannot_see_the_reports(client, path):
    assert client.get(path).status_code == 302  # to the admin login
    client.force_login(staff_user("CSR"))
    response = client.get(path)
    assert response.status_code in (302, 403)
    assert "reports-nav" not in response.content.decode()


@pytest.mark.parametrize("path", REPORT_PAGES)
def test_each_page_renders_for_a_supervisor_with_a_pinned_number_of_queries(
    client, history, path, django_assert_max_num_queries
):
    client.force_login(staff_user("Supervisor"))

    with django_assert_max_num_queries(30):
        response = client.get(path)

    assert response.status_code == 200
    assert "reports-nav" in response.content.decode()


def test_query_count_does_not_grow_with_the_data(client, history):
    supervisor = staff_user("Supervisor")
    client.force_login(supervisor)
    client.get("/admin/reports/")  # warm caches (content types, sessions)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as before:
        client.get("/admin/reports/")
    for _ in range(20):
        give(history["bob"], history["five"], history["late"])
    with CaptureQueriesContext(connection) as after:
        client.get("/admin/reports/")

    assert len(after.captured_queries) == len(before.captured_queries)


def test_filters_narrow_every_figure(client, history):
    client.force_login(staff_user("Supervisor"))

    everyone = client.get("/admin/reports/")
    only_bob = client.get(f"/admin/reports/?rep={history['bob'].pk}")
    rude_only = client.get(f"/admin/reports/?reason_code={history['rude'].pk}")

    assert everyone.context["totals"]["count"] == 7
    assert only_bob.context["totals"]["count"] == 3
    assert rude_only.context["totals"]["count"] == 3
    assert everyone.context["totals"]["face"] == Decimal("75")
    euro = client.get("/admin/reports/?currency=EUR")
    assert euro.context["totals"]["face"] == Decimal("10")


def test_a_chart_drills_down_to_the_issuances_behind_it(client, history):
    client.force_login(staff_user("Supervisor"))

    page = client.get("/admin/reports/").content.decode()
    drill = f"/admin/reports/issuances/?currency=USD&amp;rep={history['bob'].pk}&amp;reason_code={history['rude'].pk}"
    assert drill.replace("&amp;", "&").split("?")[1] in page.replace("\\u0026", "&")

    listing = client.get(f"/admin/reports/issuances/?rep={history['bob'].pk}&reason_code={history['rude'].pk}")
    assert [item.offer.name for item in listing.context["page"]["items"]] == ["Five off", "Five off"]


def test_the_period_filter(client, history):
    old = give(history["ana"], history["five"], history["late"], ago=timedelta(days=200))
    rollups_refresh(restate=True)
    client.force_login(staff_user("Supervisor"))

    default = client.get("/admin/reports/")
    year = client.get(f"/admin/reports/?date_from={(timezone.localdate() - timedelta(days=365)).isoformat()}")

    assert default.context["totals"]["count"] == 7  # the last 90 days
    assert year.context["totals"]["count"] == 8
    assert old.pk


def test_csv_exports_stream(client, history):
    client.force_login(staff_user("Supervisor"))

    listing = client.get("/admin/reports/issuances/?export=issuances")
    table = client.get("/admin/reports/?export=issuances-by-reason")

    assert listing.streaming and table.streaming
    lines = b"".join(listing.streaming_content).decode("utf-8-sig").splitlines()
    assert lines[0].startswith("When,Given by,Customer")
    assert len(lines) == 1 + 6  # the page's currency (dollars by default): the euro one is in its own list
    assert sum(1 for line in lines if line.endswith(",yes")) == 2
    reasons = b"".join(table.streaming_content).decode("utf-8-sig").splitlines()
    assert len(reasons) == 1 + 2


def test_csv_exports_open_in_a_spreadsheet_as_data_and_in_the_right_encoding(client, history):
    """A cell starting with = + - @ ran as a formula in Excel; without a byte-order mark
    Excel on Windows showed the Spanish header "Cuándo" as "CuÃ¡ndo"."""
    # given: names typed by people, made to look like formulas
    history["five"].name = '=HYPERLINK("http://evil.example","Click")'
    history["five"].save()
    history["gift"].name = "@SUM(1+1)*cmd|' /C calc'!A0"
    history["gift"].save()
    history["euro"].name = "-2+3"
    history["euro"].save()
    client.force_login(staff_user("Supervisor"))

    # when
    table = b"".join(client.get("/admin/reports/?export=issuances-by-offer").streaming_content)
    spanish = b"".join(
        client.get("/admin/reports/issuances/?export=issuances", HTTP_ACCEPT_LANGUAGE="es").streaming_content
    )

    # then: the BOM first, the formulas as text, numbers (a negative one too) as numbers
    assert table.startswith(b"\xef\xbb\xbf") and spanish.startswith(b"\xef\xbb\xbf")
    assert spanish.decode("utf-8-sig").startswith("Cuándo,")
    cells = [cell for row in csv.reader(io.StringIO(table.decode("utf-8-sig"))) for cell in row]
    assert '\'=HYPERLINK("http://evil.example","Click")' in cells
    assert "'@SUM(1+1)*cmd|' /C calc'!A0" in cells
    assert not any(cell[:1] in ("=", "+", "@") or (cell[:1] == "-" and not cell[1:2].isdigit()) for cell in cells)


def test_the_rep_page_compares_with_peers(client, history):
    client.force_login(staff_user("Supervisor"))
    for rep, n in ((history["ana"], 4), (history["bob"], 6)):
        for _ in range(n):
            Case.objects.create(
                source="api", subject="x", incident_type="late_delivery", assigned_to=rep, status="claimed"
            )
    rollups_refresh(restate=True)

    response = client.get(f"/admin/reports/reps/{history['ana'].pk}/")

    assert response.status_code == 200
    assert response.context["per_case"] == 1.0  # four issuances, four cases
    assert response.context["peers"]["median"] == 0.5  # bob: three over six
    assert response.context["totals"]["count"] == 4


def test_a_user_without_a_role_is_refused_even_as_staff(client):
    user = User.objects.create_user("auditor", is_staff=True)
    client.force_login(user)

    assert client.get("/admin/reports/").status_code == 403


def test_the_anomalies_page_lists_each_flag_with_a_link_to_its_issuances(client, history):
    # a rep who gave one customer three appeasements is flagged
    customer = customer_create()
    for _ in range(3):
        give(history["ana"], history["five"], history["late"], customer=customer)
    client.force_login(staff_user("Supervisor"))

    response = client.get("/admin/reports/anomalies/")

    (item,) = [item for item in response.context["flags"] if item["flag"].kind == "rep_repeat_customer"]
    assert item["flag"].subject_id == history["ana"].pk
    listing = client.get(item["url"])
    assert len(listing.context["page"]["items"]) == 3
    assert {issuance.customer_id for issuance in listing.context["page"]["items"]} == {customer.pk}
