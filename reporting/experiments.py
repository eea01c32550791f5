"""The experiment pages (/admin/reports/experiments/…): each arm of a supervisor's
randomised experiment, what was assigned and given, how often it solved the incident,
and its lift over the apology-only holdout (docs/reporting.md, "Experiments")."""

from __future__ import annotations

import math

from django.contrib import admin
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext as _

from appease.core.models import AuditEvent
from appease.core.spreadsheets import csv_response
from feedback.selectors import (
    APOLOGY_ARM,
    arm_key,
    experiment_arm_figures,
    experiment_override_reasons,
    experiments_all,
)
from reporting.selectors import wilson
from reporting.views import supervisor_view

Z95 = 1.959964


def newcombe(s1: int, n1: int, s2: int, n2: int) -> tuple[float, float, float] | None:
    """p1 − p2 with its 95% interval by Newcombe's hybrid score method (his method 10:
    the two Wilson intervals combined), which stays inside [−1, 1] and behaves with small
    samples and shares near 0 or 1, where the normal approximation does not."""
    first, second = wilson(s1, n1, z=Z95), wilson(s2, n2, z=Z95)
    if first is None or second is None:
        return None
    p1, p2 = s1 / n1, s2 / n2
    (l1, u1), (l2, u2) = first, second
    d = p1 - p2
    return d, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


def _arm_stops(experiment) -> tuple[dict[str, dict], dict | None]:
    """Why each arm stopped (the guardrail's audit rows), and why the experiment did."""
    events = AuditEvent.objects.filter(
        object_type="feedback.experiment",
        object_id=str(experiment.pk),
        action__in=["experiment.arm_stopped", "experiment.stopped"],
    ).order_by("created_at")
    arms, stopped = {}, None
    for event in events:
        after = event.after or {}
        if event.action == "experiment.arm_stopped" and after.get("arm"):
            arms[after["arm"]] = {**after, "at": event.created_at}
        elif event.action == "experiment.stopped":
            stopped = {**after, "at": event.created_at}
    return arms, stopped


def experiment_rows(experiment) -> list[dict]:
    """One row per arm, the holdout last, with every figure the page and the CSV show."""
    labels = {arm_key(offer): offer.name for offer in experiment.offers.all()}
    if experiment.apology_arm:
        labels[APOLOGY_ARM] = _("Apology only")
    figures = experiment_arm_figures(experiment)
    reasons = experiment_override_reasons(experiment)
    stops, _stopped = _arm_stops(experiment)
    holdout = figures.get(APOLOGY_ARM) if experiment.apology_arm else None
    empty = {"assigned": 0, "as_assigned": 0, "overrides": 0, "answered": 0, "solved": 0, "csat_n": 0, "csat_sum": 0}
    rows = []
    for arm in sorted(labels, key=lambda a: (a == APOLOGY_ARM, str(labels[a]))):
        row = {**empty, **figures.get(arm, {})}
        interval = wilson(row["solved"], row["answered"], z=Z95)
        lift = None
        if holdout is not None and arm != APOLOGY_ARM:
            lift = newcombe(row["solved"], row["answered"], holdout["solved"], holdout["answered"])
        stop = stops.get(arm)
        rows.append(
            {
                "arm": arm,
                "label": labels[arm],
                **row,
                "solved_percent": _percent(row["solved"] / row["answered"]) if row["answered"] else None,
                "interval": tuple(_percent(v) for v in interval) if interval else None,
                "csat": round(row["csat_sum"] / row["csat_n"], 2) if row["csat_n"] else None,
                "lift": tuple(_percent(v) for v in lift) if lift else None,
                "reasons": reasons.get(arm, []),
                "stopped": arm in (experiment.stopped_arms or []),
                "stop": stop,
                "stop_text": _("clearly worse than “%(best)s” (P = %(p)s%%)")
                % {"best": labels.get(stop["best"], stop["best"]), "p": f"{stop['probability'] * 100:.1f}"}
                if stop and stop.get("best")
                else "",
            }
        )
    return rows


@supervisor_view
def experiments(request):
    return render(
        request,
        "reporting/experiments.html",
        {**admin.site.each_context(request), "title": _("Experiments"), "experiments": experiments_all()},
    )


@supervisor_view
def experiment(request, experiment_id: int):
    found = get_object_or_404(experiments_all(), pk=experiment_id)
    rows = experiment_rows(found)
    if request.GET.get("export") == "arms":
        header = [
            _("Arm"),
            _("Assigned"),
            _("Given as assigned"),
            _("Overrides"),
            _("Override reasons"),
            _("Answered"),
            _("Solved"),
            _("Solved (percent)"),
            _("Solved, interval low"),
            _("Solved, interval high"),
            _("CSAT"),
            _("Lift vs apology only (points)"),
            _("Lift, interval low"),
            _("Lift, interval high"),
            _("Status"),
        ]
        lines = (
            [
                row["label"],
                row["assigned"],
                row["as_assigned"],
                row["overrides"],
                "; ".join(f"{reason} ({n})" for reason, n in row["reasons"]),
                row["answered"],
                row["solved"],
                row["solved_percent"],
                *(row["interval"] or (None, None)),
                row["csat"],
                *(row["lift"] or (None, None, None)),
                (_("stopped: %(why)s") % {"why": row["stop_text"]} if row["stop_text"] else _("stopped"))
                if row["stopped"]
                else _("running"),
            ]
            for row in rows
        )
        return csv_response(f"experiment-{found.pk}.csv", header, lines)
    _stops, stopped = _arm_stops(found)
    why = {"one_arm_left": _("only one arm was left"), "supervisor": _("a supervisor stopped it")}
    return render(
        request,
        "reporting/experiment.html",
        {
            **admin.site.each_context(request),
            "title": found.name,
            "experiment": found,
            "rows": rows,
            "stopped_why": why.get((stopped or {}).get("reason"), "") if not found.is_active else "",
        },
    )
