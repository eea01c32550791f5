"""Who may reach what: every URL pattern of the URL conf × every role → granted or refused.

The patterns come from walking `get_resolver()`, so a new endpoint without a rule in
`URL_RULES` (or in an admin rule group) fails `test_every_url_pattern_has_a_rule`: decide
who may call it, and write it down here.

Roles (one client each):

    anonymous    no credentials at all
    customer     no account; holds a valid survey token and the public feedback site key
    merchant     `Authorization: Api-Key <key>` (coupons.auth)
    csr          a rep, logged in (session)
    csr-token    the same rep through `Authorization: Token <key>` (a staff API key)
    supervisor   logged in; the Supervisor group, `is_staff` (admin access)
    admin        a superuser, logged in

Outcomes:

    granted      not 401/403/404/405, no redirect to a login page, no 5xx but a deliberate
                 503 (/readyz with a dependency down, the TOTP QR code without the qrcode
                 package): a 400 answer to an empty body proves the request got past
                 authentication and permissions
    refused      401 or 403, or a redirect to a login page (/accounts/login/, /admin/login/)
    (404,) …     exactly these statuses (e.g. a forged survey token: the page does not exist)

Rules (who is granted; everyone else is refused unless the rule says otherwise):

    public        everyone. The login pages, the root redirect, the language switch, the
                  demo shop, /healthz and /readyz, feedback intake (the site key is public:
                  it is in the page; an empty body is a 400, the customer's body with the
                  key a 201), and the OpenAPI schema and Swagger UI: drf-spectacular's
                  SERVE_PERMISSIONS is left at AllowAny, so the API's shape is public (its
                  data is not).
    token         the customer only (the survey link is the credential); anybody else,
                  holding a forged token, gets 404.
    staff         csr, csr-token, supervisor, admin (DRF: session or staff token + IsStaffMember).
    staff-web     csr, supervisor, admin (the CSR UI takes sessions only, so a staff token is
                  redirected to the login page).
    giver-web     the csr who gave the appeasement only (revealing its full code).
    supervisor    supervisor, admin (IsSupervisor / supervisor_required; reports in the admin).
    merchant      merchant only (MerchantApiKeyAuthentication + IsMerchant).
    signed        nobody without the provider's signature: 400/403 for every role.
    logout        every role: 302 (POST). Django's LogoutView, and the admin's, which for
                  staff ends on LOGOUT_REDIRECT_URL and for anybody else on the admin index.
    operator      none of these roles: /metrics needs the METRICS_TOKEN bearer (set here;
                  without one the view trusts REMOTE_ADDR == 127.0.0.1, see the report).
    admin         `is_staff` users (supervisor, admin): the admin's own pages; the rest are
                  redirected to the admin login.
    admin-404     non-staff refused; staff 404 (the catch-all, view-on-site: no model here
                  has get_absolute_url).
    admin-perm    non-staff refused; supervisor granted iff the Supervisor role
                  (appease.core.roles.ROLE_PERMISSIONS) has one of the permissions the page
                  needs, else 403; admin granted, except where the ModelAdmin itself
                  refuses the page to everybody (add/delete on appease.core.admin
                  .ReadOnlyAdmin and on django-axes' logs): 403 for everybody.
    admin-app     an app's index page: supervisor granted if the role has any permission in
                  the app, else 404 (the admin hides it); admin granted.

Admin model pages are covered by groups, for every registered model: changelist, change,
history (need view or change), add (add), delete (delete), and the bare
`<object_id>/` redirect (is_staff). Each is requested with GET on a real object.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from decimal import Decimal
from urllib.parse import urlencode, urlsplit

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework_api_key.models import APIKey

from appease.accounts.models import GroupMapping
from appease.core import roles
from appease.core.context import Actor
from appease.core.models import StaffAPIKey
from appease.issuance.models import Customer, Issuance, OfferMessage, Team
from appease.issuance.services.issuance import issuance_create
from appease.webhooks.models import WebhookEndpoint
from appease.webhooks.services import webhook_endpoint_create, webhook_event_emit
from coupons.services.inventory import code_batch_request
from coupons.services.redemption import redemption_create
from feedback.models import ApologyTemplate, AutoRule, Experiment, FeedbackSite
from feedback.services.automation import event_receive
from feedback.services.cases import case_claim, case_resolve
from feedback.services.surveys import follow_ups_send, survey_token
from tests.factories import (
    customer_create,
    helpdesk_integration_create,
    issued_code,
    merchant_with_key,
    offer_create,
    policy_create,
    reason_create,
    staff_user,
)
from tests.feedback.conftest import open_case

ANONYMOUS = "anonymous"
CUSTOMER = "customer"
MERCHANT = "merchant"
CSR = "csr"
CSR_TOKEN = "csr-token"
SUPERVISOR = "supervisor"
ADMIN = "admin"
ROLES = (ANONYMOUS, CUSTOMER, MERCHANT, CSR, CSR_TOKEN, SUPERVISOR, ADMIN)
STAFF = (SUPERVISOR, ADMIN)  # is_staff: may enter the admin

GRANTED = "granted"
REFUSED = "refused"
NOT_FOUND = (404,)
Expect = str | tuple[int, ...]

SUPERVISOR_PERMS = frozenset(roles.ROLE_PERMISSIONS[roles.SUPERVISOR])


def _only(*granted: str, otherwise: Expect = REFUSED) -> dict[str, Expect]:
    return {role: GRANTED if role in granted else otherwise for role in ROLES}


RULES: dict[str, dict[str, Expect]] = {
    "public": _only(*ROLES),
    "token": _only(CUSTOMER, otherwise=NOT_FOUND),
    "staff": _only(CSR, CSR_TOKEN, SUPERVISOR, ADMIN),
    "staff-web": _only(CSR, SUPERVISOR, ADMIN),
    # Only the rep who gave the appeasement (the matrix's issuance is the CSR's): not
    # their supervisor, not an admin.
    "giver-web": _only(CSR),
    "supervisor": _only(SUPERVISOR, ADMIN),
    "merchant": _only(MERCHANT),
    # Redemption reads: a merchant key (its own) or a supervisor (all); not a rep.
    "merchant-supervisor": _only(MERCHANT, SUPERVISOR, ADMIN),
    "signed": dict.fromkeys(ROLES, (400, 403)),
    "logout": dict.fromkeys(ROLES, (302,)),
    "operator": _only(),
    "admin": _only(*STAFF),
    "admin-404": {**_only(), SUPERVISOR: NOT_FOUND, ADMIN: NOT_FOUND},
    # A feature the matrix's settings leave off (single sign-on): 404 for everybody.
    "off": dict.fromkeys(ROLES, NOT_FOUND),
    # The helpdesk sidebar: nobody without its launch or sidebar token, whatever session
    # or key they hold (a translated page, 401).
    "sidebar-token": dict.fromkeys(ROLES, (401,)),
}


@dataclass(frozen=True)
class Endpoint:
    rule: str
    methods: tuple[str, ...] = ("GET",)
    query: str = ""
    url: str = ""  # a fixed URL, for patterns with nothing to fill (regex catch-alls)
    perms: tuple[str, ...] = ()  # admin-perm: any one of these lets the supervisor in
    nobody: bool = False  # admin-perm: the ModelAdmin refuses the page to everybody
    model: str = ""  # the model whose first row fills `pk` / `object_id` (default: Customer)
    form: bool = False  # POST a form instead of JSON (API views that parse forms)
    site_key: bool = False  # the customer's POST carries the public site key
    get_rule: str = ""  # GET follows this rule instead (one path, a rule per method)


GET, POST, BOTH = ("GET",), ("POST",), ("GET", "POST")

# The rule for every URL name (or, for an unnamed pattern, its full route).
URL_RULES: dict[str, Endpoint] = {
    "": Endpoint("public"),  # a redirect to csr:home, which is protected on its own
    "login": Endpoint("public"),
    "logout": Endpoint("logout", POST),
    "set_language": Endpoint("public", POST),
    "survey": Endpoint("token"),
    "demo-shop": Endpoint("public"),
    "favicon": Endpoint("public"),  # a redirect to the static icon
    "schema": Endpoint("public"),
    "api-docs": Endpoint("public"),
    # Operations (appease/health.py): probes for the load balancer, metrics for Prometheus.
    "healthz": Endpoint("public"),
    "readyz": Endpoint("public"),
    "metrics": Endpoint("operator"),
    # The CSR web UI (appease/issuance/web_urls.py): staff_required / supervisor_required.
    "csr:home": Endpoint("staff-web"),
    "csr:customer-new": Endpoint("staff-web"),
    "csr:customer": Endpoint("staff-web"),
    "csr:issue": Endpoint("staff-web", POST),
    "csr:customer-currency": Endpoint("staff-web", POST),
    "csr:issuance": Endpoint("staff-web"),
    "csr:resend": Endpoint("staff-web", POST),
    "csr:reveal": Endpoint("giver-web", POST),
    "csr:budget": Endpoint("staff-web"),
    "csr:sidebar-launch": Endpoint("sidebar-token", BOTH),
    "csr:sidebar": Endpoint("sidebar-token", POST),
    "csr:approvals": Endpoint("supervisor"),
    "csr:approval-decide": Endpoint("supervisor", POST),
    # The case queue (feedback/web_urls.py).
    "two-factor": Endpoint("staff-web"),
    # Staff accounts (appease/accounts/urls.py): single sign-on (off here), password reset
    # (public: a link that is not valid is a page that says so), the admin's staff import.
    "oidc_authentication_init": Endpoint("off"),
    "oidc_authentication_callback": Endpoint("off"),
    "password_reset": Endpoint("public"),
    "password_reset_done": Endpoint("public"),
    "password_reset_confirm": Endpoint("public", url="/accounts/reset/MQ/not-a-token/"),
    "password_reset_complete": Endpoint("public"),
    "staff-import": Endpoint("supervisor"),
    # The admin's orders import (appease/urls.py → feedback/views.py).
    "orders-import": Endpoint("supervisor"),
    "cases:queue": Endpoint("staff-web"),
    "cases:next": Endpoint("staff-web", POST),
    "cases:new": Endpoint("staff-web", query="customer={customer_id}"),
    "cases:detail": Endpoint("staff-web"),
    "cases:panel-recommendations": Endpoint("staff-web", query="incident_type=late_delivery"),
    "cases:claim": Endpoint("staff-web", POST),
    "cases:note": Endpoint("staff-web", POST),
    "cases:issue": Endpoint("staff-web", POST),
    "cases:apologise": Endpoint("staff-web", POST),
    "cases:resolve": Endpoint("staff-web", POST),
    "cases:reassign": Endpoint("staff-web", POST),
    "cases:escalate": Endpoint("staff-web", POST),
    "cases:experiment-assignment": Endpoint("staff-web"),
    # Reports, inside the admin (reporting/views.py supervisor_view).
    "reports:issuances": Endpoint("supervisor"),
    "reports:redemption": Endpoint("supervisor"),
    "reports:speed": Endpoint("supervisor"),
    "reports:cases": Endpoint("supervisor"),
    "reports:recovery": Endpoint("supervisor"),
    "reports:recovery-list": Endpoint("supervisor"),
    "reports:return": Endpoint("supervisor", BOTH),
    "reports:reps": Endpoint("supervisor"),
    "reports:rep": Endpoint("supervisor"),
    "reports:anomalies": Endpoint("supervisor"),
    "reports:list": Endpoint("supervisor"),
    "reports:customers": Endpoint("supervisor"),
    "reports:experiments": Endpoint("supervisor"),
    "reports:experiment": Endpoint("supervisor"),
    # The merchant API (coupons/urls.py).
    "coupons:code-validate": Endpoint("merchant", POST),
    "coupons:redemption-create": Endpoint("merchant", BOTH, get_rule="merchant-supervisor"),
    "coupons:redemption-detail": Endpoint("merchant-supervisor"),
    "coupons:redemption-reverse": Endpoint("merchant", POST),
    # The staff API (appease/issuance/urls.py).
    "appease-api:issuances": Endpoint("staff", BOTH),
    "appease-api:issuance-approve": Endpoint("supervisor", POST),
    "appease-api:issuance-reject": Endpoint("supervisor", POST),
    "appease-api:issuance-void": Endpoint("supervisor", POST),
    "appease-api:issuance-resend": Endpoint("staff", POST),
    "appease-api:customers": Endpoint("staff", BOTH),
    "appease-api:customer-detail": Endpoint("staff"),
    "appease-api:issuance-detail": Endpoint("staff"),
    "appease-api:offers": Endpoint("staff"),
    "appease-api:reason-codes": Endpoint("staff"),
    "delivery-api:delivery-callback-sms": Endpoint("signed", POST, form=True),
    "delivery-api:delivery-callback-webhook": Endpoint("signed", POST),
    # Outbound webhook endpoints (appease/webhooks/urls.py): supervisors only.
    "webhooks-api:webhook-endpoints": Endpoint("supervisor", BOTH),
    "webhooks-api:webhook-endpoint-detail": Endpoint("supervisor"),
    "webhooks-api:webhook-endpoint-rotate-secret": Endpoint("supervisor", POST),
    # The feedback API (feedback/urls.py).
    "feedback-api:feedback": Endpoint("public", POST, site_key=True),
    "feedback-api:events": Endpoint("merchant", POST),
    "feedback-api:cases": Endpoint("staff", BOTH),
    "feedback-api:case-next": Endpoint("staff", POST),
    "feedback-api:case-resolve": Endpoint("staff", POST),
    "feedback-api:case-detail": Endpoint("staff"),
    "feedback-api:case-claim": Endpoint("staff", POST),
    "feedback-api:case-reply": Endpoint("staff", POST),
    "feedback-api:case-issue": Endpoint("staff", POST),
    "feedback-api:case-reassign": Endpoint("staff", POST),
    "feedback-api:case-escalate": Endpoint("staff", POST),
    "feedback-api:recommendations": Endpoint("staff"),
    # The admin's own pages (its model pages are the groups below).
    "admin:index": Endpoint("admin"),
    "admin:login": Endpoint("public"),
    "admin:logout": Endpoint("logout", POST),  # staff → the login page; others → the admin index
    "admin:password_change": Endpoint("admin"),
    "admin:password_change_done": Endpoint("admin"),
    "admin:jsi18n": Endpoint("admin"),
    "admin:app_list": Endpoint("admin-app"),
    "admin:view_on_site": Endpoint("admin-404"),
    "admin/(?P<url>.*)$": Endpoint("admin-404", url="/admin/no-such-page/"),
    # The only autocomplete fields (StaffProfile.user, StaffAPIKey.user) search users:
    # the admin asks for view permission on User, which supervisors do not have.
    "admin:autocomplete": Endpoint(
        "admin-perm",
        query="app_label=appease&model_name=staffprofile&field_name=user&term=a",
        perms=("auth.view_user",),
    ),
    "admin:auth_user_password_change": Endpoint("admin-perm", perms=("auth.change_user",)),
    "admin:appease_customer_import": Endpoint("admin-perm", perms=("appease.add_customer",)),
    "admin:coupons_offer_add_codes": Endpoint("admin-perm", perms=("coupons.add_codebatch",)),
    # django-otp's TOTP device admin: the device's secret, as text and as a QR code.
    # OTP_ADMIN_HIDE_SENSITIVE_DATA: nobody sees another user's secret, not even an
    # administrator; each user enrols their own device at /accounts/two-factor/.
    "admin:otp_totp_totpdevice_config": Endpoint("operator"),
    "admin:otp_totp_totpdevice_qrcode": Endpoint("operator"),
}

# Every registered model's admin pages, by group: the permissions (any one of them) each needs.
ADMIN_MODEL_PAGES: dict[str, tuple[str, ...]] = {
    "changelist": ("view", "change"),
    "change": ("view", "change"),
    "history": ("view", "change"),
    "add": ("add",),
    "delete": ("delete",),
}


def expectation(endpoint: Endpoint, role: str, *, app_label: str = "") -> Expect:
    if endpoint.rule == "admin-perm":
        if role not in STAFF:
            return REFUSED
        if endpoint.nobody:
            return REFUSED
        if role == ADMIN or SUPERVISOR_PERMS.intersection(endpoint.perms):
            return GRANTED
        return REFUSED
    if endpoint.rule == "admin-app":
        if role not in STAFF:
            return REFUSED
        if role == ADMIN or any(perm.startswith(f"{app_label}.") for perm in SUPERVISOR_PERMS):
            return GRANTED
        return NOT_FOUND
    return RULES[endpoint.rule][role]


# --- The URL conf, walked ------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One URL pattern, with the rule that governs it (None: nobody wrote one)."""

    route: str
    name: str | None
    endpoint: Endpoint | None
    model: type | None = None  # admin model pages: the model whose object fills object_id

    @property
    def key(self) -> str:
        return self.name or self.route


