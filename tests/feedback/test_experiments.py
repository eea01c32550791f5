"""Randomised evidence with guardrails: supervisors' experiments assign an arm to a share
of appeasements, the rep gives it or overrides with a reason, the assignment is signed
from page to give, a clearly worse arm is stopped, and the report compares the arms."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from appease.core.context import Actor
from appease.core.models import AuditEvent
from appease.issuance.models import Issuance
from appease.issuance.services.issuance import issuance_create
from feedback.admin import ExperimentForm
from feedback.models import AppeasementOutcome, Experiment
from feedback.services.experiments import (
    Assignment,
    assignment_token,
    experiment_assign,
    experiment_stop,
    experiments_review,
)
from reporting.experiments import experiment_rows, newcombe
from tests.factories import customer_create, offer_create, policy_create, reason_create, staff_user

pytestmark = pytest.mark.django_db

INCIDENT = "damaged_item"


@pytest.fixture
def rep():
    return staff_user("CSR", policy=policy_create(day_cost_amount=Decimal("1000")))


@pytest.fixture
def arms():
    """Two discounts and the apology offer the holdout arm gives."""
    return (
        offer_create(name="5 off", value_amount=Decimal("5")),
        offer_create(name="10 off", value_amount=Decimal("10"), cost_amount=Decimal("6")),
        offer_create(name="Apology", kind="apology", value_amount=Decimal("0"), cost_amount=Decimal("0")),
    )


def experiment_create(*offers, share=100, method="random", apology=True, **fields) -> Experiment:
    experiment = Experiment.objects.create(
        name=fields.pop("name", "Damaged items"),
        incident_type=INCIDENT,
        share_percent=share,
        method=method,
        apology_arm=apology,
        **fields,
    )
    experiment.offers.set(offers)
    return experiment


def token_for(experiment, customer, offer, arm=None) -> str:
    arm = arm or f"offer:{offer.pk}"
    return assignment_token(
        Assignment(experiment=experiment, arm=arm, offer=offer, customer_id=customer.pk, incident_type=INCIDENT)
    )


# --- Assignment -----------------------------------------------------------------------


def test_the_share_and_the_arms_are_drawn_at_the_experiments_rates(rep, arms):
    # given a 25% experiment with three arms, drawn 1,200 times from a seeded source
    five, ten, _apology = arms
    experiment_create(five, ten, share=25)
    customer = customer_create()
    rng = random.Random(18)

    # when
    drawn = [experiment_assign(customer=customer, incident_type=INCIDENT, user=rep, rng=rng) for _ in range(1200)]

    # then about a quarter is in, within five standard deviations (√(1200·¼·¾) = 15)
    inside = [a for a in drawn if a is not None]
    assert abs(len(inside) - 300) < 5 * 15
    # and the arms share it equally (√(300·⅓·⅔) ≈ 8.2)
    counts = {arm: sum(a.arm == arm for a in inside) for arm in (f"offer:{five.pk}", f"offer:{ten.pk}", "apology")}
    for count in counts.values():
        assert abs(count - len(inside) / 3) < 5 * 8.2, counts


def test_thompson_sampling_favours_the_arm_that_solves_more(rep, arms):
    # given answered outcomes: 5 off solved 45 of 50, 10 off 10 of 50
    five, ten, _apology = arms
    experiment = experiment_create(five, ten, method="thompson", apology=False)
    customer = customer_create()
    outcomes_add(experiment, f"offer:{five.pk}", answered=50, solved=45)
    outcomes_add(experiment, f"offer:{ten.pk}", answered=50, solved=10)

    # when 300 draws
    rng = random.Random(7)
    drawn = [experiment_assign(customer=customer, incident_type=INCIDENT, user=rep, rng=rng).arm for _ in range(300)]

    # then the better arm gets nearly all of them
    assert drawn.count(f"offer:{five.pk}") >= 295


def test_a_stopped_arm_is_never_assigned_and_one_arm_left_is_no_experiment(rep, arms):
    five, ten, _apology = arms
    experiment = experiment_create(five, ten, stopped_arms=[f"offer:{ten.pk}"])
    customer = customer_create()
    rng = random.Random(3)

    drawn = {experiment_assign(customer=customer, incident_type=INCIDENT, user=rep, rng=rng).arm for _ in range(200)}
    assert drawn == {f"offer:{five.pk}", "apology"}

    experiment.stopped_arms = [f"offer:{ten.pk}", "apology"]
    experiment.save()
    assert experiment_assign(customer=customer, incident_type=INCIDENT, user=rep, rng=rng) is None


def test_only_arms_the_rep_may_give_this_customer_are_drawn(arms):
    # given a rep whose cap per appeasement is 7 and an offer in another currency
    five, ten, _apology = arms
    euros = offer_create(name="5 € off", currency="EUR")
    experiment_create(five, ten, euros)
    rep = staff_user(
        "CSR", policy=policy_create(day_cost_amount=Decimal("1000"), max_face_per_issuance_amount=Decimal("7"))
    )
    rng = random.Random(5)

    drawn = {
        experiment_assign(customer=customer_create(), incident_type=INCIDENT, user=rep, rng=rng).arm for _ in range(200)
    }

    assert drawn == {f"offer:{five.pk}", "apology"}


# --- The give -------------------------------------------------------------------------


def test_giving_the_assigned_arm_records_it_in_the_experiment(rep, arms):
    five, ten, _apology = arms
    experiment = experiment_create(five, ten)
    customer = customer_create()

    issuance = issuance_create(
        actor=Actor(user=rep),
        customer=customer,
        offer=five,
        reason_code=reason_create(incident_type=INCIDENT),
        context={"experiment_token": token_for(experiment, customer, five), "override_reason": "ignored"},
    )

    outcome = AppeasementOutcome.objects.get(issuance=issuance)
    assert (outcome.experiment_id, outcome.assigned_arm, outcome.override_reason) == (
        experiment.pk,
        f"offer:{five.pk}",
        "",
    )
    assert not outcome.overridden


def test_an_override_without_a_reason_is_refused_on_the_field_and_nothing_is_given(rep, arms):
    five, ten, _apology = arms
    experiment = experiment_create(five, ten)
    customer = customer_create()

    with pytest.raises(ValidationError) as refused:
        issuance_create(
            actor=Actor(user=rep),
            customer=customer,
            offer=ten,
            reason_code=reason_create(incident_type=INCIDENT),
            context={"experiment_token": token_for(experiment, customer, five), "override_reason": "  "},
        )

    assert "override_reason" in refused.value.message_dict
    assert not Issuance.objects.exists()
    assert not AppeasementOutcome.objects.exists()


def test_an_override_with_a_reason_is_recorded_and_counted(rep, arms):
    five, ten, _apology = arms
    experiment = experiment_create(five, ten)
    customer = customer_create()

    issuance = issuance_create(
        actor=Actor(user=rep),
        customer=customer,
        offer=ten,
        reason_code=reason_create(incident_type=INCIDENT),
        context={"experiment_token": token_for(experiment, customer, five), "override_reason": "Broke twice"},
    )

    outcome = AppeasementOutcome.objects.get(issuance=issuance)
    assert (outcome.assigned_arm, outcome.arm, outcome.override_reason) == (
        f"offer:{five.pk}",
        f"offer:{ten.pk}",
        "Broke twice",
    )
    assert outcome.overridden
    row = next(row for row in experiment_rows(experiment) if row["arm"] == f"offer:{five.pk}")
    assert (row["assigned"], row["as_assigned"], row["overrides"], row["reasons"]) == (1, 0, 1, [("Broke twice", 1)])


@pytest.mark.parametrize("tamper", ["signature", "customer", "incident"])
def test_a_tampered_token_is_refused_and_nothing_is_given(rep, arms, tamper):
    five, ten, _apology = arms
    experiment = experiment_create(five, ten)
    customer = customer_create()
    token = token_for(experiment, customer, five)
    reason = reason_create(incident_type=INCIDENT)
    if tamper == "signature":
        token = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    elif tamper == "customer":
        customer = customer_create()
    else:
        reason = reason_create(incident_type="late_delivery")

    with pytest.raises(ValidationError) as refused:
        issuance_create(
            actor=Actor(user=rep),
            customer=customer,
            offer=five,
            reason_code=reason,
            context={"experiment_token": token, "override_reason": ""},
        )

    assert "experiment_token" in refused.value.message_dict
    assert not Issuance.objects.exists()


def test_the_panel_shows_the_assignment_and_refuses_an_override_without_reason_beside_the_field(rep, arms):
    five, ten, _apology = arms
    experiment = experiment_create(five, ten)
    customer = customer_create()
    reason = reason_create(incident_type=INCIDENT)
    client = Client()
    client.force_login(rep)

    # the fragment the panel loads when the rep chooses the reason
    fragment = client.get(
        reverse("cases:experiment-assignment", args=[customer.pk]), {"reason_code": reason.pk}, HTTP_HX_REQUEST="true"
    )
    assert fragment.status_code == 200
    assert "randomised to learn what works" in fragment.content.decode()
    token = fragment.context["experiment"]["token"]
    assigned = fragment.context["experiment"]["offer"]
    other = ten if assigned != ten else five

    refused = client.post(
        reverse("csr:issue", args=[customer.pk]),
        {"offer": other.pk, "reason_code": reason.pk, "channel": "email", "experiment_token": token},
        HTTP_HX_REQUEST="true",
    )
    assert refused.status_code == 400
    assert 'id="override-errors"' in refused.content.decode()
    assert "say why you give something else" in refused.content.decode()
    assert not Issuance.objects.exists()

    given = client.post(
        reverse("csr:issue", args=[customer.pk]),
        {
            "offer": other.pk,
            "reason_code": reason.pk,
            "channel": "email",
            "experiment_token": token,
            "override_reason": "Customer asked",
        },
        HTTP_HX_REQUEST="true",
    )
    assert given.status_code == 200
    outcome = AppeasementOutcome.objects.get()
    assert (outcome.experiment_id, outcome.override_reason) == (experiment.pk, "Customer asked")


def test_the_case_page_shows_the_assignment_and_its_give_carries_it(rep, arms):
    from tests.feedback.conftest import open_case

    five, ten, _apology = arms
    experiment = experiment_create(five, ten, apology=False)
    customer = customer_create()
    case = open_case(customer=customer, incident_type=INCIDENT)
    reason = reason_create(incident_type=INCIDENT)
    supervisor = staff_user("Supervisor", policy=policy_create(day_cost_amount=Decimal("1000")))
    client = Client()
    client.force_login(supervisor)

    page = client.get(reverse("cases:detail", args=[case.pk]))
    shown = page.context["experiment"]
    assert shown is not None and "randomised to learn what works" in page.content.decode()

    client.post(
        reverse("cases:issue", args=[case.pk]),
        {"offer": shown["offer"].pk, "reason_code": reason.pk, "channel": "email", "experiment_token": shown["token"]},
    )
    outcome = AppeasementOutcome.objects.get(case=case)
    assert (outcome.experiment_id, outcome.assigned_arm, outcome.arm) == (
        experiment.pk,
        f"offer:{shown['offer'].pk}",
        f"offer:{shown['offer'].pk}",
    )


def test_the_api_returns_the_assignment_and_gives_with_it(rep, arms):
    five, ten, _apology = arms
    experiment_create(five, ten, apology=False)
    customer = customer_create()
    reason = reason_create(code="broken", incident_type=INCIDENT)
    client = APIClient()
    client.force_login(rep)

    body = client.get("/api/v1/recommendations", {"customer_id": customer.pk, "incident_type": INCIDENT}).json()
    assignment = body["assignment"]
    assert assignment["arm"] == f"offer:{assignment['offer_id']}"
    other = ten if assignment["offer_id"] == five.pk else five

    refused = client.post(
        "/api/v1/issuances",
        {
            "customer_id": customer.pk,
            "offer_id": other.pk,
            "reason_code": "broken",
            "experiment_token": assignment["token"],
        },
        format="json",
    )
    assert refused.status_code == 400
    assert "override_reason" in refused.json()["fields"]
    assert not Issuance.objects.exists()

    given = client.post(
        "/api/v1/issuances",
        {
            "customer_id": customer.pk,
            "offer_id": other.pk,
            "reason_code": reason.code,
            "experiment_token": assignment["token"],
            "override_reason": "Ticket says so",
        },
        format="json",
    )
    assert given.status_code == 201, given.json()
    assert AppeasementOutcome.objects.get().override_reason == "Ticket says so"


# --- Guardrails -----------------------------------------------------------------------


def outcomes_add(experiment, arm, *, answered, solved, given=None, csat=None):
    """Synthetic answered outcomes of the experiment, assigned and given `arm`."""
    customer = customer_create()
    now = timezone.now()
    AppeasementOutcome.objects.bulk_create(
        AppeasementOutcome(
            customer=customer,
            incident_type=experiment.incident_type,
            intervention="discount",
            arm=given or arm,
            path="panel",
            currency="USD",
            tier="standard",
            value_band="low",
            repeat_band="first",
            prior="none",
            experiment=experiment,
            assigned_arm=arm,
            given_at=now,
            answered_at=now,
            solved=index < solved,
            csat=csat,
        )
        for index in range(answered)
    )


def test_the_guardrail_stops_a_clearly_worse_arm_once_audited_and_emailed(
    arms, settings, django_capture_on_commit_callbacks
):
    # given three arms with 40 answers each: 5 off 36 solved, 10 off 34, the apology 8
    five, ten, _apology = arms
    staff_user("Supervisor")
    settings.EXPERIMENT_GUARDRAIL_MIN_ANSWERS = 30
    experiment = experiment_create(five, ten)
    outcomes_add(experiment, f"offer:{five.pk}", answered=40, solved=36)
    outcomes_add(experiment, f"offer:{ten.pk}", answered=40, solved=34)
    outcomes_add(experiment, "apology", answered=40, solved=8)

    # when beat reviews it twice
    with django_capture_on_commit_callbacks(execute=True):
        first = experiments_review()
        second = experiments_review()

    # then only the apology arm is stopped, once, audited, and the supervisors told once
    assert [event["arm"] for event in first] == ["apology"] and second == []
    experiment.refresh_from_db()
    assert experiment.stopped_arms == ["apology"] and experiment.is_active
    audit = AuditEvent.objects.get(action="experiment.arm_stopped")
    assert audit.after["arm"] == "apology" and audit.after["probability"] >= 0.99
    assert len(mail.outbox) == 1 and "Apology only" in mail.outbox[0].body


def test_an_arm_below_the_minimum_answers_is_not_judged_and_one_arm_left_stops_the_experiment(arms, settings):
    five, ten, _apology = arms
    settings.EXPERIMENT_GUARDRAIL_MIN_ANSWERS = 30
    experiment = experiment_create(five, ten, apology=False)
    outcomes_add(experiment, f"offer:{five.pk}", answered=40, solved=38)
    outcomes_add(experiment, f"offer:{ten.pk}", answered=20, solved=2)
    assert experiments_review() == []

    outcomes_add(experiment, f"offer:{ten.pk}", answered=20, solved=2)
    stopped = experiments_review()

    experiment.refresh_from_db()
    assert stopped[0]["arm"] == f"offer:{ten.pk}" and stopped[0]["experiment_stopped"]
    assert not experiment.is_active and experiment.stopped_at is not None
    assert AuditEvent.objects.get(action="experiment.stopped").after["reason"] == "one_arm_left"


# --- Report and supervisors -----------------------------------------------------------


def test_newcombes_interval_matches_the_published_example():
    # Newcombe (1998), table II, example (a): 56/70 against 48/80 → 0.2000 (0.0524, 0.3339)
    d, low, high = newcombe(56, 70, 48, 80)
    assert (round(d, 4), round(low, 4), round(high, 4)) == (0.2, 0.0524, 0.3339)


def test_the_report_shows_each_arm_with_its_lift_and_exports_it(arms):
    five, ten, _apology = arms
    experiment = experiment_create(five, ten)
    outcomes_add(experiment, f"offer:{five.pk}", answered=70, solved=56, csat=4)
    outcomes_add(experiment, "apology", answered=80, solved=48)
    experiment_stop(actor=Actor(), experiment_id=experiment.pk)
    supervisor = staff_user("Supervisor")
    client = Client()
    client.force_login(supervisor)

    page = client.get(reverse("reports:experiment", args=[experiment.pk]))
    assert page.status_code == 200
    row = next(row for row in page.context["rows"] if row["arm"] == f"offer:{five.pk}")
    assert (row["solved_percent"], row["csat"], row["lift"]) == (80.0, 4.0, (20.0, 5.2, 33.4))
    assert "a supervisor stopped it" in page.content.decode()

    export = client.get(reverse("reports:experiment", args=[experiment.pk]), {"export": "arms"})
    text = b"".join(export.streaming_content).decode("utf-8-sig")
    assert "5 off,70,70,0,,70,56,80.0" in text


def test_reps_cannot_see_the_report_nor_run_experiments(rep, arms):
    experiment = experiment_create(*arms[:2])
    client = Client()
    client.force_login(rep)
    assert client.get(reverse("reports:experiment", args=[experiment.pk])).status_code in (302, 403)
    assert client.get(reverse("admin:feedback_experiment_changelist")).status_code == 302

    supervisor = staff_user("Supervisor")
    from appease.core.roles import roles_sync

    roles_sync()
    client.force_login(supervisor)
    assert client.get(reverse("admin:feedback_experiment_changelist")).status_code == 200


def test_the_admin_form_needs_two_active_arms_and_one_running_experiment_per_incident(arms):
    five, ten, _apology = arms
    one = ExperimentForm(
        data={"name": "x", "incident_type": INCIDENT, "method": "random", "share_percent": 10, "offers": [five.pk]}
    )
    assert not one.is_valid() and "offers" in one.errors

    ten.is_active = False
    ten.save()
    inactive = ExperimentForm(
        data={
            "name": "x",
            "incident_type": INCIDENT,
            "method": "random",
            "share_percent": 10,
            "offers": [five.pk, ten.pk],
        }
    )
    assert not inactive.is_valid() and "offers" in inactive.errors

    experiment_create(five)
    second = ExperimentForm(
        data={
            "name": "y",
            "incident_type": INCIDENT,
            "method": "random",
            "share_percent": 10,
            "offers": [five.pk],
            "apology_arm": "on",
        }
    )
    assert not second.is_valid() and "incident_type" in second.errors


def test_supervisors_start_and_stop_from_the_admin_audited(arms):
    experiment = experiment_create(*arms[:2])
    from appease.core.roles import roles_sync

    roles_sync()
    supervisor = staff_user("Supervisor")
    client = Client()
    client.force_login(supervisor)
    url = reverse("admin:feedback_experiment_changelist")

    client.post(url, {"action": "stop", "_selected_action": [experiment.pk]})
    experiment.refresh_from_db()
    assert not experiment.is_active
    client.post(url, {"action": "start", "_selected_action": [experiment.pk]})
    experiment.refresh_from_db()
    assert experiment.is_active
    assert list(
        AuditEvent.objects.filter(object_id=str(experiment.pk)).order_by("pk").values_list("action", "actor")
    ) == [("experiment.stopped", supervisor.pk), ("experiment.started", supervisor.pk)]
