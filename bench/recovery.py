"""Benchmark: the recommendation loop on a synthetic population whose truth is known.

Run `bench/recovery` from a clone where `make install` has been run. Pure Python: no
database, no server; seeded, so the same options print the same figures.

The world: five incident types, 144 segments (tier × value band × repeat band ×
earlier appeasement, the bands `feedback.services.outcomes.customer_segment` writes),
seven arms with known costs (an apology, a supervisor's callback, $5 / $10 / $20 off,
$15 / $25 gift cards), and a true solve rate for every incident × segment × arm
(`true_rate`: apology as good as a gift card for staff attitude, an apology failing an
overcharge, $5 off as good as a gift card for a late delivery, platinum customers
needing more than standard ones for overcharges and late deliveries, plus a little
seeded noise per cell). Every week brings `--per-week` appeasements drawn from one
seeded stream that three policies answer alike:

- **system**: `estimator.rank` on the tallies answered so far (two-level beta-binomial,
  expected net value with the tier's recovery value), except an experiment share
  (`--experiment-share`, 10%) assigned by `thompson_pick` over the same net value;
  a share of the customers (`--answer-rate`) answer the follow-up, and their answers
  reach the tallies at the end of the week;
- **today's rules**: the shipped `RecommendationRule` defaults (`feedback/defaults.py`)
  as `recommend()` ranked them at 0d4a852: incident type or any, *exact* tier or any,
  past incidents, rule rank; the suggested value `(base + order × percent) × tier
  factor`, capped, and the offer of the intervention's kinds closest under it; once an
  intervention has RECOMMENDATION_MIN_SAMPLE answers for the incident type, ranked by
  its Wilson lower bound ahead of the rules (ignoring cost and segment). It learns from
  its own answers, at the same answer rate;
- **oracle** (the ceiling): knows every true rate, gives the arm of best expected net
  value.

Printed per policy, over the last `--final-weeks` weeks and over the whole run: cost
per recovered customer (cost ÷ expected solved: the true rate of what was given, not
a draw, so the comparison carries no outcome noise), solved share, net value, and the
system's 95% intervals' coverage of the true rates at the end. `--tune` repeats the
system over segment prior strengths (and the strength measured from the segments,
`eb`) and seeds. Aims (issue 18): system within 10% of the oracle's cost per recovered
customer, at least 25% below today's rules, solved share at most 1 point below.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from feedback.defaults import RECOMMENDATIONS
from feedback.services import estimator
from feedback.services.estimator import Tally

# --- The world -------------------------------------------------------------------------


@dataclass(frozen=True)
class Arm:
    key: str
    name: str  # offers are listed by name (Offer.Meta.ordering): today's "first offer of a kind"
    kind: str
    value: Decimal
    cost: Decimal


ARMS = [
    Arm("apology", "Apology", "apology", Decimal("0"), Decimal("0")),
    Arm("callback", "Supervisor callback", "callback", Decimal("0"), Decimal("6.00")),  # 15 minutes of a supervisor
    Arm("off5", "$5 off", "amount_off", Decimal("5"), Decimal("3.50")),
    Arm("off10", "$10 off", "amount_off", Decimal("10"), Decimal("7.00")),
    Arm("off20", "$20 off", "amount_off", Decimal("20"), Decimal("14.00")),
    Arm("gift15", "$15 gift card", "gift_card", Decimal("15"), Decimal("10.80")),
    Arm("gift25", "$25 gift card", "gift_card", Decimal("25"), Decimal("18.00")),
]
ARM = {arm.key: arm for arm in ARMS}
COSTS = {arm.key: arm.cost for arm in ARMS}
CHEAP = {"apology", "callback", "off5", "gift15"}

INCIDENTS = {  # share of appeasements
    "late_delivery": 0.35,
    "damaged_item": 0.20,
    "overcharge": 0.15,
    "staff_attitude": 0.15,
    "product_defect": 0.15,
}
# True solve rates for a standard, low-value customer's first incident, never appeased.
BASE = {
    #                 apology callback off5  off10  off20  gift15 gift25
    "late_delivery": (0.45, 0.55, 0.78, 0.82, 0.85, 0.80, 0.85),
    "damaged_item": (0.30, 0.40, 0.55, 0.72, 0.80, 0.76, 0.82),
    "overcharge": (0.25, 0.35, 0.70, 0.80, 0.85, 0.74, 0.80),
    "staff_attitude": (0.80, 0.84, 0.78, 0.80, 0.82, 0.81, 0.82),
    "product_defect": (0.62, 0.70, 0.72, 0.76, 0.80, 0.77, 0.80),
}
TIERS = ["standard", "silver", "gold", "platinum"]
TIER_WEIGHTS = [0.50, 0.25, 0.17, 0.08]
VALUE_BANDS = ["low", "mid", "high"]
VALUE_WEIGHTS = {  # by tier
    "standard": [0.60, 0.35, 0.05],
    "silver": [0.35, 0.50, 0.15],
    "gold": [0.15, 0.50, 0.35],
    "platinum": [0.05, 0.35, 0.60],
}
REPEATS = ["first", "second", "many"]
REPEAT_WEIGHTS = [0.70, 0.20, 0.10]
PAST_INCIDENTS = {"first": 0, "second": 1, "many": 2}
PRIORS = ["none", "solved", "not_solved", "unknown"]
PRIOR_WEIGHTS = {"first": [0.80, 0.10, 0.05, 0.05], "other": [0.20, 0.40, 0.25, 0.15]}
ORDER_MEDIAN = {"standard": 40.0, "silver": 55.0, "gold": 80.0, "platinum": 120.0}
# What a recovered customer is worth, per tier (the default; --recovery-value).
# The product's defaults (RECOVERY_VALUE_FLOOR_* in appease/settings.py): what keeping a
# customer of each tier is worth at least; the lifetime-value share is left out (the world
# has no lifetime values).
RECOVERY_VALUE = {
    "standard": Decimal("25"),
    "silver": Decimal("50"),
    "gold": Decimal("100"),
    "platinum": Decimal("200"),
}
CELL_NOISE = 0.2  # standard deviation, on the log-odds, of every cell's own deviation


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _expit(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def true_rate(incident: str, segment: tuple[str, str, str, str], arm: str, noise: float) -> float:
    """The truth: the base rate moved on the log-odds by the segment's bands."""
    tier, value, repeat, prior = segment
    x = _logit(BASE[incident][[a.key for a in ARMS].index(arm)])
    if incident in ("overcharge", "late_delivery"):  # the better customers expect more
        if arm in CHEAP:
            x += {"standard": 0.0, "silver": -0.2, "gold": -0.5, "platinum": -1.0}[tier]
        elif arm == "off10":
            x += {"standard": 0.0, "silver": 0.0, "gold": -0.2, "platinum": -0.5}[tier]
    if incident == "staff_attitude":  # a second rude experience is not fixed by words
        x += {"apology": {"second": -0.5, "many": -1.5}, "callback": {"many": -0.3}}.get(arm, {}).get(repeat, 0.0)
    else:
        x += {"first": 0.0, "second": -0.2, "many": -0.4}[repeat]
    x += {"none": 0.0, "solved": 0.2, "not_solved": -0.5, "unknown": 0.0}[prior]
    if prior == "not_solved" and arm in CHEAP:
        x -= 0.3
    if value == "high" and arm in CHEAP:
        x -= 0.1
    return _expit(x + noise)