def _walk(resolver: URLResolver, prefix: str = "", namespace: str = ""):
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = namespace
            if pattern.namespace:
                inner = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
            yield from _walk(pattern, route, inner)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}:{pattern.name}" if namespace and pattern.name else pattern.name
            yield route, name


def _admin_allows(model_admin, actions: tuple[str, ...]) -> bool:
    """Whether the ModelAdmin itself allows one of `actions` to anybody: asked for a
    superuser, whom Django's permissions never stop (ReadOnlyAdmin, axes' logs say no)."""
    request = RequestFactory().get("/admin/")
    request.user = User(is_active=True, is_staff=True, is_superuser=True)
    return any(getattr(model_admin, f"has_{action}_permission")(request) for action in actions)


def _admin_model_page(route: str, name: str | None) -> tuple[Endpoint, type] | None:
    """The admin rule group of a registered model's page, if this is one."""
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        if name is None and route == f"admin/{opts.app_label}/{opts.model_name}/<path:object_id>/":
            return Endpoint("admin"), model  # redirects to the change page
        for page, actions in ADMIN_MODEL_PAGES.items():
            if name == f"admin:{opts.app_label}_{opts.model_name}_{page}":
                perms = tuple(f"{opts.app_label}.{action}_{opts.model_name}" for action in actions)
                return Endpoint("admin-perm", perms=perms, nobody=not _admin_allows(model_admin, actions)), model
    return None


