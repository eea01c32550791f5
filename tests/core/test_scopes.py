"""API key scopes (appease/core/scopes.py): every /api/v1 view declares the scope a key
needs, and each scope opens exactly the endpoints that declare it.

The endpoints come from walking the URL conf, and what each needs from the views'
declarations: a view added later is covered without touching this file.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

from appease.core.models import StaffAPIKey
from appease.core.permissions import StaffApiKeyAuthentication
from appease.core.scopes import (
    MERCHANT,
    MERCHANT_SCOPES,
    STAFF,
    STAFF_SCOPES,
    UNDECLARED,
    VOCABULARIES,
    ScopeRequired,
    declared_scopes,
    scopes_for,
    validate_merchant_scopes,
    validate_staff_scopes,
)
from coupons.auth import MerchantApiKeyAuthentication
from coupons.models import Merchant, MerchantAPIKey
from tests.factories import staff_user

API_PREFIX = "api/v1/"
METHODS = ("get", "post", "put", "patch", "delete")
PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")
SAMPLE = {"uuid": lambda: str(uuid.uuid4()), "int": lambda: "987654", "slug": lambda: "x", "str": lambda: "x"}


@dataclass(frozen=True)
class ApiView:
    route: str
    view_class: type


def api_views() -> list[ApiView]:
    """Every view under /api/v1/, from the URL conf."""

    def walk(resolver: URLResolver, prefix: str = ""):
        for pattern in resolver.url_patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern, route)
            elif isinstance(pattern, URLPattern) and route.startswith(API_PREFIX):
                callback = pattern.callback
                yield ApiView(route, getattr(callback, "cls", None) or getattr(callback, "view_class", None))

    return list(walk(get_resolver()))


def url_of(route: str) -> str:
    """The route with a sample value for each parameter (a row that does not exist)."""
    return "/" + PARAM.sub(lambda m: SAMPLE[m.group("converter") or "str"](), route.lstrip("^").rstrip("$"))


def methods_of(view_class) -> list[str]:
    declaration = declared_scopes(view_class)
    if isinstance(declaration, dict) and "*" not in declaration:
        return [method for method in declaration if method in {m.upper() for m in METHODS}]
    return [method.upper() for method in METHODS if hasattr(view_class, method)]


def kinds_of(view_class) -> set[str]:
    """Which kinds of key the view authenticates."""
    classes = set(getattr(view_class, "authentication_classes", []))
    return {
        kind
        for kind, auth in ((MERCHANT, MerchantApiKeyAuthentication), (STAFF, StaffApiKeyAuthentication))
        if auth in classes
    }


@dataclass(frozen=True)
class Call:
    kind: str
    method: str
    route: str
    opened_by: frozenset[str]  # the scopes (any one) that open it


def key_calls() -> list[Call]:
    """Every (method, endpoint) an API key can call and the scopes that open it."""
    calls = []
    for view in api_views():
        for method in methods_of(view.view_class):
            needed = scopes_for(view.view_class, method)
            if needed is None or needed is UNDECLARED:
                continue
            for kind in kinds_of(view.view_class):
                calls.append(Call(kind, method, view.route, frozenset(needed)))
    return calls


# --- Every view declares -----------------------------------------------------------------


def test_every_api_view_declares_its_scope_and_checks_it():
    # given every view the URL conf serves under /api/v1/
    views = api_views()
    assert len(views) >= 15  # the walk found the API

    # then each is a DRF view with a declaration and ScopeRequired among its permissions
    failures = []
    for view in views:
        cls = view.view_class
        if cls is None or not issubclass(cls, APIView):
            failures.append(f"{view.route}: not a DRF APIView ({cls!r})")
            continue
        declaration = declared_scopes(cls)
        if declaration is UNDECLARED:
            failures.append(f"{view.route} ({cls.__name__}): no required_scope / required_scopes")
        if not any(isinstance(permission, ScopeRequired) for permission in cls().get_permissions()):
            failures.append(f"{view.route} ({cls.__name__}): ScopeRequired is not among its permissions")
        if isinstance(declaration, dict):
            for method, scopes in declaration.items():
                if method != "*" and method.lower() not in METHODS:
                    failures.append(f"{view.route}: required_scopes names {method!r}, not an HTTP method")
                for scope in (scopes,) if isinstance(scopes, str) else scopes:
                    if not any(scope in vocabulary for vocabulary in VOCABULARIES.values()):
                        failures.append(f"{view.route}: {scope!r} is in no scope vocabulary")
            for method in METHODS:
                if hasattr(cls, method) and "*" not in declaration and method.upper() not in declaration:
                    failures.append(f"{view.route}: {method.upper()} has no scope in required_scopes")
        if declaration is not None and declaration is not UNDECLARED and not kinds_of(cls):
            failures.append(f"{view.route}: declares a scope but takes no API key")
    assert not failures, "\n".join(failures)


def test_the_existing_endpoints_declare_the_scopes_the_docs_name():
    declared = {(call.method, call.route): call.opened_by for call in key_calls()}
    assert declared[("POST", "api/v1/codes/validate")] == {"validate"}
    assert declared[("POST", "api/v1/redemptions")] == {"redeem"}
    assert declared[("GET", "api/v1/redemptions")] == {"redemptions:read", "read"}
    assert declared[("POST", "api/v1/redemptions/<uuid:redemption_id>/reverse")] == {"reverse"}
    assert declared[("POST", "api/v1/events")] == {"events"}
    assert declared[("POST", "api/v1/issuances")] == {"issue"}
    assert declared[("GET", "api/v1/issuances")] == {"read"}
    assert declared[("GET", "api/v1/cases")] == {"cases"}
    assert ("POST", "api/v1/feedback") not in declared  # open to the widget
    assert ("POST", "api/v1/delivery/callbacks/sms") not in declared  # signed by the provider


# --- Each scope opens exactly its endpoints -----------------------------------------------


@pytest.fixture
def keys_holding(db):
    """make(kind, scopes) → the Authorization header of a key holding exactly `scopes`:
    a merchant's, or a supervisor's staff key (so no role stands in the way)."""
    merchant = Merchant.objects.create(name="Scoped shop")
    supervisor = staff_user("Supervisor")

    def make(kind: str, scopes: list[str]) -> str:
        if kind == MERCHANT:
            _key, secret = MerchantAPIKey.objects.create_key(name="scoped", merchant=merchant, scopes=scopes)
            return f"Api-Key {secret}"
        _key, secret = StaffAPIKey.objects.create_key(name="scoped", user=supervisor, scopes=scopes)
        return f"Token {secret}"

    return make


def call(client, kind_header: str, item: Call):
    body = None if item.method in ("GET", "DELETE") else json.dumps({})
    return client.generic(
        item.method,
        url_of(item.route),
        body or "",
        content_type="application/json",
        HTTP_AUTHORIZATION=kind_header,
    )


def insufficient_scope(response) -> bool:
    if response.status_code != 403:
        return False
    try:
        return response.json().get("error") == "insufficient_scope"
    except ValueError:
        return False


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "scope"),
    [(MERCHANT, scope) for scope in MERCHANT_SCOPES] + [(STAFF, scope) for scope in STAFF_SCOPES],
)
def test_each_scope_opens_exactly_its_endpoints(client, settings, keys_holding, kind, scope):
    settings.API_RATE_LIMIT_PER_KEY = 0  # no quota in the way of the walk
    # given a key holding only this scope, and every call its kind of key can make
    header = keys_holding(kind, [scope])
    calls = [item for item in key_calls() if item.kind == kind]
    assert calls

    # when it makes each call (an empty body, rows that do not exist: the scope check
    # comes before either is looked at)
    failures = []
    for item in calls:
        response = call(client, header, item)
        if response.status_code >= 500:
            failures.append(f"{item.method} /{item.route}: {response.status_code}")
        elif scope in item.opened_by and insufficient_scope(response):
            failures.append(f"{item.method} /{item.route}: refused, though {scope!r} opens it")
        elif scope not in item.opened_by and not insufficient_scope(response):
            opened_by = sorted(item.opened_by)
            failures.append(f"{item.method} /{item.route}: {response.status_code}, though only {opened_by} open it")

    # then it opened exactly the endpoints that declare it, and was refused everywhere else
    assert not failures, "\n".join(failures)
    assert any(scope in item.opened_by for item in calls) or scope == "webhooks", f"{scope!r} opens nothing"


@pytest.mark.django_db
def test_the_refusal_names_the_scope_in_the_callers_language(client, keys_holding):
    header = keys_holding(MERCHANT, ["validate"])

    response = client.post(
        "/api/v1/redemptions",
        {"code": "X", "order_id": "A-1", "order_total": "10", "currency": "USD"},
        content_type="application/json",
        HTTP_AUTHORIZATION=header,
        HTTP_ACCEPT_LANGUAGE="es",
    )

    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "insufficient_scope" and body["required_scope"] == "redeem"
    assert "redeem" in body["detail"] and "clave" in body["detail"].lower()


@pytest.mark.django_db
def test_a_session_is_governed_by_its_role_not_by_scopes(client):
    # given a supervisor signed in (no key)
    client.force_login(staff_user("Supervisor"))

    # then the staff API answers them whatever the scopes
    assert client.get("/api/v1/issuances").status_code == 200
    assert client.get("/api/v1/redemptions").status_code == 200


@pytest.mark.django_db
def test_a_key_without_scopes_is_refused_and_a_new_key_holds_every_scope_of_its_kind(client, keys_holding):
    merchant = Merchant.objects.create(name="Default shop")
    key, secret = MerchantAPIKey.objects.create_key(name="default", merchant=merchant)
    assert key.scopes == list(MERCHANT_SCOPES)
    assert client.get("/api/v1/redemptions", HTTP_AUTHORIZATION=f"Api-Key {secret}").status_code == 200

    empty = keys_holding(MERCHANT, [])
    assert insufficient_scope(client.get("/api/v1/redemptions", HTTP_AUTHORIZATION=empty))


@pytest.mark.parametrize(
    ("validate", "value"),
    [
        (validate_merchant_scopes, ["issue"]),  # a staff scope on a merchant key
        (validate_staff_scopes, ["redeem"]),
        (validate_staff_scopes, ["read", "read"]),
        (validate_staff_scopes, "read"),
        (validate_staff_scopes, [1]),
        (validate_merchant_scopes, {"validate": True}),
    ],
)
def test_scopes_outside_the_vocabulary_are_refused(validate, value):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        validate(value)


def test_the_vocabularies_are_the_documented_ones():
    assert list(MERCHANT_SCOPES) == ["validate", "redeem", "reverse", "events", "redemptions:read"]
    assert list(STAFF_SCOPES) == ["issue", "cases", "read", "webhooks"]


# --- The admin ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_admin_creates_a_key_with_chosen_scopes_and_shows_it_once(client):
    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    merchant = Merchant.objects.create(name="Admin shop")

    # the form offers every merchant scope as a checkbox, all ticked for a new key
    page = client.get("/admin/coupons/merchantapikey/add/", HTTP_ACCEPT_LANGUAGE="en")
    html = page.content.decode()
    for scope in MERCHANT_SCOPES:
        assert f'value="{scope}"' in html
    assert html.count('type="checkbox" name="scopes"') == len(MERCHANT_SCOPES)
    assert html.count("checked") >= len(MERCHANT_SCOPES)

    # when the admin creates a key that may only validate and redeem
    response = client.post(
        "/admin/coupons/merchantapikey/add/",
        {"name": "checkout", "merchant": merchant.pk, "scopes": ["redeem", "validate"]},
        follow=True,
    )

    # then it is stored with those scopes (in the vocabulary's order), and its key shown once
    key = MerchantAPIKey.objects.get(name="checkout")
    assert key.scopes == ["validate", "redeem"]
    messages = [str(m) for m in response.context["messages"]]
    assert any("The API key for checkout is:" in m for m in messages)
    secret = next(m for m in messages if "The API key for checkout is:" in m).split("is: ")[1].split(". ")[0]
    assert MerchantAPIKey.objects.get_from_key(secret) == key
    edit = client.get(f"/admin/coupons/merchantapikey/{key.pk}/change/").content.decode()
    assert secret not in edit

    # and the scopes can be changed later; an unknown one is refused
    client.post(
        f"/admin/coupons/merchantapikey/{key.pk}/change/",
        {"name": "checkout", "merchant": merchant.pk, "scopes": ["redemptions:read"]},
    )
    key.refresh_from_db()
    assert key.scopes == ["redemptions:read"]
    refused = client.post(
        f"/admin/coupons/merchantapikey/{key.pk}/change/",
        {"name": "checkout", "merchant": merchant.pk, "scopes": ["issue"]},
    )
    assert refused.status_code == 200 and "scopes" in refused.context["adminform"].form.errors
    key.refresh_from_db()
    assert key.scopes == ["redemptions:read"]


@pytest.mark.django_db
def test_the_staff_key_admin_labels_scopes_in_the_admins_language(client):
    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)

    html = client.get("/admin/core/staffapikey/add/", HTTP_ACCEPT_LANGUAGE="es").content.decode()

    for scope in STAFF_SCOPES:
        assert f'value="{scope}"' in html
    assert "Trabajar la cola de casos" in html
