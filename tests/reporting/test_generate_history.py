"""`manage.py generate_history` (appease/demo/management/commands/generate_history.py) with
tiny numbers: the counts, the invariants, the planted anomalies, every report page on it."""

from __future__ import annotations

import io
import math
import re
from collections import Counter, defaultdict
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Count, F, Q
from django.utils import timezone

from appease.delivery.models import Delivery
from appease.issuance.models import Customer, Issuance, StaffProfile
from coupons.models import Code, Redemption
from feedback.models import Case, Feedback, FollowUp
from tests.factories import staff_user

pytestmark = pytest.mark.django_db

# 250 customers: the average customer has 2 appeasements, so the planted one (12, from the
# 10 reps in turn) clears the farming bar (2.5 × the average) by the plant alone. With 50
# (an average of 10) it cleared it only with enough of its own natural share, which the
# run's clock decides (the generator's day and week shapes start from now).
ISSUANCES, REPS, CUSTOMERS, DAYS = 500, 10, 250, 90
PAGES = [
    "/admin/reports/",
    "/admin/reports/redemption/",
    "/admin/reports/speed/",
    "/admin/reports/return/",
    "/admin/reports/reps/",
    "/admin/reports/anomalies/",
    "/admin/reports/issuances/",
    "/admin/reports/issuances/?page=2",
]


@pytest.fixture
def history(db):
    out = io.StringIO()
    call_command(
        "generate_history",
        issuances=ISSUANCES,
        reps=REPS,
        customers=CUSTOMERS,
        days=DAYS,
        seed=7,
        stdout=out,
    )
    text = out.getvalue()
    planted = re.search(r"planted anomalies: rep_rate: (?P<reps>[^;]*); customer_many_reps: (?P<customer>[^;]*);", text)
    assert planted, text
    return {"output": text, "planted_reps": planted["reps"].split(", "), "planted_customer": planted["customer"]}


def test_it_makes_the_numbers_asked_for_and_the_tables_around_them(history):
    # given the history of the fixture
    # then
    assert Issuance.objects.count() == ISSUANCES
    assert Customer.objects.count() == CUSTOMERS
    reps = StaffProfile.objects.filter(user__groups__name="CSR")
    assert reps.count() == REPS
    assert reps.filter(team__isnull=False).count() == REPS
    from_case = Issuance.objects.filter(case__isnull=False).count()
    assert 0.2 * ISSUANCES < from_case < 0.4 * ISSUANCES
    assert Case.objects.count() >= from_case
    assert Feedback.objects.filter(case__isnull=False).count() == Case.objects.count()
    assert FollowUp.objects.filter(status=FollowUp.Status.ANSWERED, csat__isnull=False, solved__isnull=False).exists()
    assert (
        Delivery.objects.filter(kind=Delivery.Kind.APPEASEMENT).count()
        == Issuance.objects.exclude(status__in=[Issuance.Status.PENDING_APPROVAL, Issuance.Status.REJECTED]).count()
    )
    assert Code.objects.count() == Issuance.objects.filter(code__isnull=False).count() > 0
    assert Redemption.objects.exists()
    assert set(Customer.objects.values_list("language", flat=True)) <= {"en", "es", "pt-br"}
    oldest = Issuance.objects.order_by("created_at").first().created_at
    assert oldest >= timezone.now() - timedelta(days=DAYS + 1)
    assert "History generated" in history["output"]