def url_targets() -> list[Target]:
    targets = []
    for route, name in _walk(get_resolver()):
        key = name or route
        if key in URL_RULES:
            targets.append(Target(route, name, URL_RULES[key]))
        elif found := _admin_model_page(route, name):
            targets.append(Target(route, name, *found))
        else:
            targets.append(Target(route, name, None))
    return targets


def test_every_url_pattern_has_a_rule():
    # given every pattern the URL conf serves
    targets = url_targets()

    # then each has a rule, and every rule still names a pattern
    missing = [f"  {t.route!r} (name: {t.name or '-'})" for t in targets if t.endpoint is None]
    assert not missing, (
        "URL patterns with no rule in tests/security/test_permissions_matrix.py URL_RULES: decide "
        "who may call them and add them:\n" + "\n".join(missing)
    )
    stale = sorted(set(URL_RULES) - {t.key for t in targets})
    assert not stale, f"URL_RULES names patterns that no longer exist: {stale}"
    assert set(RULES) | {"admin-perm", "admin-app"} >= {t.endpoint.rule for t in targets}


# --- The world the URLs are filled from ------------------------------------------------------


@dataclass
class World:
    csr: User
    supervisor: User
    superuser: User
    customer: Customer
    issuance: Issuance
    case_id: int
    survey_token: str
    redemption_id: object
    offer_id: int
    site_key: str
    merchant_key: str
    staff_token: str


