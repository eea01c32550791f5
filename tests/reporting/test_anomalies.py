"""Anomaly flags: reps against reps of a similar volume, repeated customers, customers
served by many reps, offers whose codes go unused (reporting/anomalies.py)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from appease.issuance.models import Issuance, Team
from coupons.models import Code
from feedback.models import Case
from reporting.anomalies import KINDS, anomalies
from tests.factories import (
    customer_create,
    gift_card_offer_create,
    issued_code,
    offer_create,
    reason_create,
    staff_user,
)

NORMAL_COUNTS = [8, 9, 10, 10, 11, 12]  # over 20 cases each: 0.40–0.60 issuances per case


@pytest.fixture
def world(db):
    """The period (the last 30 days), an offer, a reason and a few customers."""
    now = timezone.now()
    return {
        "now": now,
        "since": now - timedelta(days=30),
        "until": now + timedelta(days=1),
        "offer": offer_create(),
        "reason": reason_create(),
        "customers": [customer_create() for _ in range(4)],
    }


def handled(rep, n, *, at):
    Case.objects.bulk_create(
        Case(
            source=Case.Source.CSR, subject="Late parcel", incident_type="late_delivery", assigned_to=rep, created_at=at
        )
        for _ in range(n)
    )


def give(
    world,
    rep,
    n,
    *,
    currency="USD",
    face="5",
    status=Issuance.Status.ISSUED,
    customers=None,
    channels=("email",),
    offer=None,
    codes=None,
    at=None,
):
    """`n` issuances by `rep`, spread over the customers and channels; created now unless `at` says."""
    customers = customers or world["customers"]
    rows = Issuance.objects.bulk_create(
        Issuance(
            csr=rep,
            customer=customers[i % len(customers)],
            offer=offer or world["offer"],
            reason_code=world["reason"],
            channel=channels[i % len(channels)],
            status=status,
            currency=currency,
            face_value_amount=Decimal(face),
            cost_amount=Decimal(face) / 2,
            code=codes[i] if codes else None,
        )
        for i in range(n)
    )
    if at is not None:  # created_at is auto_now_add: move it afterwards
        Issuance.objects.filter(pk__in=[row.pk for row in rows]).update(created_at=at)
    return rows


def make_reps(world, counts, *, cases=20, team=None):
    """One rep per count, each with `cases` handled cases and `count` issuances."""
    reps = []
    for count in counts:
        rep = staff_user(team=team)
        handled(rep, cases, at=world["now"] - timedelta(days=1))
        give(world, rep, count)
        reps.append(rep)
    return reps


def flags_of(flags, kind, subject_id=None):
    return [f for f in flags if f.kind == kind and (subject_id is None or f.subject_id == subject_id)]


@pytest.fixture
def run(report):
    """The anomalies of the world's period (and `data`'s filters), from the rollups or the live rows."""

    class Run:
        def filters(self, world, data=None):
            period = {
                "date_from": timezone.localtime(world["since"]).date().isoformat(),
                "date_to": timezone.localtime(world["until"]).date().isoformat(),
            }
            return report({**period, **(data or {})})

        def __call__(self, world, data=None, **kwargs):
            return anomalies(self.filters(world, data), **kwargs)

    return Run()


# --- Issuances per handled case ----------------------------------------------------------


def test_a_rep_giving_five_times_the_peers_rate_is_flagged_and_a_normal_rep_is_not(world, run):
    # given: six reps at 0.40–0.60 issuances per case, one at 2.50, all with 20 cases
    *normal, outlier = make_reps(world, [*NORMAL_COUNTS, 50])

    # when
    flags = run(world)

    # then
    [flag] = flags_of(flags, "rep_rate")
    assert (flag.subject, flag.subject_id) == (outlier.username, outlier.pk)
    assert flag.value == pytest.approx(2.5)
    assert flag.baseline == pytest.approx(0.5)
    assert flag.score == pytest.approx(0.6745 * 2.0 / 0.05)
    assert flag.evidence.startswith("2.50 issuances per handled case (50 over 20 cases) against a peer median of 0.50")
    assert "6 peers with 20 cases" in flag.evidence
    assert flag.filters == {
        "rep": outlier.pk,
        "date_from": timezone.localtime(world["since"]).date().isoformat(),
        "date_to": timezone.localtime(world["until"]).date().isoformat(),
    }
    assert not flags_of(flags, "rep_rate", normal[-1].pk)  # 0.60: robust z 1.3


def test_too_few_peers_gives_no_verdict(world, run):
    # given: only four other reps
    *_normal, outlier = make_reps(world, [8, 10, 10, 12, 50])

    # then: no verdict at the default of five peers, one at four
    assert not flags_of(run(world), "rep_rate")
    assert [f.subject_id for f in flags_of(run(world, min_peers=4), "rep_rate")] == [outlier.pk]


def test_peers_are_reps_within_a_factor_of_two_of_the_cases(world, run):
    # given: nine ordinary reps, but three of them handled 100 cases (more than twice 20)
    # and three only 5 (less than half of 20)
    make_reps(world, [9, 10, 11], cases=20)
    make_reps(world, [45, 50, 55], cases=100)
    make_reps(world, [2, 2, 3], cases=5)
    outlier = make_reps(world, [50], cases=20)[0]

    # then: three peers in [10, 40] cases are too few; enough when three suffice
    assert not flags_of(run(world), "rep_rate")
    assert [f.subject_id for f in flags_of(run(world, min_peers=3), "rep_rate")] == [outlier.pk]


def test_a_rep_with_no_handled_case_is_not_rated(world, run):
    # given: a rep who gave 50 appeasements with no case in the period (20 just before it)
    make_reps(world, NORMAL_COUNTS)
    caseless = staff_user()
    handled(caseless, 20, at=world["since"] - timedelta(days=1))
    give(world, caseless, 50)

    # when
    flags = run(world)

    # then: no rate, no value, and the ordinary reps are not compared with them
    assert not flags_of(flags, "rep_rate")
    assert not flags_of(flags, "rep_value")


def test_when_most_peers_are_equal_the_mean_absolute_deviation_is_the_scale(world, run):
    # given: five peers at 0.50, one at 0.60, one rep at 0.80 (MAD 0, mean AD not)
    *_others, at_080 = make_reps(world, [10, 10, 10, 10, 10, 12, 16])

    # when
    [flag] = flags_of(run(world), "rep_rate")

    # then: z = 0.30 / (1.2533 × 0.1/6); the rep at 0.60 (z 1.6 against a spread of 0.05) is not flagged
    assert flag.subject_id == at_080.pk
    assert flag.score == pytest.approx(0.3 / (1.2533 * 0.1 / 6))
    assert "mean absolute deviation" in flag.evidence


@pytest.mark.parametrize(("count", "flagged"), [(31, True), (29, False)])
def test_when_all_peers_are_equal_a_rep_is_flagged_above_three_times_them(world, count, flagged, run):
    # given: six peers at exactly 0.50 issuances per case; one rep at 1.55 or 1.45
    *_same, rep = make_reps(world, [10] * 6 + [count])

    # when
    flags = flags_of(run(world), "rep_rate")

    # then
    assert [(f.subject_id, f.score, f.baseline) for f in flags] == ([(rep.pk, None, 0.5)] if flagged else [])


def test_flags_are_ordered_by_kind_then_most_extreme_first(world, run):
    # given: two outliers, 2.50 and 1.50 per case, and a customer served by every rep
    *_normal, far, near = make_reps(world, [*NORMAL_COUNTS, 50, 30])

    # when
    flags = run(world)

    # then
    kinds = [f.kind for f in flags]
    assert kinds == sorted(kinds, key=KINDS.index)
    assert {"rep_rate", "rep_value", "rep_repeat_customer"} <= set(kinds)
    assert [f.subject_id for f in flags_of(flags, "rep_rate")] == [far.pk, near.pk]
    repeats = [f.value for f in flags_of(flags, "rep_repeat_customer")]
    assert repeats == sorted(repeats, reverse=True)


# --- Face value per handled case, per currency ------------------------------------------


def test_value_per_case_is_compared_per_currency(world, run):
    # given: seven reps, 20 cases each, ten USD issuances of ordinary size; the outlier
    # gives two EUR issuances of 100 where the others give two of 4–7; a JPY rep gives
    # 3,000 yen ten times, with no JPY peer
    reps = make_reps(world, [0] * 7)
    for rep, usd, eur in zip(
        reps, ["4", "4.5", "5", "5", "5.5", "6", "5"], ["4", "5", "5", "5", "6", "7", "100"], strict=True
    ):
        give(world, rep, 10, currency="USD", face=usd)
        give(world, rep, 2, currency="EUR", face=eur)
    outlier = reps[-1]
    yen_rep = make_reps(world, [0])[0]
    give(world, yen_rep, 10, currency="JPY", face="3000")

    # when
    flags = flags_of(run(world), "rep_value")

    # then: one flag, in EUR, with EUR numbers only (never USD + EUR, never yen against dollars)
    [flag] = flags
    assert flag.subject_id == outlier.pk
    assert flag.value == pytest.approx(200 / 20)
    assert flag.baseline == pytest.approx(0.5)
    assert flag.evidence.startswith("10.00 EUR face value per handled case (200.00 EUR over 20 cases)")
    assert "peer median of 0.50 EUR" in flag.evidence
    assert "USD" not in flag.evidence


# --- Customers -------------------------------------------------------------------------


@pytest.mark.parametrize(("count", "flagged"), [(3, True), (2, False)])
def test_a_rep_giving_one_customer_three_times_is_flagged(world, count, flagged, run):
    # given
    rep, customer = staff_user(), world["customers"][0]
    give(world, rep, count, customers=[customer])

    # when
    flags = flags_of(run(world), "rep_repeat_customer")

    # then
    if flagged:
        [flag] = flags
        assert (flag.subject, flag.subject_id, flag.value, flag.baseline) == (rep.username, rep.pk, 3.0, 3.0)
        assert customer.name in flag.evidence
        assert flag.filters["rep"] == rep.pk
        assert flag.filters["customer"] == customer.pk
    else:
        assert flags == []


def test_a_customer_served_by_three_reps_or_three_channels_is_flagged(world, run):
    # given: one customer served by three reps, one by two, one by one rep on three
    # channels, among thirty customers appeased once each (the average is near one, so
    # three appeasements are well over three times it)
    three, two, channels = world["customers"][:3]
    reps = [staff_user() for _ in range(3)]
    for _ in range(30):
        give(world, reps[0], 1, customers=[customer_create()])
    for rep in reps:
        give(world, rep, 1, customers=[three])
    for rep in reps[:2]:
        give(world, rep, 1, customers=[two])
    give(world, reps[0], 3, customers=[channels], channels=["email", "sms", "chat"])

    # when
    flags = flags_of(run(world), "customer_many_reps")

    # then
    assert sorted((f.subject_id, f.value) for f in flags) == sorted([(three.pk, 3.0), (channels.pk, 1.0)])
    by_customer = {flag.subject_id: flag for flag in flags}
    assert by_customer[three.pk].subject == three.name
    assert by_customer[three.pk].filters["customer"] == three.pk
    assert "3 different reps through 1 channels" in by_customer[three.pk].evidence
    assert "through 3 channels" in by_customer[channels.pk].evidence


def test_a_customer_served_by_several_reps_like_everyone_else_is_not_flagged(world, run):
    """In a big centre every returning customer meets several reps: only a customer who
    also collects far more than the average customer is flagged."""
    reps = [staff_user() for _ in range(3)]
    for customer in world["customers"][:5]:
        for rep in reps:
            give(world, rep, 1, customers=[customer])

    assert flags_of(run(world), "customer_many_reps") == []


# --- Offers ----------------------------------------------------------------------------


def offer_with_codes(world, *, used, issued=30, days_ago=20, gift_card=False):
    """An offer with `issued` issued codes, `used` of them used, issued `days_ago` days
    before the end of the period. Gift cards are used by spending part of the balance."""
    offer = gift_card_offer_create() if gift_card else offer_create()
    codes = [issued_code(offer=offer).code for _ in range(issued)]
    spent = Code.objects.filter(pk__in=[code.pk for code in codes[:used]])
    if gift_card:
        spent.update(balance_amount=Decimal("10"))
    else:
        spent.update(status=Code.Status.REDEEMED)
    give(world, staff_user(), issued, offer=offer, codes=codes, at=world["until"] - timedelta(days=days_ago))
    return offer


def test_an_offer_whose_codes_go_unused_is_flagged_but_not_a_normal_or_young_one(world, run):
    # given: six offers with 40–60 % used (one a gift card, used by its balance), one
    # with 1 of 30 used, and one issued five days ago with none used yet
    normal = [offer_with_codes(world, used=used) for used in (12, 14, 15, 16, 18)]
    normal.append(offer_with_codes(world, used=15, gift_card=True))
    unused = offer_with_codes(world, used=1)
    young = offer_with_codes(world, used=0, days_ago=5)

    # when
    flags = flags_of(run(world), "offer_low_redemption")

    # then
    [flag] = flags
    assert (flag.subject, flag.subject_id) == (unused.name, unused.pk)
    assert flag.value == pytest.approx(1 / 30)
    assert flag.baseline == pytest.approx(0.5)
    assert flag.score < -3.5
    assert "Only 1 of 30 codes" in flag.evidence
    assert "delivery" in flag.evidence
    assert flag.filters["offer"] == unused.pk
    assert young.pk != flag.subject_id and all(offer.pk != flag.subject_id for offer in normal)


def test_an_offer_needs_thirty_mature_codes_and_enough_other_offers(world, run):
    # given: four normal offers and an unused one, plus one with only 29 codes
    for used in (12, 14, 16, 18):
        offer_with_codes(world, used=used)
    unused = offer_with_codes(world, used=0)
    offer_with_codes(world, used=15, issued=29)  # too few codes to be compared

    # then: four other offers are one short of five; enough when four suffice
    assert not flags_of(run(world), "offer_low_redemption")
    assert [f.subject_id for f in flags_of(run(world, min_peers=4), "offer_low_redemption")] == [unused.pk]


def test_an_offer_below_a_quarter_of_the_median_is_flagged_even_among_scattered_offers(world, run):
    # given: offers used 20–90 %, too scattered for a robust z below -3.5, and one at 10 %
    scattered = [offer_with_codes(world, used=used) for used in (6, 12, 15, 18, 24, 27)]
    rare = offer_with_codes(world, used=3)

    # when
    [flag] = flags_of(run(world), "offer_low_redemption")

    # then: 10 % is below a quarter of the median 55 %; 20 % is not
    assert flag.subject_id == rare.pk
    assert flag.baseline == pytest.approx(0.55)
    assert -3.5 < flag.score < 0
    assert scattered[0].pk != flag.subject_id


# --- What counts ---------------------------------------------------------------------


def test_issuances_outside_the_period_or_not_given_are_ignored(world, run):
    # given: a rep with an ordinary ten issuances in the period, and many more that do not count
    make_reps(world, NORMAL_COUNTS)
    loud = make_reps(world, [50])[0]
    quiet = staff_user()
    handled(quiet, 20, at=world["now"] - timedelta(days=1))
    give(world, quiet, 10, customers=[customer_create() for _ in range(5)])  # two each
    give(world, quiet, 40, at=world["since"] - timedelta(days=1))  # periods are whole days
    give(world, quiet, 40, at=world["until"] + timedelta(days=1))
    for status in (Issuance.Status.PENDING_APPROVAL, Issuance.Status.REJECTED, Issuance.Status.VOIDED):
        give(world, quiet, 20, status=status, customers=[world["customers"][0]])

    # when
    flags = run(world)

    # then: the rep who really gave 50 is flagged, the quiet one is not flagged for anything
    assert [f.subject_id for f in flags_of(flags, "rep_rate")] == [loud.pk]
    assert not [f for f in flags if f.kind.startswith("rep_") and f.subject_id == quiet.pk]


def test_a_team_filter_narrows_what_is_looked_at_and_who_is_compared(world, run):
    # given: a team of ordinary reps and an outlier; another team of ten reps who handled
    # as many cases but gave nothing
    north, south = Team.objects.create(name="North"), Team.objects.create(name="South")
    *_normal, outlier = make_reps(world, [*NORMAL_COUNTS, 50], team=north)
    make_reps(world, [0] * 10, team=south)

    # when: the report of the north team, and of the south team
    north_only = run(world, {"team": north.pk})
    south_only = run(world, {"team": south.pk})

    # then: the north reps are compared among themselves, not with the south's zeros
    [flag] = flags_of(north_only, "rep_rate")
    assert flag.subject_id == outlier.pk
    assert flag.baseline == pytest.approx(0.5)
    assert "6 peers" in flag.evidence
    assert not flags_of(south_only, "rep_rate")


QUERY_LIMIT = 8


@pytest.mark.parametrize("issuances", [10, 100])
def test_the_query_count_does_not_grow_with_the_issuances(world, django_assert_max_num_queries, issuances, run):
    # given: seven reps sharing the issuances in two currencies, four customers
    reps = make_reps(world, [0] * 7)
    for i in range(issuances):
        give(
            world,
            reps[i % 7],
            1,
            currency=("USD", "EUR")[i % 2],
            face=str(5 + i % 3),
            customers=[world["customers"][i % 4]],
        )
    give(world, reps[0], 3, customers=[world["customers"][0]])  # one flag that must show
    assert Issuance.objects.count() == issuances + 3

    filters = run.filters(world)

    # when
    with django_assert_max_num_queries(QUERY_LIMIT):
        flags = anomalies(filters)

    # then
    assert flags_of(flags, "rep_repeat_customer")  # the counts were made, not skipped
