from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from coupons.models import Code, CodeEvent, Redemption
from coupons.services.inventory import code_void
from tests.factories import gift_card_offer_create, issued_code, offer_create

pytestmark = pytest.mark.django_db

VALIDATE = "/api/v1/codes/validate"
REDEEM = "/api/v1/redemptions"


def reverse_url(redemption_id) -> str:
    return f"/api/v1/redemptions/{redemption_id}/reverse"


def redeem_body(code: str, **overrides) -> dict:
    return {"code": code, "order_id": "A-1", "order_total": "40.00", "currency": "USD", **overrides}


# --- validate ----------------------------------------------------------------------


def test_validate_reports_discount_and_changes_nothing(api):
    # given
    issued = issued_code(value_amount=Decimal("7.50"))
    # when
    response = api.post(VALIDATE, {"code": issued.plaintext, "order_total": "40.00", "currency": "USD"}, format="json")
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is True
    assert body["discount"] == "7.50"
    assert body["currency"] == "USD"
    assert body["kind"] == "amount_off"
    assert body["expires_at"] is not None
    issued.code.refresh_from_db()
    assert issued.code.status == Code.Status.ISSUED
    assert Redemption.objects.count() == 0


def test_validate_normalises_case_spaces_and_dashes(api):
    issued = issued_code()
    typed = "  " + issued.plaintext.replace("-", " ").lower() + " "
    response = api.post(VALIDATE, {"code": typed, "order_total": "40", "currency": "USD"}, format="json")
    assert response.json()["valid"] is True


def test_validate_percent_off_rounds_to_the_currency_and_respects_the_cap(api):
    issued = issued_code(
        kind="percent_off", value_amount=Decimal("0"), percent=Decimal("15"), max_discount_amount=Decimal("10.00")
    )
    small = api.post(VALIDATE, {"code": issued.plaintext, "order_total": "33.33", "currency": "USD"}, format="json")
    large = api.post(VALIDATE, {"code": issued.plaintext, "order_total": "500", "currency": "USD"}, format="json")
    assert small.json()["discount"] == "5.00"  # 4.9995 rounds half up
    assert large.json()["discount"] == "10.00"


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("available", "unknown"),
        ("random", "unknown"),
        ("redeemed", "redeemed"),
        ("expired", "expired"),
        ("voided", "voided"),
        ("currency", "currency_mismatch"),
        ("min_order", "below_min_order"),
    ],
)
def test_validate_reasons(api, merchant_key, setup, reason):
    # given
    offer = offer_create(min_order_amount=Decimal("30.00"))
    issued = issued_code(offer)
    code, total, currency = issued.plaintext, "40.00", "USD"
    if setup == "available":
        from coupons.services.inventory import code_batch_import

        code_batch_import(offer=offer, text="NEVERISSUED1234\n")
        code = "NEVERISSUED1234"
    elif setup == "random":
        code = "ABCD-EFGH-JKMN-PQRS-T"
    elif setup == "redeemed":
        assert api.post(REDEEM, redeem_body(code), format="json").status_code == 201
    elif setup == "expired":
        Code.objects.filter(pk=issued.code.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    elif setup == "voided":
        code_void(code=issued.code, actor=None, reason="customer abused it")
    elif setup == "currency":
        currency = "EUR"
    elif setup == "min_order":
        total = "29.99"
    # when
    response = api.post(VALIDATE, {"code": code, "order_total": total, "currency": currency}, format="json")
    # then
    assert response.status_code == 200
    assert response.json() == {"valid": False, "reason": reason}


# --- redeem ------------------------------------------------------------------------


def test_redeem_once_then_409(api, merchant_key):
    # given
    issued = issued_code()
    # when
    first = api.post(REDEEM, redeem_body(issued.plaintext), format="json")
    second = api.post(REDEEM, redeem_body(issued.plaintext, order_id="A-2"), format="json")
    # then
    assert first.status_code == 201
    body = first.json()
    assert body["code_last4"] == issued.code.last4
    assert body["discount"] == "5.00"
    assert body["balance_remaining"] is None
    assert second.status_code == 409
    assert second.json()["error"] == "already_redeemed"
    issued.code.refresh_from_db()
    assert issued.code.status == Code.Status.REDEEMED
    assert Redemption.objects.count() == 1
    event = CodeEvent.objects.get(kind=CodeEvent.Kind.REDEEMED)
    assert (event.from_status, event.to_status, event.actor_merchant) == ("issued", "redeemed", merchant_key[0])


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda issued: Code.objects.filter(pk=issued.code.pk).update(expires_at=timezone.now()), "expired"),
        (lambda issued: code_void(code=issued.code, actor=None, reason="fraud"), "voided"),
    ],
)
def test_redeem_refusals_are_422(api, mutate, error):
    issued = issued_code()
    mutate(issued)
    response = api.post(REDEEM, redeem_body(issued.plaintext), format="json")
    assert response.status_code == 422
    assert response.json()["error"] == error
    assert Redemption.objects.count() == 0