def build_world() -> World:
    """One row of every model the admin shows, made through the services where they exist."""
    policy = policy_create(day_cost_amount=Decimal("1000"))
    csr = staff_user("CSR", team=Team.objects.create(name="Matrix"), policy=policy)
    supervisor = staff_user("Supervisor")  # no team: sees every team's issuances
    superuser = User.objects.create_superuser("root", "root@example.com", "pw")
    merchant, merchant_key = merchant_with_key()
    _key, staff_token = StaffAPIKey.objects.create_key(name="crm", user=csr)
    APIKey.objects.create_key(name="unused")  # the library's own model, in the admin too

    offer = offer_create()
    OfferMessage.objects.create(offer=offer, language="en", apology="We're sorry.")
    reason = reason_create()
    customer = customer_create()
    issuance = issuance_create(actor=Actor(user=csr), customer=customer, offer=offer, reason_code=reason, channel=None)
    code_batch_request(offer=offer, quantity=1, actor=superuser)
    redemption = redemption_create(
        merchant=merchant,
        raw_code=issued_code(offer).plaintext,
        order_id="A-1",
        order_total=Decimal("20.00"),
        currency="USD",
    )
    event_receive(merchant=merchant, event_id="evt-1", event_type="nothing_happened", data={})
    AutoRule.objects.create(
        name="Never", event_type="never_sent", offer=offer, reason_code=reason, budget_amount=Decimal("10")
    )
    ApologyTemplate.objects.get_or_create(name="Sorry", language="en", defaults={"text": "Sorry, {first_name}."})
    site = FeedbackSite.objects.create(name="Shop")
    GroupMapping.objects.create(idp_group="matrix-helpdesk", role=GroupMapping.Role.CSR)
    helpdesk_integration_create()
    webhook_endpoint_create(
        actor=Actor(user=supervisor), url="https://hooks.example.com/matrix", events=["redemption.reversed"]
    )
    webhook_event_emit(type="redemption.reversed", data={"redemption_id": "matrix"})
    # The right password, then a wrong one, through the login page: django-axes logs the
    # login and keeps the failed attempt (its failure log is off by default: made here).
    Client().post(reverse("login"), {"username": csr.username, "password": "pw"})
    Client().post(reverse("login"), {"username": csr.username, "password": "wrong"})
    if apps.is_installed("axes"):
        apps.get_model("axes", "AccessFailureLog").objects.create(
            username=csr.username, ip_address="127.0.0.1", user_agent="", http_accept="", path_info="/accounts/login/"
        )
    if apps.is_installed("django_otp.plugins.otp_totp"):
        apps.get_model("otp_totp", "TOTPDevice").objects.create(user=superuser, name="phone")

    case = open_case(customer=customer)  # stays open: the case pages act on it
    answered = open_case(customer=customer_create())
    case_claim(actor=Actor(user=csr), case_id=answered.pk)
    case_resolve(actor=Actor(user=csr), case_id=answered.pk, note="Refunded the delivery fee")
    follow_up = answered.follow_ups.get()
    follow_ups_send(now=follow_up.due_at)

    experiment = Experiment.objects.create(name="Matrix", incident_type="damaged_item", is_active=False)
    experiment.offers.add(offer)
    empty = [model._meta.label for model in admin.site._registry if not model._default_manager.exists()]
    assert not empty, f"the world has no row for these admin models (add one): {empty}"
    return World(
        csr=csr,
        supervisor=supervisor,
        superuser=superuser,
        customer=customer,
        issuance=issuance,
        case_id=case.pk,
        survey_token=survey_token(follow_up),
        redemption_id=redemption.pk,
        offer_id=offer.pk,
        site_key=site.public_key,
        merchant_key=merchant_key,
        staff_token=staff_token,
    )


