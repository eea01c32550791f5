"""Property-based fuzzing of the whole API against its own OpenAPI schema (Schemathesis).

Every operation is called in-process through the real WSGI application, as each kind of
client that uses it: a merchant's API key, a rep's and a supervisor's staff token (given
to Schemathesis as the operation's credentials, so its auth checks can take them away),
the feedback widget's site key, and the providers' callbacks signed as the providers
sign them. Every Schemathesis check runs: no 5xx; status code, content type, headers
and body as the schema says; a schema-valid request is not refused as invalid; a
schema-invalid one is refused; credentials are enforced; an undocumented method is 405.

Two runs per kind of client: schema-valid requests, where hooks swap real ids, codes and
the site key into a share of them so operations reach their real code paths; and
schema-invalid requests as generated (a hook could repair the very part that was made
invalid). The runs are derandomized: the same examples every time, in CI too.
"""

from __future__ import annotations

import json
import os
import time

import schemathesis
from django.conf import settings as django_settings
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

from appease.delivery.callbacks import twilio_signature
from appease.delivery.channels.webhook import sign
from appease.wsgi import application
from tests.api.conftest import WORLD
from tests.api.hostile import FOR_ANY, WHOLE_BODY, with_raw

MERCHANT_OPERATIONS = [
    "codes_validate",
    "redemptions_create",
    "redemptions_reverse",
    "events_create",
    "redemptions_list",
    "redemptions_retrieve",
]
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
    "customers_partial_update",
    "offers_list",
    "reason_codes_list",
    "recommendations_list",
    "issuances_retrieve",
    "cases_list",
    "cases_next",
    "cases_resolve",
    "cases_create",
    "cases_retrieve",
    "cases_claim",
    "cases_reply",
    "cases_issue",
    "cases_reassign",
    "cases_escalate",
    "webhook_endpoints_list",
    "webhook_endpoints_create",
    "webhook_endpoints_retrieve",
    "webhook_endpoints_update",
    "webhook_endpoints_destroy",
    "webhook_endpoints_rotate_secret",
]
PUBLIC_OPERATIONS = ["feedback_create", "delivery_callback_sms", "delivery_callback_webhook"]