class World:
    def __init__(self, seed: int) -> None:
        rng = random.Random(f"world-{seed}")
        self.segments = [(t, v, r, p) for t in TIERS for v in VALUE_BANDS for r in REPEATS for p in PRIORS]
        self.rate = {
            (incident, segment, arm.key): true_rate(incident, segment, arm.key, rng.gauss(0, CELL_NOISE))
            for incident in INCIDENTS
            for segment in self.segments
            for arm in ARMS
        }

    def stream(self, seed: int, weeks: int, per_week: int):
        """The appeasements, week by week: (incident, segment, order total, uniform draws)."""
        rng = random.Random(f"stream-{seed}")
        incidents, shares = list(INCIDENTS), list(INCIDENTS.values())
        for _week in range(weeks):
            week = []
            for _ in range(per_week):
                incident = rng.choices(incidents, shares)[0]
                tier = rng.choices(TIERS, TIER_WEIGHTS)[0]
                value = rng.choices(VALUE_BANDS, VALUE_WEIGHTS[tier])[0]
                repeat = rng.choices(REPEATS, REPEAT_WEIGHTS)[0]
                prior = rng.choices(PRIORS, PRIOR_WEIGHTS["first" if repeat == "first" else "other"])[0]
                order = Decimal(str(round(ORDER_MEDIAN[tier] * math.exp(rng.gauss(0, 0.5)), 2)))
                # per policy: did the customer answer, was it solved (drawn against the truth)
                week.append((incident, (tier, value, repeat, prior), order, rng.random(), rng.random()))
            yield week