PARAM = re.compile(r"<(?:\w+:)?(\w+)>")


def urls_for(target: Target, world: World, role: str) -> list[tuple[str, str]]:
    """(url, app_label) pairs: one, or one per app for the admin's app index."""
    if target.endpoint.url:
        return [(target.endpoint.url, "")]
    if target.name == "admin:app_list":
        labels = sorted({model._meta.app_label for model in admin.site._registry})
        return [(reverse(target.name, kwargs={"app_label": label}), label) for label in labels]
    model = target.model or (apps.get_model(target.endpoint.model) if target.endpoint.model else Customer)
    obj = model._default_manager.order_by("pk").first()
    values = {
        "customer_id": world.customer.pk,
        "issuance_id": world.issuance.pk,
        "case_id": world.case_id,
        "user_id": world.csr.pk,  # a rep's report
        "experiment_id": Experiment.objects.order_by("pk").values_list("pk", flat=True).first(),
        "decision": "approve",
        "token": world.survey_token if role == CUSTOMER else "not-a-survey-token",
        "redemption_id": world.redemption_id,
        "offer_id": world.offer_id,
        "content_type_id": ContentType.objects.get_for_model(type(obj)).pk,
        "object_id": quote(obj.pk),
        "pk": obj.pk,
        "endpoint_id": WebhookEndpoint.objects.order_by("pk").values_list("pk", flat=True).first(),
        "id": world.csr.pk,  # the user whose password the admin changes
    }
    params = PARAM.findall(target.route)
    if target.name:
        url = reverse(target.name, kwargs={param: values[param] for param in params})
    else:
        url = "/" + PARAM.sub(lambda match: str(values[match.group(1)]), target.route)
    query = target.endpoint.query.format(**values)
    return [(f"{url}?{query}" if query else url, "")]


