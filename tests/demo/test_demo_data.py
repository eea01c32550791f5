import re

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from rest_framework.test import APIClient

from coupons.models import Code, MerchantAPIKey, Offer

pytestmark = pytest.mark.django_db


def load_demo(history: int = 0) -> str:
    """The demo, without the history behind the reports unless asked (it takes seconds;
    tests/reporting/test_demo_history.py loads it whole)."""
    from io import StringIO

    out = StringIO()
    call_command("demo_data", history=history, stdout=out)
    return out.getvalue()


def test_demo_data_gives_people_offers_codes_and_a_working_key(settings):
    # given
    settings.DEBUG = True
    # when
    out = load_demo()
    # then
    assert User.objects.get(username="supervisor").groups.filter(name="Supervisor").exists()
    assert User.objects.filter(groups__name="CSR").count() == 3
    assert Offer.objects.filter(kind__in=["apology", "callback"]).count() == 2
    assert Code.objects.filter(status=Code.Status.AVAILABLE).count() >= 5 * 199
    key = re.search(r"APPEASE_KEY='([^']+)'", out).group(1)
    sample = re.search(r"^\s+(N[\w-]+|[A-Z0-9]{4}-[\w-]+)\s+\$5 off", out, re.MULTILINE).group(1)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    response = client.post(
        "/api/v1/redemptions",
        {"code": sample, "order_id": "demo-1", "order_total": "25.00", "currency": "USD"},
        format="json",
    )
    assert response.status_code == 201, response.json()


def test_demo_data_runs_twice_with_the_same_key_and_the_same_rows(settings):
    from appease.issuance.models import Customer, Issuance
    from feedback.models import Case, FollowUp

    # given a demo loaded once, with a small history, and its key exported
    settings.DEBUG = True
    first = load_demo(history=300)
    key = re.search(r"APPEASE_KEY='([^']+)'", first).group(1)
    counts = [
        model.objects.count() for model in (User, Customer, Offer, Code, Issuance, Case, FollowUp, MerchantAPIKey)
    ]

    # when it is loaded again (make demo restarted)
    second = load_demo(history=300)

    # then the same key is printed and still opens the checkout API; nothing was added
    assert re.search(r"APPEASE_KEY='([^']+)'", second).group(1) == key
    assert MerchantAPIKey.objects.is_valid(key)
    assert MerchantAPIKey.objects.filter(name="demo checkout", revoked=False).count() == 1
    assert [
        model.objects.count() for model in (User, Customer, Offer, Code, Issuance, Case, FollowUp, MerchantAPIKey)
    ] == counts
    # the sample codes are the same ones, still unused
    samples = re.findall(r"^  (\S+-\S+)\s+.+\((?:USD|EUR|BRL)\)$", first, re.MULTILINE)
    assert len(samples) == 6
    assert re.findall(r"^  (\S+-\S+)\s+.+\((?:USD|EUR|BRL)\)$", second, re.MULTILINE) == samples


def test_a_redeemed_sample_is_replaced_and_a_key_revoked_in_the_admin_comes_back(settings):
    # given a loaded demo whose $5 sample was redeemed (the README's walkthrough) and whose key was revoked
    settings.DEBUG = True
    first = load_demo()
    key = re.search(r"APPEASE_KEY='([^']+)'", first).group(1)
    sample = re.search(r"^\s+(\S+)\s+\$5 off", first, re.MULTILINE).group(1)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    redeemed = client.post(
        "/api/v1/redemptions",
        {"code": sample, "order_id": "demo-1", "order_total": "25.00", "currency": "USD"},
        format="json",
    )
    assert redeemed.status_code == 201, redeemed.json()
    MerchantAPIKey.objects.filter(name="demo checkout").update(revoked=True)

    # when the demo is loaded again
    second = load_demo()

    # then the same key works again and a fresh, unused $5 sample is printed
    assert re.search(r"APPEASE_KEY='([^']+)'", second).group(1) == key
    assert MerchantAPIKey.objects.is_valid(key)
    fresh = re.search(r"^\s+(\S+)\s+\$5 off", second, re.MULTILINE).group(1)
    assert fresh != sample


def test_the_demo_key_depends_on_the_secret_key(settings):
    from appease.demo.management.commands.demo_data import demo_merchant_key

    key = demo_merchant_key()
    settings.SECRET_KEY = "another-secret-key-for-another-demo"
    assert demo_merchant_key() != key
    assert re.fullmatch(r"[0-9a-f]{8}\.[0-9a-f]{32}", key)


def test_demo_data_refuses_debug_off(settings):
    from django.core.management.base import CommandError

    settings.DEBUG = False
    with pytest.raises(CommandError):
        load_demo()


