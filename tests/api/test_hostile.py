"""The hostile-input suite: every API operation that takes a body gets what an attacker,
a broken client or a fuzzer sends, and must answer 4xx, name the field at fault, and
change nothing.

Nothing here is listed by hand. The operations come from the URL conf (drf-spectacular's
endpoint enumerator walks it) and their bodies from the OpenAPI schema: a new endpoint is
covered the day it appears, and one the schema does not describe fails the first test.
Each request carries the credentials of the client that really calls the operation (the
schema's security: a merchant's API key, a supervisor's staff token; the widget's site
key; the providers' callbacks signed as they sign them), so the hostile part reaches the
code behind the door. Then: malformed JSON, deep nesting, a body over the limit, arrays
and scalars for objects, and per field (nested ones too) wrong types, lone surrogates,
NUL, overflowing and non-finite numbers, too many decimals and 1 MB strings; and the
request without credentials and with wrong ones.

Every table is counted before and after each request: a refused request leaves no row.
"""

from __future__ import annotations

import json
import re
import time
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.db import connection
from django.http import QueryDict
from drf_spectacular.generators import EndpointEnumerator, SchemaGenerator
from rest_framework.test import APIClient

from appease.delivery.callbacks import twilio_signature
from appease.delivery.channels.webhook import sign
from tests.api.conftest import WORLD
from tests.api.hostile import DEEP, FOR_ANY, MARK

WRITES = {"POST", "PUT", "PATCH"}


def _write_endpoints() -> list[tuple[str, str]]:
    """(METHOD, path) of every API endpoint that accepts a write, from the URL conf."""
    return sorted(
        (method, path)
        for path, _regex, method, _callback in EndpointEnumerator().get_api_endpoints()
        if method in WRITES and path.startswith("/api/")
    )


SCHEMA = SchemaGenerator().get_schema(request=None, public=True)
ENDPOINTS = _write_endpoints()


def _operation(method: str, path: str) -> dict:
    return SCHEMA["paths"][path][method.lower()]


def _resolve(schema: dict) -> dict:
    while "$ref" in schema:
        schema = SCHEMA["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _resolve(schema["allOf"][0])
    return schema


def _body_schema(operation: dict) -> tuple[str, dict] | None:
    body = operation.get("requestBody")
    if not body:
        return None
    media_type, content = next(iter(body["content"].items()))
    return media_type, _resolve(content["schema"])


# --- plausible bodies: every required field with a value the operation can use ----------

REAL = {
    "site_key": lambda: WORLD.site_key,
    "code": lambda: WORLD.codes[1],
    "customer_id": lambda: WORLD.customer_ids[0],
    "offer_id": lambda: WORLD.offer_ids[0],
    "reason_code": lambda: WORLD.reason_codes[0],
    "currency": lambda: "USD",
    "order_total": lambda: "40.00",
    "order_id": lambda: "A-hostile",
    "event_id": lambda: "E-hostile",
    "event_type": lambda: "delivery_delayed",
    "email": lambda: "pat@example.com",
    "phone": lambda: "+14155550123",
    "text": lambda: "My parcel is late",
    "name": lambda: "Pat Doe",
    "id": lambda: WORLD.provider_message_ids[0],
    "status": lambda: "delivered",
    "MessageSid": lambda: WORLD.provider_message_ids[0],
    "MessageStatus": lambda: "delivered",
}


def _plausible(name: str, schema: dict):
    schema = _resolve(schema)
    if name in REAL:
        return REAL[name]()
    if schema.get("enum"):
        return next(value for value in schema["enum"] if value not in ("", None))
    kind = schema.get("type")
    if kind == "object":
        return {
            key: _plausible(key, sub)
            for key, sub in (schema.get("properties") or {}).items()
            if key in schema.get("required", [])
        }
    return {"integer": 1, "number": 1, "boolean": False, "array": []}.get(kind, "plausible text")


def _base(schema: dict) -> dict:
    return _plausible("", schema) if schema.get("type") == "object" else {}


# --- what hostile clients send ------------------------------------------------------------

WRONG_TYPES = {
    "string": {"array": "[]", "object": "{}", "boolean": "true"},
    "integer": {"text": '"abc"', "array": "[]", "object": "{}", "fraction": "1.5", "overflowing": "1" + "0" * 30},
    "number": {"text": '"abc"', "array": "[]", "object": "{}", "too many decimals": "1.0000000000000000000001"},
    "boolean": {"text": '"maybe"', "array": "[]", "object": "{}"},
    "object": {"array for object": "[]", "text": '"x"', "number": "1"},
    "array": {"object for array": "{}", "text": '"x"'},
}
DECIMAL_STRINGS = {
    "too many decimals": '"1.0000000000000000000001"',
    "decimal overflow": '"1e400"',
    "NaN string": '"NaN"',
    "Infinity string": '"Infinity"',
}
# Inside a free-form object (an event's data), where any JSON is welcome: what the
# database cannot store, and what is too big to keep.
FOR_FREE_FORM = {
    key: FOR_ANY[key] for key in ("lone high surrogate", "NUL", "overflow to infinity", "deep nesting", "1 MB string")
}


def _field_cases(base: dict, schema: dict, prefix: str = ""):
    """(case name, body with one field hostile as raw JSON, the field's path)."""
    for name, sub in (schema.get("properties") or {}).items():
        sub = _resolve(sub)
        path = f"{prefix}{name}"
        kind = sub.get("type", "object" if "properties" in sub else "string")
        tokens = dict(FOR_ANY)
        tokens.update({f"wrong type: {label}": raw for label, raw in WRONG_TYPES.get(kind, {}).items()})
        if sub.get("format") == "decimal":
            tokens.update(DECIMAL_STRINGS)
        for label, raw in tokens.items():
            yield f"{path}: {label}", _with(base, prefix, name, MARK, raw), path
        if kind == "object" and sub.get("properties"):
            nested = {**_plausible(name, sub)}
            for label, body, sub_path in _field_cases(nested, sub, prefix=f"{path}."):
                yield label, _json_with(base, name, body), sub_path
        elif kind == "object":
            for label, raw in FOR_FREE_FORM.items():
                yield f"{path}.anything: {label}", _with(base, prefix, name, {"anything": MARK}, raw), path


def _with(base: dict, prefix: str, name: str, value, raw: str) -> str:
    """`base` as JSON with `name` set to `value`, whose MARK becomes the raw JSON."""
    text = json.dumps({**base, name: value})
    return text.replace(json.dumps(MARK), raw)


def _json_with(base: dict, name: str, raw_child: str) -> str:
    text = json.dumps({**base, name: MARK})
    return text.replace(json.dumps(MARK), raw_child)


def _body_cases(base: dict, schema: dict):
    """(case name, raw body): the body as a whole."""
    valid = json.dumps(base)
    yield "malformed JSON", valid[:-1] + ","
    yield "not JSON at all", "<xml/>"
    if schema.get("required"):  # where every field is optional, no body is a valid request
        yield "empty body", ""
    yield "deep nesting", DEEP
    yield "deep nesting in a field", valid[:-1] + ', "deep": ' + DEEP + "}"
    yield "body over the limit", valid[:-1] + ', "pad": "' + "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE + '"}'
    yield "array for object", "[" + valid + "]"
    yield "empty array", "[]"
    yield "string for object", '"text"'
    yield "null for object", "null"
    yield "number for object", "1e400"


