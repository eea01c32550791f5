"""Every appeasement closes the loop: whatever path gave it (the customer panel, the
helpdesk sidebar, the API, an automatic rule, a case, an apology), it has an outcome row,
and it is asked about once: an appeasement outside a case when its message is delivered,
a case's when the case is resolved. The answer is its outcome; "not solved" opens a
case; a redeemed code says so on the outcome."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.translation import override
from rest_framework.test import APIClient

from appease.core.context import Actor
from appease.core.exceptions import ApplicationError
from appease.issuance.models import Issuance
from appease.issuance.services.issuance import issuance_approve, issuance_create, issuance_reject, issuance_void
from coupons import codes
from coupons.models import Redemption
from coupons.services.redemption import redemption_create, redemption_reverse
from feedback.models import ApologyTemplate, AppeasementOutcome, AutoRule, Case, CaseEvent, FollowUp
from feedback.services.cases import case_apologise, case_claim, case_issue, case_resolve
from feedback.services.surveys import follow_ups_expire, follow_ups_send, survey_answer, survey_token, survey_url
from tests.coupons.test_concurrency import run_together
from tests.factories import (
    customer_create,
    helpdesk_integration_create,
    launch_token,
    merchant_with_key,
    offer_create,
    policy_create,
    reason_create,
    staff_user,
)
from tests.feedback.conftest import open_case

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def loop(settings, eager, django_capture_on_commit_callbacks):
    """Deliveries sent on commit by the real outbox (in-process), a one-hour follow-up
    delay; `loop(fn)` runs `fn` and every on-commit callback it queued."""
    settings.FOLLOW_UP_DELAY = timedelta(hours=1)

    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run


def offer_5_off(**fields):
    return offer_create(
        name="5 off your next order",
        name_es="5 de descuento en tu próximo pedido",
        name_pt_br="5 de desconto no seu próximo pedido",
        value_amount=Decimal("5.00"),
        cost_amount=Decimal("3.00"),
        **fields,
    )


def _give(rep, loop, customer=None) -> Issuance:
    """5 off from the customer panel's service, delivered by the outbox."""
    return loop(
        issuance_create,
        actor=Actor(user=rep),
        customer=customer or customer_create(),
        offer=offer_5_off(),
        reason_code=reason_create(),
        context={"path": "panel"},
    )


def _follow_up_of(issuance: Issuance) -> FollowUp:
    outcome = AppeasementOutcome.objects.get(issuance=issuance)
    follow_up = FollowUp.objects.get(issuance=issuance)
    assert outcome.follow_up == follow_up
    return follow_up


def _sent(follow_up: FollowUp, loop) -> FollowUp:
    assert loop(follow_ups_send, now=follow_up.due_at) == 1
    follow_up.refresh_from_db()
    assert follow_up.status == FollowUp.Status.SENT
    return follow_up


# --- Every path: an outcome row and a follow-up --------------------------------------------


def test_the_customer_panel_records_a_panel_outcome_and_asks_once_delivered(client, loop):
    # given: a rep on the customer panel, a Spanish-speaking customer
    rep = staff_user(policy=policy_create(day_cost_amount=Decimal("100")))
    client.force_login(rep)
    customer = customer_create(name="Lucía Pérez", language="es")
    offer = offer_5_off()

    # when: one click gives it, the outbox delivers it
    response = loop(
        client.post,
        f"/csr/customers/{customer.pk}/issue/",
        {"offer": offer.pk, "reason_code": reason_create(incident_type="late_delivery").pk, "channel": "email"},
        **HX,
    )

    # then: its outcome says where it came from; the follow-up is due an hour after delivery
    assert response.status_code == 200
    issuance = Issuance.objects.get()
    assert issuance.status == Issuance.Status.DELIVERED
    outcome = AppeasementOutcome.objects.get(issuance=issuance)
    assert (outcome.path, outcome.arm, outcome.incident_type) == ("panel", f"offer:{offer.pk}", "late_delivery")
    follow_up = _follow_up_of(issuance)
    assert (follow_up.status, follow_up.case, follow_up.intervention) == ("scheduled", None, "discount")
    assert follow_up.due_at == issuance.delivered_at + timedelta(hours=1)

    # and: when due, it goes in her language, naming the offer in her language
    _sent(follow_up, loop)
    message = mail.outbox[-1]
    assert message.to == [customer.email]
    assert survey_url(follow_up) in message.body
    with override("es"):
        assert "5 de descuento en tu próximo pedido" in message.body
    assert "5 off your next order" not in message.body


