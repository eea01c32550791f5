"""Reading cases: the queue, one case with its history."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Count, F, Q, QuerySet, Sum

from appease.issuance.models import Issuance
from appease.issuance.selectors import issuances_with_status
from feedback.models import APOLOGY_ARM, AppeasementOutcome, Case, Experiment, Feedback, FeedbackSite, FollowUp, Segment
from feedback.models import Intervention as Intervention
from feedback.models import Priority as Priority
from feedback.models import arm_key as arm_key

# Case words other apps count and label by (reporting's measures, rollup columns and
# tables), beside the Priority and Intervention choices above.
CaseStatus = Case.Status
CASE_OPEN_STATUSES = Case.OPEN_STATUSES
# The words the recovery reports group and filter appeasements by: the path each was
# given from, the customer's segment bands, and the apology arm every offer is compared with.
OutcomePath = AppeasementOutcome.Path
OutcomeSegment = Segment
OUTCOME_APOLOGY_ARM = APOLOGY_ARM


CASE_VIEWS = ("open", "active", "mine", "closed", "all")


def cases_in_view(queryset: QuerySet[Case], *, view: str, user=None) -> QuerySet[Case]:
    """`queryset` narrowed to one of the queue's views: open (unclaimed), active (open or
    being worked), mine (being worked by `user`), closed, all."""
    if view == "open":
        return queryset.filter(status=Case.Status.OPEN)
    if view == "active":
        return queryset.filter(status__in=Case.OPEN_STATUSES)
    if view == "mine":
        return queryset.filter(status=Case.Status.CLAIMED, assigned_to=user)
    if view == "closed":
        return queryset.exclude(status__in=Case.OPEN_STATUSES)
    return queryset


def cases_queue(
    *,
    status: str = "open",
    priority: str = "",
    incident_type: str = "",
    assigned_to=None,
    languages: list[str] | None = None,
) -> QuerySet[Case]:
    """Cases by priority (score, then oldest first). `status`: open (unclaimed),
    active (open or being worked), mine (being worked by `assigned_to`), closed, all.
    `languages`: only cases in these (None or empty: any)."""
    queryset = cases_in_view(cases_all(), view=status, user=assigned_to)
    if priority:
        queryset = queryset.filter(priority=priority)
    if incident_type:
        queryset = queryset.filter(incident_type=incident_type)
    if languages:
        queryset = queryset.filter(language__in=languages)
    return queryset


def cases_all() -> QuerySet[Case]:
    """Every case with what a list shows beside it, highest priority first."""
    return Case.objects.select_related("customer", "assigned_to", "owner_team").order_by(
        "-priority_score", "created_at"
    )


def case_timeline(case: Case) -> QuerySet:
    """The case's timeline, oldest first, with who did each thing."""
    return case.events.select_related("actor").order_by("created_at", "id")


def staff_id_by_username(username: str) -> int | None:
    """The id of the active member of staff with this username (None: nobody)."""
    return get_user_model().objects.filter(username=username, is_active=True).values_list("pk", flat=True).first()


def case_history(case: Case) -> dict:
    """What a rep needs beside the case: the customer's orders, past cases, and past
    appeasements with whether they were redeemed."""
    customer = case.customer
    if customer is None:
        return {"orders": [], "past_cases": [], "issuances": []}
    return {
        "orders": list(customer.orders.order_by("-placed_at")[:10]),
        "past_cases": list(Case.objects.filter(customer=customer).exclude(pk=case.pk).order_by("-created_at")[:10]),
        "issuances": list(issuances_with_status().filter(customer=customer).order_by("-created_at")[:20]),
    }


def case_issuances(case: Case) -> list[Issuance]:
    return list(issuances_with_status().filter(case=case).order_by("created_at"))


def site_allows_origin(site, origin: str | None, *, own_origin: str = "") -> bool:
    """May a page at `origin` post with this site's key? A request without an Origin
    (not from a browser page) or from this server's own pages (`own_origin`, e.g. the demo
    shop) is not cross-origin; any other origin must be on the site's list. A site with
    no list allows no other origin."""
    if not origin:
        return True
    origin = origin.rstrip("/")
    return origin == own_origin.rstrip("/") or origin in site.origins


def origin_allowed_by_a_site(origin: str) -> bool:
    """Is `origin` on the list of an active site (the CORS answer of the intake)?"""

    origin = origin.rstrip("/")
    if not origin:
        return False
    sites = FeedbackSite.objects.filter(is_active=True).exclude(allowed_origins="").only("allowed_origins")
    return any(origin in site.origins for site in sites)


# --- For reports: the live rows they count -------------------------------------------


def cases_for_reports() -> QuerySet[Case]:
    return Case.objects.all()


def follow_ups_answered() -> QuerySet[FollowUp]:
    """Answered follow-ups of cases (the case reports count them by the case's day and
    incident type); an appeasement's own follow-up is counted on its outcome row."""
    return FollowUp.objects.filter(status=FollowUp.Status.ANSWERED, case__isnull=False)


def feedback_for_reports() -> QuerySet[Feedback]:
    return Feedback.objects.all()


def follow_ups_answered_since(since) -> QuerySet[FollowUp]:
    """Follow-ups answered since `since` (an indexed timestamp)."""
    return FollowUp.objects.filter(answered_at__gte=since)


def cases_closed_since(since) -> QuerySet[Case]:
    """Cases closed since `since` (an indexed timestamp)."""
    return Case.objects.filter(closed_at__gte=since)


def appeasement_outcomes() -> QuerySet[AppeasementOutcome]:
    """Every appeasement as an intervention with its outcome (no joins): what the
    recovery reports aggregate and list."""
    return AppeasementOutcome.objects.all()


def outcome_tier_choices() -> list[tuple[str, str]]:
    """The customer tiers an appeasement's segment is recorded in."""
    return list(AppeasementOutcome._meta.get_field("tier").choices)


# --- Experiments (the report reads these) -----------------------------------------------


def experiments_all() -> QuerySet[Experiment]:
    return Experiment.objects.prefetch_related("offers").order_by("-started_at")


def experiment_arm_figures(experiment: Experiment) -> dict[str, dict]:
    """{assigned arm: {assigned, as_assigned, overrides, answered, solved, csat_n,
    csat_sum}} over the experiment's outcomes, grouped by the arm **assigned** (intention
    to treat), in one query."""
    rows = (
        AppeasementOutcome.objects.filter(experiment=experiment)
        .values("assigned_arm")
        .annotate(
            assigned=Count("pk"),
            as_assigned=Count("pk", filter=Q(arm=F("assigned_arm"))),
            answered=Count("pk", filter=Q(solved__isnull=False)),
            solved=Count("pk", filter=Q(solved=True)),
            csat_n=Count("pk", filter=Q(csat__isnull=False)),
            csat_sum=Sum("csat"),
        )
    )
    return {row.pop("assigned_arm"): {**row, "overrides": row["assigned"] - row["as_assigned"]} for row in rows}


def experiment_override_reasons(experiment: Experiment) -> dict[str, list[tuple[str, int]]]:
    """{assigned arm: [(reason, count), …]} of the overrides, most frequent first."""
    rows = (
        AppeasementOutcome.objects.filter(experiment=experiment)
        .exclude(arm=F("assigned_arm"))
        .values("assigned_arm", "override_reason")
        .annotate(n=Count("pk"))
        .order_by("assigned_arm", "-n", "override_reason")
    )
    found: dict[str, list[tuple[str, int]]] = {}
    for row in rows:
        found.setdefault(row["assigned_arm"], []).append((row["override_reason"], row["n"]))
    return found
