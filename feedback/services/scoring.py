"""The priority score: why one case comes before another, in points (0–100).

| factor | points |
|---|---|
| incident type's impact weight (IncidentProfile, supervisors edit) | 0–50 |
| customer value: tier (silver 4, gold 8, platinum 12) + lifetime value (up to 8) | 0–20 |
| repeated incidents: 5 per case in the last 90 days | 0–15 |
| how they feel: the worst of rating (1★ 15, 2★ 10, 3★ 3), NPS (0–3 15, 4–6 8) and anger (× 15) | 0–15 |
| age: 1 per hour waiting (added by the beat task `cases_age`) | 0–10 |

Each case keeps its reasons (`score_reasons`, as data: worded when shown), so the queue
can say why; their points always add up to the score.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from feedback.models import Case, PriorityLevel
from feedback.services.sla import rises, tightened_targets
from feedback.services.triage import DEFAULT_IMPACT, impact_weights

TIER_POINTS = {"standard": 0, "silver": 4, "gold": 8, "platinum": 12}
REPEAT_WINDOW = timedelta(days=90)
MAX_AGE_POINTS = 10


@dataclass(frozen=True)
class Score:
    points: int
    reasons: list[dict]

    @property
    def base(self) -> int:
        """The score without its age points."""
        return self.points - sum(reason["points"] for reason in self.reasons if reason["factor"] == "age")


def _reason(factor: str, points: int, **params) -> dict:
    """One line of "why this score": the factor, its points and what it saw, as data.
    The words are written when it is shown, in the reader's language
    (`feedback.models.score_reason_text`)."""
    return {"factor": factor, "points": points, "params": params}


def age_reason(age_points: int, base: int) -> dict | None:
    """The age line for a case whose other reasons add up to `base`: what waiting
    actually added, within the 100-point ceiling (None when it added nothing)."""
    points = max(0, min(age_points, MAX_AGE_POINTS, 100 - base))
    return _reason("age", points, hours=age_points) if points else None


def priority_score(
    *,
    incident_type: str,
    customer=None,
    rating: int | None = None,
    nps: int | None = None,
    anger: float | None = None,
    past_incidents: int = 0,
    age_hours: int = 0,
) -> Score:
    reasons = []
    impact = impact_weights().get(incident_type, DEFAULT_IMPACT)
    reasons.append(_reason("incident", impact, incident_type=incident_type))
    if customer is not None:
        tier = TIER_POINTS.get(customer.tier, 0)
        ltv = customer.lifetime_value_amount or Decimal("0")
        ltv_points = int(min(Decimal("8"), ltv / settings.FEEDBACK_HIGH_VALUE_LTV * 8)) if ltv > 0 else 0
        if tier or ltv_points:
            reasons.append(
                _reason(
                    "customer_value",
                    tier + ltv_points,
                    tier=customer.tier,
                    lifetime_value=f"{ltv:.2f}",
                    currency=customer.currency,
                )
            )
    if past_incidents:
        reasons.append(_reason("repeat", min(15, 5 * past_incidents), count=past_incidents))
    feeling = []
    if rating is not None:
        feeling.append(({1: 15, 2: 10, 3: 3}.get(rating, 0), {"kind": "rating", "value": rating}))
    if nps is not None:
        feeling.append((15 if nps <= 3 else 8 if nps <= 6 else 0, {"kind": "nps", "value": nps}))
    if anger is not None:
        feeling.append((round(anger * 15), {"kind": "anger", "value": round(anger, 2)}))
    points, seen = max(feeling, default=(0, {}), key=lambda item: item[0])
    if points:
        reasons.append(_reason("feeling", points, **seen))
    base = min(100, sum(reason["points"] for reason in reasons))
    age = age_reason(age_hours, base)
    if age:
        reasons.append(age)
    total = sum(reason["points"] for reason in reasons)
    return Score(points=min(100, total), reasons=reasons)


def past_incidents(customer, *, exclude_case_id=None, now=None) -> int:
    if customer is None:
        return 0
    now = now or timezone.now()
    cases = Case.objects.filter(customer=customer, created_at__gte=now - REPEAT_WINDOW)
    if exclude_case_id is not None:
        cases = cases.exclude(pk=exclude_case_id)
    return cases.count()


def level_for(points: int) -> PriorityLevel | None:
    """The highest band `points` reaches (None only if supervisors deleted every band)."""
    return PriorityLevel.objects.filter(min_score__lte=points).order_by("-min_score").first()


def cases_age(*, now=None, batch: int = 200) -> int:
    """Add the age points of open cases: one per hour waiting, up to MAX_AGE_POINTS.

    The age is stored, not computed at read time, so the queue index stays usable. A
    case that gains points gets its age reason rewritten (the reasons keep adding up to
    the score), is re-banded when the score reaches a higher priority level, and then
    gets that level's tighter targets (never later ones). Ten queries find the cases
    due an update; each changes at most once an hour, so a run touches a few rows.
    """
    now = now or timezone.now()
    target: dict[int, int] = {}
    for hours in range(MAX_AGE_POINTS, 0, -1):
        for pk in Case.objects.filter(
            status=Case.Status.OPEN, age_points__lt=hours, created_at__lte=now - timedelta(hours=hours)
        ).values_list("pk", flat=True):
            target.setdefault(pk, hours)
    levels = list(PriorityLevel.objects.order_by("-min_score"))
    changed = 0
    pks = sorted(target)
    for start in range(0, len(pks), batch):
        with transaction.atomic():
            # Locked in primary-key order, so two runs never wait on each other in a
            # cycle; intake locks one case at a time, and then sees the new score.
            cases = (
                Case.objects.select_for_update(of=("self",))
                .filter(pk__in=pks[start : start + batch], status=Case.Status.OPEN)
                .order_by("pk")
            )
            for case in cases:
                hours = target[case.pk]
                if case.age_points >= hours:
                    continue  # another run got there first
                others = [reason for reason in case.score_reasons if reason.get("factor") != "age"]
                base = sum(int(reason.get("points", 0)) for reason in others)
                age = age_reason(hours, base)
                case.score_reasons = others + ([age] if age else [])
                case.priority_score = min(100, base + (age["points"] if age else 0))
                case.age_points = hours
                fields = ["score_reasons", "priority_score", "age_points"]
                level = next((level for level in levels if level.min_score <= case.priority_score), None)
                if rises(case.priority, level):
                    case.priority = level.priority
                    changes = tightened_targets(case, level)
                    for field, value in changes.items():
                        setattr(case, field, value)
                    fields += ["priority", *changes]
                case.save(update_fields=fields)
                changed += 1
    return changed
