from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from appease.core.context import Actor
from appease.core.exceptions import ApplicationError
from appease.core.models import AuditEvent
from appease.issuance.models import BudgetCounter, Issuance
from appease.issuance.services.issuance import (
    LimitRefused,
    approvals_escalate,
    issuance_approve,
    issuance_create,
    issuance_reject,
    issuance_void,
)
from coupons.models import Code
from tests.factories import customer_create, offer_create, policy_create, reason_create, staff_user

pytestmark = pytest.mark.django_db


def give(csr, *, offer=None, customer=None, **kwargs):
    return issuance_create(
        actor=Actor(user=csr),
        customer=customer or customer_create(),
        offer=offer or offer_create(),
        reason_code=kwargs.pop("reason_code", None) or reason_create(),
        **kwargs,
    )


def test_within_limits_issues_at_once_with_a_code_and_spends_the_budgets():
    # given
    csr = staff_user(policy=policy_create(day_cost_amount=Decimal("10.00"), month_face_amount=Decimal("100")))
    offer = offer_create(value_amount=Decimal("5.00"), cost_amount=Decimal("3.00"))
    # when
    issuance = give(csr, offer=offer)
    # then
    assert issuance.status == Issuance.Status.ISSUED
    assert issuance.code.status == Code.Status.ISSUED
    counters = {c.period: c for c in BudgetCounter.objects.filter(user=csr)}
    assert set(counters) == {"day", "week", "month"}
    assert all(
        c.spent_cost_amount == Decimal("3.00") and c.spent_face_amount == Decimal("5.00") for c in counters.values()
    )
    audit = AuditEvent.objects.get(action="issuance.create")
    assert audit.actor == csr
    assert audit.after["status"] == "issued"
    assert audit.after["code_last4"] == issuance.code.last4


@pytest.mark.parametrize(
    ("budget", "limit"),
    [
        ({"day_cost_amount": Decimal("5.00")}, "day_cost"),
        ({"week_cost_amount": Decimal("5.00")}, "week_cost"),
        ({"month_cost_amount": Decimal("5.00")}, "month_cost"),
        ({"day_face_amount": Decimal("9.00")}, "day_face"),
        ({"week_face_amount": Decimal("9.00")}, "week_face"),
        ({"month_face_amount": Decimal("9.00")}, "month_face"),
    ],
)
def test_each_budget_sends_the_second_issuance_for_approval(budget, limit):
    # given: the first issuance (cost 3, face 5) fits, the second does not
    csr = staff_user(policy=policy_create(**budget))
    offer = offer_create(value_amount=Decimal("5.00"), cost_amount=Decimal("3.00"))
    give(csr, offer=offer)
    # when
    second = give(csr, offer=offer)
    # then
    assert second.status == Issuance.Status.PENDING_APPROVAL
    assert second.code is None
    (breach,) = second.breached_limits
    assert breach["limit"] == limit
    assert breach["currency"] == "USD"
    measure = "cost" if "cost" in limit else "face"
    limit_value = budget[f"{limit.split('_')[0]}_{measure}_amount"]
    used = Decimal("3.00") if measure == "cost" else Decimal("5.00")
    assert Decimal(breach["remaining"]) == limit_value - used
    assert Decimal(breach["over_by"]) == 2 * used - limit_value
    # nothing more was spent
    assert BudgetCounter.objects.get(user=csr, period="day").spent_cost_amount == Decimal("3.00")


def test_max_face_per_issuance():
    csr = staff_user(policy=policy_create(max_face_per_issuance_amount=Decimal("20")))
    issuance = give(csr, offer=offer_create(value_amount=Decimal("25.00")))
    assert issuance.status == Issuance.Status.PENDING_APPROVAL
    assert issuance.breached_limits[0]["limit"] == "max_face_per_issuance"
    assert issuance.breached_limits[0]["over_by"] == "5.00"


