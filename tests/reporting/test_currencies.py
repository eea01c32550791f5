"""Reports never add two currencies: a mixed-currency period shows one total per
currency; the charts write numbers with the reader's decimal and thousands marks."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import translation

from appease.issuance.models import StaffProfile
from reporting import charts, selectors
from tests.factories import staff_user
from tests.reporting.test_reports import history  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db
NBSP = "\xa0"


def test_a_mixed_currency_period_has_one_total_per_currency(history, report):  # noqa: F811
    # given issuances in dollars and in euros (the history: 7 given in USD, 1 in EUR)
    filters = report()

    # when the totals per currency are read
    rows = selectors.totals_per_currency(filters)

    # then each currency has its own, and none is a sum across them
    assert [(row["currency"], row["count"]) for row in rows] == [("EUR", 1), ("USD", 6)]
    euro = next(row for row in rows if row["currency"] == "EUR")
    assert (euro["face"], euro["cost"]) == (Decimal("10"), Decimal("6"))
    usd = selectors.totals(filters, "USD")
    assert next(row for row in rows if row["currency"] == "USD")["face"] == usd["face"]


def test_the_issuances_page_shows_each_currency_in_its_own_money(client, history):  # noqa: F811
    # given a Spanish supervisor and the mixed-currency history
    boss = staff_user("Supervisor")
    StaffProfile.objects.filter(user=boss).update(language="es")
    client.force_login(boss)

    # when the issuances report opens (money in the default currency, USD)
    page = client.get("/admin/reports/").content.decode()

    # then the per-currency table has euros as euros and dollars as dollars, apart
    table = page[page.index('data-testid="per-currency"') :]
    table = table[: table.index("</table>")]
    assert f"10,00{NBSP}€" in table and f"6,00{NBSP}€" in table
    assert "US$" in table
    # and the page's charts use Spanish separators
    assert '"separators":",."' in page


@pytest.mark.parametrize(("language", "expected"), [("en", ".,"), ("es", ",."), ("pt-br", ",.")])
def test_chart_separators_follow_the_language(language, expected):
    # given / when a chart is rendered in the language
    with translation.override(language):
        html = charts.bars(
            [{"x": "a", "y": Decimal("1234.5")}],
            x=lambda row: row["x"],
            ys={"y": lambda row: row["y"]},
            url=lambda row: "/",
            title="t",
            y_title="y",
            chart_id="c",
        )

    # then plotly is told the language's decimal and thousands marks
    assert f'"separators":"{expected}"' in html
