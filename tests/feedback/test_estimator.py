"""The estimator behind the recommendations, on synthetic data whose truth is known
(feedback/services/estimator.py, docs/adr/0012). Every draw is seeded: the same run
gives the same answer, and no assertion depends on time."""

from __future__ import annotations

import math
import random
from decimal import Decimal

import pytest

from feedback.services.estimator import (
    SEGMENT_PRIOR_STRENGTH,
    Estimate,
    Tally,
    beta_cdf,
    beta_quantile,
    cost_per_recovered,
    estimates,
    incident_estimates,
    probability_worse,
    rank,
    strength_from_segments,
    thompson_pick,
)


def draw(rng: random.Random, n: int, rate: float) -> Tally:
    return Tally(n, sum(rng.random() < rate for _ in range(n)))


# --- The beta distribution ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "quantile"),
    [
        # closed forms: Beta(a, 1) has F(x) = xᵃ, Beta(1, b) has F(x) = 1 − (1 − x)ᵇ
        (1, 1, lambda q: q),
        (3, 1, lambda q: q ** (1 / 3)),
        (0.05, 1, lambda q: q ** (1 / 0.05)),
        (1, 5, lambda q: 1 - (1 - q) ** (1 / 5)),
        (1, 0.05, lambda q: 1 - (1 - q) ** (1 / 0.05)),
    ],
)
def test_beta_quantiles_match_the_closed_forms(a, b, quantile):
    for q in (0.025, 0.5, 0.975):
        assert beta_quantile(q, a, b) == pytest.approx(quantile(q), abs=1e-9)


def test_beta_quantiles_of_large_tallies_are_exact_and_the_cdf_inverts_them():
    # Beta(81, 21) (the docs' example) and a segment with tens of thousands of answers.
    assert round(beta_quantile(0.025, 81, 21), 4) == 0.7109
    assert round(beta_quantile(0.975, 81, 21), 4) == 0.8664
    for a, b in [(81, 21), (40_000.5, 10_000.5), (0.3, 2_000)]:
        for q in (0.025, 0.975):
            assert beta_cdf(beta_quantile(q, a, b), a, b) == pytest.approx(q, abs=1e-9)


def test_no_tally_gives_a_zero_parameter():
    # Nothing at all, everything solved, nothing solved, a baseline of exactly 0 or 1:
    # both parameters stay above zero, so intervals and draws always exist.
    cases = [
        ({}, {}, None),
        ({"a": Tally(10_000, 10_000)}, {"a": Tally(10_000, 10_000)}, None),
        ({"a": Tally(500, 0)}, {"a": Tally(5, 0)}, None),
        ({}, {}, 0.0),
        ({"a": Tally(3, 3)}, {}, 1.0),
        ({"a": Tally(3, 3)}, {"a": Tally(7, 7)}, float("nan")),  # a segment larger than its incident type
    ]
    rng = random.Random(1)
    for incident, segment, baseline in cases:
        found = estimates(arms=["a"], incident=incident, segment=segment, baseline=baseline)["a"]
        assert found.alpha > 0 and found.beta > 0
        low, high = found.interval
        assert 0 <= low <= found.mean <= high <= 1
        assert 0 <= rng.betavariate(found.alpha, found.beta) <= 1
    # Everything solved, 10,000 times: sure, but not "always".
    sure = estimates(arms=["a"], incident={"a": Tally(10_000, 10_000)}, segment={"a": Tally(10_000, 10_000)})["a"]
    assert 0.999 < sure.interval[0] < 0.99999 < sure.interval[1]
    nothing = estimates(arms=["a"], incident={}, segment={})["a"]
    assert nothing.mean == pytest.approx(0.5)
    assert nothing.basis == "prior"
    assert nothing.interval[1] - nothing.interval[0] > 0.8  # nothing known: nearly all of [0, 1]


def test_a_segments_answers_are_not_counted_twice():
    # All the answers are this segment's: its interval is the one ten answers give
    # (about ±25 points), not one narrowed by the same answers seen again as the prior.
    found = estimates(arms=["a"], incident={"a": Tally(10, 8)}, segment={"a": Tally(10, 8)})["a"]
    low, high = found.interval
    assert high - low > 0.35
    assert found.mean == pytest.approx(0.8, abs=0.03)
    assert incident_estimates(arms=["a"], incident={"a": Tally(10, 8)})["a"] == found


# --- Ranking -----------------------------------------------------------------------------


def test_equal_effects_recommend_the_cheaper_arm():
    rng = random.Random(7)
    truth = {"apology": 0.80, "discount": 0.80, "gift_card": 0.80}
    costs = {"apology": Decimal("0"), "discount": Decimal("3.50"), "gift_card": Decimal("18")}
    # The same figures: the cheaper first, whatever the recovery value.
    same = estimates(arms=truth, incident={arm: Tally(100, 80) for arm in truth}, segment={})
    for value in ("0", "50", "10000"):
        assert [e.arm for e in rank(same, costs=costs, recovery_value=Decimal(value))] == list(truth)
    first = []
    for _ in range(20):  # twenty seeded data sets of 2,000 answers an arm: chance moves a rate ±2 points
        incident = {arm: draw(rng, 2000, rate) for arm, rate in truth.items()}
        found = estimates(arms=truth, incident=incident, segment={})
        first.append(rank(found, costs=costs, recovery_value=Decimal("50"))[0].arm)
    assert first == ["apology"] * 20