def test_the_helpdesk_sidebar_records_a_sidebar_outcome_and_a_follow_up(loop):
    integration = helpdesk_integration_create(name="Zendesk", origins="https://acme.zendesk.com")
    staff_user(username="ana", policy=policy_create(day_cost_amount=Decimal("50")))
    client = Client(enforce_csrf_checks=True)
    customer = customer_create(email="lucia@example.com")
    offer, reason = offer_5_off(), reason_create()
    token = client.get("/csr/sidebar/launch", {"token": launch_token(integration, sub="ana")}).context["sidebar_token"]
    client.cookies.clear()

    response = loop(
        client.post,
        f"/csr/customers/{customer.pk}/issue/",
        {"offer": offer.pk, "reason_code": reason.pk, "channel": "email", "idempotency_key": "k" * 32},
        HTTP_AUTHORIZATION=f"Sidebar {token}",
        **HX,
    )

    assert response.status_code == 200
    issuance = Issuance.objects.get()
    assert AppeasementOutcome.objects.get(issuance=issuance).path == "sidebar"
    assert _follow_up_of(issuance).status == "scheduled"


def test_the_issuance_api_records_an_api_outcome_and_a_follow_up(loop):
    rep = staff_user(policy=policy_create(day_cost_amount=Decimal("50")))
    api = APIClient()
    api.force_login(rep)
    customer, offer, reason = customer_create(), offer_5_off(), reason_create("late-parcel")

    response = loop(
        api.post,
        "/api/v1/issuances",
        {"customer_id": customer.pk, "offer_id": offer.pk, "reason_code": "late-parcel", "note": ""},
        format="json",
    )

    assert response.status_code == 201, response.json()
    issuance = Issuance.objects.get(pk=response.json()["id"])
    assert AppeasementOutcome.objects.get(issuance=issuance).path == "api"
    assert _follow_up_of(issuance).status == "scheduled"
    assert reason.incident_type == AppeasementOutcome.objects.get().incident_type


def test_an_automatic_rule_records_a_rule_outcome_and_a_follow_up(api, loop):
    rule = AutoRule.objects.create(
        name="Three hours late: 5 off",
        event_type="delivery_delayed",
        condition_field="delay_minutes",
        condition_operator=">=",
        condition_value="180",
        offer=offer_5_off(),
        reason_code=reason_create(),
        budget_amount=Decimal("9.00"),
        per_customer_cap=1,
    )

    response = loop(
        api.post,
        "/api/v1/events",
        {
            "event_id": "E-1",
            "event_type": "delivery_delayed",
            "data": {"delay_minutes": 200, "customer": {"email": "kim@example.com", "name": "Kim Lee"}},
        },
        format="json",
    )

    assert response.status_code == 202
    issuance = Issuance.objects.get(auto_rule=rule)
    assert AppeasementOutcome.objects.get(issuance=issuance).path == "rule"
    assert _follow_up_of(issuance).status == "scheduled"