def test_redeem_unknown_code_is_422(api):
    response = api.post(REDEEM, redeem_body("ZZZZ-ZZZZ-ZZZZ-ZZZZ-Z"), format="json")
    assert response.status_code == 422
    assert response.json()["error"] == "unknown"


def test_redeem_gift_card_takes_min_of_balance_and_total(api):
    # given
    issued = issued_code(gift_card_offer_create(value_amount=Decimal("50.00")))
    # when
    first = api.post(REDEEM, redeem_body(issued.plaintext, order_total="30.00"), format="json")
    second = api.post(REDEEM, redeem_body(issued.plaintext, order_id="A-2", order_total="45.00"), format="json")
    third = api.post(REDEEM, redeem_body(issued.plaintext, order_id="A-3", order_total="1.00"), format="json")
    # then
    assert (first.json()["discount"], first.json()["balance_remaining"]) == ("30.00", "20.00")
    assert (second.json()["discount"], second.json()["balance_remaining"]) == ("20.00", "0.00")
    assert third.status_code == 409
    issued.code.refresh_from_db()
    assert issued.code.balance_amount == 0
    assert issued.code.status == Code.Status.REDEEMED
    amounts = list(CodeEvent.objects.filter(code=issued.code).order_by("id").values_list("amount", flat=True))
    assert amounts == [Decimal("50.00"), Decimal("-30.00"), Decimal("-20.00")]


# --- idempotency -------------------------------------------------------------------