# --- credentials per kind of client -------------------------------------------------------


def _credentials(operation: dict) -> dict:
    schemes = {name for requirement in operation.get("security") or [] for name in requirement}
    if "MerchantApiKey" in schemes:
        return {"HTTP_AUTHORIZATION": f"Api-Key {WORLD.merchant_key}"}
    if "StaffToken" in schemes:
        return {"HTTP_AUTHORIZATION": f"Token {WORLD.supervisor_token}"}
    return {}


def _wrong_credentials(operation: dict) -> dict[str, dict]:
    schemes = {name for requirement in operation.get("security") or [] for name in requirement}
    if "MerchantApiKey" in schemes:
        return {"no credentials": {}, "unknown key": {"HTTP_AUTHORIZATION": "Api-Key nope.nope"}}
    if "StaffToken" in schemes:
        return {
            "no credentials": {},
            "unknown token": {"HTTP_AUTHORIZATION": "Token nope.nope"},
            "a merchant's key": {"HTTP_AUTHORIZATION": f"Api-Key {WORLD.merchant_key}"},
        }
    return {}


def _signed(path: str, media_type: str, body: str) -> dict:
    """The providers sign their callbacks: sign the hostile body as they would, so it
    reaches the code behind the signature check."""
    if path.endswith("/callbacks/sms"):
        params = dict(QueryDict(body).items())
        return {
            "HTTP_X_TWILIO_SIGNATURE": twilio_signature(settings.SMS_AUTH_TOKEN, f"http://testserver{path}", params)
        }
    if path.endswith("/callbacks/webhook"):
        now = str(int(time.time()))
        return {"HTTP_X_APPEASE_TIMESTAMP": now, "HTTP_X_APPEASE_SIGNATURE": sign(settings.WEBHOOK_SECRET, now, body)}
    return {}


def _url(path: str) -> str:
    real = {
        "issuance_id": WORLD.issuance_ids[-1],  # waiting for approval: every decision applies
        "redemption_id": WORLD.redemption_ids[0],
        "case_id": WORLD.case_ids[0],
        "customer_id": WORLD.customer_ids[0],
        "endpoint_id": WORLD.webhook_endpoint_ids[0],
    }
    return re.sub(r"\{(\w+)\}", lambda match: str(real[match.group(1)]), path)


