"""Supervisor reports, inside the admin (/admin/reports/…).

Every page filters by date range, team, rep, reason code, incident type, offer and
channel (reporting.filters.ReportFilter); every chart drills down to the list of
issuances behind it; every table exports as CSV, streamed.
"""

from __future__ import annotations

from datetime import timedelta
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import BooleanField, ExpressionWrapper
from django.http import JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from appease.core.context import Actor
from appease.core.roles import SUPERVISOR, has_role
from appease.core.spreadsheets import csv_response
from appease.delivery.selectors import Channel, failure_reason_label
from appease.issuance.selectors import IncidentType, StartSource, approvals_decided, budgets_remaining
from coupons.selectors import offer_names, offers
from feedback.selectors import OUTCOME_APOLOGY_ARM, OutcomePath, Priority
from reporting import charts, selectors
from reporting.anomalies import KIND_LABELS, anomalies, anomalies_shown, peer_rate
from reporting.facts import USED, zone
from reporting.filters import RecoveryFilter, RecoveryListFilter, ReportFilter
from reporting.forms import RecoverySettingsForm
from reporting.models import RollupState
from reporting.recovery import picks
from reporting.services import recovery_settings_update

PAGES = [
    ("reports:issuances", gettext_lazy("Issuances")),
    ("reports:redemption", gettext_lazy("Redemption")),
    ("reports:speed", gettext_lazy("Speed")),
    ("reports:cases", gettext_lazy("Cases")),
    ("reports:recovery", gettext_lazy("Recovery by intervention")),
    ("reports:return", gettext_lazy("Return on appeasement")),
    ("reports:reps", gettext_lazy("Reps")),
    ("reports:anomalies", gettext_lazy("Anomalies")),
    ("reports:list", gettext_lazy("Issuance list")),
    ("reports:recovery-list", gettext_lazy("Appeasement list")),
]
INCIDENT_LABELS = dict(IncidentType.choices)
CHANNEL_LABELS = dict(Channel.choices)
PRIORITY_LABELS = dict(Priority.choices)
FAILURE_LABELS = {"failed": gettext_lazy("Failed"), "dead": gettext_lazy("Given up")}
TOP_REPS = 25
MEASURES = {"count": gettext_lazy("Count"), "face": gettext_lazy("Face value"), "cost": gettext_lazy("Cost")}


def supervisor_view(view):
    """In the admin (its login, its look), for supervisors and administrators only."""

    @wraps(view)
    def checked(request, *args, **kwargs):
        if not has_role(request.user, SUPERVISOR):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return admin.site.admin_view(checked)


def _context(request, filters: ReportFilter, title: str, **extra) -> dict:
    return {
        **admin.site.each_context(request),
        "title": title,
        "pages": PAGES,
        "filters": filters,
        "currency": filters.selected_currency,
        "period": filters.period,
        "dates": filters.dates,
        "zone": zone(),
        "rollups": RollupState.objects.filter(pk=1).first(),
        "query": filters.query_string(),
        **extra,
    }


def _list_url(filters: ReportFilter, **override) -> str:
    return f"{reverse('reports:list')}?{filters.query_string(**override)}"


def _csv(filename: str, header: list[str], rows) -> StreamingHttpResponse:
    """Stream a CSV a spreadsheet opens safely: with the UTF-8 BOM, formulas neutralised."""
    return csv_response(filename, header, rows)


def _table_csv(request, name: str, header: list[str], rows: list[dict], keys: list[str]):
    if request.GET.get("export") == name:
        return _csv(f"{name}.csv", header, ([row.get(key) for key in keys] for row in rows))
    return None


def _label(labels: dict, value) -> str:
    return str(labels.get(value, value))