def test_replay_with_same_key_returns_first_response_without_second_effect(api):
    issued = issued_code(gift_card_offer_create())
    body = redeem_body(issued.plaintext, order_total="10.00")
    first = api.post(REDEEM, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    replay = api.post(REDEEM, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    issued.code.refresh_from_db()
    assert issued.code.balance_amount == Decimal("40.00")
    assert Redemption.objects.count() == 1


def test_replay_of_a_refusal_returns_the_refusal(api):
    issued = issued_code()
    Code.objects.filter(pk=issued.code.pk).update(expires_at=timezone.now())
    body = redeem_body(issued.plaintext)
    first = api.post(REDEEM, body, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    replay = api.post(REDEEM, body, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert first.status_code == replay.status_code == 422
    assert replay.json() == first.json()


def test_same_key_with_another_body_is_422(api):
    issued = issued_code()
    api.post(REDEEM, redeem_body(issued.plaintext), format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    other = api.post(REDEEM, redeem_body(issued.plaintext, order_id="B-9"), format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    assert other.status_code == 422
    assert other.json()["error"] == "idempotency_key_reused"


def test_an_idempotency_key_over_255_characters_is_400_and_the_schema_says_so(api):
    """Found by the fuzzer: the schema allowed any string, the API refuses past 255."""
    issued = issued_code()
    response = api.post(REDEEM, redeem_body(issued.plaintext), format="json", HTTP_IDEMPOTENCY_KEY="k" * 256)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_idempotency_key")
    assert Redemption.objects.count() == 0
    schema = SchemaGenerator().get_schema(request=None, public=True)
    [header] = schema["paths"][REDEEM]["post"]["parameters"]
    assert (header["name"], header["schema"]["minLength"], header["schema"]["maxLength"]) == ("Idempotency-Key", 1, 255)


def test_a_replay_runs_no_statement_the_database_refuses(api):
    """Before: every replay tried the INSERT and caught the unique violation, one ERROR
    line in PostgreSQL's server log per replay. Now the claim is ON CONFLICT DO NOTHING."""
    from django.db import connection

    # given: a redemption made with a key
    issued = issued_code()
    body = redeem_body(issued.plaintext)
    first = api.post(REDEEM, body, format="json", HTTP_IDEMPOTENCY_KEY="k-quiet")
    refused = []

    def record_failures(execute, sql, params, many, context):
        try:
            return execute(sql, params, many, context)
        except Exception as exc:
            refused.append((sql, exc))
            raise

    # when: the checkout retries it
    with connection.execute_wrapper(record_failures):
        again = api.post(REDEEM, body, format="json", HTTP_IDEMPOTENCY_KEY="k-quiet")
    # then
    assert (again.status_code, again.json()["id"]) == (201, first.json()["id"])
    assert again.headers["Idempotent-Replayed"] == "true"
    assert refused == []


def test_same_key_while_first_is_running_waits_then_is_409(api, merchant_key, settings):

    from appease.core.idempotency import idempotency_key_begin, request_fingerprint

    # given: the first request has claimed the key and does not finish within the wait
    settings.IDEMPOTENCY_WAIT = timedelta(milliseconds=100)
    issued = issued_code()
    body = redeem_body(issued.plaintext)
    idempotency_key_begin(
        scope="redemptions.create",
        owner=f"merchant:{merchant_key[0].pk}",
        key="k-4",
        fingerprint=request_fingerprint(body),
    )
    # when
    response = api.post(REDEEM, body, format="json", HTTP_IDEMPOTENCY_KEY="k-4")
    # then
    assert response.status_code == 409
    assert response.json()["error"] == "idempotency_key_in_use"
    assert Redemption.objects.count() == 0


def test_keys_are_per_merchant(api):
    from rest_framework.test import APIClient

    from tests.factories import merchant_with_key

    issued = issued_code(gift_card_offer_create())
    body = redeem_body(issued.plaintext, order_total="5.00")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Api-Key {merchant_with_key()[1]}")
    assert api.post(REDEEM, body, format="json", HTTP_IDEMPOTENCY_KEY="same").status_code == 201
    assert other.post(REDEEM, body, format="json", HTTP_IDEMPOTENCY_KEY="same").status_code == 201
    assert Redemption.objects.count() == 2


# --- reverse -----------------------------------------------------------------------


def test_reverse_coupon_makes_it_redeemable_again_and_twice_is_harmless(api):
    issued = issued_code()
    redemption_id = api.post(REDEEM, redeem_body(issued.plaintext), format="json").json()["id"]
    first = api.post(reverse_url(redemption_id), {"reason": "order cancelled"}, format="json")
    second = api.post(reverse_url(redemption_id), {"reason": "order cancelled"}, format="json")
    assert first.status_code == second.status_code == 200
    assert first.json()["status"] == "reversed"
    assert second.json() == first.json()
    assert CodeEvent.objects.filter(kind=CodeEvent.Kind.REDEMPTION_REVERSED).count() == 1
    again = api.post(REDEEM, redeem_body(issued.plaintext, order_id="A-2"), format="json")
    assert again.status_code == 201


def test_reverse_gift_card_gives_the_amount_back(api):
    issued = issued_code(gift_card_offer_create(value_amount=Decimal("20.00")))
    redemption_id = api.post(REDEEM, redeem_body(issued.plaintext, order_total="25.00"), format="json").json()["id"]
    issued.code.refresh_from_db()
    assert (issued.code.balance_amount, issued.code.status) == (Decimal("0"), Code.Status.REDEEMED)
    api.post(reverse_url(redemption_id), {"reason": "cancelled"}, format="json")
    api.post(reverse_url(redemption_id), {"reason": "cancelled"}, format="json")
    issued.code.refresh_from_db()
    assert (issued.code.balance_amount, issued.code.status) == (Decimal("20.00"), Code.Status.ISSUED)


def test_reverse_someone_elses_redemption_is_404(api):
    from rest_framework.test import APIClient

    from tests.factories import merchant_with_key

    issued = issued_code()
    redemption_id = api.post(REDEEM, redeem_body(issued.plaintext), format="json").json()["id"]
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Api-Key {merchant_with_key()[1]}")
    response = other.post(reverse_url(redemption_id), {"reason": "x"}, format="json")
    assert response.status_code == 404
    assert Redemption.objects.get().status == Redemption.Status.ACTIVE


# --- bad input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"order_total": "-1.00"}, "order_total"),
        ({"order_total": "0"}, "order_total"),
        ({"order_total": "ten"}, "order_total"),
        ({"order_total": "10.001"}, "order_total"),
        ({"order_total": "NaN"}, "order_total"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "US"}, "currency"),
        ({"code": "A" * 65}, "code"),
        ({"code": "ABC$%^"}, "code"),
        ({"code": ""}, "code"),
        ({"order_id": ""}, "order_id"),
    ],
)
def test_bad_input_is_400_with_field_errors_and_changes_nothing(api, overrides, field):
    issued = issued_code()
    body = {**redeem_body(issued.plaintext), **overrides}
    response = api.post(REDEEM, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]
    issued.code.refresh_from_db()
    assert issued.code.status == Code.Status.ISSUED
    assert Redemption.objects.count() == 0


def test_zero_decimal_currency_rejects_cents(api):
    issued = issued_code(currency="JPY", value_amount=Decimal("500"), cost_amount=Decimal("300"))
    bad = api.post(REDEEM, redeem_body(issued.plaintext, currency="JPY", order_total="1000.50"), format="json")
    good = api.post(REDEEM, redeem_body(issued.plaintext, currency="JPY", order_total="1000"), format="json")
    assert bad.status_code == 400
    assert "order_total" in bad.json()["fields"]
    assert good.status_code == 201
    assert good.json()["discount"] == "500"


@pytest.mark.parametrize("field", ["code", "order_id", "order_total", "currency"])
def test_missing_fields_are_named(api, field):
    body = redeem_body("ABCD-EFGH")
    del body[field]
    response = api.post(REDEEM, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_malformed_json_is_400(api):
    response = api.post(REDEEM, data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_request"


# --- authentication ----------------------------------------------------------------


def test_no_key_is_401_with_challenge(client):
    response = client.post(REDEEM, redeem_body("X"), content_type="application/json")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Api-Key"


def test_wrong_and_revoked_keys_are_refused(api, merchant_key):
    from rest_framework.test import APIClient

    from coupons.models import MerchantAPIKey

    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Api-Key abcdefgh.notthesecret")
    assert wrong.post(VALIDATE, {}, format="json").status_code == 401
    MerchantAPIKey.objects.filter(merchant=merchant_key[0]).update(revoked=True)
    assert api.post(VALIDATE, {}, format="json").status_code == 401


def test_a_logged_in_user_is_not_a_merchant(admin_client):
    response = admin_client.post(VALIDATE, {"code": "X"}, content_type="application/json")
    assert response.status_code in (401, 403)


def test_replay_after_a_reversal_still_returns_the_first_answer(api):
    issued = issued_code()
    body = redeem_body(issued.plaintext)
    first = api.post(REDEEM, body, format="json", HTTP_IDEMPOTENCY_KEY="k-5")
    api.post(reverse_url(first.json()["id"]), {"reason": "cancelled"}, format="json")
    replay = api.post(REDEEM, body, format="json", HTTP_IDEMPOTENCY_KEY="k-5")
    assert replay.status_code == 201
    assert replay.json() == first.json()
    assert Redemption.objects.count() == 1


def test_an_error_report_never_contains_the_code(api, monkeypatch):
    """A crash deep in a redemption: Django's error report (the 500 e-mail, the debug
    page, with every frame's local variables) shows none that holds the code."""
    import sys

    from django.core.signals import got_request_exception
    from django.views.debug import ExceptionReporter

    from coupons.services import redemption

    issued = issued_code()
    reports = []

    def report(sender, request, **kwargs):
        reports.append(ExceptionReporter(request, *sys.exc_info()).get_traceback_html())

    def crash(**kwargs):
        raise RuntimeError("database went away")  # a simulated crash below the view

    got_request_exception.connect(report)
    monkeypatch.setattr(redemption, "_redeem", crash)
    api.raise_request_exception = False
    try:
        # when
        response = api.post(REDEEM, redeem_body(issued.plaintext), format="json")
    finally:
        got_request_exception.disconnect(report)
    # then
    assert response.status_code == 500
    (html,) = reports
    assert "database went away" in html
    assert "raw_code" in html  # the frames are there, their values are not
    assert issued.plaintext not in html
    assert issued.plaintext.replace("-", "") not in html