# --- what must hold -------------------------------------------------------------------------


def _row_counts() -> dict[str, int]:
    tables = sorted(connection.introspection.table_names())
    q = connection.ops.quote_name
    sql = "SELECT " + ", ".join(f"(SELECT COUNT(*) FROM {q(table)})" for table in tables)  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return dict(zip(tables, cursor.fetchone(), strict=True))


def _named(fields) -> set[str]:
    """Every path an error names, nested errors flattened: {"customer": {"email": …}} →
    customer.email; flat ones (data.customers[0].name) as they are."""
    names = set()
    if isinstance(fields, dict):
        for key, value in fields.items():
            names.add(str(key))
            names.update(f"{key}.{inner}" for inner in _named(value))
    return names


def _names_the_field(body: dict, path: str) -> bool:
    named = _named(body.get("fields"))
    return any(name == path or name.startswith((f"{path}.", f"{path}[")) for name in named)


def _check(client, method, url, body, content_type, headers, *, field=None):
    """The answer's problem, or None: a 4xx, the field named (when a field is at fault
    and the answer is about fields), and no row changed."""
    before = _row_counts()
    response = client.generic(method, url, body, content_type=content_type, **headers)
    after = _row_counts()
    problems = []
    if not 400 <= response.status_code < 500:
        problems.append(f"answered {response.status_code}")
    if response.get("Content-Type", "").startswith("application/json"):
        answer = response.json()
        if field and answer.get("error") == "invalid" and not _names_the_field(answer, field):
            problems.append(f"400 does not name {field}: {sorted(_named(answer.get('fields')))}")
    else:
        problems.append(f"not a JSON answer: {response.get('Content-Type')}")
    changed = {table: (before[table], after[table]) for table in before if before[table] != after.get(table)}
    if changed:
        problems.append(f"rows changed: {changed}")
    return "; ".join(problems) or None


def test_every_api_write_in_the_url_conf_is_described_by_the_schema():
    """The suite below reads bodies from the schema: an undescribed endpoint would escape it."""
    assert ENDPOINTS, "no API endpoint found in the URL conf"
    for method, path in ENDPOINTS:
        assert method.lower() in SCHEMA["paths"].get(path, {}), f"{method} {path} is not in the OpenAPI schema"


@pytest.mark.parametrize(("method", "path"), ENDPOINTS, ids=[f"{m} {p}" for m, p in ENDPOINTS])
def test_hostile_input_is_refused_naming_the_field_and_changes_nothing(world, method, path):
    operation = _operation(method, path)
    url = _url(path)
    client = APIClient()
    failures = []
    described = _body_schema(operation)

    # Without credentials, or with wrong ones: refused at the door.
    for label, headers in _wrong_credentials(operation).items():
        problem = _check(client, method, url, "{}", "application/json", headers)
        if problem:
            failures.append(f"{label}: {problem}")

    if described is None:
        # The operation takes no body: nothing more to send it.
        assert not failures, "\n".join(failures)
        return

    media_type, schema = described
    base = _base(schema)
    credentials = _credentials(operation)

    if media_type == "application/x-www-form-urlencoded":
        # A form carries text only (invalid UTF-8 is replaced as it is decoded): what is
        # left is size, NUL and missing fields. The providers' SMS callbacks are signed
        # over the parsed fields; an unsigned one is refused before them.
        cases = [
            ("body over the limit", urlencode({**base, "pad": "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE}), None),
            *((f"{name}: NUL", urlencode({**base, name: "a\x00b"}), name) for name in base),
            *((f"{name}: 1 MB string", urlencode({**base, name: "x" * 1_000_000}), name) for name in base),
            ("unsigned", urlencode(base), None),
        ]
        for label, body, field in cases:
            headers = {**credentials, **({} if label == "unsigned" else _signed(url, media_type, body))}
            problem = _check(client, method, url, body, media_type, headers, field=field)
            if problem:
                failures.append(f"{label}: {problem}")
        assert not failures, "\n".join(failures)
        return

    cases = [(label, body, None) for label, body in _body_cases(base, schema)]
    cases += list(_field_cases(base, schema))
    for label, body, field in cases:
        headers = {**credentials, **_signed(url, media_type, body)}
        problem = _check(client, method, url, body, media_type, headers, field=field)
        if problem:
            failures.append(f"{label}: {problem}")
    if path.endswith("/callbacks/webhook"):
        problem = _check(client, method, url, json.dumps(base), media_type, {})
        if problem:
            failures.append(f"unsigned: {problem}")
    assert not failures, f"{len(failures)} of {len(cases)} hostile requests were not refused cleanly:\n" + "\n".join(
        failures
    )
