"""Property-based fuzzing of the whole API against its own OpenAPI schema (Schemathesis).

Every operation is called in-process through the real WSGI application, as each kind of
client that uses it: a merchant's API key, a rep's and a supervisor's staff token, and
the public (the feedback widget's site key, unsigned provider callbacks). Generated
requests are valid and invalid by the schema; every answer must be no 5xx and match
the schema: status code, content type, headers and body.

Hooks swap real ids, codes and the site key into a share of the generated requests, so
operations reach their real code paths rather than only 400 and 404. The run is
derandomized: the same examples every time, in CI too.
"""

from __future__ import annotations

import os

import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from appease.wsgi import application
from tests.api.conftest import WORLD

MERCHANT_OPERATIONS = ["codes_validate", "redemptions_create", "redemptions_reverse", "events_create"]
STAFF_OPERATIONS = [
    "issuances_list",
    "issuances_create",
    "issuances_approve",
    "issuances_reject",
    "issuances_void",
    "issuances_resend",
    "customers_search",
    "customers_create",
    "customers_retrieve",
    "cases_list",
    "cases_next",
    "cases_resolve",
]
PUBLIC_OPERATIONS = ["feedback_create", "delivery_callback_sms", "delivery_callback_webhook"]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
FUZZ = settings(
    # 40 per operation keeps the run near a minute; FUZZ_MAX_EXAMPLES=500 digs deeper by hand.
    max_examples=int(os.environ.get("FUZZ_MAX_EXAMPLES", "40")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # the world is made once per operation, on purpose
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)

SCHEMA_URL = "/api/v1/schema/?format=json"
schema = schemathesis.openapi.from_wsgi(SCHEMA_URL, application)
# Without credentials every request stops at the door: the boundary-value (coverage)
# phase would only send hundreds more requests to the same refusal.
doorstep_schema = schemathesis.openapi.from_wsgi(
    SCHEMA_URL, application, config=schemathesis.Config.from_dict({"phases": {"coverage": {"enabled": False}}})
)

KEEP = object()


def _swap(value, **choices):
    """A strategy: `value` (a generated dict) with each named key replaced by one of its
    real choices, or kept as generated. Anything else (a negative case may send a list
    or a string) is sent as it is."""
    if not isinstance(value, dict):
        return st.just(value)
    keys = [key for key, options in choices.items() if options]

    def apply(picks):
        return {**value, **{key: pick for key, pick in zip(keys, picks, strict=True) if pick is not KEEP}}

    # Real values first: Hypothesis favours (and shrinks towards) the first choices.
    return st.tuples(*(st.sampled_from([*choices[key], KEEP]) for key in keys)).map(apply)


def _one_customer(body):
    """An issuance names a customer by id or inline, never both."""
    if isinstance(body, dict) and body.get("customer_id") in WORLD.customer_ids:
        body.pop("customer", None)
    return body


def flatmap_body(context, body):
    """Real site key, codes, ids and plausible values in a share of the bodies."""
    label = context.operation.label
    if label == "POST /api/v1/feedback":
        return _swap(
            body,
            site_key=[WORLD.site_key] * 3,  # an unknown key stops at validation: mostly the real one
            text=["My parcel is three days late!", "Lovely service, thank you"],
            email=["pat@example.com"],
            phone=["", "+14155550123"],
            page_url=["", "https://shop.example.com/orders/1"],
        )
    if label in ("POST /api/v1/codes/validate", "POST /api/v1/redemptions"):
        return _swap(body, code=WORLD.codes, currency=["USD", "EUR"], order_total=["40.00", "3", "0.01"])
    if label == "POST /api/v1/events":
        return _swap(
            body,
            event_type=["delivery_delayed"],
            data=[{"delay_minutes": 200, "customer": {"email": "pat@example.com"}}, {"customers": [{"phone": "x"}]}],
        )
    if label == "POST /api/v1/customers":
        return _swap(body, email=["pat@example.com"], phone=["+14155550123", ""], preferred_channel=["email"])
    if label == "POST /api/v1/issuances":
        strategy = _swap(body, customer_id=WORLD.customer_ids, offer_id=WORLD.offer_ids, reason_code=WORLD.reason_codes)
        return strategy.map(_one_customer)
    if label == "POST /api/v1/cases/{case_id}/resolve":
        return _swap(body, intervention=["apology", "discount", ""])
    return st.just(body)


def flatmap_path_parameters(context, path_parameters):
    """Real ids in a share of the paths, so operations get past their 404."""
    return _swap(
        path_parameters,
        issuance_id=WORLD.issuance_ids,
        redemption_id=WORLD.redemption_ids,
        customer_id=WORLD.customer_ids,
        case_id=WORLD.case_ids,
    )


for _schema in (schema, doorstep_schema):
    for _hook in (flatmap_body, flatmap_path_parameters):
        _schema.hook(_hook)


def _call(case, authorization: str | None = None):
    headers = {"Authorization": authorization} if authorization else {}
    case.call_and_validate(headers=headers, checks=CHECKS)


@schema.include(operation_id=MERCHANT_OPERATIONS).parametrize()
@FUZZ
def test_merchant_api(case, world):
    _call(case, f"Api-Key {world.merchant_key}")


@schema.include(operation_id=STAFF_OPERATIONS).parametrize()
@FUZZ
def test_staff_api_as_a_rep(case, world):
    _call(case, f"Token {world.csr_token}")


@schema.include(operation_id=STAFF_OPERATIONS).parametrize()
@FUZZ
def test_staff_api_as_a_supervisor(case, world):
    _call(case, f"Token {world.supervisor_token}")


@schema.include(operation_id=PUBLIC_OPERATIONS).parametrize()
@FUZZ
def test_public_api(case, world):
    _call(case)


@doorstep_schema.include(operation_id=[*MERCHANT_OPERATIONS, *STAFF_OPERATIONS]).parametrize()
@settings(FUZZ, max_examples=10)  # every request is refused at the door: a few examples say it all
def test_merchant_and_staff_api_without_credentials(case, world):
    _call(case)


def test_every_operation_is_fuzzed():
    """A new endpoint must be added to one of the lists above (and so be fuzzed)."""
    operations = {result.ok().definition.raw["operationId"] for result in schema.get_all_operations()}
    assert operations == {*MERCHANT_OPERATIONS, *STAFF_OPERATIONS, *PUBLIC_OPERATIONS}