def _dimension_rows(filters: ReportFilter, currency: str, dimension: str) -> list[dict]:
    rows = selectors.by_dimension(filters, currency, dimension)
    labels = {"incident_type": INCIDENT_LABELS, "channel": CHANNEL_LABELS}.get(dimension)
    for row in rows:
        if labels:
            row["label"] = _label(labels, row["label"])
        elif row["label"] is None:
            row["label"] = _("automatic")
    return rows


@supervisor_view
def issuances(request):
    filters = ReportFilter(request.GET)
    currency = filters.selected_currency
    measure = request.GET.get("measure") if request.GET.get("measure") in MEASURES else "count"
    bucket = request.GET.get("bucket") if request.GET.get("bucket") in selectors.BUCKETS else "week"
    per_rep = selectors.by_rep_and_reason(filters, currency)
    dimensions = {
        name: _dimension_rows(filters, currency, dimension)
        for name, dimension in (
            ("reason", "reason_code"),
            ("incident", "incident_type"),
            ("offer", "offer"),
            ("channel", "channel"),
        )
    }
    keys = ["label", "count", "face", "cost", "with_code", "used"]
    header = [
        _("What"),
        _("Issuances"),
        _("Face value") + f" ({currency})",
        _("Cost") + f" ({currency})",
        _("With a code"),
        _("Used"),
    ]
    for name, rows in dimensions.items():
        exported = _table_csv(request, f"issuances-by-{name}", header, rows, keys)
        if exported:
            return exported
    rep_rows = _dimension_rows(filters, currency, "rep")
    exported = _table_csv(request, "issuances-by-rep", header, rep_rows, keys)
    if exported:
        return exported
    y_title = str(MEASURES[measure]) + ("" if measure == "count" else f" ({currency})")
    rep_label = lambda row: row["csr__username"] or _("automatic")  # noqa: E731
    figures = {
        "per_rep": charts.stacked_bars(
            per_rep,
            x=rep_label,
            stack=lambda row: row["reason_code__label"],
            y=measure,
            url=lambda row: _list_url(filters, rep=row["csr_id"], reason_code=row["reason_code_id"]),
            title=_("Per rep, by reason code"),
            y_title=y_title,
            chart_id="chart-per-rep",
        ),
        "over_time": charts.stacked_bars(
            selectors.over_time(filters, currency, bucket),
            x=lambda row: row["period"].isoformat(),
            stack=lambda row: row["reason_code__label"],
            y=measure,
            url=lambda row: _list_url(filters, reason_code=row["reason_code_id"]),
            title=_("Over time, by reason code"),
            y_title=y_title,
            chart_id="chart-over-time",
            bucket=bucket,
        ),
    }
    for name, field in (
        ("reason", "reason_code"),
        ("incident", "incident_type"),
        ("offer", "offer"),
        ("channel", "channel"),
    ):
        figures[name] = charts.bars(
            dimensions[name],
            x=lambda row: str(row["label"]),
            ys={str(MEASURES[measure]): lambda row, m=measure: row[m]},
            url=lambda row, f=field: _list_url(filters, **{f: row["key"]}),
            title={
                "reason": _("Per reason code"),
                "incident": _("Per incident type"),
                "offer": _("Per offer"),
                "channel": _("Per channel"),
            }[name],
            y_title=y_title,
            chart_id=f"chart-{name}",
        )
    return render(
        request,
        "reporting/issuances.html",
        _context(
            request,
            filters,
            _("Issuances"),
            totals=selectors.totals(filters, currency),
            per_currency=selectors.totals_per_currency(filters),
            approvals=selectors.approvals(filters),
            figures=figures,
            dimensions=dimensions,
            # The page shows the top reps; the Reps page and the CSV have every one.
            rep_rows=rep_rows[:TOP_REPS],
            more_reps=len(rep_rows) > TOP_REPS,
            measure=measure,
            measures=MEASURES,
            bucket=bucket,
        ),
    )