def client_for(role: str, world: World) -> Client:
    if role == MERCHANT:
        return Client(HTTP_AUTHORIZATION=f"Api-Key {world.merchant_key}")
    if role == CSR_TOKEN:
        return Client(HTTP_AUTHORIZATION=f"Token {world.staff_token}")
    client = Client()
    user = {CSR: world.csr, SUPERVISOR: world.supervisor, ADMIN: world.superuser}.get(role)
    if user is not None:
        client.force_login(user)
    return client


def send(client: Client, method: str, url: str, endpoint: Endpoint, body: dict):
    if method == "GET":
        return client.get(url)
    if endpoint.form or not url.startswith("/api/"):
        return client.post(url, urlencode(body), content_type="application/x-www-form-urlencoded")
    return client.post(url, json.dumps(body), content_type="application/json")


LOGIN_PAGES = ("/accounts/login/", "/admin/login/")


def _login_redirect(response) -> bool:
    return response.status_code in (301, 302) and urlsplit(response.get("Location", "")).path in LOGIN_PAGES


def matches(expected: Expect, response) -> bool:
    status = response.status_code
    if status >= 500 and status != 503:  # a crash is never an answer; 503 is a deliberate one
        return False
    if expected == GRANTED:
        return status not in (401, 403, 404, 405) and not _login_redirect(response)
    if expected == REFUSED:
        return status in (401, 403) or _login_redirect(response)
    return status in expected


