"""`make demo`'s history: every report page shows real figures on first start (charts
with data, the recovery and return pages answering in every currency, anomalies), and
recommendations have evidence behind them."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from feedback.models import Case, FollowUp
from feedback.services.recommend import intervention_outcomes
from reporting import selectors
from reporting.filters import ReportFilter

pytestmark = pytest.mark.django_db

CHART_PAGES = {
    "/admin/reports/": {"chart-per-rep", "chart-over-time", "chart-reason", "chart-incident", "chart-offer"},
    "/admin/reports/redemption/": {"chart-redemption-offer", "chart-redemption-rep", "chart-value"},
    "/admin/reports/speed/": {"chart-sixty", "chart-delivery"},
    "/admin/reports/cases/": {"chart-cases"},
}


def chart_data(html: str) -> dict[str, list[dict]]:
    """Each plotly chart's traces, by the chart's div id."""
    found = re.findall(r'Plotly\.newPlot\(\s*"([^"]+)",\s*(\[.*?\]),\s*\{', html, re.S)
    return {chart_id: json.loads(data) for chart_id, data in found}


def plotted(traces: list[dict]) -> list[float]:
    return [value for trace in traces for value in trace.get("y") or [] if value]


@pytest.fixture
def demo(settings):
    settings.DEBUG = True
    out = StringIO()
    call_command("demo_data", stdout=out)  # the default history, as `make demo` loads it
    return out.getvalue()


def test_every_report_page_has_real_figures_on_the_demo_history(demo, client):
    # given the demo as `make demo` loads it, and its supervisor
    assert "History for the reports" in demo
    assert Case.objects.count() >= 300
    assert FollowUp.objects.filter(status=FollowUp.Status.ANSWERED).count() >= 100
    assert FollowUp.objects.exclude(status=FollowUp.Status.ANSWERED).exists()  # some never answered
    client.force_login(User.objects.get(username="supervisor"))

    # then every chart of every chart page has data
    for path, expected in CHART_PAGES.items():
        page = client.get(path)
        assert page.status_code == 200, path
        charts = chart_data(page.content.decode())
        assert expected <= set(charts), (path, set(charts))
        for chart_id in expected:
            assert plotted(charts[chart_id]), (path, chart_id)

    # recovery by intervention (per arm, from every appeasement's outcome row) answers
    assert client.get("/admin/reports/recovery/").status_code == 200

    # the rep table, the anomalies and the issuance list are not empty
    assert len(client.get("/admin/reports/reps/").context["rows"]) >= 10
    assert client.get("/admin/reports/anomalies/").context["flags"]
    assert client.get("/admin/reports/issuances/").context["page"]["items"]

    # the return on appeasement (measured against the apology-only arm) answers per currency
    for currency in ("USD", "EUR", "BRL"):
        assert client.get(f"/admin/reports/return/?currency={currency}").status_code == 200, currency

    # recommendations have learned evidence (enough answered follow-ups) behind them
    outcomes = intervention_outcomes("late_delivery")
    enough = [evidence for evidence in outcomes.values() if evidence.enough]
    assert enough, {name: str(evidence) for name, evidence in outcomes.items()}
    assert all(0 < evidence.solved_rate < 1 for evidence in enough)

    # and the rollups the pages read were brought up to the history
    rolled = selectors.totals(ReportFilter({"currency": "USD"}, rollups=True), "USD")
    live = selectors.totals(ReportFilter({"currency": "USD"}, rollups=False), "USD")
    assert rolled == live and rolled["count"] > 100