def test_the_invariants_hold(history):
    # given the history of the fixture (the database refused any row breaking a CHECK)
    # then the foreign keys hold too (SQLite checks them only when asked)
    connection.check_constraints()
    assert not Issuance.objects.filter(status=Issuance.Status.PENDING_APPROVAL, code__isnull=False).exists()
    assert not Issuance.objects.filter(csr__isnull=True, auto_rule__isnull=True).exists()  # a rep or a rule
    assert not Case.objects.filter(status=Case.Status.CLAIMED, assigned_to__isnull=True).exists()
    assert not Code.objects.filter(balance_amount__gt=F("initial_balance_amount")).exists()
    redeemed = Code.objects.filter(status=Code.Status.REDEEMED)
    assert not redeemed.filter(redeemed_at__isnull=True).exists()
    # every coupon redeemed has its one active redemption; no coupon has two
    active = Redemption.objects.filter(status=Redemption.Status.ACTIVE, single_use=True)
    assert not active.values("code").annotate(n=Count("pk")).filter(n__gt=1).exists()
    assert redeemed.filter(initial_balance_amount__isnull=True).count() == active.count()
    # deliveries a few seconds after the issuance; nothing in the future
    now = timezone.now()
    assert not Delivery.objects.filter(sent_at__lt=F("created_at")).exists()
    assert not Issuance.objects.filter(Q(created_at__gt=now) | Q(delivered_at__gt=now)).exists()
    # the complaint 10–300 seconds before (cases queued for hours aside)
    timed = Issuance.objects.filter(
        case__isnull=True, complaint_started_at__isnull=False, issued_at=F("created_at"), auto_rule__isnull=True
    )
    assert not timed.filter(complaint_started_at__gt=F("issued_at") - timedelta(seconds=10)).exists()
    assert not timed.filter(complaint_started_at__lt=F("issued_at") - timedelta(seconds=300)).exists()
    # an automatic rule's within seconds of the merchant's event
    by_rule = Issuance.objects.filter(auto_rule__isnull=False)
    assert by_rule.exists() and not by_rule.exclude(complaint_start_source="event").exists()
    assert not by_rule.filter(complaint_started_at__lt=F("issued_at") - timedelta(seconds=30)).exists()


def test_the_same_seed_gives_the_same_history_and_a_second_run_needs_yes(history):
    # given a database with history
    # when it runs again without --yes
    # then it refuses
    with pytest.raises(CommandError, match="--yes"):
        call_command("generate_history", issuances=10, reps=2, customers=5, stdout=io.StringIO())
    # when it runs again with --yes: new rows, no clash with the old ones' unique values
    call_command("generate_history", issuances=20, reps=2, customers=5, yes=True, stdout=io.StringIO())
    assert Issuance.objects.count() == ISSUANCES + 20
    assert Code.objects.values("lookup_hash").distinct().count() == Code.objects.count()


def test_the_planted_reps_are_flagged(history):
    from reporting.anomalies import anomalies
    from reporting.filters import ReportFilter

    # given the history of the fixture (its rollups written by the command)
    today = timezone.localdate()
    # when
    flags = anomalies(ReportFilter({"date_from": (today - timedelta(days=DAYS + 1)).isoformat()}))
    # then
    flagged = {flag.subject for flag in flags if flag.kind == "rep_rate"}
    assert set(history["planted_reps"]) <= flagged
    many = {str(flag.subject_id) for flag in flags if flag.kind == "customer_many_reps"}
    assert history["planted_customer"] in many


def test_every_report_page_renders_on_it(client, history):
    # given a supervisor
    client.force_login(staff_user("Supervisor"))
    rep = Issuance.objects.values("csr").annotate(n=Count("pk")).order_by("-n").first()["csr"]
    year = f"date_from={(timezone.localdate() - timedelta(days=365)).isoformat()}"
    # when / then
    for path in [
        *PAGES,
        f"/admin/reports/reps/{rep}/",
        f"/admin/reports/?{year}",
        "/admin/reports/cases/?export=cases",
    ]:
        response = client.get(path)
        assert response.status_code == 200, path
    export = client.get(f"/admin/reports/issuances/?export=issuances&{year}")
    assert export.status_code == 200
    lines = b"".join(export.streaming_content).decode().splitlines()
    given = Issuance.objects.filter(status__in=["issued", "delivered", "failed"], currency="USD").count()  # the page's
    assert len(lines) == given + 1
    table = client.get("/admin/reports/?export=issuances-by-reason")
    assert table.status_code == 200
    assert b"".join(table.streaming_content)


