from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from appease.core.context import Actor
from appease.core.models import AuditEvent
from appease.issuance.models import Customer, LimitBudget, LimitPolicy
from appease.issuance.services.customers import customers_import
from tests.factories import offer_create, policy_create, staff_user

pytestmark = pytest.mark.django_db

GOOD_CSV = (
    "external_id,name,email,phone,preferred_channel,language,tier\n"
    "c-1,Lucía Pérez,lucia@example.com,+34612345678,sms,es,gold\n"
    "c-2,João Silva,joao@example.com,,email,pt-br,standard\n"
)


def test_customer_import_creates_every_row_and_audits_them():
    count = customers_import(actor=Actor(), text=GOOD_CSV)
    assert count == 2
    lucia = Customer.objects.get(external_id="c-1")
    assert (str(lucia.phone), lucia.preferred_channel, lucia.language) == ("+34612345678", "sms", "es")
    assert AuditEvent.objects.filter(action="customer.import").count() == 2


def test_customer_import_is_all_or_nothing_with_line_numbers():
    bad = GOOD_CSV + "c-3,Bad Phone,bad@example.com,12345,sms,es,gold\nc-1,Repeat,r@example.com,,email,en,gold\n"
    with pytest.raises(ValidationError) as error:
        customers_import(actor=Actor(), text=bad)
    messages = error.value.message_dict["file"]
    assert any(m.startswith("line 4: phone") for m in messages), messages
    assert any(m.startswith("line 5: external id repeats line 2") for m in messages), messages
    assert Customer.objects.count() == 0


def test_customer_import_refuses_unknown_columns():
    with pytest.raises(ValidationError):
        customers_import(actor=Actor(), text="name,password\nA,B\n")


def test_admin_customer_upload(admin_client):
    upload = SimpleUploadedFile("customers.csv", GOOD_CSV.encode())
    response = admin_client.post("/admin/appease/customer/import/", {"file": upload})
    assert response.status_code == 302
    assert Customer.objects.count() == 2


def test_limit_changes_in_the_admin_are_audited_with_before_and_after(client):
    # given
    supervisor = staff_user("Supervisor")
    client.force_login(supervisor)
    policy = policy_create(day_cost_amount=Decimal("10.00"))
    budget = policy.budgets.get()
    # when
    response = client.post(
        f"/admin/appease/limitpolicy/{policy.pk}/change/",
        {
            "name": policy.name,
            "over_limit": "refuse",
            "max_issuances_per_customer": "3",
            "customer_window_days": "30",
            "budgets-TOTAL_FORMS": "1",
            "budgets-INITIAL_FORMS": "1",
            "budgets-MIN_NUM_FORMS": "0",
            "budgets-MAX_NUM_FORMS": "1000",
            "budgets-0-id": str(budget.pk),
            "budgets-0-policy": str(policy.pk),
            "budgets-0-currency": "USD",
            "budgets-0-day_cost_amount": "25.00",
        },
    )
    # then
    assert response.status_code == 302, response.content.decode()[:2000]
    policy_event = AuditEvent.objects.get(action="limitpolicy.change")
    assert policy_event.actor == supervisor
    assert policy_event.before["over_limit"] == "approval"
    assert policy_event.after["over_limit"] == "refuse"
    budget_event = AuditEvent.objects.get(action="limitbudget.change")
    assert budget_event.before["day_cost_amount"] == "10.0000"
    assert budget_event.after["day_cost_amount"] == "25.00"
    assert LimitBudget.objects.get().day_cost_amount == Decimal("25.00")


def test_offer_changes_are_audited(admin_client):
    offer = offer_create(cost_amount=Decimal("3.00"))
    response = admin_client.post(
        f"/admin/coupons/offer/{offer.pk}/change/",
        {
            "name_en": offer.name,  # the short name is translatable, like the description
            "name_es": "",
            "name_pt_br": "",
            "kind": offer.kind,
            "description_en": "Now 6 off",
            "description_es": "",
            "description_pt_br": "",
            "is_active": "on",
            "currency": "USD",
            "value_amount": "6.00",
            "cost_amount": "4.00",
            "validity_days": "30",
            "min_order_amount": "0",
            "code_prefix": "",
            "low_inventory_threshold": "50",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    event = AuditEvent.objects.get(action="offer.change")
    assert (event.before["value_amount"], event.after["value_amount"]) == ("5.0000", "6.00")


@pytest.mark.parametrize(
    "url",
    [
        "/admin/appease/limitpolicy/",
        "/admin/appease/issuance/",
        "/admin/core/auditevent/",
        "/admin/coupons/offer/",
        "/admin/coupons/code/",
    ],
)
def test_supervisors_reach_the_admin_and_reps_do_not(client, url):
    client.force_login(staff_user("Supervisor"))
    assert client.get(url).status_code == 200
    client.force_login(staff_user("CSR"))
    assert client.get(url).status_code == 302  # to the admin login: reps are not staff


def test_nobody_edits_the_audit_log(admin_client):
    policy = LimitPolicy.objects.create(name="P")
    event = AuditEvent.objects.create(actor_label="system", action="x", object_type="t", object_id=str(policy.pk))
    assert admin_client.get(f"/admin/core/auditevent/{event.pk}/delete/").status_code == 403
    page = admin_client.get(f"/admin/core/auditevent/{event.pk}/change/").content.decode()
    assert 'name="_save"' not in page


def test_the_feedback_sites_embed_snippet_has_absolute_urls_and_its_endpoint(admin_client, settings):
    from feedback.models import FeedbackSite

    # given
    settings.PUBLIC_URL = "https://appease.example.com"
    site = FeedbackSite.objects.create(name="Shop", default_language="es")

    # when
    page = admin_client.get(f"/admin/feedback/feedbacksite/{site.pk}/change/").content.decode()

    # then: the tag to copy, as text (escaped), with the script, the key and the endpoint
    snippet = page[page.index('data-testid="embed-snippet"') :].split("</code>")[0]
    assert "&lt;script src=&quot;https://appease.example.com/static/feedback-widget.js&quot;" in snippet
    assert f"data-site-key=&quot;{site.public_key}&quot;" in snippet
    assert "data-endpoint=&quot;https://appease.example.com/api/v1/feedback&quot;" in snippet
    assert "data-language=&quot;es&quot;" in snippet
    assert "<script src=" not in snippet  # never a live tag in the admin