def test_demo_reps_and_customers_speak_spanish_and_portuguese_with_their_currencies(settings):
    from appease.delivery.messages import message_compose
    from appease.delivery.models import Delivery
    from appease.issuance.models import LimitBudget, StaffProfile

    # given the demo
    settings.DEBUG = True

    # when it is loaded
    load_demo()

    # then reps work in Spanish and Portuguese, in their own time zones
    profiles = {p.user.username: (p.language, p.time_zone) for p in StaffProfile.objects.select_related("user")}
    assert profiles["ana"] == ("es", "Europe/Madrid")
    assert profiles["bruno"] == ("pt-br", "America/Sao_Paulo")
    # offers and budgets in euros and reais besides dollars
    assert set(Offer.objects.values_list("currency", flat=True)) >= {"USD", "EUR", "BRL"}
    assert set(LimitBudget.objects.values_list("currency", flat=True)) == {"USD", "EUR", "BRL"}
    # and the customers' appeasement messages are in their own language and currency
    spanish = Delivery.objects.get(customer__email="lucia.fernandez@example.es")
    portuguese = Delivery.objects.get(customer__email="joao.pereira@example.com.br")
    assert (spanish.language, portuguese.language) == ("es", "pt-br")
    spanish_text, portuguese_text = message_compose(delivery=spanish).text, message_compose(delivery=portuguese).text
    assert "Lucía" in spanish_text and "€" in spanish_text and "descuento" in spanish_text
    assert "João" in portuguese_text and "R$" in portuguese_text and "desconto" in portuguese_text


def test_loading_the_demo_twice_gives_no_second_appeasement(settings):
    from appease.issuance.models import Issuance

    settings.DEBUG = True
    load_demo()
    first = Issuance.objects.count()

    load_demo()

    assert Issuance.objects.count() == first == 3


def test_the_demo_prints_a_staff_token_and_has_an_administrator_for_staff_keys(settings, client):
    # given the demo, loaded twice (a restart)
    settings.DEBUG = True
    first = load_demo()
    out = load_demo()
    token = re.search(r"STAFF_TOKEN='([^']+)'", out).group(1)
    coupon, gift_card = re.search(r"export COUPON='([^']+)' GIFT_CARD='([^']+)'", out).groups()

    # then the token printed is the same, and acts as ana on the issuance API
    from appease.issuance.models import Customer

    assert re.search(r"STAFF_TOKEN='([^']+)'", first).group(1) == token
    # the README's customer 1 and offer 2 on a fresh database: the first customer and the second offer
    emily = Customer.objects.order_by("pk").first()
    five_off = Offer.objects.order_by("pk")[1]
    assert (emily.email, five_off.name) == ("emily.carter@example.com", "$5 off next order")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    issued = api.post(
        "/api/v1/issuances",
        {"customer_id": emily.pk, "offer_id": five_off.pk, "reason_code": "late-delivery", "note": "parcel late"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="call-5531",
    )
    assert issued.status_code == 201, issued.json()
    assert (issued.json()["csr"], issued.json()["offer"]) == ("ana", "$5 off next order")
    # the README's COUPON and GIFT_CARD are the $5 coupon and the $25 gift card
    assert re.search(rf"^  {re.escape(coupon)}\s+\$5 off next order \(USD\)$", out, re.MULTILINE)
    assert re.search(rf"^  {re.escape(gift_card)}\s+\$25 gift card \(USD\)$", out, re.MULTILINE)
    # the supervisor may not mint staff tokens; the demo's administrator may
    supervisor, admin = User.objects.get(username="supervisor"), User.objects.get(username="admin")
    assert admin.check_password("appease-demo") and admin.is_superuser
    client.force_login(supervisor)
    assert client.get("/admin/core/staffapikey/").status_code == 403
    client.force_login(admin)
    assert client.get("/admin/core/staffapikey/").status_code == 200


def test_the_named_customers_figures_are_their_orders(settings):
    from django.db.models import Count, Max, Sum

    from appease.issuance.models import Customer

    # given
    settings.DEBUG = True
    # when
    load_demo()
    # then each named customer's order count, spend and last order are their orders'
    customers = Customer.objects.annotate(
        n=Count("orders"), spent=Sum("orders__total_amount"), last=Max("orders__placed_at")
    )
    assert customers.count() == 5
    for customer in customers:
        assert (customer.orders_count, customer.total_spend_amount, customer.last_order_at) == (
            customer.n,
            customer.spent,
            customer.last,
        )
        assert customer.lifetime_value_amount == customer.spent
    assert Customer.objects.get(email="emily.carter@example.com").orders.first().reference == "US-10021"