def test_the_cases_page_renders_on_it(client, history):
    # given a supervisor, and answered follow-ups whose cases had an intervention
    client.force_login(staff_user("Supervisor"))
    assert FollowUp.objects.filter(status=FollowUp.Status.ANSWERED).exclude(case__intervention="").exists()
    # when
    response = client.get("/admin/reports/cases/")
    # then
    assert response.status_code == 200


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_worker_processes_make_the_rows_and_copy_writes_them(monkeypatch):
    from appease.demo.management.commands import generate_history

    # given: the parallel path from 100 issuances on, in chunks that do not divide evenly
    monkeypatch.setattr(generate_history, "PARALLEL_MIN_ISSUANCES", 100)
    monkeypatch.setattr(generate_history, "CHUNK", 150)
    out = io.StringIO()
    # when
    call_command("generate_history", issuances=500, reps=10, customers=50, days=30, processes=2, stdout=out)
    # then
    assert Issuance.objects.count() == 500
    assert Issuance.objects.filter(case__isnull=False).count() == Case.objects.filter(issuances__isnull=False).count()
    assert Code.objects.values("lookup_hash").distinct().count() == Code.objects.count() > 0
    # the sequences were moved past the ids made by the command
    customer = Customer.objects.create(name="After", email="after@example.com")
    assert customer.pk > Customer.objects.exclude(pk=customer.pk).order_by("-pk").first().pk
    assert "issuances: 500 of 500" in out.getvalue()


# --- Every appeasement as an intervention with an outcome (issue 18) --------------------


def test_every_issuance_has_one_outcome_that_matches_it(history):
    from feedback.models import AppeasementOutcome, arm_key
    from feedback.services.outcomes import intervention_of

    # given the history of the fixture
    outcomes = {o.issuance_id: o for o in AppeasementOutcome.objects.select_related("offer")}
    # then one outcome row per issuance, none without one
    assert len(outcomes) == AppeasementOutcome.objects.count() == Issuance.objects.count()
    paths = Counter()
    for issuance in Issuance.objects.select_related("offer", "case", "reason_code"):
        outcome = outcomes[issuance.pk]
        paths[outcome.path] += 1
        assert (outcome.offer_id, outcome.currency, outcome.cost_amount, outcome.customer_id, outcome.case_id) == (
            issuance.offer_id,
            issuance.currency,
            issuance.cost_amount,
            issuance.customer_id,
            issuance.case_id,
        )
        assert outcome.arm == arm_key(issuance.offer)
        assert outcome.intervention == intervention_of(issuance.offer)
        assert outcome.given_at == (issuance.issued_at or issuance.created_at)
        incident = issuance.case.incident_type if issuance.case else issuance.reason_code.incident_type
        assert outcome.incident_type == incident
        expected_path = "rule" if issuance.auto_rule_id else "case" if issuance.case_id else outcome.path
        assert outcome.path == expected_path
        assert outcome.path in {"panel", "api", "sidebar", "rule", "case"}
        assert outcome.tier == issuance.customer.tier
    # most from the panel, some from cases and rules
    assert paths["panel"] > paths["case"] > paths["rule"] > 0, paths
    assert paths["panel"] + paths["api"] + paths["sidebar"] > ISSUANCES / 2


def test_the_segments_are_the_products_as_of_each_appeasement(history, settings):
    from appease.issuance.models import CustomerOrder
    from feedback.models import AppeasementOutcome
    from feedback.services.outcomes import value_band
    from feedback.services.scoring import REPEAT_WINDOW

    # given the history of the fixture
    outcomes = list(AppeasementOutcome.objects.order_by("given_at"))
    orders = defaultdict(list)
    for customer_id, placed_at, total in CustomerOrder.objects.values_list("customer_id", "placed_at", "total_amount"):
        orders[customer_id].append((placed_at, total))
    cases = defaultdict(list)
    for pk, customer_id, created_at in Case.objects.values_list("pk", "customer_id", "created_at"):
        cases[customer_id].append((pk, created_at))
    earlier = defaultdict(list)
    bands = Counter()
    for outcome in outcomes:
        # then each is what customer_segment() would have said when it was given:
        given = outcome.given_at
        spent = sum((total for at, total in orders[outcome.customer_id] if at < given), Decimal("0"))
        assert outcome.value_band == value_band(Customer(lifetime_value_amount=spent)), outcome.pk
        incidents = 1 + sum(
            1 for pk, at in cases[outcome.customer_id] if given - REPEAT_WINDOW <= at <= given and pk != outcome.case_id
        )
        assert outcome.repeat_band == ("first" if incidents == 1 else "second" if incidents == 2 else "many")
        since = given - timedelta(days=settings.RECOVERY_HISTORY_DAYS)
        last = [o for o in earlier[outcome.customer_id] if since <= o.given_at < given]
        if not last:
            prior = "none"
        elif last[-1].answered_at is None or last[-1].answered_at > given:
            prior = "unknown"  # not answered yet when this one was given
        else:
            prior = "solved" if last[-1].solved else "not_solved"
        assert outcome.prior == prior, outcome.pk
        earlier[outcome.customer_id].append(outcome)
        bands[outcome.value_band, outcome.repeat_band, outcome.prior] += 1
    # and the bands are all used
    assert {band for band, _r, _p in bands} == {"low", "mid", "high"}
    assert {repeat for _b, repeat, _p in bands} == {"first", "second", "many"}
    assert {prior for _b, _r, prior in bands} == {"none", "unknown", "solved", "not_solved"}