@supervisor_view
def redemption(request):
    filters = ReportFilter(request.GET)
    currency = filters.selected_currency
    tables = {
        "offer": _dimension_rows(filters, currency, "offer"),
        "rep": _dimension_rows(filters, currency, "rep"),
        "reason": _dimension_rows(filters, currency, "reason_code"),
    }
    for rows in tables.values():
        for row in rows:
            row["rate"] = row["used"] / row["with_code"] if row["with_code"] else None
    header = [_("What"), _("Codes given"), _("Used"), _("Redemption rate")]
    for name, rows in tables.items():
        exported = _table_csv(request, f"redemption-by-{name}", header, rows, ["label", "with_code", "used", "rate"])
        if exported:
            return exported
    value = selectors.value_redeemed(filters, currency)
    field_of = {"offer": "offer", "rep": "rep", "reason": "reason_code"}
    figures = {
        name: charts.bars(
            [row for row in rows if row["with_code"]],
            x=lambda row: str(row["label"]),
            ys={_("Redemption rate"): lambda row: row["rate"]},
            url=lambda row, f=field_of[name]: _list_url(filters, **{f: row["key"]}),
            title={
                "offer": _("Redemption rate per offer"),
                "rep": _("Redemption rate per rep"),
                "reason": _("Redemption rate per reason code"),
            }[name],
            y_title=_("Share of codes used"),
            chart_id=f"chart-redemption-{name}",
            percent=True,
        )
        for name, rows in tables.items()
    }
    figures["value"] = charts.bars(
        value,
        x=lambda row: row["period"].isoformat(),
        ys={_("Face value given"): lambda row: row["issued"], _("Value redeemed"): lambda row: row["redeemed"]},
        url=lambda row: _list_url(filters),
        title=_("Value given and redeemed, by month given"),
        y_title=currency,
        chart_id="chart-value",
        bucket="month",
    )
    return render(
        request,
        "reporting/redemption.html",
        _context(
            request, filters, _("Redemption"), figures=figures, tables=tables, liability=selectors.liability(filters)
        ),
    )


@supervisor_view
def speed(request):
    filters = ReportFilter(request.GET)
    weekly = selectors.speed(filters)
    for row in weekly:
        row["share"] = row["within"] / row["timed"] if row["timed"] else None
    starts = selectors.speed_by_start(filters)
    start_labels = {**dict(StartSource.choices), "": _("the CSR page's opening (older appeasements)")}
    for row in starts:
        row["label"] = start_labels.get(row["source"], row["source"])
        row["share"] = row["within"] / row["timed"] if row["timed"] else None
    channels = selectors.delivery_speed(filters)
    for row in channels:
        row["label"] = _label(CHANNEL_LABELS, row["channel"])
        for seconds in selectors.SPEED_BANDS:
            row[f"share_{seconds}"] = row[f"within_{seconds}"] / row["sent"] if row["sent"] else None
    failures = selectors.delivery_failures(filters)
    for row in failures:
        row["channel_label"] = _label(CHANNEL_LABELS, row["channel"])
        row["status_label"] = _label(FAILURE_LABELS, row["status"])
        row["failure_reason_label"] = failure_reason_label(row["failure_reason"])
    exported = _table_csv(
        request,
        "delivery-failures",
        [_("Channel"), _("Status"), _("Reason"), _("Deliveries")],
        failures,
        ["channel_label", "status_label", "failure_reason_label", "count"],
    )
    if exported:
        return exported
    figures = {
        "goal": charts.line(
            weekly,
            x=lambda row: row["period"],
            ys={_("Within 60 seconds"): lambda row: row["share"]},
            title=_("Share of appeasements given within 60 seconds of the complaint"),
            y_title=_("Share"),
            chart_id="chart-sixty",
            percent=True,
            bucket="week",
        ),
        "delivery": charts.bars(
            channels,
            x=lambda row: row["label"],
            ys={label: (lambda row, s=seconds: row[f"share_{s}"]) for seconds, label in selectors.SPEED_LABELS.items()},
            url=lambda row: _list_url(filters, channel=row["channel"]),
            title=_("From issuance to sent, per channel"),
            y_title=_("Share of deliveries"),
            chart_id="chart-delivery",
            percent=True,
        ),
    }
    return render(
        request,
        "reporting/speed.html",
        _context(
            request,
            filters,
            _("Speed"),
            figures=figures,
            weekly=weekly,
            starts=starts,
            channels=channels,
            failures=failures,
        ),
    )