def test_a_costlier_arm_wins_only_when_it_solves_enough_more():
    found = estimates(
        arms=["apology", "gift_card"],
        incident={"apology": Tally(400, 200), "gift_card": Tally(400, 340)},
        segment={},
    )
    costs = {"apology": Decimal("0"), "gift_card": Decimal("18")}
    # +35 points for $18: worth it for a customer worth $100, not for one worth $40.
    assert rank(found, costs=costs, recovery_value=Decimal("100"))[0].arm == "gift_card"
    assert rank(found, costs=costs, recovery_value=Decimal("40"))[0].arm == "apology"


def test_a_customer_worth_more_never_gets_an_arm_that_solves_less():
    # Platinum never gets less than gold for the same incident unless the evidence says
    # so: with the same estimates, a higher recovery value picks an arm at least as likely
    # to solve (and at least as costly).
    found = estimates(
        arms=["apology", "off5", "off10", "gift25"],
        incident={
            "apology": Tally(300, 120),
            "off5": Tally(300, 210),
            "off10": Tally(300, 240),
            "gift25": Tally(300, 255),
        },
        segment={},
    )
    costs = {"apology": Decimal("0"), "off5": Decimal("3.50"), "off10": Decimal("7"), "gift25": Decimal("18")}
    picks = [rank(found, costs=costs, recovery_value=Decimal(v))[0] for v in range(0, 1001, 5)]
    means = [pick.mean for pick in picks]
    assert means == sorted(means)
    assert (picks[0].arm, picks[-1].arm) == ("apology", "gift25")
    assert {pick.arm for pick in picks} == {"apology", "off5", "off10", "gift25"}


def test_cost_per_recovered_customer():
    assert cost_per_recovered(cost=Decimal("3.50"), solved_rate=0.81) == Decimal("4.32")
    assert cost_per_recovered(cost=Decimal("0"), solved_rate=0.78) == Decimal("0.00")
    assert cost_per_recovered(cost=Decimal("5"), solved_rate=0.0) is None


# --- Pooling -----------------------------------------------------------------------------


def test_a_segment_with_little_data_falls_back_to_its_incident_type():
    rng = random.Random(11)
    incident = {"apology": draw(rng, 2000, 0.75)}
    # Five answers from a segment that truly solves at 40%: the estimate stays near 75%.
    segment = {"apology": draw(rng, 5, 0.40)}
    incident = {"apology": incident["apology"] + segment["apology"]}
    found = estimates(arms=["apology"], incident=incident, segment=segment)["apology"]
    assert found.basis == "incident"
    assert 0.65 < found.mean < 0.78
    low, high = found.interval
    assert high - low < 0.40  # five answers alone: about 0.65 wide


def test_with_enough_data_a_segment_that_differs_is_recognised():
    rng = random.Random(12)
    rest = draw(rng, 3000, 0.75)
    segment = {"apology": draw(rng, 400, 0.40)}
    found = estimates(arms=["apology"], incident={"apology": rest + segment["apology"]}, segment=segment)["apology"]
    assert found.basis == "segment"
    low, high = found.interval
    assert high < 0.5  # clearly below the incident type's 75%
    assert low < 0.40 < high


def test_the_recommendation_changes_for_a_segment_that_needs_more():
    # Overcharges: $5 off works for most customers; platinum ones need $20 off.
    rng = random.Random(13)
    costs = {"off5": Decimal("3.50"), "off20": Decimal("14")}
    others = {"off5": draw(rng, 2000, 0.80), "off20": draw(rng, 2000, 0.84)}
    platinum = {"off5": draw(rng, 300, 0.45), "off20": draw(rng, 300, 0.85)}
    incident = {arm: others[arm] + platinum[arm] for arm in costs}
    value = Decimal("60")
    everyone = estimates(arms=costs, incident=incident, segment={})
    assert rank(everyone, costs=costs, recovery_value=value)[0].arm == "off5"
    found = estimates(arms=costs, incident=incident, segment=platinum)
    assert rank(found, costs=costs, recovery_value=value)[0].arm == "off20"


def test_intervals_cover_the_truth_at_about_the_nominal_rate():
    # 400 seeded data sets: segments whose true rates spread around their incident type
    # as the model assumes, 2,000 answers for the incident type and 0 to 60 in the
    # segment. About 95% of the 95% intervals hold the truth.
    rng = random.Random(2024)
    held = 0
    runs = 400
    for _ in range(runs):
        centre = rng.uniform(0.2, 0.9)
        kappa = SEGMENT_PRIOR_STRENGTH
        truth = rng.betavariate(centre * kappa, (1 - centre) * kappa)
        rest = draw(rng, 2000, centre)
        part = draw(rng, rng.randint(0, 60), truth)
        found = estimates(arms=["a"], incident={"a": rest + part}, segment={"a": part})["a"]
        low, high = found.interval
        held += low <= truth <= high
    assert 0.92 <= held / runs <= 0.98