def test_a_cases_appeasements_are_asked_about_by_the_cases_follow_up_one_answer_for_each(csr, loop):
    # given: a case that got a discount and an apology in its round
    case = open_case(customer=customer_create(language="en"))
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    discount = loop(
        case_issue, actor=Actor(user=csr), case_id=case.pk, offer=offer_5_off(), reason_code=reason_create()
    )
    offer_create(name="Apology", kind="apology", value_amount=Decimal("0"), cost_amount=Decimal("0"))
    apology = loop(case_apologise, actor=Actor(user=csr), case_id=case.pk, template=None, text="We are so sorry.")

    # then: two outcome rows of the case, and no follow-up of their own once delivered
    outcomes = AppeasementOutcome.objects.filter(case=case)
    assert sorted(outcomes.values_list("path", "arm")) == sorted(
        [("case", f"offer:{discount.offer_id}"), ("case", "apology")]
    )
    assert Issuance.objects.get(pk=apology.pk).status == Issuance.Status.DELIVERED
    assert not FollowUp.objects.filter(issuance__isnull=False).exists()

    # when: resolved, the case's follow-up is linked to both; the answer is both outcomes
    case_resolve(actor=Actor(user=csr), case_id=case.pk, note="Apologised and gave 5 off")
    follow_up = _sent(case.follow_ups.get(), loop)
    assert set(follow_up.outcomes.all()) == set(outcomes)
    survey_answer(token=survey_token(follow_up), solved=True, csat=4)

    assert set(outcomes.values_list("solved", "csat")) == {(True, 4)}
    assert all(outcome.answered_at == follow_up.answered_at for outcome in outcomes)


def test_an_apology_by_phone_without_an_offer_is_an_apology_outcome(csr, loop):
    case = open_case(customer=customer_create())
    case_claim(actor=Actor(user=csr), case_id=case.pk)

    case_resolve(actor=Actor(user=csr), case_id=case.pk, note="Apologised on the phone", intervention="apology")

    outcome = AppeasementOutcome.objects.get(case=case)
    assert (outcome.issuance, outcome.arm, outcome.path, outcome.cost_amount) == (None, "apology", "case", 0)
    assert outcome.follow_up == case.follow_ups.get()


def test_an_apology_from_the_case_page_is_one_apology_outcome(csr, loop):
    case = open_case(customer=customer_create())
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    offer_create(name="Apology", kind="apology", value_amount=Decimal("0"), cost_amount=Decimal("0"))
    reason_create(incident_type="late_delivery")
    template = ApologyTemplate.objects.create(name="Late", language="en", text="Sorry, {first_name}.")

    loop(case_apologise, actor=Actor(user=csr), case_id=case.pk, template=template, text="")
    case_resolve(actor=Actor(user=csr), case_id=case.pk, note="Apologised", intervention="apology")

    outcome = AppeasementOutcome.objects.get(case=case)
    assert (outcome.arm, outcome.intervention, outcome.path) == ("apology", "apology", "case")
    assert outcome.issuance.offer.kind == "apology"


# --- Approval, rejection, voiding -----------------------------------------------------------


def test_a_pending_appeasement_is_asked_about_once_approved_and_delivered_a_rejected_one_never(loop):
    rep = staff_user(policy=policy_create(day_cost_amount=Decimal("1")))  # everything waits for approval
    supervisor = staff_user("Supervisor", policy=policy_create(day_cost_amount=Decimal("100")))
    customer, offer, reason = customer_create(), offer_5_off(), reason_create()
    approved, rejected = (
        loop(issuance_create, actor=Actor(user=rep), customer=customer, offer=offer, reason_code=reason)
        for _ in range(2)
    )
    assert approved.status == rejected.status == Issuance.Status.PENDING_APPROVAL
    assert not FollowUp.objects.exists()

    loop(issuance_reject, actor=Actor(user=supervisor), issuance_id=rejected.pk, comment="too much")
    loop(issuance_approve, actor=Actor(user=supervisor), issuance_id=approved.pk)

    assert Issuance.objects.get(pk=approved.pk).status == Issuance.Status.DELIVERED
    assert _follow_up_of(approved).status == "scheduled"
    assert not FollowUp.objects.filter(issuance=rejected).exists()


