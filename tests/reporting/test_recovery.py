"""The supervisor's one page (recovery by intervention) and the measured return on
appeasement: figures on known appeasements, the currencies apart, the filters, the
recommendation's pick, the organisation's assumptions saved and audited, the CSV."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from appease.core.models import AuditEvent
from appease.issuance.models import CustomerOrder
from feedback.models import AppeasementOutcome
from reporting import selectors
from reporting.filters import RecoveryFilter
from reporting.models import RecoverySettings
from reporting.recovery import picks
from tests.factories import customer_create, offer_create, staff_user

pytestmark = pytest.mark.django_db

LONG_AGO = timedelta(days=70)  # older than the 60-day repurchase window: old enough to tell


def given(n: int, *, offer=None, answered: int = 0, solved: int = 0, repurchased: int = 0, csat=None, **fields):
    """`n` appeasements of `offer` (None: the apology), the first `answered` answered,
    the first `solved` of those solved, the first `repurchased` ordered again."""
    customer = fields.pop("customer", None) or customer_create()
    when = timezone.now() - fields.pop("ago", LONG_AGO)
    rows = []
    for i in range(n):
        defaults = {
            "customer": customer,
            "incident_type": "late_delivery",
            "intervention": "discount" if offer else "apology",
            "offer": offer,
            "arm": f"offer:{offer.pk}" if offer else "apology",
            "path": "panel",
            "currency": offer.currency if offer else "USD",
            "cost_amount": offer.cost_amount if offer else Decimal("0"),
            "tier": "standard",
            "value_band": "low",
            "repeat_band": "first",
            "prior": "none",
            "given_at": when,
        }
        if i < answered:
            defaults.update(answered_at=when + timedelta(days=2), solved=i < solved, csat=csat[i] if csat else None)
        if i < repurchased:
            defaults["repurchased_at"] = when + timedelta(days=20)
        defaults.update(fields)
        rows.append(AppeasementOutcome(**defaults))
    AppeasementOutcome.objects.bulk_create(rows)


def rows_by_arm(data=None) -> dict[tuple[str, str], dict]:
    rows = selectors.recovery_rows(RecoveryFilter(data or {}))
    return {(row["arm"], row["currency"]): selectors.recovery_figures(row) for row in rows}


def test_each_arm_has_its_answers_solved_share_with_wilson_interval_and_cost_per_recovered():
    # given: 10 five-dollar offers (3.00 each), 8 answered, 6 solved; 5 apologies, 4 answered, 2 solved
    offer = offer_create(cost_amount=Decimal("3.00"))
    given(10, offer=offer, answered=8, solved=6, repurchased=5, csat=[5, 4, 4, 5, 3, 2, 1, 4])
    given(5, answered=4, solved=2, repurchased=1)

    # when
    rows = rows_by_arm()

    # then
    paid = rows[(f"offer:{offer.pk}", "USD")]
    assert (paid["appeasements"], paid["answered"], paid["solved"]) == (10, 8, 6)
    assert paid["response_rate"] == 0.8 and paid["solved_rate"] == 0.75
    assert [round(bound, 4) for bound in paid["solved_interval"]] == [0.4093, 0.9285]
    assert paid["csat"] == 28 / 8
    assert paid["cost"] == Decimal("30.00")
    # the 8 answered cost 24.00; 6 of them said solved: 4.00 a recovered customer
    assert paid["cost_per_recovered"] == Decimal("4")
    assert (paid["matured"], paid["repurchased"], paid["repurchase_rate"]) == (10, 5, 0.5)
    apology = rows[("apology", "USD")]
    assert [round(bound, 4) for bound in apology["solved_interval"]] == [0.15, 0.85]
    assert apology["cost_per_recovered"] == Decimal("0")
    assert apology["codes"] == 0 and apology["redemption_rate"] is None


def test_money_in_two_currencies_is_never_added_together():
    dollars = offer_create(currency="USD", cost_amount=Decimal("3.00"))
    reais = offer_create(currency="BRL", cost_amount=Decimal("15.00"))
    given(2, offer=dollars, answered=2, solved=1)
    given(3, offer=reais, answered=3, solved=3)

    rows = rows_by_arm()
    assert rows[(f"offer:{dollars.pk}", "USD")]["cost"] == Decimal("6.00")
    assert rows[(f"offer:{reais.pk}", "BRL")]["cost"] == Decimal("45.00")
    assert rows[(f"offer:{reais.pk}", "BRL")]["cost_per_recovered"] == Decimal("15")
    # a currency filter narrows to its own rows
    assert set(rows_by_arm({"currency": "BRL"})) == {(f"offer:{reais.pk}", "BRL")}


def test_the_segment_and_period_filters_narrow_the_appeasements_counted():
    offer = offer_create()
    given(4, offer=offer, tier="gold", value_band="high")
    given(3, offer=offer, tier="standard")
    given(2, offer=offer, tier="gold", ago=timedelta(days=200))  # before the default 90 days

    arm = (f"offer:{offer.pk}", "USD")
    assert rows_by_arm()[arm]["appeasements"] == 7
    assert rows_by_arm({"tier": "gold"})[arm]["appeasements"] == 4
    assert rows_by_arm({"value_band": "high", "repeat_band": "first", "prior": "none"})[arm]["appeasements"] == 4
    since = (timezone.now() - timedelta(days=230)).date().isoformat()
    assert rows_by_arm({"tier": "gold", "date_from": since})[arm]["appeasements"] == 6
    assert rows_by_arm({"path": "rule"}) == {}


def test_the_pick_is_the_best_expected_net_value_and_none_below_the_minimum(settings):
    settings.RECOMMENDATION_MIN_SAMPLE = 20
    cheap = offer_create(cost_amount=Decimal("2.00"))
    dear = offer_create(cost_amount=Decimal("40.00"))
    given(40, offer=cheap, answered=40, solved=30)
    given(40, offer=dear, answered=40, solved=32)
    given(10, answered=10, solved=9)  # the apology: too few answers to be ranked
    rows = selectors.recovery_rows(RecoveryFilter({}))

    chosen = picks(rows, recovery_value={"USD": Decimal("100")})[("late_delivery", "USD")]
    assert chosen.arm == f"offer:{cheap.pk}" and chosen.left_out == 1 and chosen.runner_up == f"offer:{dear.pk}"
    # Worth enough, the dearer arm's two more solved customers pay for it.
    assert picks(rows, recovery_value={"USD": Decimal("10000")})[("late_delivery", "USD")].arm == f"offer:{dear.pk}"

    settings.RECOMMENDATION_MIN_SAMPLE = 50
    assert picks(rows, recovery_value={"USD": Decimal("100")})[("late_delivery", "USD")].arm is None


def test_the_return_compares_each_offer_with_the_apology_and_prices_the_kept_customers():
    # given: 10 offers at 3.00 (5 of 10 ordered again), 10 apologies (2 of 10 ordered again)
    offer = offer_create(cost_amount=Decimal("3.00"))
    given(10, offer=offer, repurchased=5)
    given(10, repurchased=2)
    buyer = customer_create()
    for i, total in enumerate(("40", "60")):
        CustomerOrder.objects.create(
            customer=buyer, reference=f"o-{i}", total_amount=Decimal(total), currency="USD", placed_at=timezone.now()
        )
    filters = RecoveryFilter({})
    assumptions = selectors.recovery_assumptions(RecoverySettings(margin_percent=Decimal("30"), horizon_days=60))

    # when
    (usd,) = selectors.return_measured(
        selectors.recovery_rows(filters), assumptions, selectors.order_value_measured(filters)
    )

    # then: 10 × (0.5 − 0.2) = 3 kept; each worth 50 × 30% × 1 order = 15
    assert usd["cost"] == Decimal("30.00") and usd["appeasements"] == 20
    assert usd["kept"] == Decimal("3")
    assert (usd["order_value"], usd["order_value_source"], usd["orders"]) == (Decimal("50"), "measured", 2)
    assert usd["value"] == Decimal("45") and usd["net"] == Decimal("15") and usd["ratio"] == Decimal("1.5")


def test_an_offer_with_no_apology_to_compare_is_credited_nothing_but_costs():
    offer = offer_create(cost_amount=Decimal("3.00"))
    given(4, offer=offer, repurchased=4, incident_type="damaged_item")
    given(10, repurchased=2)  # apologies for another incident type
    assumptions = selectors.recovery_assumptions(
        RecoverySettings(margin_percent=Decimal("30"), horizon_days=120, order_value_overrides={"USD": "80"})
    )
    (usd,) = selectors.return_measured(selectors.recovery_rows(RecoveryFilter({})), assumptions, {})
    assert usd["kept"] == 0 and usd["cost"] == Decimal("12.00") and usd["net"] == Decimal("-12.00")
    assert usd["arms"][0]["compared"] is False
    assert usd["order_value_source"] == "override" and usd["per_kept"] == Decimal("48")  # 80 × 30% × 2 windows


# --- The pages -----------------------------------------------------------------------


@pytest.fixture
def supervisor(client):
    client.force_login(staff_user("Supervisor"))
    return client


def test_a_rep_is_refused_and_a_supervisor_sees_the_table_and_the_pick(client, settings):
    settings.RECOMMENDATION_MIN_SAMPLE = 5
    offer = offer_create(name="Five off")
    given(8, offer=offer, answered=8, solved=6)
    client.force_login(staff_user("CSR"))
    for url in ("/admin/reports/recovery/", "/admin/reports/recovery/appeasements/", "/admin/reports/return/"):
        assert client.get(url).status_code in (302, 403)
    assert client.post("/admin/reports/return/", {"margin_percent": "1", "horizon_days": "1"}).status_code in (
        302,
        403,
    )
    assert not RecoverySettings.objects.exists()

    client.force_login(staff_user("Supervisor"))
    page = client.get("/admin/reports/recovery/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Five off" in html and "Current pick:" in html and "75%" in html
    assert f"arm=offer%3A{offer.pk}" in html  # each figure drills down to its appeasements
    listed = client.get(f"/admin/reports/recovery/appeasements/?arm=offer:{offer.pk}&outcome=solved")
    assert listed.status_code == 200 and len(listed.context["page"]["items"]) == 6


def test_the_page_says_not_enough_answers_yet_below_the_minimum(supervisor):
    given(3, offer=offer_create(), answered=3, solved=3)
    assert "not enough answers yet" in supervisor.get("/admin/reports/recovery/").content.decode()


def test_the_table_exports_as_csv(supervisor):
    offer = offer_create(name="Five off", cost_amount=Decimal("3.00"))
    given(10, offer=offer, answered=8, solved=6)
    response = supervisor.get("/admin/reports/recovery/?export=recovery")
    body = b"".join(response.streaming_content).decode("utf-8-sig").splitlines()
    assert body[0].startswith("Incident type,Intervention,Currency,Appeasements,Answered")
    assert body[1].startswith("Late delivery,Five off,USD,10,8,0.8,6,0.75,")
    listed = supervisor.get(f"/admin/reports/recovery/appeasements/?arm=offer:{offer.pk}&export=appeasements")
    assert len(b"".join(listed.streaming_content).decode("utf-8-sig").splitlines()) == 11


def test_the_old_recovery_export_of_the_cases_page_leads_to_the_new_page(supervisor):
    response = supervisor.get("/admin/reports/cases/?export=recovery&currency=USD")
    assert response.status_code == 302
    assert (
        response["Location"].startswith("/admin/reports/recovery/?currency=USD")
        and "export=recovery" in response["Location"]
    )


def test_the_page_takes_a_fixed_number_of_queries(supervisor, django_assert_max_num_queries):
    for _ in range(5):
        given(3, offer=offer_create(), answered=2, solved=1)
    with django_assert_max_num_queries(14):
        assert supervisor.get("/admin/reports/recovery/").status_code == 200
    with django_assert_max_num_queries(14):
        assert supervisor.get("/admin/reports/return/").status_code == 200


def test_the_assumptions_are_saved_for_the_organisation_and_audited(supervisor):
    offer_create(currency="BRL")  # reais are in use
    # when: a supervisor saves a margin, a horizon and an order value in reais
    response = supervisor.post(
        "/admin/reports/return/?currency=BRL",
        {"margin_percent": "25", "horizon_days": "120", "currency": "BRL", "order_value": "210"},
    )

    # then: saved in the one row (not in the address), and audited with before and after
    assert response.status_code == 302 and "margin" not in response["Location"]
    saved = RecoverySettings.objects.get()
    assert (saved.margin_percent, saved.horizon_days, saved.order_value_overrides) == (
        Decimal("25"),
        120,
        {"BRL": "210.00"},
    )
    event = AuditEvent.objects.get(action="recovery_settings.update")
    assert event.before["margin_percent"] == "30.00" and event.after["margin_percent"] == "25.00"
    assert event.after["order_value_overrides"] == {"BRL": "210.00"}

    # and another supervisor reads them
    other = supervisor.get("/admin/reports/return/?currency=BRL")
    assert other.context["form"].initial["order_value"] == "210.00"

    # when: the order value is emptied, the measured one is used again
    supervisor.post("/admin/reports/return/", {"margin_percent": "25", "horizon_days": "120", "currency": "BRL"})
    assert RecoverySettings.objects.get().order_value_overrides == {}
    assert AuditEvent.objects.filter(action="recovery_settings.update").count() == 2


def test_wrong_assumptions_are_refused_field_by_field_and_nothing_is_saved(supervisor):
    response = supervisor.post(
        "/admin/reports/return/", {"margin_percent": "150", "horizon_days": "0", "currency": "XXX", "order_value": "-1"}
    )
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"margin_percent", "horizon_days", "currency", "order_value"}
    assert not RecoverySettings.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="recovery").exists()
