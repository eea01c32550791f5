"""GET /api/v1/redemptions and /redemptions/{id}: a merchant reconciles its own
redemptions (key scope `redemptions:read`), a supervisor reads everyone's, a rep nobody's.
The code never leaves in full; hostile queries are 400s, never 500s."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from appease.core.models import StaffAPIKey
from coupons.models import MerchantAPIKey, Redemption
from coupons.services.redemption import redemption_create, redemption_reverse
from tests.factories import issued_code, merchant_with_key, offer_create, staff_user

LIST = "/api/v1/redemptions"


def keyed(header: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    return client


def redeem(merchant, order_id: str, *, total: str = "40.00") -> tuple[Redemption, str]:
    code = issued_code(offer_create()).plaintext
    redemption = redemption_create(
        merchant=merchant, raw_code=code, order_id=order_id, order_total=Decimal(total), currency="USD"
    )
    return redemption, code


@pytest.fixture
def shops(db):
    """Two merchants with keys and redemptions: A has three (one reversed, one older), B one."""
    shop_a, key_a = merchant_with_key("Shop A")
    shop_b, key_b = merchant_with_key("Shop B")
    a1, code_a1 = redeem(shop_a, "A-1")
    a2, _ = redeem(shop_a, "A-2")
    a3, _ = redeem(shop_a, "A-3")
    b1, _ = redeem(shop_b, "B-1")
    Redemption.objects.filter(pk=a3.pk).update(redeemed_at=timezone.now() - timedelta(days=10))
    redemption_reverse(merchant=shop_a, redemption_id=a2.pk, reason="Order cancelled")
    return {
        "a": keyed(f"Api-Key {key_a}"),
        "b": keyed(f"Api-Key {key_b}"),
        "a1": a1,
        "a2": a2,
        "a3": a3,
        "b1": b1,
        "code_a1": code_a1,
        "shop_a": shop_a,
    }


def ids(response) -> list[str]:
    return [row["id"] for row in response.json()["results"]]


def test_a_merchant_lists_only_its_own_redemptions_newest_first_without_codes(shops):
    response = shops["a"].get(LIST)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert ids(response) == [str(shops["a2"].pk), str(shops["a1"].pk), str(shops["a3"].pk)]
    first = next(row for row in body["results"] if row["id"] == str(shops["a1"].pk))
    plain = shops["code_a1"].replace("-", "")
    assert first["code_last4"] == plain[-4:]
    assert first["order_id"] == "A-1" and first["order_total"] == "40.00" and first["currency"] == "USD"
    assert first["status"] == "active" and first["merchant_id"] == shops["shop_a"].pk
    assert shops["code_a1"] not in response.content.decode() and plain not in response.content.decode()
    reversed_row = next(row for row in body["results"] if row["id"] == str(shops["a2"].pk))
    assert reversed_row["status"] == "reversed" and reversed_row["reverse_reason"] == "Order cancelled"


def test_filters_by_redemption_date_order_and_status(shops):
    since = (timezone.now() - timedelta(days=1)).isoformat()
    until = (timezone.now() - timedelta(days=5)).isoformat()

    assert set(ids(shops["a"].get(LIST, {"redeemed_after": since}))) == {str(shops["a1"].pk), str(shops["a2"].pk)}
    assert ids(shops["a"].get(LIST, {"redeemed_before": until})) == [str(shops["a3"].pk)]
    assert ids(shops["a"].get(LIST, {"order_id": "A-1"})) == [str(shops["a1"].pk)]
    assert ids(shops["a"].get(LIST, {"status": "reversed"})) == [str(shops["a2"].pk)]
    # another merchant's order reference finds nothing
    assert ids(shops["a"].get(LIST, {"order_id": "B-1"})) == []


def test_pages_with_the_shared_pagination(shops):
    first = shops["a"].get(LIST, {"page_size": 2})
    second = shops["a"].get(LIST, {"page_size": 2, "page": 2})

    assert first.json()["count"] == 3 and len(ids(first)) == 2 and first.json()["next"]
    assert len(ids(second)) == 1 and second.json()["next"] is None


def test_the_list_reads_in_a_fixed_number_of_queries(shops, django_assert_max_num_queries):
    for n in range(10):
        redeem(shops["shop_a"], f"A-extra-{n}")
    with django_assert_max_num_queries(4):  # the key, the count, the page (with code and merchant)
        response = shops["a"].get(LIST)
    assert response.json()["count"] == 13


def test_one_redemption_is_read_by_its_merchant_only(shops):
    own = shops["a"].get(f"{LIST}/{shops['a1'].pk}")
    others = shops["b"].get(f"{LIST}/{shops['a1'].pk}")
    unknown = shops["a"].get(f"{LIST}/{uuid.uuid4()}")

    assert own.status_code == 200 and own.json()["order_id"] == "A-1"
    assert shops["code_a1"] not in own.content.decode()
    assert others.status_code == 404 and others.json()["error"] == "not_found"
    assert unknown.status_code == 404


def test_supervisors_read_every_merchants_redemptions_and_reps_none(shops):
    supervisor, rep = staff_user("Supervisor"), staff_user("CSR")
    by_session = APIClient()
    by_session.force_login(supervisor)
    _key, supervisor_token = StaffAPIKey.objects.create_key(name="crm", user=supervisor)
    _key, rep_token = StaffAPIKey.objects.create_key(name="crm", user=rep)
    rep_session = APIClient()
    rep_session.force_login(rep)

    assert by_session.get(LIST).json()["count"] == 4
    assert keyed(f"Token {supervisor_token}").get(LIST).json()["count"] == 4
    assert keyed(f"Token {supervisor_token}").get(f"{LIST}/{shops['b1'].pk}").status_code == 200
    assert rep_session.get(LIST).status_code == 403
    assert keyed(f"Token {rep_token}").get(LIST).status_code == 403
    assert APIClient().get(LIST).status_code == 401


def test_reading_needs_the_read_scope_and_redeeming_still_needs_redeem(shops):
    # given the merchant's key narrowed to redeeming
    MerchantAPIKey.objects.filter(merchant=shops["shop_a"]).update(scopes=["redeem"])
    code = issued_code(offer_create()).plaintext

    # then it may no longer read, and still redeems on the same path
    refused = shops["a"].get(LIST)
    assert refused.status_code == 403 and refused.json()["error"] == "insufficient_scope"
    assert shops["a"].get(f"{LIST}/{shops['a1'].pk}").json()["error"] == "insufficient_scope"
    created = shops["a"].post(
        LIST, {"code": code, "order_id": "A-9", "order_total": "40.00", "currency": "USD"}, format="json"
    )
    assert created.status_code == 201

    # and a staff key with `read` cannot redeem (POST is merchants' only)
    supervisor = staff_user("Supervisor")
    _key, token = StaffAPIKey.objects.create_key(name="crm", user=supervisor)
    posted = keyed(f"Token {token}").post(
        LIST, {"code": code, "order_id": "A-10", "order_total": "40.00", "currency": "USD"}, format="json"
    )
    assert posted.status_code == 403


@pytest.mark.parametrize(
    "query",
    [
        {"redeemed_after": "yesterday"},
        {"redeemed_after": "9999-12-31T23:59:59-23:00"},
        {"order_id": "A\x00-1"},
        {"order_id": "x" * 101},
        {"status": "gone"},
        {"page_size": "abc"},
        {"page_size": "-1"},
        {"page": "99999999999999999999"},
        {"page": "-1"},
        {"page": ""},  # the schema says integer: empty is not the first page
        {"redeemed_after": ""},  # nor is an empty date "no filter"
    ],
)
def test_hostile_queries_are_refused_never_500(shops, query):
    response = shops["a"].get(LIST, query)

    assert response.status_code in (400, 404), response.content
    assert response.json()["error"] in ("invalid", "not_found")


@pytest.mark.parametrize(
    "raw",
    [
        "redeemed_after=%ED%A0%80",  # a lone surrogate, as UTF-8 bytes
        "redeemed_after=%FF%FE",  # not UTF-8
        "order_id=%00",
        "redeemed_before=0175-03-14T12:12:10%2B22:19",  # an offset PostgreSQL cannot hold
        "redeemed_after=2026-01-01&redeemed_after=2027-01-01",
    ],
)
def test_raw_hostile_query_strings_are_answered_never_500(shops, raw):
    response = shops["a"].get(f"{LIST}?{raw}")

    assert response.status_code in (200, 400), response.content
    assert "results" in response.json() or response.json()["error"] == "invalid"


@pytest.mark.parametrize("path", ["not-a-uuid", "00000000-0000-0000-0000-00000000000g", "%00", "..%2F..%2Fetc"])
def test_hostile_ids_are_404s(shops, path):
    response = shops["a"].get(f"{LIST}/{path}")
    assert response.status_code == 404
