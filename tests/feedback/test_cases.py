"""The queue: priority order, claim-next (atomic, also under concurrency), working a
case from its page, and who may do what."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from appease.core.context import Actor
from appease.core.exceptions import ApplicationError
from appease.issuance.models import Issuance
from feedback.models import Case, CaseEvent, Intervention
from feedback.services.cases import (
    case_apologise,
    case_claim,
    case_claim_next,
    case_escalate,
    case_issue,
    case_reassign,
    case_resolve,
)
from feedback.services.scoring import cases_age, priority_score
from tests.factories import customer_create, offer_create, policy_create, reason_create, staff_user
from tests.feedback.conftest import open_case
from tests.issuance.test_concurrency import run_together

pytestmark = pytest.mark.django_db


def test_the_score_adds_impact_customer_value_repeats_feeling_and_age():
    gold = customer_create(tier="gold", lifetime_value_amount=Decimal("500"))

    score = priority_score(
        incident_type="overcharge", customer=gold, rating=2, anger=0.9, past_incidents=4, age_hours=3
    )

    by_factor = {reason["factor"]: reason["points"] for reason in score.reasons}
    # overcharge weighs 35; gold 8 + half the LTV ceiling 4; 4 repeats capped at 15;
    # the worst feeling: anger 0.9 → 14 beats 2 stars → 10; 3 hours waiting
    assert by_factor == {"incident": 35, "customer_value": 12, "repeat": 15, "feeling": 14, "age": 3}
    assert score.points == 79
    assert score.base == 76


def test_the_queue_is_ordered_by_score_and_claim_next_takes_the_top(csr):
    low = open_case(email="a@example.com", incident_type="other", rating=3)
    top = open_case(email="b@example.com", incident_type="service_outage", rating=1)
    middle = open_case(email="c@example.com", incident_type="late_delivery", rating=1)
    assert top.priority_score > middle.priority_score > low.priority_score

    claimed = [case_claim_next(actor=Actor(user=csr)).pk for _ in range(3)]

    assert claimed == [top.pk, middle.pk, low.pk]
    assert case_claim_next(actor=Actor(user=csr)) is None
    top.refresh_from_db()
    # claiming is not a response: the customer has received nothing yet
    assert (top.status, top.assigned_to, top.first_response_at) == ("claimed", csr, None)
    assert top.events.filter(kind=CaseEvent.Kind.CLAIMED, actor=csr).count() == 1


def test_equal_scores_go_oldest_first(csr):
    first = open_case(email="a@example.com")
    second = open_case(email="b@example.com")
    Case.objects.filter(pk=second.pk).update(created_at=first.created_at - timedelta(minutes=5))

    assert case_claim_next(actor=Actor(user=csr)).pk == second.pk


def test_waiting_raises_the_score_an_hour_at_a_time(csr):
    old = open_case(email="a@example.com", incident_type="other", rating=2)
    fresh = open_case(email="b@example.com", incident_type="other", rating=2)
    Case.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=4, minutes=5))

    cases_age()
    cases_age()  # twice: no double counting

    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.priority_score == fresh.priority_score + 4
    assert old.age_points == 4


def test_a_customer_without_a_role_cannot_work_cases():
    from django.contrib.auth.models import User

    nobody = User.objects.create_user("nobody")
    open_case()

    with pytest.raises(ApplicationError) as refused:
        case_claim_next(actor=Actor(user=nobody))
    assert refused.value.status == 403


def test_claiming_a_case_someone_has_is_refused(csr):
    case = open_case()
    case_claim(actor=Actor(user=csr), case_id=case.pk)

    with pytest.raises(ApplicationError) as refused:
        case_claim(actor=Actor(user=staff_user()), case_id=case.pk)
    assert refused.value.code == "not_open"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_reps_claiming_at_once_never_get_the_same_case():
    # given: 30 open cases and ten reps
    cases = [open_case(email=f"c{i}@example.com") for i in range(30)]
    reps = [staff_user() for _ in range(10)]

    # when: each rep claims three times, all at once
    def claim_three(i):
        return [case_claim_next(actor=Actor(user=reps[i])).pk for _ in range(3)]

    results = run_together(10, claim_three)

    # then: every case claimed exactly once, by the rep who got it
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    claimed = [pk for result in results for pk in result]
    assert sorted(claimed) == sorted(case.pk for case in cases)
    assert CaseEvent.objects.filter(kind=CaseEvent.Kind.CLAIMED).count() == 30
    for i, result in enumerate(results):
        assert set(Case.objects.filter(pk__in=result).values_list("assigned_to", flat=True)) == {reps[i].pk}
    assert connection.vendor == "postgresql"


def test_issuing_from_a_case_links_it_uses_the_reps_limits_and_the_complaint_clock(csr):
    case = open_case(customer=customer_create())
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    offer = offer_create(generate_on_demand=True)

    issuance = case_issue(actor=Actor(user=csr), case_id=case.pk, offer=offer, reason_code=reason_create())

    assert issuance.case == case
    assert issuance.complaint_started_at == case.created_at
    assert case.events.filter(kind=CaseEvent.Kind.ISSUED, data__issuance_id=str(issuance.pk)).exists()


def test_issuing_from_a_case_over_the_limit_goes_for_approval():
    csr = staff_user(policy=policy_create(day_cost_amount=Decimal("1.00")))
    case = open_case(customer=customer_create())
    case_claim(actor=Actor(user=csr), case_id=case.pk)

    issuance = case_issue(
        actor=Actor(user=csr),
        case_id=case.pk,
        offer=offer_create(cost_amount=Decimal("3")),
        reason_code=reason_create(),
    )

    assert issuance.status == Issuance.Status.PENDING_APPROVAL and issuance.case == case


def test_a_rep_cannot_work_a_case_assigned_to_someone_else(csr):
    case = open_case(customer=customer_create())
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    other = staff_user()

    with pytest.raises(ApplicationError) as refused:
        case_resolve(actor=Actor(user=other), case_id=case.pk, note="done")
    assert refused.value.code == "not_yours"
    with pytest.raises(ApplicationError):
        case_issue(actor=Actor(user=other), case_id=case.pk, offer=offer_create(), reason_code=reason_create())


def test_an_apology_is_sent_as_a_soft_appeasement_with_the_reps_words(csr):
    case = open_case(customer=customer_create(), incident_type="staff_attitude")
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    offer_create(kind="apology", value_amount=Decimal("0"), cost_amount=Decimal("0"), description="Apology")

    issuance = case_apologise(
        actor=Actor(user=csr), case_id=case.pk, template=None, text="We are so sorry, Pat.", reason_code=reason_create()
    )

    assert issuance.offer.kind == "apology" and issuance.code is None
    assert issuance.apology_text == "We are so sorry, Pat."
    assert case.events.filter(kind=CaseEvent.Kind.APOLOGY).exists()


def test_resolving_records_what_was_given_and_schedules_the_follow_up(csr):
    case = open_case(customer=customer_create())
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    case_issue(
        actor=Actor(user=csr),
        case_id=case.pk,
        offer=offer_create(kind="gift_card", generate_on_demand=True),
        reason_code=reason_create(),
    )

    resolved = case_resolve(actor=Actor(user=csr), case_id=case.pk, note="Gift card and an apology")

    assert resolved.status == Case.Status.RESOLVED
    assert resolved.intervention == Intervention.GIFT_CARD
    assert resolved.follow_ups.get().status == "scheduled"
    with pytest.raises(ApplicationError):
        case_resolve(actor=Actor(user=csr), case_id=case.pk, note="again")


def test_resolving_needs_a_note(csr):
    from django.core.exceptions import ValidationError

    case = open_case()
    case_claim(actor=Actor(user=csr), case_id=case.pk)

    with pytest.raises(ValidationError) as invalid:
        case_resolve(actor=Actor(user=csr), case_id=case.pk, note="  ")
    assert "note" in invalid.value.message_dict
    case.refresh_from_db()
    assert case.status == Case.Status.CLAIMED


def test_reassign_and_escalate(csr, supervisor, django_capture_on_commit_callbacks):
    case = open_case()
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    colleague = staff_user()

    case_reassign(actor=Actor(user=csr), case_id=case.pk, to_user_id=colleague.pk)
    with django_capture_on_commit_callbacks(execute=True):
        case_escalate(actor=Actor(user=colleague), case_id=case.pk, text="Customer threatens to leave")

    case.refresh_from_db()
    assert case.assigned_to == colleague and case.escalated_at is not None
    assert [e.kind for e in case.events.filter(kind__in=["reassigned", "escalated"])] == ["reassigned", "escalated"]
    assert len(mail.outbox) == 1 and supervisor.email in mail.outbox[0].to
    assert f"/csr/cases/{case.pk}/" in mail.outbox[0].body


def test_cannot_reassign_to_someone_without_a_role(csr):
    from django.contrib.auth.models import User
    from django.core.exceptions import ValidationError

    case = open_case()
    case_claim(actor=Actor(user=csr), case_id=case.pk)

    with pytest.raises(ValidationError):
        case_reassign(actor=Actor(user=csr), case_id=case.pk, to_user_id=User.objects.create_user("shopper").pk)


def test_the_case_api_lists_the_reps_own_cases_paged_as_the_schema_says(csr):
    """Found with the fuzzer: `status=mine` answered nobody's cases (the API did not say
    whose), and the schema described a bare list where the answer is a page."""
    # given: two open cases, one of them claimed by the rep
    open_case(email="a@example.com")
    open_case(email="b@example.com")
    mine = case_claim_next(actor=Actor(user=csr))
    client = APIClient()
    client.force_login(csr)

    # when
    body = client.get("/api/v1/cases", {"status": "mine"}).json()

    # then
    assert body["count"] == 1
    assert [(c["id"], c["assigned_to"]) for c in body["results"]] == [(mine.pk, csr.username)]
    operation = SchemaGenerator().get_schema(request=None, public=True)["paths"]["/api/v1/cases"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PaginatedCaseOutputList"
    }
    status = next(p for p in operation["parameters"] if p["name"] == "status")
    assert "mine" in status["schema"]["enum"]


def test_the_case_api_refuses_an_unknown_filter_instead_of_answering_the_default_queue(csr):
    """Found by the fuzzer: `status=nonsense` answered the open queue as if no filter."""
    # given
    open_case(email="a@example.com")
    client = APIClient()
    client.force_login(csr)
    # when
    response = client.get("/api/v1/cases", {"status": "nonsense", "priority": "urgentest"})
    # then
    assert response.status_code == 400
    assert sorted(response.json()["fields"]) == ["priority", "status"]
    assert client.get("/api/v1/cases", {"status": ""}).status_code == 200  # empty: the default


def test_giving_from_the_case_of_an_unreachable_customer_is_a_field_error(csr):
    from django.core.exceptions import ValidationError

    # given: a case for a customer with no contact detail
    customer = customer_create(email="", external_id="SHOP-3", preferred_channel="")
    case = open_case(customer=customer)
    case_claim(actor=Actor(user=csr), case_id=case.pk)

    # when / then: refused on the channel, nothing given
    with pytest.raises(ValidationError) as invalid:
        case_issue(actor=Actor(user=csr), case_id=case.pk, offer=offer_create(), reason_code=reason_create())
    assert "channel" in invalid.value.message_dict
    assert not Issuance.objects.exists()


def test_the_reasons_are_data_and_their_points_add_up_to_the_score():
    gold = customer_create(tier="gold", lifetime_value_amount=Decimal("500"))

    score = priority_score(incident_type="overcharge", customer=gold, rating=2, anger=0.9, past_incidents=4)

    assert score.reasons[0] == {"factor": "incident", "points": 35, "params": {"incident_type": "overcharge"}}
    assert all("detail" not in reason for reason in score.reasons)  # words come at display time
    assert sum(reason["points"] for reason in score.reasons) == score.points


def test_the_case_api_words_the_reasons_in_the_callers_language(csr):
    case = open_case(customer=customer_create(), incident_type="late_delivery", rating=1)
    client = APIClient()
    client.force_login(csr)

    body = client.get("/api/v1/cases", HTTP_ACCEPT_LANGUAGE="pt-br").json()["results"][0]

    assert body["id"] == case.pk
    texts = [reason["text"] for reason in body["score_reasons"]]
    assert "peso do impacto (Entrega atrasada)" in texts and "nota 1/5" in texts
    assert sum(reason["points"] for reason in body["score_reasons"]) == body["priority_score"]


def test_ageing_keeps_the_reasons_adding_up_and_raises_the_priority_and_its_targets():
    from feedback.models import PriorityLevel
    from feedback.services.sla import due_times

    # given: a normal case (late delivery 20 + gold 16 + three stars 3 = 39) waiting 8 hours
    customer = customer_create(tier="gold", lifetime_value_amount=Decimal("1000"))
    case = open_case(customer=customer, rating=3)
    assert (case.priority, case.priority_score) == ("normal", 39)
    created = timezone.now() - timedelta(hours=8, minutes=5)
    Case.objects.filter(pk=case.pk).update(created_at=created)
    case.refresh_from_db()
    before = (case.first_response_due_at, case.resolution_due_at)

    # when
    assert cases_age() == 1

    # then: 8 points for the wait, in the reasons too; 47 reaches "high", whose targets,
    # counted from when the case opened, replace the looser ones
    case.refresh_from_db()
    assert (case.priority_score, case.age_points, case.priority) == (47, 8, "high")
    assert case.score_reasons[-1] == {"factor": "age", "points": 8, "params": {"hours": 8}}
    assert sum(reason["points"] for reason in case.score_reasons) == case.priority_score
    assert case.reasons[-1]["text"] == "waiting 8 hours"
    first, resolution = due_times(PriorityLevel.objects.get(priority="high"), created)
    assert case.first_response_due_at == min(first, before[0])
    assert case.resolution_due_at == min(resolution, before[1])
    # and again an hour later: one more point, the same single age reason
    assert cases_age(now=timezone.now() + timedelta(hours=1)) == 1
    case.refresh_from_db()
    assert [r["factor"] for r in case.score_reasons].count("age") == 1 and case.priority_score == 48


def test_ageing_stops_at_the_ceiling_and_the_age_reason_says_what_it_added():
    # given: a case already at 95 points, waiting ten hours
    case = open_case(email="top@example.com")
    Case.objects.filter(pk=case.pk).update(
        priority_score=95,
        priority="critical",
        score_reasons=[{"factor": "incident", "points": 95, "params": {"incident_type": "late_delivery"}}],
        created_at=timezone.now() - timedelta(hours=10, minutes=1),
    )

    # when
    cases_age()

    # then: 100, and the age line counts the 5 points it could add
    case.refresh_from_db()
    assert (case.priority_score, case.age_points) == (100, 10)
    assert case.score_reasons[-1] == {"factor": "age", "points": 5, "params": {"hours": 10}}


def test_an_apology_from_a_template_is_filled_in_for_the_cases_customer(csr):
    from feedback.models import ApologyTemplate

    # given
    case = open_case(customer=customer_create(name="Pat Doe"), incident_type="staff_attitude")
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    offer_create(kind="apology", value_amount=Decimal("0"), cost_amount=Decimal("0"), description="Apology")
    template = ApologyTemplate.objects.create(name="Sorry", language="en", text="{first_name}, we are so sorry.")

    # when: the rep sends the template as it is (no text of their own)
    issuance = case_apologise(
        actor=Actor(user=csr), case_id=case.pk, template=template, text="", reason_code=reason_create()
    )

    # then
    assert issuance.apology_text == "Pat, we are so sorry."


def test_only_the_owner_or_a_supervisor_escalates_and_only_an_open_case(csr, supervisor):
    case = open_case(customer=customer_create())
    case_claim(actor=Actor(user=csr), case_id=case.pk)

    # someone else's case: refused
    with pytest.raises(ApplicationError) as refused:
        case_escalate(actor=Actor(user=staff_user()), case_id=case.pk, text="Help")
    assert refused.value.code == "not_yours"
    # a supervisor may
    case_escalate(actor=Actor(user=supervisor), case_id=case.pk, text="Help")
    # a closed case: refused
    case_resolve(actor=Actor(user=csr), case_id=case.pk, note="Done")
    with pytest.raises(ApplicationError) as closed:
        case_escalate(actor=Actor(user=csr), case_id=case.pk, text="Help again")
    assert closed.value.code == "closed"
    assert case.events.filter(kind=CaseEvent.Kind.ESCALATED).count() == 1
