"""Report pages as a supervisor reads them: date axes of a single day tick in days, not
milliseconds; plotly speaks the page's language (its locale files, from our static
files); the customers figure is a page for a person; a drill-down keeps the currency;
and the site has an icon."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.utils import timezone, translation

from appease.issuance.views import frequent_claimant_text
from reporting.charts import PLOTLY_JS_VERSION
from tests.factories import staff_user
from tests.reporting.test_reports import history  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def layouts(html: str) -> dict[str, dict]:
    found = re.findall(r'Plotly\.newPlot\(\s*"([^"]+)",\s*(\[.*?\]),\s*(\{.*?\}),\s*(\{.*?\})\s*\)', html, re.S)
    return {
        chart_id: {"data": json.loads(d), "layout": json.loads(lay), "config": json.loads(c)}
        for chart_id, d, lay, c in found
    }


def test_a_single_day_axis_ticks_in_days_not_milliseconds(client, history):  # noqa: F811
    # given a day with appeasements, and a supervisor
    client.force_login(staff_user("Supervisor"))
    day = (timezone.localdate() - timedelta(days=1)).isoformat()

    # when the issuances page is asked for that one day, per day
    html = client.get(f"/admin/reports/?date_from={day}&date_to={day}&bucket=day").content.decode()

    # then the time axis is a date axis with one tick per day, labelled with dates only
    chart = layouts(html)["chart-over-time"]
    assert chart["data"] and chart["data"][0]["x"] == [day]
    axis = chart["layout"]["xaxis"]
    assert (axis["type"], axis["dtick"]) == ("date", 86_400_000)
    assert not re.search(r"%[HMSLfI]", axis["tickformat"] + axis["hoverformat"])


@pytest.mark.parametrize(("language", "locale", "script"), [("es", "es", "es"), ("pt-br", "pt-BR", "pt-br")])
def test_plotly_speaks_the_pages_language_from_our_static_files(client, history, language, locale, script):  # noqa: F811
    client.force_login(staff_user("Supervisor"))

    html = client.get("/admin/reports/", HTTP_ACCEPT_LANGUAGE=language).content.decode()

    assert f'<script src="/static/vendor/plotly-locale-{script}.js"></script>' in html
    assert all(chart["config"]["locale"] == locale for chart in layouts(html).values())
    shipped = Path(finders.find(f"vendor/plotly-locale-{script}.js")).read_text()
    assert f'name:"{locale}"' in shipped and "Plotly.register(locale)" in shipped
    # the locale files are plotly.js's own for the plotly.min.js we serve
    assert f"plotly.js v{PLOTLY_JS_VERSION}\n" in Path(finders.find("vendor/plotly.min.js")).read_text()[:200]


def test_english_pages_load_no_plotly_locale(client, history):  # noqa: F811
    client.force_login(staff_user("Supervisor"))

    html = client.get("/admin/reports/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "plotly-locale-" not in html
    assert all(chart["config"]["locale"] == "en" for chart in layouts(html).values())


def test_the_customers_figure_is_a_page_for_a_person_and_json_for_the_script(client, history):  # noqa: F811
    client.force_login(staff_user("Supervisor"))

    page = client.get("/admin/reports/customers/", HTTP_ACCEPT=BROWSER_ACCEPT, HTTP_ACCEPT_LANGUAGE="es")
    fetched = client.get("/admin/reports/customers/", HTTP_ACCEPT="application/json")

    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    html = page.content.decode()
    assert "Clientes compensados" in html and "reports-nav" in html
    assert re.search(r'data-testid="customers-count">\s*7\s*<', html)
    assert fetched.json() == {"customers": 7}


def test_a_drill_down_keeps_the_currency_of_the_chart(client, history):  # noqa: F811
    client.force_login(staff_user("Supervisor"))

    # given the issuances page in euros, whose bars link to their lists
    euro_page = client.get("/admin/reports/?currency=EUR&measure=face").content.decode()
    urls = {
        url for chart in layouts(euro_page).values() for trace in chart["data"] for url in trace.get("customdata") or []
    }
    assert urls and all("currency=EUR" in url for url in urls)

    # when a bar's list is opened, then it lists euros only; in dollars, no euros
    euros = client.get(f"/admin/reports/issuances/?currency=EUR&rep={history['bob'].pk}")
    dollars = client.get(f"/admin/reports/issuances/?currency=USD&rep={history['bob'].pk}")
    assert [item.currency for item in euros.context["page"]["items"]] == ["EUR"]
    assert {item.currency for item in dollars.context["page"]["items"]} == {"USD"}
    exported = b"".join(client.get("/admin/reports/issuances/?currency=EUR&export=issuances").streaming_content)
    assert exported.decode().count("\n") == 2  # the header and the one euro appeasement


@pytest.mark.parametrize(
    ("language", "one", "two"),
    [
        (
            "en",
            "Frequent claimant: 1 appeasement in the last 30 days, from 1 rep.",
            "2 appeasements",
        ),
        ("es", "Reclamante frecuente: 1 compensación en los últimos 30 días, de 1 agente.", "2 compensaciones"),
        ("pt-br", "Reclamante frequente: 1 compensação nos últimos 30 dias, de 1 atendente.", "2 compensações"),
    ],
)
def test_the_frequent_claimant_warning_counts_in_singular_and_plural(language, one, two):
    with translation.override(language):
        single = frequent_claimant_text({"count": 1, "reps": 1, "window_days": 30})
        double = frequent_claimant_text({"count": 2, "reps": 2, "window_days": 30})

    assert single == one
    assert two in double and ("2 reps" in double or "2 agentes" in double or "2 atendentes" in double)


def test_every_page_names_the_site_icon_and_favicon_ico_leads_to_it(client, history):  # noqa: F811
    icon = '<link rel="icon" href="/static/appease/favicon.svg" type="image/svg+xml">'
    client.force_login(staff_user("Supervisor"))

    for path in ("/admin/", "/admin/reports/", "/csr/", "/accounts/login/"):
        assert icon in client.get(path, follow=True).content.decode(), path
    redirect = client.get("/favicon.ico")
    assert (redirect.status_code, redirect["Location"]) == (302, "/static/appease/favicon.svg")
    assert Path(finders.find("appease/favicon.svg")).read_text().startswith("<svg")
