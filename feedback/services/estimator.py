"""How likely an intervention is to solve an incident for a customer like this one: a
two-level beta-binomial model, with no database and no I/O (docs/adr/0012).

Level 1, the incident type: each arm's answers for this incident type in the *other*
segments, on a weak prior centred on the incident type's solved share over all arms
(`INCIDENT_PRIOR_STRENGTH` pseudo-answers).
Level 2, the segment: the arm's answers in this customer's segment, on a prior centred
on level 1's estimate. Segments of one incident type differ by about as much as a beta
distribution with `SEGMENT_PRIOR_STRENGTH` pseudo-answers spreads (or the strength
measured from the segments themselves, `strength_from_segments`); the prior is that, widened
by what level 1 does not know yet, so it never weighs more than the answers behind it.
A segment with few answers stays near its incident type's figure; one with many speaks
for itself; with no answer anywhere the interval is honestly wide.

Ranking is by expected net value, `P(solved) × value of a recovered customer − cost`,
so when two arms solve as often the cheaper one wins, and a customer worth more earns
a costlier arm only when it solves more.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

INCIDENT_PRIOR_STRENGTH = 2.0
SEGMENT_PRIOR_STRENGTH = 20.0
# Bounds of a segment strength measured from the data (`strength_from_segments`): below 2 a
# segment's prior is flatter than uniform; above 1000 the segments are one population.
STRENGTH_BOUNDS = (2.0, 1000.0)
# A prior's centre is kept this far inside (0, 1): a beta distribution needs both
# parameters above zero, and no intervention is known to never (or always) work.
BASELINE_MARGIN = 1e-3
# No prior pseudo-count goes below half an answer (Jeffreys' prior at the edge): a beta
# parameter under it piles the prior's mass on 0 or 1, and a run of solved answers would
# then read as "certainly always".
PRIOR_FLOOR = 0.5


@dataclass(frozen=True)
class Tally:
    n: int = 0
    solved: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.n + other.n, self.solved + other.solved)

    def __sub__(self, other: Tally) -> Tally:
        return Tally(max(0, self.n - other.n), max(0, min(self.solved - other.solved, self.n - other.n)))


@dataclass(frozen=True)
class Estimate:
    """An arm's posterior for one incident type and segment."""

    arm: str
    alpha: float
    beta: float
    n_segment: int  # answers in this segment
    n_incident: int  # answers for this incident type, any segment
    prior_strength: float = SEGMENT_PRIOR_STRENGTH  # the segment prior's weight, in answers

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    @property
    def interval(self) -> tuple[float, float]:
        """The central 95% credible interval."""
        return beta_quantile(0.025, self.alpha, self.beta), beta_quantile(0.975, self.alpha, self.beta)

    @property
    def basis(self) -> str:
        """What the figure mostly rests on: the segment's own answers (as many as the
        prior's weight or more), the incident type's, or nothing yet (the prior)."""
        if self.n_segment > 0 and self.n_segment >= self.prior_strength:
            return "segment"
        if self.n_incident > 0:
            return "incident"
        return "prior"


def _inside(p: float) -> float:
    if math.isnan(p):
        return 0.5
    return min(1 - BASELINE_MARGIN, max(BASELINE_MARGIN, p))


def estimates(
    *,
    arms: Iterable[str],
    incident: Mapping[str, Tally],
    segment: Mapping[str, Tally],
    baseline: float | None = None,
    segment_strength: float | Mapping[str, float] | None = None,
) -> dict[str, Estimate]:
    """Each arm's posterior. `incident[arm]` is the arm's tally for the incident type,
    `segment[arm]` its tally in the customer's segment (a subset of the first: level 1
    uses the rest, so no answer counts twice). `baseline` is the prior's centre; by
    default the incident type's solved share over every arm (0.5 when there is no
    answer at all). `segment_strength` is the segment prior's weight, one for every arm
    or per arm (`strength_from_segments` measures it); `SEGMENT_PRIOR_STRENGTH` by default.

    Pass the incident tally as the segment too for the incident type as a whole; an
    empty segment gives what is known of a segment never seen (same mean, wider)."""
    if baseline is None:
        total = sum(incident.values(), Tally())
        baseline = (total.solved + 1) / (total.n + 2)
    baseline = _inside(baseline)
    result = {}
    for arm in arms:
        whole = incident.get(arm, Tally())
        part = segment.get(arm, Tally())
        rest = whole - part
        a1 = INCIDENT_PRIOR_STRENGTH * baseline + rest.solved
        b1 = INCIDENT_PRIOR_STRENGTH * (1 - baseline) + rest.n - rest.solved
        level1 = _inside(a1 / (a1 + b1))
        if isinstance(segment_strength, Mapping):
            kappa = segment_strength.get(arm, SEGMENT_PRIOR_STRENGTH)
        else:
            kappa = SEGMENT_PRIOR_STRENGTH if segment_strength is None else segment_strength
        # The segment's rate given level 1's is Beta(κ·m, κ·(1 − m)); level 1's own
        # uncertainty (a1 + b1 answers' worth) widens it. Matching the mean and the
        # variance of that mixture gives a beta prior of weight n₁κ / (n₁ + κ + 1).
        n1 = a1 + b1
        strength = n1 * kappa / (n1 + kappa + 1)
        alpha = max(PRIOR_FLOOR, strength * level1) + part.solved
        beta = max(PRIOR_FLOOR, strength * (1 - level1)) + part.n - part.solved
        result[arm] = Estimate(
            arm=arm, alpha=alpha, beta=beta, n_segment=part.n, n_incident=whole.n, prior_strength=strength
        )
    return result


