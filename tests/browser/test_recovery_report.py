"""The supervisor's one page in a real browser: the recovery table per intervention,
filtered by a segment, with the recommendation's current pick."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from feedback.models import AppeasementOutcome
from tests.factories import customer_create, offer_create, staff_user

pytestmark = pytest.mark.django_db(transaction=True)


def given(n: int, *, offer, solved: int, tier: str) -> None:
    customer = customer_create(tier=tier)
    when = timezone.now() - timedelta(days=3)
    AppeasementOutcome.objects.bulk_create(
        AppeasementOutcome(
            customer=customer,
            incident_type="late_delivery",
            intervention="discount" if offer else "apology",
            offer=offer,
            arm=f"offer:{offer.pk}" if offer else "apology",
            path="panel",
            currency="USD",
            cost_amount=offer.cost_amount if offer else Decimal("0"),
            tier=tier,
            value_band="low",
            repeat_band="first",
            prior="none",
            given_at=when,
            answered_at=when + timedelta(days=1),
            solved=i < solved,
        )
        for i in range(n)
    )


def test_a_supervisor_filters_the_recovery_page_by_a_segment_and_sees_the_pick(page, live_server, settings):
    # given: gold customers answered about a five-off offer and about apologies
    settings.RECOMMENDATION_MIN_SAMPLE = 5
    supervisor = staff_user("Supervisor", username="boss")
    supervisor.set_password("pw")
    supervisor.save()
    five = offer_create(name="Five off", cost_amount=Decimal("3.00"))
    given(10, offer=five, solved=9, tier="gold")
    given(10, offer=None, solved=3, tier="gold")
    given(4, offer=five, solved=0, tier="standard")

    # when: the supervisor opens the page and keeps gold customers only
    page.goto("/admin/login/?next=/admin/reports/recovery/")
    page.get_by_label("Username").fill("boss")
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    page.get_by_label("Tier").select_option("gold")
    page.get_by_role("button", name="Apply").click()

    # then: the table counts the gold customers' appeasements and names the pick
    page.wait_for_url("**/admin/reports/recovery/?*tier=gold*")
    table = page.get_by_test_id("recovery-table")
    five_row = table.locator(f"tr[data-arm='offer:{five.pk}']")
    assert five_row.locator("td").nth(1).inner_text() == "10"
    assert "90%" in five_row.inner_text()
    assert table.locator("tr[data-arm='apology']").locator("td").nth(1).inner_text() == "10"
    pick = page.get_by_test_id("recovery-pick")
    assert "Current pick: Five off" in pick.inner_text()
