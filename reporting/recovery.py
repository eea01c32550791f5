"""The recommendation's current pick per incident type, on the recovery page: the arm
with the best expected net value by feedback's estimator (docs/adr/0012), at the
incident level (every segment together), from the page's aggregated rows.

The estimator is arithmetic only (no database, no writes): the page ranks with the very
function the recommendations rank with, so the two cannot disagree on the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from feedback.services.estimator import INCIDENT_PRIOR_STRENGTH, Estimate, Tally, net_value, rank


@dataclass(frozen=True)
class Pick:
    incident_type: str
    currency: str
    arm: str | None  # None: not enough answers yet
    estimate: Estimate | None = None
    net: Decimal | None = None  # expected net value per appeasement
    cost: Decimal | None = None  # its average cost
    runner_up: str | None = None
    runner_up_net: Decimal | None = None
    ranked_by: str = "net"  # "net", or "solved" when no order value is known to price a recovery
    answers: int = 0  # answered follow-ups of the incident type in this currency
    left_out: int = 0  # arms with fewer answers than the minimum, not ranked
    minimum: int = 0
    interval: tuple[float, float] | None = None  # the pick's 95% credible interval, computed once


def incident_estimates(*, arms: list[str], tallies: dict[str, Tally]) -> dict[str, Estimate]:
    """Each arm's posterior at the incident level: the estimator's first level (a weak
    prior of INCIDENT_PRIOR_STRENGTH answers centred on the incident type's solved share
    over every arm, then the arm's own answers), with no segment level on top: its
    credible interval is as wide as the arm's answers make it."""
    total = sum(tallies.values(), Tally())
    baseline = (total.solved + 1) / (total.n + 2)
    result = {}
    for arm in arms:
        tally = tallies.get(arm, Tally())
        result[arm] = Estimate(
            arm=arm,
            alpha=INCIDENT_PRIOR_STRENGTH * baseline + tally.solved,
            beta=INCIDENT_PRIOR_STRENGTH * (1 - baseline) + tally.n - tally.solved,
            n_segment=tally.n,
            n_incident=tally.n,
        )
    return result


def picks(rows: list[dict], *, recovery_value: dict[str, Decimal | None]) -> dict[tuple[str, str], Pick]:
    """Per (incident type, currency): the arm to give. Only arms with at least
    RECOMMENDATION_MIN_SAMPLE answers are ranked; none has: not enough answers yet.
    `recovery_value[currency]` is what a recovered customer is worth (None: unknown,
    then the likeliest to solve wins)."""
    minimum = settings.RECOMMENDATION_MIN_SAMPLE
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["incident_type"], row["currency"]), []).append(row)
    result = {}
    for (incident, currency), arms in groups.items():
        answers = sum(row["answered"] for row in arms)
        ranked = [row for row in arms if row["answered"] >= minimum]
        if not ranked:
            result[(incident, currency)] = Pick(
                incident, currency, None, answers=answers, left_out=len(arms), minimum=minimum
            )
            continue
        # The prior's centre is the incident type's solved share over every arm answered.
        found = incident_estimates(
            arms=[row["arm"] for row in ranked],
            tallies={row["arm"]: Tally(row["answered"], row["solved"]) for row in arms},
        )
        costs = {
            row["arm"]: (row["cost"] / row["appeasements"]) if row["appeasements"] else Decimal("0") for row in ranked
        }
        value = recovery_value.get(currency)
        if value is None:
            order = sorted(found.values(), key=lambda e: (-e.mean, costs[e.arm], e.arm))
            nets = dict.fromkeys(found)
        else:
            order = rank(found, costs=costs, recovery_value=value)
            nets = {arm: net_value(e, cost=costs[arm], recovery_value=value) for arm, e in found.items()}
        best = order[0]
        second = order[1] if len(order) > 1 else None
        result[(incident, currency)] = Pick(
            incident,
            currency,
            best.arm,
            estimate=best,
            net=nets[best.arm],
            cost=costs[best.arm],
            runner_up=second.arm if second else None,
            runner_up_net=nets[second.arm] if second else None,
            ranked_by="solved" if value is None else "net",
            answers=answers,
            left_out=len(arms) - len(ranked),
            minimum=minimum,
            interval=best.interval,
        )
    return result