# --- Policies ----------------------------------------------------------------------------


class Oracle:
    name = "oracle"

    def __init__(self, world: World, recovery_value) -> None:
        self.world, self.value, self.cache = world, recovery_value, {}

    def pick(self, incident, segment, order, rng) -> str:
        key = (incident, segment)
        if key not in self.cache:
            value = float(self.value[segment[0]])
            self.cache[key] = max(
                ARMS, key=lambda a: (self.world.rate[incident, segment, a.key] * value - float(a.cost), -a.cost)
            ).key
        return self.cache[key]

    def week_end(self, answers) -> None:
        pass


class System:
    """estimator.rank on the answered tallies; an experiment share by Thompson sampling."""

    name = "system"

    def __init__(self, recovery_value, *, experiment_share: float, strength) -> None:
        self.value, self.share, self.strength = recovery_value, experiment_share, strength
        self.segment_tally: dict = defaultdict(Tally)  # (incident, segment, arm)
        self.incident_tally: dict = defaultdict(Tally)  # (incident, arm)
        self.cache: dict = {}
        self.strengths: dict = {}

    def found(self, incident, segment) -> dict:
        key = (incident, segment)
        if key not in self.cache:
            self.cache[key] = estimator.estimates(
                arms=[a.key for a in ARMS],
                incident={a.key: self.incident_tally[incident, a.key] for a in ARMS},
                segment={a.key: self.segment_tally[incident, segment, a.key] for a in ARMS},
                segment_strength=self.strengths.get(incident) if self.strength == "eb" else self.strength,
            )
        return self.cache[key]

    def pick(self, incident, segment, order, rng) -> str:
        found = self.found(incident, segment)
        value = self.value[segment[0]]
        if rng.random() < self.share:
            return estimator.thompson_pick(found, rng=rng, costs=COSTS, recovery_value=value)
        return estimator.rank(found, costs=COSTS, recovery_value=value)[0].arm

    def week_end(self, answers) -> None:
        for incident, segment, arm, solved in answers:
            one = Tally(1, int(solved))
            self.segment_tally[incident, segment, arm] += one
            self.incident_tally[incident, arm] += one
        self.cache = {}
        if self.strength == "eb":
            by_cell = defaultdict(list)
            for (incident, _segment, arm), tally in self.segment_tally.items():
                by_cell[incident, arm].append(tally)
            self.strengths = defaultdict(dict)
            for (incident, arm), tallies in by_cell.items():
                self.strengths[incident][arm] = estimator.strength_from_segments(tallies)


# Today's recommend() at 0d4a852, for the shipped rules: copied, not imported, so the
# benchmark keeps measuring the same baseline when recommend() changes.
TIER_FACTOR = {"standard": Decimal("1"), "silver": Decimal("1.25"), "gold": Decimal("1.5"), "platinum": Decimal("2")}
OFFER_KINDS = {
    "apology": ["apology"],
    "callback": ["callback"],
    "explanation": [],
    "discount": ["percent_off", "amount_off", "free_item"],
    "gift_card": ["gift_card"],
    "refund_credit": ["amount_off"],
}
SOFT = {"apology", "callback", "explanation"}
MIN_SAMPLE = 30  # RECOMMENDATION_MIN_SAMPLE's default


def wilson_low(solved: int, n: int, z: float = 1.96) -> float:
    p = solved / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - margin) / (1 + z * z / n))


def offer_for(intervention: str, value: Decimal | None) -> str:
    """_offer_for: the offer of the kinds closest under the value (the smallest when all
    are over; the first by name without a value). No offer (an explanation): nothing
    given, recorded as the apology arm."""
    candidates = sorted((a for a in ARMS if a.kind in OFFER_KINDS[intervention]), key=lambda a: a.name)
    if not candidates:
        return "apology"
    if value is None:
        return candidates[0].key
    under = [a for a in candidates if a.value <= value]
    if under:
        return max(under, key=lambda a: a.value).key
    return min(candidates, key=lambda a: a.value).key


