"""The supervisor's journey in the admin: its stylesheet served by the application and
applied; every report page drawn, with data in every chart, on the run's 90-day history;
a bar opens the issuances behind it; a table downloads as CSV. (Approvals: in the rep's
journey, where the rep watches the decision arrive.)"""

from __future__ import annotations

import csv
import io

from tests.journeys.journeys import MARKS, SUPERVISOR_LANGUAGE
from tests.journeys.pages import Supervisor

pytestmark = MARKS

ADMIN_HEADER_BACKGROUND = "rgb(65, 118, 144)"  # Django admin's --header-bg (#417690), from base.css


def test_the_admin_has_its_css(people, product):
    page = people.new_page(SUPERVISOR_LANGUAGE)
    stylesheets = []
    page.on(
        "response",
        lambda r: stylesheets.append((r.url, r.status)) if r.request.resource_type == "stylesheet" else None,
    )

    Supervisor.log_in(page, "supervisor", SUPERVISOR_LANGUAGE)

    admin_css = [(url, status) for url, status in stylesheets if "/static/admin/css/" in url]
    assert admin_css, stylesheets
    assert all(status == 200 for _url, status in admin_css), admin_css
    header = page.evaluate("() => getComputedStyle(document.getElementById('header')).backgroundColor")
    assert header == ADMIN_HEADER_BACKGROUND


def test_every_report_page_draws_its_charts_with_data_and_drills_down_and_downloads(people, product):
    boss = Supervisor.log_in(people.new_page(SUPERVISOR_LANGUAGE), "supervisor", SUPERVISOR_LANGUAGE)
    page = boss.page

    # Every page of the reports' navigation renders; every chart on it has points.
    pages = boss.report_pages()
    assert len(pages) >= 8, pages
    drawn = {}
    for label, path in pages:
        response = page.goto(path)
        assert response.status == 200, (label, path, response.status)
        assert page.locator("#content h1").first.is_visible(), label
        charts = boss.charts()
        empty = {chart: traces for chart, traces in charts.items() if not any(t["points"] for t in traces)}
        assert not empty, (label, empty)
        drawn[label] = len(charts)
    assert sum(drawn.values()) >= 10, drawn

    # Drill-down: a bar of the per-rep chart opens the list of the issuances behind it.
    page.goto("/admin/reports/")
    boss.charts()
    boss.drill_down("chart-per-rep")
    rows = page.locator("[data-testid=issuance-list] tbody tr")
    rows.first.wait_for()
    assert rows.count() > 0

    # CSV: the per-reason table downloads with a header and a row per reason.
    page.goto("/admin/reports/")
    with page.expect_download() as download:
        page.locator("a.export[href*='export=issuances-by-reason']").click()
    with open(download.value.path(), encoding="utf-8-sig") as file:
        table = list(csv.reader(io.StringIO(file.read())))
    assert len(table) >= 2, table
    assert all(len(row) == len(table[0]) for row in table), table