def incident_estimates(
    *, arms: Iterable[str], incident: Mapping[str, Tally], baseline: float | None = None
) -> dict[str, Estimate]:
    """Each arm's posterior for the incident type as a whole (every segment)."""
    return estimates(arms=arms, incident=incident, segment=incident, baseline=baseline)


def strength_from_segments(tallies: Iterable[Tally]) -> float:
    """How alike one arm's segments are, as a prior weight in answers (empirical Bayes):
    the method of moments on the segments' tallies for one incident type and arm. The
    spread of the segments' solved shares beyond what chance gives (the binomial
    variance) is the between-segment variance τ²; the weight is p(1 − p) / τ² − 1, kept
    within `STRENGTH_BOUNDS`. `SEGMENT_PRIOR_STRENGTH` while fewer than three segments
    have answers."""
    cells = [t for t in tallies if t.n > 0]
    total = sum(cells, Tally())
    if len(cells) < 3 or total.solved in (0, total.n):
        return SEGMENT_PRIOR_STRENGTH if len(cells) < 3 else STRENGTH_BOUNDS[1]
    p = total.solved / total.n
    spread = sum(t.n * (t.solved / t.n - p) ** 2 for t in cells)
    chance = (len(cells) - 1) * p * (1 - p)
    scale = total.n - sum(t.n * t.n for t in cells) / total.n
    tau2 = (spread - chance) / scale if scale > 0 else 0.0
    low, high = STRENGTH_BOUNDS
    if tau2 <= 0:
        return high
    return min(high, max(low, p * (1 - p) / tau2 - 1))


def net_value(estimate: Estimate, *, cost: Decimal, recovery_value: Decimal) -> Decimal:
    """Expected value of giving this arm: P(solved) × what a recovered customer is worth,
    less what the arm costs."""
    return Decimal(str(round(estimate.mean, 6))) * recovery_value - cost


def cost_per_recovered(*, cost: Decimal, solved_rate: float) -> Decimal | None:
    """What one recovered customer costs with this arm: its cost over its solved share."""
    if solved_rate <= 0:
        return None
    return (cost / Decimal(str(round(solved_rate, 6)))).quantize(Decimal("0.01"))


def rank(found: Mapping[str, Estimate], *, costs: Mapping[str, Decimal], recovery_value: Decimal) -> list[Estimate]:
    """Best first by expected net value; ties to the cheaper, then the likelier arm."""
    return sorted(
        found.values(),
        key=lambda e: (-net_value(e, cost=costs[e.arm], recovery_value=recovery_value), costs[e.arm], -e.mean, e.arm),
    )


def thompson_pick(
    found: Mapping[str, Estimate],
    *,
    rng: random.Random,
    costs: Mapping[str, Decimal] | None = None,
    recovery_value: Decimal | None = None,
) -> str:
    """One arm, drawn with the probability that it is the best (Thompson sampling): the
    best solve rate, or, given `costs` and `recovery_value`, the best net value."""
    draws = {arm: rng.betavariate(e.alpha, e.beta) for arm, e in sorted(found.items())}
    if costs is not None and recovery_value is not None:
        value = float(recovery_value)
        draws = {arm: rate * value - float(costs[arm]) for arm, rate in draws.items()}
    return max(draws, key=draws.__getitem__)


def probability_worse(worse: Estimate, better: Estimate, *, draws: int = 4000, seed: int = 0) -> float:
    """P(`worse`'s solve rate < `better`'s), by sampling both posteriors (seeded: the same
    answer for the same data)."""
    rng = random.Random(seed)  # noqa: S311 (statistics, not secrets: seeded on purpose)
    below = sum(
        rng.betavariate(worse.alpha, worse.beta) < rng.betavariate(better.alpha, better.beta) for _ in range(draws)
    )
    return below / draws


# The regularised incomplete beta function and its inverse (Numerical Recipes' continued
# fraction, then bisection): the standard library has neither, and the credible interval
# must be exact enough to show and the same on every run.


def _beta_cf(x: float, a: float, b: float) -> float:
    tiny = 1e-30
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 3e-12:
            break
    return h


def beta_cdf(x: float, a: float, b: float) -> float:
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_cf(x, a, b) / a
    return 1.0 - math.exp(log_front) * _beta_cf(1 - x, b, a) / b


def beta_quantile(q: float, a: float, b: float) -> float:
    low, high = 0.0, 1.0
    for _ in range(60):
        middle = (low + high) / 2
        if beta_cdf(middle, a, b) < q:
            low = middle
        else:
            high = middle
    return (low + high) / 2