def test_repeat_claim_guard_counts_every_rep():
    # given: a customer already appeased twice, by two reps
    policy = policy_create(max_per_customer=2)
    customer = customer_create()
    give(staff_user(policy=policy), customer=customer)
    give(staff_user(policy=policy), customer=customer)
    # when: a third rep tries
    third = give(staff_user(policy=policy), customer=customer)
    # then
    assert third.status == Issuance.Status.PENDING_APPROVAL
    assert third.breached_limits[0]["limit"] == "customer_repeat"


def test_soft_offers_are_issuances_without_codes_and_do_not_count_as_repeats():
    policy = policy_create(max_per_customer=1, day_cost_amount=Decimal("0"))
    csr = staff_user(policy=policy)
    customer = customer_create()
    apology = offer_create(kind="apology", value_amount=Decimal("0"), cost_amount=Decimal("0"), description="Sorry")
    first = give(csr, offer=apology, customer=customer)
    second = give(csr, offer=apology, customer=customer)
    assert first.status == second.status == Issuance.Status.ISSUED
    assert first.code is None


def test_offer_outside_the_policy():
    policy = policy_create()
    allowed = offer_create()
    policy.allowed_offers.add(allowed)
    issuance = give(staff_user(policy=policy), offer=offer_create())
    assert issuance.breached_limits[0]["limit"] == "offer_not_allowed"


def test_refuse_policy_raises_403_naming_the_limit_and_saves_nothing():
    csr = staff_user(policy=policy_create(over_limit="refuse", day_cost_amount=Decimal("1.00")))
    with pytest.raises(LimitRefused) as refused:
        give(csr)
    assert refused.value.status == 403
    assert refused.value.extra["limits"][0]["limit"] == "day_cost"
    assert Issuance.objects.count() == 0
    assert not Code.objects.filter(status=Code.Status.ISSUED).exists()


def test_no_policy_is_refused():
    with pytest.raises(LimitRefused):
        give(staff_user(policy=None))


def test_group_default_policy_applies():
    from django.contrib.auth.models import Group

    policy = policy_create(day_cost_amount=Decimal("1.00"))
    policy.group = Group.objects.get_or_create(name="CSR")[0]
    policy.save()
    assert give(staff_user()).status == Issuance.Status.PENDING_APPROVAL


def test_channel_without_contact_or_consent_is_a_field_error():
    csr = staff_user(policy=policy_create())
    with pytest.raises(ValidationError) as error:
        give(csr, channel="sms")
    assert "channel" in error.value.message_dict
    customer = customer_create(phone="+34612345678", consent_sms=False)
    with pytest.raises(ValidationError):
        give(csr, customer=customer, channel="sms")
    assert Issuance.objects.count() == 0


# --- approvals ---------------------------------------------------------------------


def pending_issuance(csr=None):
    csr = csr or staff_user(policy=policy_create(day_cost_amount=Decimal("0.00")))
    issuance = give(csr)
    assert issuance.status == Issuance.Status.PENDING_APPROVAL
    return issuance


def test_supervisor_approves_within_their_own_limit_and_gets_audited():
    # given
    issuance = pending_issuance()
    supervisor = staff_user("Supervisor", policy=policy_create(day_cost_amount=Decimal("50")))
    # when
    approved = issuance_approve(actor=Actor(user=supervisor), issuance_id=issuance.pk, comment="ok, late twice")
    # then
    assert approved.status == Issuance.Status.ISSUED
    assert approved.code is not None
    assert approved.approved_by == supervisor
    assert BudgetCounter.objects.get(user=supervisor, period="day").spent_cost_amount == Decimal("3.00")
    event = AuditEvent.objects.get(action="issuance.approve")
    assert event.before["status"] == "pending_approval"
    assert event.after["status"] == "issued"


def test_approval_over_the_supervisors_own_limit_is_refused():
    issuance = pending_issuance()
    supervisor = staff_user("Supervisor", policy=policy_create(over_limit="refuse", day_cost_amount=Decimal("1")))
    with pytest.raises(ApplicationError) as refused:
        issuance_approve(actor=Actor(user=supervisor), issuance_id=issuance.pk)
    assert refused.value.code == "approver_limit_exceeded"
    issuance.refresh_from_db()
    assert issuance.status == Issuance.Status.PENDING_APPROVAL