def test_an_appeasement_voided_before_its_follow_up_is_due_is_not_asked_about(loop):
    rep = staff_user(policy=policy_create(day_cost_amount=Decimal("100")))
    supervisor = staff_user("Supervisor")
    issuance = _give(rep, loop)
    follow_up = _follow_up_of(issuance)

    issuance_void(actor=Actor(user=supervisor), issuance_id=issuance.pk, reason="given by mistake")
    assert follow_ups_send(now=follow_up.due_at) == 0

    follow_up.refresh_from_db()
    assert (follow_up.status, follow_up.skip_reason, follow_up.delivery) == ("skipped", "voided", None)


# --- The quiet period: a case's follow-up and an appeasement's count against each other ------


def test_an_appeasement_within_the_quiet_period_of_a_cases_follow_up_is_not_asked_about(csr, loop):
    customer = customer_create()
    case = open_case(customer=customer)
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    case_resolve(actor=Actor(user=csr), case_id=case.pk, note="Sorted")
    assert case.follow_ups.get().status == "scheduled"

    issuance = loop(
        issuance_create, actor=Actor(user=csr), customer=customer, offer=offer_5_off(), reason_code=reason_create()
    )

    follow_up = FollowUp.objects.get(issuance=issuance)
    assert (follow_up.status, follow_up.skip_reason) == ("skipped", "quiet_period")
    assert AppeasementOutcome.objects.get(issuance=issuance).follow_up is None


def test_a_case_resolved_within_the_quiet_period_of_an_appeasements_follow_up_closes_unconfirmed(csr, loop):
    customer = customer_create()
    issuance = loop(
        issuance_create, actor=Actor(user=csr), customer=customer, offer=offer_5_off(), reason_code=reason_create()
    )
    _sent(_follow_up_of(issuance), loop)
    case = open_case(customer=customer, incident_type="damaged_item")
    case_claim(actor=Actor(user=csr), case_id=case.pk)

    case = case_resolve(actor=Actor(user=csr), case_id=case.pk, note="Replaced it")

    case.refresh_from_db()
    assert case.status == Case.Status.UNCONFIRMED and not case.follow_ups.exists()
    assert case.events.get(kind=CaseEvent.Kind.FOLLOW_UP_SKIPPED).data == {"reason": "quiet_period"}


# --- The answer -------------------------------------------------------------------------


def test_solved_is_the_outcome_and_opens_nothing(csr, loop, client):
    issuance = _give(csr, loop)
    follow_up = _sent(_follow_up_of(issuance), loop)
    url = survey_url(follow_up).removeprefix("http://127.0.0.1:8000")

    page = client.get(url)
    answer = client.post(url, {"solved": "yes", "csat": "5"})

    assert "Did our apology and 5 off your next order put things right?" in page.content.decode()
    assert answer.status_code == 200
    outcome = AppeasementOutcome.objects.get(issuance=issuance)
    assert (outcome.solved, outcome.csat) == (True, 5) and outcome.answered_at is not None
    assert not Case.objects.exists()


def test_not_solved_about_an_appeasement_opens_a_high_priority_case_linking_it(csr, loop, client):
    # given: a 5 off for a late delivery, asked about
    customer = customer_create(name="Kim Lee", tier="standard")
    reason = reason_create(incident_type="late_delivery")
    issuance = loop(issuance_create, actor=Actor(user=csr), customer=customer, offer=offer_5_off(), reason_code=reason)
    follow_up = _sent(_follow_up_of(issuance), loop)

    # when: the customer says it is not solved
    url = survey_url(follow_up).removeprefix("http://127.0.0.1:8000")
    answer = loop(client.post, url, {"solved": "no", "csat": "2", "comment": "Still no parcel."})

    # then: the outcome says so, and a case is open for the customer at high priority
    assert answer.status_code == 200
    outcome = AppeasementOutcome.objects.get(issuance=issuance)
    assert (outcome.solved, outcome.csat) == (False, 2)
    case = Case.objects.get()
    assert (case.customer, case.incident_type, case.source, case.status) == (
        customer,
        "late_delivery",
        "survey",
        "open",
    )
    assert case.priority in ("high", "critical") and case.first_response_due_at is not None
    line = case.events.get(kind=CaseEvent.Kind.SURVEY_ANSWERED)
    assert line.text == "Still no parcel."
    assert line.data == {"solved": False, "csat": 2, "issuance": str(issuance.pk), "offer_id": issuance.offer_id}
    assert line.summary == "not solved, satisfaction 2/5, about 5 off your next order given earlier"
    # and: the case page links the appeasement
    client.force_login(csr)
    page = client.get(f"/csr/cases/{case.pk}/").content.decode()
    assert f"/csr/issuances/{issuance.pk}/" in page