def test_intervals_of_one_arm_with_a_fixed_truth_cover_it():
    # The incident type as a whole, a fixed true rate of 30%, 150 answers: the frequentist
    # coverage of the credible interval is about nominal.
    rng = random.Random(99)
    runs = 400
    held = 0
    for _ in range(runs):
        tally = draw(rng, 150, 0.30)
        low, high = incident_estimates(arms=["a"], incident={"a": tally})["a"].interval
        held += low <= 0.30 <= high
    assert 0.92 <= held / runs <= 0.98


def test_the_segment_strength_measured_from_the_segments():
    rng = random.Random(5)
    # Segments drawn from Beta(20·m, 20·(1 − m)): the measured strength is near 20.
    alike = []
    for _ in range(200):
        rate = rng.betavariate(0.7 * 20, 0.3 * 20)
        alike.append(draw(rng, 200, rate))
    assert 12 < strength_from_segments(alike) < 30
    # Identical segments: as alike as the bounds allow; too few segments: the default.
    same = [draw(rng, 200, 0.7) for _ in range(50)]
    assert strength_from_segments(same) > 200
    assert strength_from_segments([Tally(10, 5), Tally(10, 6)]) == SEGMENT_PRIOR_STRENGTH
    assert strength_from_segments([Tally(10, 10)] * 5) == 1000.0
    # Given per arm, it changes only that arm's pooling.
    incident = {"a": Tally(1000, 700), "b": Tally(1000, 700)}
    segment = {"a": Tally(20, 5), "b": Tally(20, 5)}
    found = estimates(arms=["a", "b"], incident=incident, segment=segment, segment_strength={"a": 5.0})
    assert found["a"].mean < found["b"].mean


# --- Experiments -------------------------------------------------------------------------


def test_thompson_sampling_converges_to_the_best_arm():
    rng = random.Random(3)
    truth = {"apology": 0.55, "off5": 0.70, "gift25": 0.78}
    tallies = {arm: Tally() for arm in truth}
    picks = []
    for _ in range(3000):
        found = estimates(arms=truth, incident=tallies, segment=tallies)
        arm = thompson_pick(found, rng=rng)
        tallies[arm] += Tally(1, int(rng.random() < truth[arm]))
        picks.append(arm)
    last = picks[-500:]
    assert last.count("gift25") / len(last) > 0.9
    assert all(tallies[arm].n > 10 for arm in truth)  # every arm was tried


def test_thompson_sampling_on_net_value_converges_to_the_cheaper_equal_arm():
    rng = random.Random(4)
    truth = {"apology": 0.80, "gift25": 0.80}
    costs = {"apology": Decimal("0"), "gift25": Decimal("18")}
    tallies = {arm: Tally() for arm in truth}
    picks = []
    for _ in range(1000):
        found = estimates(arms=truth, incident=tallies, segment=tallies)
        arm = thompson_pick(found, rng=rng, costs=costs, recovery_value=Decimal("50"))
        tallies[arm] += Tally(1, int(rng.random() < truth[arm]))
        picks.append(arm)
    assert picks[-300:].count("apology") / 300 > 0.95


def test_thompson_pick_is_repeatable():
    found = estimates(arms=["a", "b"], incident={"a": Tally(10, 5), "b": Tally(10, 6)}, segment={})
    first = [thompson_pick(found, rng=random.Random(8)) for _ in range(3)]
    assert len(set(first)) == 1


def _exact_probability_worse(worse: Estimate, better: Estimate) -> float:
    """P(X < Y), X ~ Beta(a, b), Y ~ Beta(c, d), integer c (Evan Miller's closed form):
    1 − Σ_{i<c} B(a + i, b + d) / ((d + i) B(1 + i, d) B(a, b))."""
    a, b, c, d = worse.alpha, worse.beta, better.alpha, better.beta

    def log_beta(x, y):
        return math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)

    return sum(
        math.exp(log_beta(a + i, b + d) - math.log(d + i) - log_beta(1 + i, d) - log_beta(a, b)) for i in range(int(c))
    )


def test_probability_worse():
    def arm(name, n, solved):
        return Estimate(arm=name, alpha=1 + solved, beta=1 + n - solved, n_segment=n, n_incident=n)

    apology, gift = arm("apology", 100, 60), arm("gift", 100, 80)
    exact = _exact_probability_worse(apology, gift)
    assert exact > 0.99
    assert probability_worse(apology, gift) == pytest.approx(exact, abs=0.01)
    # Two equal arms: a coin toss; the same answer every time for the same data.
    even = probability_worse(arm("a", 50, 25), arm("b", 50, 25))
    assert even == pytest.approx(0.5, abs=0.03)
    assert probability_worse(arm("a", 50, 25), arm("b", 50, 25)) == even
    close = arm("a", 40, 20), arm("b", 40, 24)
    assert probability_worse(*close) == pytest.approx(_exact_probability_worse(*close), abs=0.02)
    assert probability_worse(gift, apology) == pytest.approx(1 - exact, abs=0.01)
