"""The supervisor dashboard in a real browser: the charts draw from our own plotly.js
(no network), and clicking a bar opens the issuances behind it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from appease.issuance.models import Issuance
from reporting.services import rollups_refresh
from tests.factories import customer_create, issued_code, offer_create, reason_create, staff_user

pytestmark = pytest.mark.django_db(transaction=True)


def give(csr, offer, reason, n: int) -> None:
    for _ in range(n):
        Issuance.objects.create(
            csr=csr,
            customer=customer_create(),
            offer=offer,
            reason_code=reason,
            channel="email",
            code=issued_code(offer).code,
            status=Issuance.Status.DELIVERED,
            currency=offer.currency,
            face_value_amount=offer.value_amount,
            cost_amount=offer.cost_amount,
            issued_at=timezone.now() - timedelta(hours=1),
        )


def test_the_charts_draw_and_a_bar_opens_its_issuances(page, live_server):
    # given: two reps, two reasons
    supervisor = staff_user("Supervisor", username="boss")
    supervisor.set_password("pw")
    supervisor.save()
    ana, bob = staff_user(username="ana"), staff_user(username="bob")
    late, rude = reason_create("late", "late_delivery"), reason_create("rude", "staff_attitude")
    offer = offer_create(name="Five off", value_amount=Decimal("5"))
    give(ana, offer, late, 3)
    give(bob, offer, rude, 2)
    rollups_refresh()  # what beat does every minute
    requests_elsewhere = []
    page.on(
        "request",
        lambda request: (
            requests_elsewhere.append(request.url)
            if not request.url.startswith(page.context._impl_obj._options.get("baseURL", "http://localhost"))
            else None
        ),
    )

    # when: the supervisor opens the reports
    page.goto("/admin/login/?next=/admin/reports/")
    page.get_by_label("Username").fill("boss")
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector("#chart-per-rep.drawn")

    # then: the per-rep chart has one bar per rep and reason, with the right heights
    bars = page.locator("#chart-per-rep .barlayer .point path")
    assert bars.count() == 2
    heights = page.evaluate("() => document.getElementById('chart-per-rep').data.map(t => [t.name, t.x, t.y])")
    assert sorted(map(tuple, [(name, tuple(x), tuple(y)) for name, x, y in heights])) == [
        (late.label, ("ana",), (3.0,)),
        (rude.label, ("bob",), (2.0,)),
    ]
    for chart in ("chart-over-time", "chart-reason", "chart-incident", "chart-offer", "chart-channel"):
        assert page.locator(f"#{chart} .barlayer .point path").count() > 0, chart
    assert requests_elsewhere == []  # plotly.js came from our static files

    # when: a click on bob's bar
    # (plotly listens on its drag layer, above the bars: click where the bar is drawn)
    bar = page.locator("#chart-per-rep .barlayer .point path").nth([name for name, _x, _y in heights].index(rude.label))
    box = bar.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)

    # then: the list of bob's issuances for that reason
    page.wait_for_url("**/admin/reports/issuances/**")
    rows = page.locator("[data-testid=issuance-list] tbody tr")
    assert rows.count() == 2
    assert all(text.count("bob") == 1 for text in rows.all_inner_texts())