@supervisor_view
def cases(request):
    filters = ReportFilter(request.GET)
    by_type = selectors.cases_by_type_and_priority(filters)
    for row in by_type:
        row["label"] = _label(INCIDENT_LABELS, row["incident_type"])
        row["priority_label"] = _label(PRIORITY_LABELS, row["priority"])
    if request.GET.get("export") == "recovery":
        # The soft/hard table moved to the recovery page (per arm): its CSV is there.
        return redirect(f"{reverse('reports:recovery')}?{_recovery_query(request)}&export=recovery")
    exported = _table_csv(
        request,
        "cases",
        [_("Incident type"), _("Priority"), _("Cases"), _("First response missed"), _("Resolution missed")],
        by_type,
        ["label", "priority_label", "count", "first_breached", "resolution_breached"],
    )
    if exported:
        return exported
    figures = {
        "volume": charts.stacked_bars(
            by_type,
            x=lambda row: row["label"],
            stack=lambda row: row["priority_label"],
            y="count",
            url=lambda row: _list_url(filters, incident_type=row["incident_type"]),
            title=_("Cases by incident type and priority"),
            y_title=_("Cases"),
            chart_id="chart-cases",
        ),
    }
    return render(
        request,
        "reporting/cases.html",
        _context(
            request,
            filters,
            _("Cases"),
            figures=figures,
            by_type=by_type,
            recovery_url=f"{reverse('reports:recovery')}?{_recovery_query(request)}",
            resolution=selectors.resolution(filters),
            satisfaction=selectors.satisfaction(filters),
        ),
    )


# --- Recovery by intervention, and its return (feedback's AppeasementOutcome) ----------

SHARED_FILTERS = ("date_from", "date_to", "incident_type", "currency")


def _recovery_query(request) -> str:
    """The filters the recovery pages share with the others (period, incident type, currency)."""
    return urlencode({name: request.GET[name] for name in SHARED_FILTERS if request.GET.get(name)})


def _arm_label(arm: str, names: dict) -> str:
    if arm == OUTCOME_APOLOGY_ARM:
        return str(_("Apology"))
    kind, _colon, key = arm.partition(":")
    if kind == "offer" and key.isdigit():
        return names.get(int(key), arm)
    return arm


def _recovery_list_url(filters: RecoveryFilter, row: dict, outcome: str | None = None) -> str:
    return f"{reverse('reports:recovery-list')}?" + filters.query_string(
        incident_type=row["incident_type"], arm=row["arm"], currency=row["currency"], outcome=outcome
    )


def _recovery_value(filters: RecoveryFilter, currencies) -> tuple[selectors.Assumptions, dict, dict]:
    """The saved assumptions, the measured order values, and what a recovered customer
    is worth per currency (None where no order value is known)."""
    assumptions = selectors.recovery_assumptions(selectors.recovery_settings())
    measured = selectors.order_value_measured(filters)
    worth = {
        currency: assumptions.value_of_kept_customer(assumptions.order_value(currency, measured)[0])
        for currency in currencies
    }
    return assumptions, measured, worth