def test_follow_ups_ask_about_every_appeasement_and_their_answers_are_its_outcome(history):
    from feedback.models import AppeasementOutcome

    # given the history of the fixture
    # then every follow-up names a case or an appeasement
    assert not FollowUp.objects.filter(case__isnull=True, issuance__isnull=True).exists()
    assert not FollowUp.objects.filter(case__isnull=False, issuance__isnull=False).exists()
    given = AppeasementOutcome.objects.filter(
        case__isnull=True, issuance__status__in=[Issuance.Status.ISSUED, Issuance.Status.DELIVERED]
    )
    # an appeasement delivered outside a case has one follow-up of its own, and it is its outcome's
    assert given.count() == FollowUp.objects.filter(issuance__isnull=False).count() > 0
    for outcome in given.select_related("follow_up"):
        assert outcome.follow_up is not None and outcome.follow_up.issuance_id == outcome.issuance_id
    # one from a case is asked about by its case's follow-up
    from_cases = AppeasementOutcome.objects.filter(case__isnull=False, follow_up__isnull=False)
    assert from_cases.exists()
    assert not from_cases.exclude(follow_up__case=F("case")).exists()
    # the outcome's answer is its follow-up's, and only an answered one has one
    answered = AppeasementOutcome.objects.filter(follow_up__status=FollowUp.Status.ANSWERED)
    assert answered.count() == AppeasementOutcome.objects.filter(answered_at__isnull=False).count() > 0
    assert not answered.exclude(
        solved=F("follow_up__solved"), csat=F("follow_up__csat"), answered_at=F("follow_up__answered_at")
    ).exists()
    assert FollowUp.objects.filter(issuance__isnull=False, status=FollowUp.Status.SKIPPED).exists()
    # no answer before the appeasement; the redemption is the code's first that stood
    assert not AppeasementOutcome.objects.filter(answered_at__lt=F("given_at")).exists()
    for outcome in AppeasementOutcome.objects.filter(issuance__code__isnull=False).select_related("issuance"):
        first = (
            Redemption.objects.filter(code_id=outcome.issuance.code_id, status=Redemption.Status.ACTIVE)
            .order_by("redeemed_at")
            .values_list("redeemed_at", flat=True)
            .first()
        )
        assert outcome.redeemed_at == first


def test_customers_figures_are_their_orders_and_repurchase_is_the_first_order_after(history, settings):
    from django.db.models import Max, Min, Sum

    from appease.issuance.models import CustomerOrder
    from feedback.models import AppeasementOutcome

    # given the history of the fixture
    # then each customer's history is their orders'
    figures = {
        row["customer"]: row
        for row in CustomerOrder.objects.values("customer").annotate(
            n=Count("pk"), spent=Sum("total_amount"), last=Max("placed_at")
        )
    }
    for customer in Customer.objects.all():
        row = figures.get(customer.pk, {"n": 0, "spent": Decimal("0"), "last": None})
        assert customer.orders_count == row["n"] > 0
        assert customer.total_spend_amount == customer.lifetime_value_amount == row["spent"]
        assert customer.last_order_at == row["last"]
        assert not CustomerOrder.objects.filter(customer=customer).exclude(currency=customer.currency).exists()
    # each code used was an order of the customer's
    used = Redemption.objects.filter(status=Redemption.Status.ACTIVE).values_list("order_id", flat=True)
    assert CustomerOrder.objects.filter(reference__in=used).count() == used.count()
    # ordered again: the customer's first order within the window
    window = settings.REPURCHASE_WINDOW
    for outcome in AppeasementOutcome.objects.all():
        first = CustomerOrder.objects.filter(
            customer_id=outcome.customer_id, placed_at__gt=outcome.given_at, placed_at__lte=outcome.given_at + window
        ).aggregate(first=Min("placed_at"))["first"]
        assert outcome.repurchased_at == first