def test_nobody_approves_their_own():
    supervisor = staff_user("Supervisor", policy=policy_create(day_cost_amount=Decimal("0")))
    issuance = pending_issuance(csr=supervisor)
    with pytest.raises(ApplicationError) as refused:
        issuance_approve(actor=Actor(user=supervisor), issuance_id=issuance.pk)
    assert refused.value.code == "own_issuance"


def test_a_csr_cannot_approve():
    issuance = pending_issuance()
    with pytest.raises(ApplicationError) as refused:
        issuance_approve(actor=Actor(user=staff_user(policy=policy_create())), issuance_id=issuance.pk)
    assert refused.value.status == 403


def test_reject_needs_a_comment_and_is_final():
    issuance = pending_issuance()
    supervisor = staff_user("Supervisor", policy=policy_create())
    with pytest.raises(ValidationError):
        issuance_reject(actor=Actor(user=supervisor), issuance_id=issuance.pk, comment=" ")
    rejected = issuance_reject(actor=Actor(user=supervisor), issuance_id=issuance.pk, comment="serial claimant")
    assert rejected.status == Issuance.Status.REJECTED
    with pytest.raises(ApplicationError) as again:
        issuance_approve(actor=Actor(user=supervisor), issuance_id=issuance.pk)
    assert again.value.code == "not_pending"


def test_void_makes_the_code_unredeemable():
    csr = staff_user(policy=policy_create())
    issuance = give(csr)
    supervisor = staff_user("Supervisor", policy=policy_create())
    voided = issuance_void(actor=Actor(user=supervisor), issuance_id=issuance.pk, reason="issued to the wrong person")
    assert voided.status == Issuance.Status.VOIDED
    assert voided.code.status == Code.Status.VOIDED
    assert AuditEvent.objects.filter(action="issuance.void", actor=supervisor).exists()
    with pytest.raises(ApplicationError):
        issuance_void(actor=Actor(user=supervisor), issuance_id=issuance.pk, reason="again")


def test_stale_approvals_are_escalated_once(settings):
    settings.APPROVAL_ESCALATE_AFTER = timedelta(minutes=15)
    staff_user("Supervisor")
    issuance = pending_issuance()
    Issuance.objects.filter(pk=issuance.pk).update(created_at=timezone.now() - timedelta(minutes=16))
    assert approvals_escalate() == 1
    assert approvals_escalate() == 0
    assert len(mail.outbox) == 1
    assert str(issuance.pk) in mail.outbox[0].body


@pytest.fixture
def tasks_run_inline():
    """Run tasks in this process when enqueued (the worker is tested elsewhere)."""
    from appease.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def test_low_inventory_alerts_supervisors_once_until_restocked(django_capture_on_commit_callbacks, tasks_run_inline):
    from coupons.services.inventory import code_batch_import

    # given: 4 codes, alert at 2 left
    staff_user("Supervisor")
    offer = offer_create(generate_on_demand=False, low_inventory_threshold=2)
    code_batch_import(offer=offer, text="\n".join(f"LOW{i}AAAA" for i in range(4)))
    csr = staff_user(policy=policy_create())
    # when: the stock goes 3, 2 (alert), 1, 0
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(4):
            give(csr, offer=offer)
    # then: one alert among the customers' messages
    alerts = [m for m in mail.outbox if "running out of codes" in m.subject]
    assert len(alerts) == 1
    assert alerts[0].to == [User.objects.get(groups__name="Supervisor").email]
    # when: restocked and drained again, it alerts again
    code_batch_import(offer=offer, text="\n".join(f"MORE{i}AAAA" for i in range(3)))
    with django_capture_on_commit_callbacks(execute=True):
        give(csr, offer=offer)
    assert len([m for m in mail.outbox if "running out of codes" in m.subject]) == 2