RECOVERY_COLUMNS = [
    ("incident", gettext_lazy("Incident type")),
    ("arm_label", gettext_lazy("Intervention")),
    ("currency", gettext_lazy("Currency")),
    ("appeasements", gettext_lazy("Appeasements")),
    ("answered", gettext_lazy("Answered")),
    ("response_rate", gettext_lazy("Response rate")),
    ("solved", gettext_lazy("Solved")),
    ("solved_rate", gettext_lazy("Solved share")),
    ("solved_low", gettext_lazy("Solved share, 95% low")),
    ("solved_high", gettext_lazy("Solved share, 95% high")),
    ("csat", gettext_lazy("Average CSAT")),
    ("codes", gettext_lazy("Codes given")),
    ("redeemed", gettext_lazy("Redeemed")),
    ("redemption_rate", gettext_lazy("Redemption share")),
    ("matured", gettext_lazy("Old enough to tell")),
    ("repurchased", gettext_lazy("Ordered again")),
    ("repurchase_rate", gettext_lazy("Repurchase share")),
    ("cost", gettext_lazy("Cost")),
    ("cost_per_recovered", gettext_lazy("Cost per recovered customer")),
    ("picked", gettext_lazy("Current pick")),
]


@supervisor_view
def recovery(request):
    """Per incident type × intervention arm (each offer, and the apology), per currency:
    what was given, answered, solved (with its 95% interval), CSAT, redeemed, ordered
    again, what it cost and cost per recovered customer; and the recommendation's
    current pick per incident type, with why."""
    filters = RecoveryFilter(request.GET)
    rows = [selectors.recovery_figures(row) for row in selectors.recovery_rows(filters)]
    _assumptions, _measured, worth = _recovery_value(filters, {row["currency"] for row in rows})
    chosen = picks(rows, recovery_value=worth)
    names = offer_names()
    groups: dict[tuple[str, str], dict] = {}
    for row in rows:
        row["incident"] = _label(INCIDENT_LABELS, row["incident_type"])
        row["arm_label"] = _arm_label(row["arm"], names)
        row["solved_low"], row["solved_high"] = row["solved_interval"] or (None, None)
        pick = chosen[(row["incident_type"], row["currency"])]
        row["picked"] = "yes" if pick.arm == row["arm"] else ""
        row["urls"] = {
            outcome or "all": _recovery_list_url(filters, row, outcome)
            for outcome in (None, "answered", "solved", "redeemed", "repurchased")
        }
        group = groups.setdefault(
            (row["incident_type"], row["currency"]),
            {"incident": row["incident"], "currency": row["currency"], "rows": [], "pick": pick},
        )
        group["rows"].append(row)
    for group in groups.values():
        pick = group["pick"]
        group["pick_label"] = _arm_label(pick.arm, names) if pick.arm else None
        group["runner_up_label"] = _arm_label(pick.runner_up, names) if pick.runner_up else None
    if request.GET.get("export") == "recovery":
        keys = [key for key, _label_text in RECOVERY_COLUMNS]
        return _csv(
            "recovery.csv", [str(label) for _key, label in RECOVERY_COLUMNS], ([row[k] for k in keys] for row in rows)
        )
    return render(
        request,
        "reporting/recovery.html",
        _context(
            request,
            filters,
            _("Recovery by intervention"),
            groups=list(groups.values()),
            minimum=settings.RECOMMENDATION_MIN_SAMPLE,
            window=settings.REPURCHASE_WINDOW.days,
        ),
    )


RECOVERY_LIST_COLUMNS = [
    ("given_at", gettext_lazy("Given at")),
    ("customer", gettext_lazy("Customer")),
    ("incident", gettext_lazy("Incident type")),
    ("arm", gettext_lazy("Intervention")),
    ("path", gettext_lazy("Given from")),
    ("segment", gettext_lazy("Segment when given")),
    ("cost", gettext_lazy("Cost")),
    ("currency", gettext_lazy("Currency")),
    ("solved", gettext_lazy("Solved")),
    ("csat", gettext_lazy("CSAT")),
    ("redeemed_at", gettext_lazy("Redeemed at")),
    ("repurchased_at", gettext_lazy("Ordered again at")),
    ("case", gettext_lazy("Case")),
]