def test_the_experiment_runs_with_assignments_and_a_few_overrides(history):
    from feedback.models import AppeasementOutcome, Experiment

    # given the history of the fixture
    experiment = Experiment.objects.get(is_active=True, incident_type="late_delivery")
    arms = {f"offer:{pk}" for pk in experiment.offers.values_list("pk", flat=True)} | {"apology"}
    assert experiment.share_percent == 10 and experiment.apology_arm
    # then some appeasements were assigned an arm, after it started, for late deliveries
    assigned = AppeasementOutcome.objects.filter(experiment=experiment)
    assert assigned.exists()
    assert not assigned.exclude(incident_type="late_delivery").exists()
    assert not assigned.filter(given_at__lt=experiment.started_at).exists()
    assert set(assigned.values_list("assigned_arm", flat=True)) <= arms
    # followed, or overridden with a reason
    assert not assigned.exclude(arm=F("assigned_arm")).filter(override_reason="").exists()
    assert not assigned.filter(arm=F("assigned_arm")).exclude(override_reason="").exists()
    assert not AppeasementOutcome.objects.filter(experiment__isnull=True).exclude(assigned_arm="").exists()


@pytest.mark.django_db
def test_the_solved_shares_are_the_truth_table_within_sampling_error():
    from appease.demo.management.commands.generate_history import OFFERS, true_solve
    from feedback.models import AppeasementOutcome

    # given a seeded history of moderate size
    call_command("generate_history", issuances=3000, reps=10, customers=1000, days=120, seed=11, stdout=io.StringIO())
    arm_class = {spec[0]: spec[-1] for specs in OFFERS.values() for spec in specs}
    # when the answered outcomes are counted per incident type × arm class
    cells = defaultdict(lambda: [0, 0, 0.0, 0.0])  # n, solved, expected solved, variance
    for incident, offer, tier, solved in AppeasementOutcome.objects.filter(solved__isnull=False).values_list(
        "incident_type", "offer__name", "tier", "solved"
    ):
        p = true_solve(incident, arm_class[offer], tier)
        cell = cells[incident, arm_class[offer]]
        cell[0] += 1
        cell[1] += solved
        cell[2] += p
        cell[3] += p * (1 - p)
    # then every cell with enough answers is within four standard errors of the truth
    checked = 0
    for key, (n, solved, expected, variance) in cells.items():
        if n >= 20:
            checked += 1
            assert abs(solved - expected) <= 4 * math.sqrt(variance), (key, n, solved, expected)
    assert checked >= 15
    # and the contrasts the recommendation should find are plain in the data
    share = {key: solved / n for key, (n, solved, _e, _v) in cells.items() if n}
    assert share["staff_attitude", "apology"] > 0.65 and share["overcharge", "apology"] < 0.5
    assert share["overcharge", "credit_small"] - share["overcharge", "apology"] > 0.3
    # ordering again is likelier after an appeasement that solved it
    repurchase = {
        solved: AppeasementOutcome.objects.filter(solved=solved, repurchased_at__isnull=False).count()
        / AppeasementOutcome.objects.filter(solved=solved).count()
        for solved in (True, False)
    }
    assert repurchase[True] > repurchase[False] + 0.15, repurchase
    # and the experiment has its arms' answers, and a few overrides with their reasons
    assigned = AppeasementOutcome.objects.filter(experiment__isnull=False)
    assert len(set(assigned.values_list("assigned_arm", flat=True))) == 3
    assert 0 < assigned.exclude(override_reason="").count() < assigned.count() / 4