@pytest.fixture
def secrets(settings):
    """Secrets set, so a refused call is refused for a wrong or missing credential, not for
    want of a secret (and /metrics answers by its token, not by the test client's 127.0.0.1)."""
    settings.WEBHOOK_SECRET = "webhook-secret"
    settings.SMS_AUTH_TOKEN = "sms-token"
    settings.METRICS_TOKEN = "metrics-token"


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_every_url_answers_each_role_by_its_rule(role, secrets):
    # given one of everything, and every pattern with a rule
    world = build_world()
    targets = [target for target in url_targets() if target.endpoint is not None]

    # when the role calls each of them the way they are meant to be called
    shared = client_for(role, world)
    failures, calls = [], 0
    for target in targets:
        for url, app_label in urls_for(target, world, role):
            for method in target.endpoint.methods:
                endpoint = target.endpoint
                if method == "GET" and endpoint.get_rule:
                    endpoint = replace(endpoint, rule=endpoint.get_rule)
                expected = expectation(endpoint, role, app_label=app_label)
                body = {}
                if target.endpoint.site_key and role == CUSTOMER:
                    body = {"site_key": world.site_key, "rating": 5, "text": "Lovely, thanks"}
                # Logging out ends the session: on a client of its own.
                client = client_for(role, world) if target.endpoint.rule == "logout" else shared
                response = send(client, method, url, target.endpoint, body)
                calls += 1
                if not matches(expected, response):
                    location = response.get("Location")
                    failures.append(
                        f"  {method} {url} [{target.key} → {target.endpoint.rule}]: expected {expected}, "
                        f"got {response.status_code}{f' → {location}' if location else ''}"
                    )

    # then every answer is the one its rule gives this role
    assert calls > len(targets)
    assert not failures, f"{len(failures)} of {calls} calls as {role} broke their rule:\n" + "\n".join(failures)


def test_the_supervisor_role_names_only_real_permissions():
    """A typo in ROLE_PERMISSIONS would silently shrink the expectations above."""
    known = set()
    for model in apps.get_models():
        opts = model._meta
        known |= {f"{opts.app_label}.{action}_{opts.model_name}" for action in opts.default_permissions}
        known |= {f"{opts.app_label}.{codename}" for codename, _name in opts.permissions}
    assert not SUPERVISOR_PERMS - known