@supervisor_view
def recovery_list(request):
    """The appeasements behind a cell of the recovery table (its filters in the query
    string), 100 a page, CSV of all of them."""
    filters = RecoveryListFilter(request.GET)
    names = offer_names()
    paths = dict(OutcomePath.choices)
    columns = (
        "given_at",
        "customer_id",
        "incident_type",
        "arm",
        "path",
        "tier",
        "value_band",
        "repeat_band",
        "prior",
        "cost_amount",
        "currency",
        "solved",
        "csat",
        "redeemed_at",
        "repurchased_at",
        "case_id",
    )
    rows = filters.qs.order_by("-given_at", "pk").values(*columns)

    def shaped(row: dict) -> dict:
        return {
            **row,
            "incident": _label(INCIDENT_LABELS, row["incident_type"]),
            "arm_label": _arm_label(row["arm"], names),
            "path_label": _label(paths, row["path"]),
            "segment": " / ".join((row["tier"], row["value_band"], row["repeat_band"], row["prior"])),
        }

    if request.GET.get("export") == "appeasements":
        here = timezone.get_current_timezone()
        return _csv(
            "appeasements.csv",
            [str(label) for _key, label in RECOVERY_LIST_COLUMNS],
            (
                [
                    row["given_at"].astimezone(here).isoformat(),
                    row["customer_id"],
                    row["incident"],
                    row["arm_label"],
                    row["path_label"],
                    row["segment"],
                    row["cost_amount"],
                    row["currency"],
                    {True: "yes", False: "no", None: ""}[row["solved"]],
                    row["csat"] or "",
                    row["redeemed_at"].astimezone(here).isoformat() if row["redeemed_at"] else "",
                    row["repurchased_at"].astimezone(here).isoformat() if row["repurchased_at"] else "",
                    row["case_id"] or "",
                ]
                for row in map(shaped, rows.iterator(chunk_size=2000))
            ),
        )
    number = int(request.GET["page"]) if request.GET.get("page", "").isdigit() and int(request.GET["page"]) > 0 else 1
    found = [shaped(row) for row in rows[(number - 1) * PAGE_SIZE : number * PAGE_SIZE + 1]]
    page = {
        "items": found[:PAGE_SIZE],
        "number": number,
        "previous": number - 1 if number > 1 else None,
        "next": number + 1 if len(found) > PAGE_SIZE else None,
    }
    return render(
        request,
        "reporting/recovery_list.html",
        _context(request, filters, _("Appeasement list"), page=page, columns=RECOVERY_LIST_COLUMNS),
    )


@supervisor_view
def return_on_appeasement(request):
    """Cost against measured retained value, over the same appeasements (every one of the
    period, from AppeasementOutcome); the assumptions still needed are the organisation's
    (reporting.RecoverySettings), changed here by supervisors, audited."""
    filters = RecoveryFilter(request.GET)
    saved = selectors.recovery_settings()
    if request.method == "POST":
        form = RecoverySettingsForm(request.POST)
        if form.is_valid():
            try:
                recovery_settings_update(actor=Actor.from_request(request), **form.cleaned_data)
            except ValidationError as error:
                for field, problems in error.message_dict.items():
                    for problem in problems:
                        form.add_error(field if field in form.fields else None, problem)
            else:
                messages.success(request, _("Saved: these assumptions now apply to everyone's reports."))
                return redirect(f"{request.path}?{filters.query_string()}")
    else:
        currency = filters.selected_currency or settings.DEFAULT_CURRENCY
        form = RecoverySettingsForm(
            initial={
                "margin_percent": saved.margin_percent,
                "horizon_days": saved.horizon_days,
                "currency": currency,
                "order_value": (saved.order_value_overrides or {}).get(currency),
            }
        )
    rows = selectors.recovery_rows(filters)
    assumptions = selectors.recovery_assumptions(saved)
    measured = selectors.order_value_measured(filters)
    blocks = selectors.return_measured(rows, assumptions, measured)
    names = offer_names()
    for block in blocks:
        for arm in block["arms"]:
            arm["incident"] = _label(INCIDENT_LABELS, arm["incident_type"])
            arm["arm_label"] = _arm_label(arm["arm"], names)
            arm["url"] = _recovery_list_url(filters, arm)
    return render(
        request,
        "reporting/return.html",
        _context(
            request,
            filters,
            _("Return on appeasement"),
            blocks=blocks,
            form=form,
            saved=saved,
            assumptions=assumptions,
            window=settings.REPURCHASE_WINDOW.days,
        ),
        status=400 if request.method == "POST" else 200,
    )


