"""Plotly figures for the report pages, rendered to HTML on the server.

plotly.js is served from our static files (reporting.staticfiles), never a CDN. Every
bar carries the URL of the list of issuances behind it (`customdata`); clicking it opens
that list (the drill-down).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import plotly.graph_objects as go
from babel.numbers import get_decimal_symbol, get_group_symbol
from django.utils import translation

CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}
LAYOUT = {
    "margin": {"l": 60, "r": 20, "t": 40, "b": 60},
    "height": 360,
    "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
    "legend": {"orientation": "h", "y": -0.2},
    "plot_bgcolor": "#fff",
}
# Clicking a bar opens the list behind it.
DRILL_DOWN = """
var plot = document.getElementById('{plot_id}');
plot.on('plotly_click', function (event) {
  var url = event.points && event.points[0] && event.points[0].customdata;
  if (typeof url === 'string' && url.charAt(0) === '/') { window.location.assign(url); }
});
// Fit the plot to its grid cell once the page is laid out, then mark it drawn.
function fit() { Plotly.Plots.resize(plot).then(function () { plot.classList.add('drawn'); }); }
if (document.readyState === 'complete') { fit(); } else { window.addEventListener('load', fit); }
"""


def separators(language: str | None = None) -> str:
    """Plotly's `separators` (decimal mark, then thousands mark) of the active language,
    from Babel's CLDR data: ".," in English, ",." in Spanish and Portuguese. Plotly's
    own default is English whatever the page's language."""
    locale = translation.to_locale(language or translation.get_language() or "en")
    try:
        return get_decimal_symbol(locale) + get_group_symbol(locale)
    except (ValueError, LookupError):  # an unknown locale: the neutral form
        return ".,"


# plotly.js's own locales (months and days on date axes, its menus), shipped in our
# static files next to plotly.min.js (static/vendor/plotly-locale-*.js, from the plotly.js
# release that plotly.min.js is) and loaded by templates/reporting/base.html.
PLOTLY_LOCALES = {"es": "es", "pt-br": "pt-BR"}
PLOTLY_JS_VERSION = "4.1.1"  # the release the locale files come from (tests check plotly.min.js is too)

DAY_MS = 86_400_000
# Ticks on a time axis are never finer than a bar (plotly labels the one bar of a single
# day at "00:00:00.000", millisecond ticks), and say only the date.
DATE_TICKS = {
    "day": {"dtick": DAY_MS, "tickformat": "%-d %b"},
    "week": {"dtick": 7 * DAY_MS, "tickformat": "%-d %b"},
    "month": {"dtick": "M1", "tickformat": "%b %Y"},
}
FIXED_TICKS_UP_TO = 12  # periods; above, plotly spaces the ticks (never finer than a day then)


def plotly_locale(language: str | None = None) -> str:
    """plotly's locale name for the active language ("en" when it has none)."""
    return PLOTLY_LOCALES.get(language or translation.get_language() or "en", "en")


def date_axis(figure: go.Figure, periods: list, bucket: str) -> None:
    """The x axis of a chart of period starts (`bucket`: day, week or month)."""
    ticks = DATE_TICKS[bucket]
    axis = {"type": "date", "tickformat": ticks["tickformat"], "hoverformat": "%-d %b %Y"}
    if len(set(periods)) <= FIXED_TICKS_UP_TO:
        axis.update(dtick=ticks["dtick"], tick0=min(periods, default=None))
    figure.update_xaxes(**axis)


def render(figure: go.Figure, chart_id: str) -> str:
    figure.update_layout(**LAYOUT, separators=separators())
    figure.update_yaxes(gridcolor="#e5e9f0", rangemode="tozero")
    return figure.to_html(
        include_plotlyjs=False,
        full_html=False,
        div_id=chart_id,
        config={**CONFIG, "locale": plotly_locale()},
        post_script=DRILL_DOWN,
    )


def stacked_bars(
    rows: Iterable[dict],
    *,
    x: Callable[[dict], str],
    stack: Callable[[dict], str],
    y: str,
    url: Callable[[dict], str],
    title: str,
    y_title: str,
    chart_id: str,
    bucket: str | None = None,
) -> str:
    """One bar per x, stacked by `stack` (e.g. per rep, stacked by reason code); with
    `bucket`, x is a period's start (a date axis)."""
    series: dict[str, dict[str, list]] = {}
    for row in rows:
        trace = series.setdefault(str(stack(row)), {"x": [], "y": [], "url": []})
        trace["x"].append(str(x(row)))
        trace["y"].append(float(row[y]))
        trace["url"].append(url(row))
    figure = go.Figure(
        [go.Bar(name=str(name), x=t["x"], y=t["y"], customdata=t["url"]) for name, t in sorted(series.items())]
    )
    figure.update_layout(barmode="stack", title=str(title), yaxis_title=str(y_title))
    if bucket:
        date_axis(figure, [x for trace in series.values() for x in trace["x"]], bucket)
    return render(figure, chart_id)


def bars(
    rows: Iterable[dict],
    *,
    x: Callable[[dict], str],
    ys: dict[str, Callable[[dict], float | None]],
    url: Callable[[dict], str],
    title: str,
    y_title: str,
    chart_id: str,
    percent: bool = False,
    bucket: str | None = None,
) -> str:
    """Grouped bars: one series per entry of `ys` (e.g. issued and redeemed value); with
    `bucket`, x is a period's start (a date axis)."""
    rows = list(rows)
    figure = go.Figure(
        [
            go.Bar(
                name=str(name),
                x=[str(x(row)) for row in rows],
                y=[None if (value := get(row)) is None else float(value) for row in rows],
                customdata=[url(row) for row in rows],
            )
            for name, get in ys.items()
        ]
    )
    figure.update_layout(barmode="group", title=str(title), yaxis_title=str(y_title))
    if percent:
        figure.update_yaxes(tickformat=".0%", range=[0, 1])
    if bucket:
        date_axis(figure, [str(x(row)) for row in rows], bucket)
    return render(figure, chart_id)


def line(
    rows: Iterable[dict],
    *,
    x: Callable[[dict], object],
    ys: dict[str, Callable[[dict], float | None]],
    title: str,
    y_title: str,
    chart_id: str,
    percent: bool = False,
    bucket: str | None = None,
) -> str:
    """One line per entry of `ys`; with `bucket`, x is a period's start (a date axis)."""
    rows = list(rows)
    figure = go.Figure(
        [
            go.Scatter(
                name=str(name),
                x=[x(row) for row in rows],
                y=[None if (value := get(row)) is None else float(value) for row in rows],
                mode="lines+markers",
            )
            for name, get in ys.items()
        ]
    )
    figure.update_layout(title=str(title), yaxis_title=str(y_title))
    if percent:
        figure.update_yaxes(tickformat=".0%", range=[0, 1])
    if bucket:
        date_axis(figure, [x(row) for row in rows], bucket)
    return render(figure, chart_id)