def test_not_solved_without_words_or_rating_still_opens_the_case_in_the_customers_language(csr, loop):
    customer = customer_create(language="es")
    issuance = loop(
        issuance_create, actor=Actor(user=csr), customer=customer, offer=offer_5_off(), reason_code=reason_create()
    )
    follow_up = _sent(_follow_up_of(issuance), loop)

    survey_answer(token=survey_token(follow_up), solved=False)

    case = Case.objects.get()
    assert case.customer == customer and case.language == "es"


def test_an_expired_follow_up_leaves_the_outcome_unanswered(csr, loop):
    issuance = _give(csr, loop)
    follow_up = _sent(_follow_up_of(issuance), loop)

    assert follow_ups_expire(now=follow_up.expires_at) == 1

    outcome = AppeasementOutcome.objects.get(issuance=issuance)
    assert (outcome.solved, outcome.answered_at) == (None, None)
    with pytest.raises(ApplicationError) as refused:
        survey_answer(token=survey_token(follow_up), solved=True)
    assert refused.value.code == "expired"


# --- Redeemed -------------------------------------------------------------------------------


def test_redeeming_the_code_stamps_the_outcome_in_one_update_and_a_reversal_clears_it(csr, loop):
    issuance = _give(csr, loop)
    raw = codes.decrypt(issuance.code.ciphertext)  # what the customer read in the email
    merchant, _key = merchant_with_key()

    with CaptureQueriesContext(connection) as queries:
        redemption = redemption_create(
            merchant=merchant, raw_code=raw, order_id="SO-1", order_total=Decimal("40"), currency="USD"
        )

    outcome_table = AppeasementOutcome._meta.db_table
    touching = [q["sql"] for q in queries.captured_queries if outcome_table in q["sql"]]
    assert len(touching) == 1 and touching[0].startswith("UPDATE")
    outcome = AppeasementOutcome.objects.get(issuance=issuance)
    assert outcome.redeemed_at == redemption.redeemed_at

    redemption_reverse(merchant=merchant, redemption_id=redemption.pk, reason="order cancelled")
    outcome.refresh_from_db()
    assert outcome.redeemed_at is None
    assert Redemption.objects.get().status == Redemption.Status.REVERSED


# --- Races ----------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_answers_to_the_same_link_at_once_are_recorded_once(settings, eager):
    settings.FOLLOW_UP_DELAY = timedelta(0)
    rep = staff_user(policy=policy_create(day_cost_amount=Decimal("100")))
    issuance = issuance_create(
        actor=Actor(user=rep), customer=customer_create(), offer=offer_5_off(), reason_code=reason_create()
    )
    follow_up = FollowUp.objects.get(issuance=issuance)
    follow_ups_send(now=timezone.now())
    token = survey_token(follow_up)

    def answer(index: int):
        try:
            return survey_answer(token=token, solved=index == 0, csat=5 if index == 0 else 1)
        except ApplicationError as refused:
            return refused.code

    results = run_together(2, answer)

    assert sorted(map(str, results)).count("already_answered") == 1
    outcome = AppeasementOutcome.objects.get(issuance=issuance)
    follow_up.refresh_from_db()
    assert (outcome.solved, outcome.csat, outcome.answered_at) == (
        follow_up.solved,
        follow_up.csat,
        follow_up.answered_at,
    )
    # "not solved" won or lost once: at most one case
    assert Case.objects.count() == (0 if follow_up.solved else 1)