@supervisor_view
def reps(request):
    filters = ReportFilter(request.GET)
    currency = filters.selected_currency
    rows = _dimension_rows(filters, currency, "rep")
    handled = selectors.cases_handled(filters)
    for row in rows:
        row["cases"] = handled.get(row["key"], 0)
        row["per_case"] = row["count"] / row["cases"] if row["cases"] else None
    exported = _table_csv(
        request,
        "reps",
        [
            _("Rep"),
            _("Issuances"),
            _("Face value") + f" ({currency})",
            _("Cost") + f" ({currency})",
            _("Cases handled"),
            _("Issuances per case"),
        ],
        rows,
        ["label", "count", "face", "cost", "cases", "per_case"],
    )
    if exported:
        return exported
    return render(request, "reporting/reps.html", _context(request, filters, _("Reps"), rows=rows))


@supervisor_view
def rep_detail(request, user_id: int):
    rep = get_object_or_404(get_user_model(), pk=user_id)
    data = request.GET.copy()
    data["rep"] = str(rep.pk)
    filters = ReportFilter(data)
    # The peers: everyone the page's other filters take in, the rep among them.
    others = request.GET.copy()
    others.pop("rep", None)
    everyone = ReportFilter(others)
    currency = filters.selected_currency
    reasons = _dimension_rows(filters, currency, "reason_code")
    exported = _table_csv(
        request,
        f"rep-{rep.pk}-reasons",
        [_("Reason"), _("Issuances"), _("Face value"), _("Cost")],
        reasons,
        ["label", "count", "face", "cost"],
    )
    if exported:
        return exported
    as_requester = selectors.approvals(filters)
    since, until = filters.period
    decided = approvals_decided(user=rep, since=since, until=until)
    budget = budgets_remaining(rep)
    handled = selectors.cases_handled(filters).get(rep.pk, 0)
    totals = selectors.totals(filters, currency)
    peers = peer_rate(everyone, rep_id=rep.pk, cases=handled)
    figure = charts.bars(
        reasons,
        x=lambda row: str(row["label"]),
        ys={_("Issuances"): lambda row: row["count"]},
        url=lambda row: _list_url(filters, reason_code=row["key"]),
        title=_("Issuances by reason code"),
        y_title=_("Issuances"),
        chart_id="chart-rep-reasons",
    )
    flags = anomalies(everyone, rep_id=rep.pk)
    return render(
        request,
        "reporting/rep.html",
        _context(
            request,
            filters,
            _("Rep: %(name)s") % {"name": rep.get_username()},
            rep=rep,
            reasons=reasons,
            totals=totals,
            handled=handled,
            per_case=(totals["count"] / handled) if handled else None,
            approvals=as_requester,
            decided=decided,
            budget=budget,
            peers=peers,
            figure=figure,
            flags=flags,
        ),
    )


@supervisor_view
def anomalies_page(request):
    filters = ReportFilter(request.GET)
    shown, scan = anomalies_shown(filters)
    flags = [
        {
            "flag": flag,
            "kind": KIND_LABELS[flag.kind],
            "url": f"{reverse('reports:list')}?{filters.query_string(**flag.filters)}",
        }
        for flag in shown
    ]
    today = timezone.now().astimezone(zone()).date()
    windows = [
        (days, urlencode({"date_from": (today - timedelta(days=days - 1)).isoformat(), "date_to": today.isoformat()}))
        for days in settings.REPORTING_ANOMALY_WINDOWS
    ]
    return render(
        request,
        "reporting/anomalies.html",
        _context(request, filters, _("Anomalies"), flags=flags, scan=scan, windows=windows),
    )


