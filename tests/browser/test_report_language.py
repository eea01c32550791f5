"""The reports in Spanish, in a real browser: plotly draws its date axis with Spanish
month names (its es locale, from our static files), one tick per day on a single day (no
millisecond ticks), and the chart has the day's data."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from decimal import Decimal

import pytest
from django.utils import timezone

from appease.issuance.models import Issuance, StaffProfile
from reporting.services import rollups_refresh
from tests.factories import customer_create, issued_code, offer_create, reason_create, staff_user

pytestmark = pytest.mark.django_db(transaction=True)


def last_august_15() -> date:
    """A day whose month is worded differently in Spanish ("ago") and English ("Aug")."""
    today = timezone.localdate()
    day = date(today.year, 8, 15)
    return day if day < today else date(today.year - 1, 8, 15)


def test_a_spanish_supervisor_sees_spanish_dates_on_a_chart_with_data(page, live_server):
    # given three appeasements on 15 August, and a supervisor who works in Spanish
    day = last_august_15()
    supervisor = staff_user("Supervisor", username="jefa")
    supervisor.set_password("pw")
    supervisor.save()
    StaffProfile.objects.filter(user=supervisor).update(language="es")
    rep, late = staff_user(username="ana"), reason_create("late", "late_delivery")
    offer = offer_create(name="Five off", value_amount=Decimal("5"))
    at = timezone.make_aware(datetime.combine(day, time(12)))
    for _ in range(3):
        issuance = Issuance.objects.create(
            csr=rep,
            customer=customer_create(),
            offer=offer,
            reason_code=late,
            channel="email",
            code=issued_code(offer).code,
            status=Issuance.Status.DELIVERED,
            currency=offer.currency,
            face_value_amount=offer.value_amount,
            cost_amount=offer.cost_amount,
            issued_at=at,
        )
        Issuance.objects.filter(pk=issuance.pk).update(created_at=at)
    rollups_refresh(restate=True)
    page.context.set_extra_http_headers({"Accept-Language": "es-ES,es;q=0.9"})

    # when she opens that one day of the issuances report, per day
    query = f"date_from={day.isoformat()}&date_to={day.isoformat()}&bucket=day"
    page.goto(f"/admin/login/?next=/admin/reports/%3F{query.replace('&', '%26')}")
    page.locator("#id_username").fill("jefa")
    page.locator("#id_password").fill("pw")
    page.locator("input[type=submit]").click()
    page.wait_for_selector("#chart-over-time.drawn")

    # then the page is in Spanish, and the chart has the day's data
    assert page.locator("html").get_attribute("lang") == "es"
    points = page.evaluate("() => document.getElementById('chart-over-time').data.map(t => [t.x, t.y])")
    assert points == [[[day.isoformat()], [3]]]
    assert page.locator("#chart-over-time .barlayer .point path").count() == 1
    # and its date axis says the day in Spanish, once: no times, no milliseconds
    ticks = page.evaluate(
        "() => Array.from(document.querySelectorAll('#chart-over-time .xtick text')).map(t => t.textContent.trim())"
    )
    assert ticks == ["15 Ago"], ticks
    assert not any(re.search(r"\d:\d|\.\d{3}", tick) for tick in ticks)
    assert page.evaluate("() => document.getElementById('chart-over-time')._context.locale") == "es"