class TodaysRules:
    name = "today's rules"

    def __init__(self) -> None:
        self.rules = [
            (incident, tier, past, intervention, Decimal(base), Decimal(percent), Decimal(cap) if cap else None, rank)
            for _name, incident, tier, past, intervention, base, percent, cap, _reason, rank in RECOMMENDATIONS
        ]
        self.evidence: dict = defaultdict(Tally)  # (incident, intervention): answers
        self.given: dict = {}

    def pick(self, incident, segment, order, rng) -> str:
        tier, _value, repeat, _prior = segment
        past = PAST_INCIDENTS[repeat]
        matching = [
            (index, rule)
            for index, rule in enumerate(self.rules)
            if rule[0] in (incident, "") and rule[1] in (tier, "") and rule[2] <= past
        ]
        chosen: dict[str, str] = {}  # intervention: arm, in rule order
        for _index, (_i, _t, _p, intervention, base, percent, cap, _rank) in sorted(
            matching, key=lambda item: (item[1][7], -item[1][2], item[0])
        ):
            if intervention in chosen:
                continue
            value = None
            if intervention not in SOFT:
                value = (base + order * percent / Decimal("100")) * TIER_FACTOR[tier]
                if cap is not None:
                    value = min(value, cap)
                value = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            chosen[intervention] = offer_for(intervention, value)
        for (seen_incident, intervention), tally in self.evidence.items():
            if seen_incident == incident and intervention not in chosen and tally.n >= MIN_SAMPLE:
                chosen[intervention] = offer_for(intervention, None)
        order_of = {intervention: index for index, intervention in enumerate(chosen)}

        def ranked(intervention):
            tally = self.evidence.get((incident, intervention))
            if tally and tally.n >= MIN_SAMPLE:
                return (0, -wilson_low(tally.solved, tally.n), order_of[intervention])
            return (1, 0.0, order_of[intervention])

        top = min(chosen, key=ranked)
        self.given = {"intervention": top}
        return chosen[top]

    def week_end(self, answers) -> None:
        for incident, _segment, _arm, solved, intervention in answers:
            self.evidence[incident, intervention] += Tally(1, int(solved))


# --- The run ----------------------------------------------------------------------------


@dataclass
class Totals:
    n: int = 0
    cost: Decimal = Decimal("0")
    solved: float = 0.0  # expected: the sum of the true rates of what was given
    net: float = 0.0

    def add(self, other: Totals) -> None:
        self.n += other.n
        self.cost += other.cost
        self.solved += other.solved
        self.net += other.net

    @property
    def per_recovered(self) -> float:
        return float(self.cost) / self.solved if self.solved else float("nan")

    @property
    def solved_share(self) -> float:
        return self.solved / self.n if self.n else float("nan")


def simulate(policy, world: World, *, seed: int, weeks: int, per_week: int, answer_rate: float, recovery_value):
    """Run one policy over the stream; the weekly totals."""
    rng = random.Random(f"policy-{seed}-{policy.name}")
    weekly = []
    for week in world.stream(seed, weeks, per_week):
        totals, answers = Totals(), []
        for incident, segment, order, answered, solved_draw in week:
            arm = policy.pick(incident, segment, order, rng)
            rate = world.rate[incident, segment, arm]
            totals.n += 1
            totals.cost += ARM[arm].cost
            totals.solved += rate
            totals.net += rate * float(recovery_value[segment[0]]) - float(ARM[arm].cost)
            if answered < answer_rate:
                solved = solved_draw < rate
                if isinstance(policy, TodaysRules):
                    answers.append((incident, segment, arm, solved, policy.given["intervention"]))
                else:
                    answers.append((incident, segment, arm, solved))
        policy.week_end(answers)
        weekly.append(totals)
    return weekly


def summed(weekly: list[Totals]) -> Totals:
    total = Totals()
    for week in weekly:
        total.add(week)
    return total


def coverage(system: System, world: World, seed: int, per_week: int) -> tuple[float, float]:
    """Share of the system's 95% intervals that hold the true rate, over every incident ×
    segment × arm, weighted by how often the segment comes (a week's stream); and the
    mean interval width."""
    weight = defaultdict(int)
    for incident, segment, *_rest in next(World.stream(world, seed + 10_000, 1, per_week)):
        weight[incident, segment] += 1
    held = width = total = 0.0
    for (incident, segment), count in weight.items():
        for arm, estimate in system.found(incident, segment).items():
            low, high = estimate.interval
            held += count * (low <= world.rate[incident, segment, arm] <= high)
            width += count * (high - low)
            total += count
    return held / total, width / total