@supervisor_view
def customers(request):
    """The customers appeased in the page's period and filters: a distinct count over
    every issuance of it, so the issuances page fetches it (as JSON) after it has drawn.
    A person who opens the address gets a page."""
    filters = ReportFilter(request.GET)
    count = selectors.customers(filters)
    if request.get_preferred_type(["application/json", "text/html"]) == "text/html":
        return render(
            request, "reporting/customers.html", _context(request, filters, _("Customers appeased"), customers=count)
        )
    return JsonResponse({"customers": count})


LIST_COLUMNS = [
    ("created_at", gettext_lazy("When")),
    ("given_by", gettext_lazy("Given by")),
    ("customer", gettext_lazy("Customer")),
    ("offer", gettext_lazy("Offer")),
    ("reason", gettext_lazy("Reason")),
    ("channel", gettext_lazy("Channel")),
    ("status", gettext_lazy("Status")),
    ("face", gettext_lazy("Face value")),
    ("cost", gettext_lazy("Cost")),
    ("currency", gettext_lazy("Currency")),
    ("used", gettext_lazy("Used")),
]


@supervisor_view
def issuance_list(request):
    """The issuances behind a chart (its filters in the query string)."""
    filters = ReportFilter(request.GET)
    qs = (
        selectors.listed(filters)
        .select_related("csr", "auto_rule", "customer", "offer", "reason_code", "code")
        .order_by("-created_at", "pk")
    )
    if request.GET.get("export") == "issuances":
        return _csv("issuances.csv", [str(label) for _key, label in LIST_COLUMNS], _export_rows(filters))
    # No COUNT(*) over a million rows for a page: fetch one row more than shown.
    number = int(request.GET["page"]) if request.GET.get("page", "").isdigit() and int(request.GET["page"]) > 0 else 1
    rows = list(qs[(number - 1) * PAGE_SIZE : number * PAGE_SIZE + 1])
    page = {
        "items": rows[:PAGE_SIZE],
        "number": number,
        "previous": number - 1 if number > 1 else None,
        "next": number + 1 if len(rows) > PAGE_SIZE else None,
    }
    return render(
        request,
        "reporting/list.html",
        _context(request, filters, _("Issuance list"), page=page, columns=LIST_COLUMNS),
    )


PAGE_SIZE = 100


def _export_rows(filters: ReportFilter):
    """Every issuance of the list as CSV rows: plain columns from a server-side cursor
    (no model instances), the offers' names read once."""
    offer_labels = selectors.labels(filters, "offer", offers().values_list("pk", flat=True))
    rows = (
        selectors.listed(filters)
        .annotate(used=ExpressionWrapper(USED, output_field=BooleanField()))
        .order_by("-created_at", "pk")
        .values_list(
            "created_at",
            "csr__username",
            "auto_rule__name",
            "customer_id",
            "offer_id",
            "reason_code__code",
            "channel",
            "status",
            "code__status",
            "face_value_amount",
            "cost_amount",
            "currency",
            "used",
        )
    )
    here = timezone.get_current_timezone()
    for (
        created,
        rep,
        rule,
        customer,
        offer,
        reason,
        channel,
        status,
        code_status,
        face,
        cost,
        currency,
        used,
    ) in rows.iterator(chunk_size=2000):
        yield [
            created.astimezone(here).isoformat(),
            rep or f"auto: {rule}",
            customer,
            offer_labels.get(offer, offer),
            reason,
            channel,
            "redeemed" if code_status == "redeemed" else status,
            face,
            cost,
            currency,
            "yes" if used else "no",
        ]
