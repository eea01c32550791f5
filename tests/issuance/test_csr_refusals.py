"""The CSR pages' server side of issue 14's rep items: every refusal is a 4xx with the
form and its errors, one rendered form gives once, a repeat asks to confirm, a rep
reveals (audited, rate-limited) and resends (audited) their own appeasements."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from appease.core.context import Actor
from appease.core.models import AuditEvent
from appease.delivery.models import Delivery
from appease.issuance.models import Issuance
from appease.issuance.services.issuance import issuance_create
from tests.factories import customer_create, offer_create, policy_create, reason_create, staff_user

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def rep(client):
    user = staff_user(username="rep", policy=policy_create(day_cost_amount=Decimal("10.00"), over_limit="refuse"))
    client.force_login(user)
    return user


def key_of(page: str) -> str:
    return re.search(r'name="idempotency_key" value="([0-9a-f]+)"', page).group(1)


def post_issue(client, customer, **data):
    return client.post(f"/csr/customers/{customer.pk}/issue/", data, **HX)


def test_the_panel_mints_a_key_and_a_double_submit_gives_once(client, rep):
    # given
    customer = customer_create()
    offer = offer_create()
    reason = reason_create()
    key = key_of(client.get(f"/csr/customers/{customer.pk}/").content.decode())
    data = {"offer": offer.pk, "reason_code": reason.pk, "channel": "email", "idempotency_key": key}
    # when: the same form arrives twice
    first = post_issue(client, customer, **data)
    second = post_issue(client, customer, **data)
    # then: one appeasement, the second answer is the first one again
    assert (first.status_code, second.status_code) == (200, 200)
    issuance = Issuance.objects.get()
    for response in (first, second):
        page = response.content.decode()
        assert f'id="issuance-{issuance.pk}"' in page
        assert 'hx-swap-oob="afterbegin:#issue-results"' in page
    # and each answer is a fresh, blank form with a new key
    assert key_of(first.content.decode()) not in (key, key_of(second.content.decode()))
    assert "selected>Choose the reason" in first.content.decode().replace('value="" ', "")


def test_no_reason_is_a_400_with_the_field_named_and_nothing_given(client, rep):
    customer = customer_create()
    response = post_issue(client, customer, offer=offer_create().pk, channel="email", idempotency_key="k1")
    page = response.content.decode()
    assert response.status_code == 400
    assert 'role="alert"' in page and "data-focus" in page
    assert 'data-field="reason_code"' in page and "Choose the reason." in page
    assert 'aria-invalid="true"' in page
    assert Issuance.objects.count() == 0


def test_a_channel_without_consent_is_a_400_on_the_channel(client, rep):
    customer = customer_create(phone="+34612345678", consent_sms=False)
    response = post_issue(
        client, customer, offer=offer_create().pk, reason_code=reason_create().pk, channel="sms", idempotency_key="k2"
    )
    assert response.status_code == 400
    assert 'data-field="channel"' in response.content.decode()
    assert "has not agreed to be contacted by sms" in response.content.decode()


def test_over_the_limit_under_a_refuse_policy_is_a_403_naming_the_limit(client, rep):
    customer = customer_create()
    big = offer_create(cost_amount=Decimal("30.00"), value_amount=Decimal("40.00"))
    data = {"offer": big.pk, "reason_code": reason_create().pk, "channel": "email", "idempotency_key": "k3"}
    response = post_issue(client, customer, **data)
    assert response.status_code == 403
    assert "This appeasement is over your limits." in response.content.decode()
    assert "Daily cost budget" in response.content.decode()
    # the same key again replays the refusal (nothing given either time)
    assert post_issue(client, customer, **data).status_code == 403
    assert Issuance.objects.count() == 0


def test_an_offer_deactivated_after_the_page_rendered_is_a_400_on_the_offer(client, rep):
    customer = customer_create()
    offer = offer_create()
    offer.is_active = False
    offer.save()
    response = post_issue(
        client, customer, offer=offer.pk, reason_code=reason_create().pk, channel="email", idempotency_key="k4"
    )
    assert response.status_code == 400
    assert 'data-field="offer"' in response.content.decode()
    assert "This offer can no longer be given" in response.content.decode()


def test_an_empty_inventory_is_a_409_on_the_offer(client, rep):
    customer = customer_create()
    offer = offer_create(generate_on_demand=False)
    response = post_issue(
        client, customer, offer=offer.pk, reason_code=reason_create().pk, channel="email", idempotency_key="k5"
    )
    assert response.status_code == 409
    assert 'data-field="offer"' in response.content.decode()
    assert "No codes are left" in response.content.decode()
    assert Issuance.objects.count() == 0


def test_the_same_offer_again_within_minutes_asks_to_confirm(client, rep):
    # given: this customer got this offer a minute ago
    customer = customer_create()
    offer = offer_create()
    reason = reason_create()
    data = {"offer": offer.pk, "reason_code": reason.pk, "channel": "email"}
    assert post_issue(client, customer, idempotency_key="a", **data).status_code == 200
    # when: a new form gives it again
    asked = post_issue(client, customer, idempotency_key="b", **data)
    # then: 409, the question, nothing given
    assert asked.status_code == 409
    assert 'data-testid="repeat"' in asked.content.decode()
    assert Issuance.objects.count() == 1
    # when: the rep confirms (the confirmation form carries its own key)
    confirmed = post_issue(client, customer, idempotency_key=key_of(asked.content.decode()), confirm_repeat="1", **data)
    assert confirmed.status_code == 200
    assert Issuance.objects.count() == 2
    # and another offer is not a repeat
    other = post_issue(client, customer, idempotency_key="c", **{**data, "offer": offer_create().pk})
    assert other.status_code == 200


def test_refusals_on_new_customer_and_log_a_case_are_400_with_a_focused_summary(client, rep):
    response = client.post("/csr/customers/new/", {"name": "", "preferred_channel": "email", "language": "en"})
    assert response.status_code == 400
    assert 'data-testid="refused"' in response.content.decode()
    customer = customer_create()
    response = client.post("/csr/cases/new/", {"customer": customer.pk, "text": ""})
    assert response.status_code == 400
    assert 'data-field="text"' in response.content.decode()


def test_case_page_refusals_are_shown_inside_the_form_they_answer(client, rep):
    from feedback.services.cases import case_claim
    from tests.feedback.conftest import open_case

    # given: the rep works a case
    case = open_case()
    case_claim(actor=Actor(user=rep), case_id=case.pk)
    # when: they resolve it without saying how
    response = client.post(f"/csr/cases/{case.pk}/resolve/", {"note": ""}, follow=True)
    # then: the refusal is in the resolve form's place, announced and focused, once
    page = response.content.decode()
    refusal = page.index("Say how the case was resolved.")
    assert page.rindex('data-testid="refused"', 0, refusal) < refusal < page.index('id="case-resolve"')
    assert page.count("Say how the case was resolved.") == 1


def given(rep, **customer_fields) -> Issuance:
    return issuance_create(
        actor=Actor(user=rep),
        customer=customer_create(**customer_fields),
        offer=offer_create(),
        reason_code=reason_create(),
    )


def test_a_rep_reveals_the_code_of_their_own_appeasement_audited(client, rep):
    issuance = given(rep)
    response = client.post(f"/csr/issuances/{issuance.pk}/reveal/", **HX)
    from coupons import codes

    plaintext = codes.decrypt(issuance.code.ciphertext)
    assert response.status_code == 200
    assert 'data-testid="revealed-code"' in response.content.decode()
    assert plaintext in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    event = AuditEvent.objects.get(action="code.reveal")
    assert (event.actor, event.object_id, event.after["last4"]) == (rep, str(issuance.pk), issuance.code.last4)
    assert plaintext not in str(event.after)


def test_nobody_reveals_another_reps_code(client, rep):
    other = given(staff_user(policy=policy_create()))
    supervisor = staff_user("Supervisor", policy=policy_create())
    client.force_login(supervisor)
    response = client.post(f"/csr/issuances/{other.pk}/reveal/", **HX)
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="code.reveal").exists()


def test_reveals_are_rate_limited(client, rep, monkeypatch):
    from appease.issuance.services import issuance as issuance_service

    monkeypatch.setattr(issuance_service, "CODE_REVEALS_PER_HOUR", 2)
    issuance = given(rep)
    statuses = [client.post(f"/csr/issuances/{issuance.pk}/reveal/", **HX).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert AuditEvent.objects.filter(action="code.reveal").count() == 2


def test_a_rep_resends_at_any_time_to_a_corrected_contact_audited(client, rep):
    issuance = given(rep)
    first = issuance.deliveries.get()
    Delivery.objects.filter(pk=first.pk).update(status=Delivery.Status.SENT)
    # when: the customer says the address was wrong
    response = client.post(
        f"/csr/issuances/{issuance.pk}/resend/", {"channel": "email", "address": "right@example.com"}, **HX
    )
    # then
    assert response.status_code == 200
    again = issuance.deliveries.exclude(pk=first.pk).get()
    assert (again.address, again.resend_of_id, again.status) == ("right@example.com", first.pk, "pending")
    event = AuditEvent.objects.get(action="delivery.resend")
    assert event.after == {"channel": "email", "address": "right@example.com"}
    # a second click while that one is on its way is refused, beside the form
    twice = client.post(f"/csr/issuances/{issuance.pk}/resend/", {"channel": "email"}, **HX)
    assert twice.status_code == 409
    assert 'data-testid="refused"' in twice.content.decode()
    assert issuance.deliveries.count() == 2


def test_a_bad_corrected_contact_is_a_400_on_the_address(client, rep):
    issuance = given(rep)
    Delivery.objects.filter(issuance=issuance).update(status=Delivery.Status.DEAD)
    response = client.post(f"/csr/issuances/{issuance.pk}/resend/", {"channel": "email", "address": "nope"}, **HX)
    assert response.status_code == 400
    assert 'data-field="address"' in response.content.decode()
    assert issuance.deliveries.count() == 1


def test_the_budget_lists_the_customers_currency_first(client):
    from appease.issuance.models import LimitBudget

    policy = policy_create(currency="USD", day_cost_amount=Decimal("10"))
    for currency in ("BRL", "EUR"):
        LimitBudget.objects.create(policy=policy, currency=currency, day_cost_amount=Decimal("10"))
    client.force_login(staff_user(policy=policy))
    customer = customer_create(currency="EUR")
    page = client.get(f"/csr/customers/{customer.pk}/").content.decode()
    order = [page.index(f'data-testid="budget-{c}"') for c in ("EUR", "BRL", "USD")]
    assert order == sorted(order)
    assert page.index("other-budgets") < order[1]


def test_approval_refusals_are_4xx_rows_with_the_reason(client):
    rep = staff_user(policy=policy_create(day_cost_amount=Decimal("0")))
    pending = issuance_create(
        actor=Actor(user=rep), customer=customer_create(), offer=offer_create(), reason_code=reason_create()
    )
    client.force_login(staff_user("Supervisor", policy=policy_create()))
    response = client.post(f"/csr/approvals/{pending.pk}/reject/", {"comment": ""}, **HX)
    assert response.status_code == 400
    assert "Say why the issuance is rejected." in response.content.decode()
    assert 'data-testid="approval-row"' in response.content.decode()


def test_the_case_page_issue_form_gives_once_when_sent_twice(client, rep):
    from feedback.services.cases import case_claim
    from tests.feedback.conftest import open_case

    # given: the rep works a case; the page's form carries a key
    case = open_case()
    case_claim(actor=Actor(user=rep), case_id=case.pk)
    key = key_of(client.get(f"/csr/cases/{case.pk}/").content.decode())
    data = {
        "offer": offer_create().pk,
        "reason_code": reason_create().pk,
        "channel": "email",
        "note": "",
        "idempotency_key": key,
    }
    # when: the form arrives twice
    client.post(f"/csr/cases/{case.pk}/issue/", data)
    second = client.post(f"/csr/cases/{case.pk}/issue/", data, follow=True)
    # then: one appeasement, and the rep is told the second gave nothing
    assert Issuance.objects.filter(case=case).count() == 1
    assert "it is not given twice" in second.content.decode()