def run(args, *, seed: int, strength) -> dict:
    world = World(seed)
    kwargs = {
        "seed": seed,
        "weeks": args.weeks,
        "per_week": args.per_week,
        "answer_rate": args.answer_rate,
        "recovery_value": args.values,
    }
    system = System(args.values, experiment_share=args.experiment_share, strength=strength)
    result = {"system_policy": system}
    for policy in (Oracle(world, args.values), system, TodaysRules()):
        weekly = simulate(policy, world, **kwargs)
        result[policy.name] = (summed(weekly[-args.final_weeks :]), summed(weekly), weekly)
    result["coverage"] = coverage(system, world, seed, args.per_week)
    return result


def table(result: dict, final_weeks: int) -> None:
    oracle = result["oracle"][0].per_recovered
    print(
        f"{'policy':<15} {'cost/recovered':>15} {'vs oracle':>10} {'solved':>8} {'net/appeasement':>16}"
        f"   whole run: {'cost/recovered':>14} {'solved':>7}"
    )
    for name in ("oracle", "system", "today's rules"):
        final, whole, _weekly = result[name]
        print(
            f"{name:<15} {final.per_recovered:>15.2f} {final.per_recovered / oracle - 1:>+10.1%}"
            f" {final.solved_share:>8.1%} {final.net / final.n:>16.2f}"
            f"   {'':<11} {whole.per_recovered:>14.2f} {whole.solved_share:>7.1%}"
        )
    print(f"(figures over the last {final_weeks} weeks; cost/recovered = cost ÷ expected solved)")


def aims(result: dict) -> list[tuple[str, bool, str]]:
    oracle, system, today = (result[name][0] for name in ("oracle", "system", "today's rules"))
    vs_oracle = system.per_recovered / oracle.per_recovered - 1
    vs_today = 1 - system.per_recovered / today.per_recovered
    points = (system.solved_share - today.solved_share) * 100
    return [
        ("within 10% of the oracle's cost per recovered customer", abs(vs_oracle) <= 0.10, f"{vs_oracle:+.1%}"),
        ("at least 25% below today's rules' cost per recovered", vs_today >= 0.25, f"{vs_today:.1%} below"),
        ("solved share at most 1 point below today's rules", points >= -1.0, f"{points:+.1f} points"),
    ]


def checks(result: dict, args) -> list[str]:
    """What must hold whatever the figures: a failure is a bug, not a missed aim."""
    failures = []
    oracle_whole = result["oracle"][1]
    for name in ("system", "today's rules"):
        _final, whole, weekly = result[name]
        if whole.n != args.weeks * args.per_week or len(weekly) != args.weeks:
            failures.append(f"{name}: {whole.n} appeasements, expected {args.weeks * args.per_week}")
        if whole.net > oracle_whole.net + 1e-6:
            failures.append(f"{name}: expected net value {whole.net:.2f} above the oracle's {oracle_whole.net:.2f}")
        if not (0 < whole.solved_share < 1) or math.isnan(whole.per_recovered):
            failures.append(f"{name}: figures out of range")
    system = result["system_policy"]
    answered = sum(t.n for t in system.segment_tally.values())
    if answered != sum(t.n for t in system.incident_tally.values()) or answered == 0:
        failures.append("system: segment and incident tallies disagree")
    held, _width = result["coverage"]
    if not 0 <= held <= 1:
        failures.append("coverage out of range")
    return failures


def tune(args) -> None:
    common.rule(f"tuning: segment prior strength, {len(args.seeds)} seeds, last {args.final_weeks} weeks")
    print(
        f"{'strength':>9} {'cost/recovered':>15} {'vs oracle':>10} {'solved':>8} {'regret/appeasement':>19}"
        f" {'coverage':>9} {'width':>6}"
    )
    for strength in args.tune:
        rows = []
        for seed in args.seeds:
            result = run(args, seed=seed, strength=strength)
            oracle, system = result["oracle"][0], result["system"][0]
            rows.append(
                (
                    system.per_recovered,
                    system.per_recovered / oracle.per_recovered - 1,
                    system.solved_share,
                    (oracle.net - system.net) / system.n,
                    *result["coverage"],
                )
            )
        means = [statistics.fmean(column) for column in zip(*rows, strict=True)]
        print(
            f"{strength!s:>9} {means[0]:>15.2f} {means[1]:>+10.1%} {means[2]:>8.1%} {means[3]:>19.3f}"
            f" {means[4]:>9.1%} {means[5]:>6.3f}"
        )