FUZZ = settings(
    # Per operation and run: 20 keeps the whole file to a few minutes on two cores (each
    # example also runs the checks' probes); FUZZ_MAX_EXAMPLES=500 digs deeper by hand.
    max_examples=int(os.environ.get("FUZZ_MAX_EXAMPLES", "20")),
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


# Where a schema-valid request may still be refused as invalid (400 naming the field),
# because the rule depends on data or on several fields together, which OpenAPI cannot
# say: there `positive_data_acceptance` is off; every other check still runs.
DATA_DEPENDENT = {
    "codes_validate": "the total must fit the currency's decimal places (0 for JPY, 3 for KWD)",
    "redemptions_create": "the total must fit the currency's decimal places (0 for JPY, 3 for KWD)",
    "events_create": "each customer of `data` needs a valid email, phone or external id (free-form JSON)",
    "customers_create": "the preferred channel needs its contact detail",
    "customers_partial_update": "the preferred channel needs its contact detail",
    "customers_search": "q or one of the look-ups is needed (OpenAPI cannot say one of several)",
    "offers_list": "the customer must exist",
    "recommendations_list": "the customer must exist",
    "issuances_create": "the offer, reason and customer must exist; customer_id or customer, not both",
    "issuances_resend": "the customer must have a contact on the chosen channel",
    "feedback_create": "the site key must be a known, active site's",
    "cases_create": "the customer must exist",
    "cases_reply": "the template and reason must exist; words of its own or a template's",
    "cases_issue": "the offer and reason must exist; the customer must have a contact on the chosen channel",
    "cases_reassign": "the username must be an active rep's or supervisor's",
    "webhook_endpoints_create": "the URL must be http(s) and resolve outside private networks (the SSRF guard)",
    "webhook_endpoints_update": "the URL must be http(s) and resolve outside private networks (the SSRF guard)",
}
# 422 is our documented business refusal (currency_mismatch, below_min_order, …): a
# schema-valid request may get it.
ACCEPTED = ["2xx", "401", "403", "404", "409", "422", "429"]


def _config(mode: str, **extra) -> schemathesis.Config:
    # DATA_DEPENDENT is applied per call (`_call`), not as per-operation entries here:
    # an entry naming an operation also selects it, so every test's `include` fuzzed every
    # operation those entries named (the merchant's tests ran the staff and public ones).
    return schemathesis.Config.from_dict(
        {
            "generation": {"mode": mode},
            "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED}},
            **extra,
        }
    )


schema = schemathesis.openapi.from_wsgi(SCHEMA_URL, application, config=_config("positive"))
invalid_schema = schemathesis.openapi.from_wsgi(SCHEMA_URL, application, config=_config("negative"))
# Without credentials every request stops at the door: the boundary-value (coverage)
# phase would only send hundreds more requests to the same refusal.
doorstep_schema = schemathesis.openapi.from_wsgi(
    SCHEMA_URL, application, config=_config("all", phases={"coverage": {"enabled": False}})
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
    if label == "POST /api/v1/cases":
        return _swap(body, customer_id=WORLD.customer_ids, text=["My parcel is three days late"])
    if label == "POST /api/v1/cases/{case_id}/issue":
        return _swap(body, offer_id=WORLD.offer_ids, reason_code=WORLD.reason_codes)
    if label == "POST /api/v1/cases/{case_id}/reply":
        return _swap(body, reason_code=WORLD.reason_codes, text=["So sorry about that."])
    if label == "POST /api/v1/cases/{case_id}/reassign":
        return _swap(body, assigned_to=WORLD.staff_usernames)
    if label == "POST /api/v1/delivery/callbacks/sms":
        return _swap(body, MessageSid=WORLD.provider_message_ids, MessageStatus=["delivered", "failed", "undelivered"])
    if label == "POST /api/v1/delivery/callbacks/webhook":
        return _swap(body, id=WORLD.provider_message_ids, status=["delivered", "failed", "read"])
    return st.just(body)


def flatmap_path_parameters(context, path_parameters):
    """Real ids in a share of the paths, so operations get past their 404."""
    return _swap(
        path_parameters,
        issuance_id=WORLD.issuance_ids,
        redemption_id=WORLD.redemption_ids,
        customer_id=WORLD.customer_ids,
        case_id=WORLD.case_ids,
        endpoint_id=WORLD.webhook_endpoint_ids,
    )


def flatmap_query(context, query):
    """Real customers in a share of the queries that name one (the offers they may be
    given, the recommendations for them), so those operations get past their 400."""
    return _swap(query, customer_id=WORLD.customer_ids)


for _schema in (schema, doorstep_schema):
    for _hook in (flatmap_body, flatmap_path_parameters, flatmap_query):
        _schema.hook(_hook)


class _Credentials:
    """The client's credentials, given to Schemathesis as the operation's authentication
    (so `ignored_auth` knows what to take away). Subclasses name the header value."""

    def value(self) -> str:
        raise NotImplementedError

    def get(self, case, ctx):
        return self.value()

    def set(self, case, data, ctx):
        case.headers = {**(case.headers or {}), "Authorization": data}


class MerchantKey(_Credentials):
    def value(self):
        return f"Api-Key {WORLD.merchant_key}"


class RepToken(_Credentials):
    def value(self):
        return f"Token {WORLD.csr_token}"


class SupervisorToken(_Credentials):
    def value(self):
        return f"Token {WORLD.supervisor_token}"


def _signed(case) -> None:
    """Sign a provider callback as the provider does (the body exactly as it is sent)."""
    now = str(int(time.time()))
    if case.path.endswith("/callbacks/sms") and isinstance(case.body, dict):
        params = {str(key): str(value) for key, value in case.body.items()}
        url = f"http://localhost{case.formatted_path}"
        signature = twilio_signature(django_settings.SMS_AUTH_TOKEN, url, params)
        case.headers = {**(case.headers or {}), "X-Twilio-Signature": signature}
    elif case.path.endswith("/callbacks/webhook"):
        if isinstance(case.body, bytes):
            body = case.body  # raw (a hostile case): sent as it is
        else:
            try:
                body = json.dumps(case.body)  # as the transport serialises it
            except TypeError:
                return  # no body at all (a negative case): nothing to sign
        signature = sign(django_settings.WEBHOOK_SECRET, now, body)
        case.headers = {**(case.headers or {}), "X-Appease-Timestamp": now, "X-Appease-Signature": signature}


def _call(case):
    """Every check Schemathesis has; where valid-looking data may still be refused
    (DATA_DEPENDENT), all but positive-data acceptance."""
    excluded = [positive_data_acceptance] if case.operation.definition.raw.get("operationId") in DATA_DEPENDENT else []
    case.call_and_validate(excluded_checks=excluded)


@schema.include(operation_id=MERCHANT_OPERATIONS).parametrize()
@schema.auth.apply(MerchantKey, refresh_interval=None)
@FUZZ
def test_merchant_api(case, world):
    _call(case)


@invalid_schema.include(operation_id=MERCHANT_OPERATIONS).parametrize()
@invalid_schema.auth.apply(MerchantKey, refresh_interval=None)
@FUZZ
def test_merchant_api_refuses_invalid_requests(case, world):
    _call(case)


@schema.include(operation_id=STAFF_OPERATIONS).parametrize()
@schema.auth.apply(RepToken, refresh_interval=None)
@FUZZ
def test_staff_api_as_a_rep(case, world):
    _call(case)


@schema.include(operation_id=STAFF_OPERATIONS).parametrize()
@schema.auth.apply(SupervisorToken, refresh_interval=None)
@FUZZ
def test_staff_api_as_a_supervisor(case, world):
    _call(case)


@invalid_schema.include(operation_id=STAFF_OPERATIONS).parametrize()
@invalid_schema.auth.apply(SupervisorToken, refresh_interval=None)
@FUZZ
def test_staff_api_refuses_invalid_requests(case, world):
    _call(case)


@schema.include(operation_id=PUBLIC_OPERATIONS).parametrize()
@FUZZ
def test_public_api(case, world):
    _signed(case)
    _call(case)


@invalid_schema.include(operation_id=PUBLIC_OPERATIONS).parametrize()
@FUZZ
def test_public_api_refuses_invalid_requests(case, world):
    _signed(case)
    _call(case)


@doorstep_schema.include(operation_id=[*MERCHANT_OPERATIONS, *STAFF_OPERATIONS]).parametrize()
@settings(FUZZ, max_examples=10)  # every request is refused at the door: a few examples say it all
def test_merchant_and_staff_api_without_credentials(case, world):
    _call(case)


def test_the_fuzzers_signatures_are_the_providers(world):
    """The signed callbacks above reach the code behind the signature check."""
    for operation_id, body in (
        ("delivery_callback_sms", {"MessageSid": WORLD.provider_message_ids[0], "MessageStatus": "delivered"}),
        ("delivery_callback_webhook", {"id": WORLD.provider_message_ids[0], "status": "delivered"}),
    ):
        case = schema.find_operation_by_id(operation_id).Case(body=body, media_type=_media_type(operation_id))
        _signed(case)
        assert case.call().status_code == 204, operation_id


def _media_type(operation_id: str) -> str:
    return "application/x-www-form-urlencoded" if operation_id.endswith("sms") else "application/json"


# --- Hostile input (tests/api/test_hostile.py sends it exhaustively; here Hypothesis mixes
# it into schema-generated requests): one field of a generated body, or the body as a
# whole, made hostile. Every answer must be a 4xx, and every other check still holds
# (the schema documents 400 and 413 for every operation with a body). Only the check
# that a schema-valid request is accepted is off: these requests are not valid.

HOSTILE_OPERATIONS = {
    "merchant": ["codes_validate", "redemptions_create", "redemptions_reverse", "events_create"],
    "staff": [
        "issuances_create",
        "issuances_approve",
        "issuances_reject",
        "issuances_void",
        "issuances_resend",
        "customers_create",
        "customers_partial_update",
        "cases_resolve",
        "cases_create",
        "cases_reply",
        "cases_issue",
        "cases_reassign",
        "cases_escalate",
        "webhook_endpoints_create",
        "webhook_endpoints_update",
    ],
    "public": ["feedback_create", "delivery_callback_webhook"],
}

hostile_schema = schemathesis.openapi.from_wsgi(
    SCHEMA_URL,
    application,
    config=schemathesis.Config.from_dict(
        {
            "generation": {"mode": "positive"},
            "phases": {"coverage": {"enabled": False}, "examples": {"enabled": False}},
            "checks": {"positive_data_acceptance": {"enabled": False}},
        }
    ),
)


def hostile_body(context, body):
    """A generated body (real ids swapped in, as above) with one of the operation's
    fields, or the body as a whole, replaced by hostile raw JSON: sent as the bytes it is."""
    fields = _fields(context.operation.definition.raw)
    return flatmap_body(context, body).flatmap(lambda real: _hostile_variants(real, fields))


def _fields(operation: dict) -> list[str]:
    """The fields the operation's body schema names (the generator may add others,
    which the API ignores: a hostile value there proves nothing)."""
    schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    while "$ref" in schema:
        schema = hostile_schema.raw_schema["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return sorted(schema.get("properties") or {})


def _hostile_variants(body, fields: list[str]):
    if not isinstance(body, dict):
        body = {}
    valid = json.dumps(body)
    whole = st.sampled_from(sorted(WHOLE_BODY)).map(lambda name: WHOLE_BODY[name](valid).encode())
    if not fields:
        return whole
    per_field = st.tuples(st.sampled_from(fields), st.sampled_from(sorted(FOR_ANY))).map(
        lambda pick: with_raw(body, pick[0], FOR_ANY[pick[1]]).encode()
    )
    return st.one_of(per_field, whole)


hostile_schema.hook("flatmap_body")(hostile_body)
hostile_schema.hook(flatmap_path_parameters)


def _refused(case):
    response = case.call_and_validate()
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])


@hostile_schema.include(operation_id=HOSTILE_OPERATIONS["merchant"]).parametrize()
@hostile_schema.auth.apply(MerchantKey, refresh_interval=None)
@FUZZ
def test_merchant_api_refuses_hostile_input(case, world):
    _refused(case)


@hostile_schema.include(operation_id=HOSTILE_OPERATIONS["staff"]).parametrize()
@hostile_schema.auth.apply(SupervisorToken, refresh_interval=None)
@FUZZ
def test_staff_api_refuses_hostile_input(case, world):
    _refused(case)


@hostile_schema.include(operation_id=HOSTILE_OPERATIONS["public"]).parametrize()
@FUZZ
def test_public_api_refuses_hostile_input(case, world):
    _signed(case)
    _refused(case)


def test_every_operation_is_fuzzed():
    """A new endpoint must be added to one of the lists above (and so be fuzzed)."""
    operations = {result.ok().definition.raw["operationId"] for result in schema.get_all_operations()}
    assert operations == {*MERCHANT_OPERATIONS, *STAFF_OPERATIONS, *PUBLIC_OPERATIONS}