def strength_arg(text: str):
    return "eb" if text == "eb" else float(text)


def values_arg(text: str) -> dict:
    values = dict(RECOVERY_VALUE)
    for item in text.split(","):
        tier, _, amount = item.partition("=")
        if tier not in values:
            raise argparse.ArgumentTypeError(f"unknown tier {tier!r}")
        values[tier] = Decimal(amount)
    return values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", type=int, default=26)
    parser.add_argument("--per-week", type=int, default=2000, help="appeasements a week")
    parser.add_argument("--final-weeks", type=int, default=4, help="the figures' window, at the end of the run")
    parser.add_argument("--experiment-share", type=float, default=0.10)
    parser.add_argument("--answer-rate", type=float, default=0.6, help="share of follow-ups answered")
    parser.add_argument(
        "--recovery-value",
        dest="values",
        type=values_arg,
        default=dict(RECOVERY_VALUE),
        help="what a recovered customer is worth per tier, e.g. standard=25,platinum=200",
    )
    parser.add_argument("--seeds", type=lambda text: [int(s) for s in text.split(",")], default=[1, 2, 3, 4, 5])
    parser.add_argument(
        "--strength",
        type=strength_arg,
        default=None,
        help="segment prior strength, a number or eb (default: the module's)",
    )
    parser.add_argument(
        "--tune", type=lambda text: [strength_arg(s) for s in text.split(",")], default=None, help="e.g. 5,20,50,eb"
    )
    args = common.parse_args(parser, smoke={"weeks": 4, "per_week": 400, "final_weeks": 2, "seeds": [1]})
    if args.final_weeks > args.weeks:
        parser.error("--final-weeks must not exceed --weeks")
    strength = args.strength if args.strength is not None else estimator.SEGMENT_PRIOR_STRENGTH
    started = time.process_time()
    if args.tune:
        tune(args)
        print(f"\nCPU: {time.process_time() - started:.1f} s")
        return 0

    common.rule(
        f"recovery simulation: {args.weeks} weeks × {args.per_week:,} appeasements, experiment share "
        f"{args.experiment_share:.0%}, answer rate {args.answer_rate:.0%}, segment prior strength {strength}"
    )
    print("recovery value: " + ", ".join(f"{tier} {value}" for tier, value in args.values.items()))
    failures, per_seed = [], []
    for seed in args.seeds:
        result = run(args, seed=seed, strength=strength)
        common.rule(f"seed {seed}")
        table(result, args.final_weeks)
        held, width = result["coverage"]
        print(f"system's 95% intervals at the end: {held:.1%} hold the true rate (mean width {width:.3f})")
        failures += [f"seed {seed}: {failure}" for failure in checks(result, args)]
        per_seed.append(result)

    common.rule(f"pooled over seeds {', '.join(map(str, args.seeds))} (last {args.final_weeks} weeks)")
    rows = {name: [r[name][0] for r in per_seed] for name in ("oracle", "system", "today's rules")}
    mean = {
        name: Totals(
            n=sum(t.n for t in totals),
            cost=sum((t.cost for t in totals), Decimal("0")),
            solved=sum(t.solved for t in totals),
            net=sum(t.net for t in totals),
        )
        for name, totals in rows.items()
    }
    for name, totals in mean.items():
        print(
            f"{name:<15} cost per recovered customer {totals.per_recovered:6.2f}   solved share"
            f" {totals.solved_share:6.1%}   net value per appeasement {totals.net / totals.n:6.2f}"
        )
    coverages = [r["coverage"][0] for r in per_seed]
    print(f"system's 95% intervals hold the true rate: {min(coverages):.1%}–{max(coverages):.1%} (by seed)")
    common.rule("aims (pooled over seeds)")
    for text, met, figure in aims({name: (totals,) for name, totals in mean.items()}):
        print(f"{'met   ' if met else 'MISSED'} {text}: {figure}")
    print(f"\nCPU: {time.process_time() - started:.1f} s")
    if failures:
        common.rule("CHECKS FAILED")
        print("\n".join(failures))
        return 1
    print("checks: OK (every appeasement answered by every policy; no policy above the oracle's net value)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
