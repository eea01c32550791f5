"""The helpdesk sidebar: the launch token, the sidebar token, the give through it, and
who may frame what."""

from __future__ import annotations

import time
from decimal import Decimal

import jwt
import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from appease.core.models import AuditEvent
from appease.issuance.models import Customer, HelpdeskIntegration, HelpdeskLaunch, Issuance
from appease.issuance.models.helpdesk import frame_ancestors_parse
from appease.issuance.services.helpdesk import Launch, LaunchRefused, sidebar_launch_accept, sidebar_token_make
from tests.factories import (
    customer_create,
    helpdesk_integration_create,
    launch_token,
    offer_create,
    policy_create,
    reason_create,
    staff_user,
)
from tests.issuance.test_concurrency import run_together

pytestmark = pytest.mark.django_db

LAUNCH = "/csr/sidebar/launch"


@pytest.fixture
def integration():
    return helpdesk_integration_create(name="Zendesk", origins="https://acme.zendesk.com\nhttps://*.zendesk.com")


@pytest.fixture
def agent():
    return staff_user(username="ana", policy=policy_create(day_cost_amount=Decimal("50")))


def launch(client, token, **headers):
    return client.get(LAUNCH, {"token": token}, **headers)


def frame_ancestors(response) -> str:
    policy = response["Content-Security-Policy"]
    return next(part.strip() for part in policy.split(";") if part.strip().startswith("frame-ancestors"))


# --- Launch ------------------------------------------------------------------------


def test_a_good_launch_shows_the_ticket_customers_panel_framable_by_the_integration_only(client, integration, agent):
    # given
    customer_create(name="Lucía Pérez", email="lucia@example.com")
    offer_create(description="Five off your next order")
    reason_create()

    # when
    response = launch(client, launch_token(integration, sub="ana"))

    # then
    assert response.status_code == 200
    body = response.content.decode()
    assert "Lucía Pérez" in body and "Five off your next order" in body
    assert frame_ancestors(response) == "frame-ancestors https://acme.zendesk.com https://*.zendesk.com"
    assert "X-Frame-Options" not in response
    assert response["Referrer-Policy"] == "no-referrer"
    assert "no-store" in response["Cache-Control"]
    assert "sessionid" not in response.cookies  # no session: the sidebar token is the proof


def test_every_other_page_refuses_every_frame(client, agent):
    client.force_login(agent)
    for url in ["/csr/", "/accounts/login/", "/csr/approvals/"]:
        response = client.get(url)
        assert response["X-Frame-Options"] == "DENY", url
        assert frame_ancestors(response) == "frame-ancestors 'none'", url


def test_the_agent_may_be_named_by_email(client, integration, agent):
    response = launch(client, launch_token(integration, sub=agent.email.upper()))
    assert response.status_code == 200


def test_the_tickets_language_and_opening_time_are_the_pages(client, integration, agent):
    customer_create(name="Lucía Pérez", email="lucia@example.com")
    reason_create()
    token = launch_token(
        integration, sub="ana", ticket={"id": "99", "language": "pt-BR", "opened_at": "2026-01-05T09:30:00+00:00"}
    )
    response = launch(client, token)
    body = response.content.decode()
    assert '<html lang="pt-br">' in body
    assert "Aguardando desde 05/01/2026 09:30 (horário da loja) · ticket 99" in body
    assert 'data-started="2026-01-05T09:30:00+00:00"' in body
    assert 'value="link"' in body  # the complaint's clock started at the ticket, as a helpdesk link's


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("wrong_secret", 401, "signature"),
        ("expired", 401, "expired"),
        ("too_old", 401, "expired"),
        ("too_long_lived", 401, "expired"),
        ("wrong_aud", 401, "audience"),
        ("no_jti", 401, "invalid"),
        ("unknown_issuer", 401, "unknown_issuer"),
        ("unknown_user", 403, "unknown_user"),
        ("inactive_user", 403, "unknown_user"),
        ("not_staff", 403, "unknown_user"),
        ("inactive_integration", 403, "integration_inactive"),
        ("alg_none", 401, "algorithm"),
        ("alg_hs512", 401, "algorithm"),
        ("garbage", 401, "malformed"),
        ("huge", 401, "malformed"),
        ("empty", 401, "malformed"),
        ("customer_not_an_object", 401, "invalid"),
        ("bad_email", 401, "invalid"),
        ("control_characters", 401, "invalid"),
        ("opened_in_the_future", 401, "invalid"),
        ("iat_a_string", 401, "invalid"),
        ("jti_hostile", 401, "invalid"),
    ],
)
def test_a_launch_token_is_refused_with_a_clear_page_never_a_500(client, integration, agent, case, status, code):
    # given
    now = int(time.time())
    from django.contrib.auth.models import Group, User

    User.objects.create_user(username="gone", is_active=False).groups.add(Group.objects.get(name="CSR"))
    User.objects.create_user(username="merchant-person")
    tokens = {
        "wrong_secret": lambda: launch_token(integration, sub="ana", secret="not-the-secret-" * 3),
        "expired": lambda: launch_token(integration, sub="ana", iat=now - 400, exp=now - 100),
        "too_old": lambda: launch_token(integration, sub="ana", iat=now - 400, exp=now + 60),
        "too_long_lived": lambda: launch_token(integration, sub="ana", exp=now + 3600),
        "wrong_aud": lambda: launch_token(integration, sub="ana", aud="someone-else"),
        "no_jti": lambda: launch_token(integration, sub="ana", jti=None),
        "unknown_issuer": lambda: launch_token(integration, sub="ana", iss="nobody"),
        "unknown_user": lambda: launch_token(integration, sub="nobody@example.com"),
        "inactive_user": lambda: launch_token(integration, sub="gone"),
        "not_staff": lambda: launch_token(integration, sub="merchant-person"),
        "inactive_integration": lambda: (
            HelpdeskIntegration.objects.filter(pk=integration.pk).update(is_active=False),
            launch_token(integration, sub="ana"),
        )[1],
        "alg_none": lambda: jwt.encode({"iss": integration.key_id, "sub": "ana"}, None, algorithm="none"),
        "alg_hs512": lambda: jwt.encode(
            {"iss": integration.key_id, "sub": "ana", "aud": "appease-sidebar", "iat": now, "exp": now + 60},
            integration.secret,
            algorithm="HS512",
        ),
        "garbage": lambda: "not.a.jwt<script>",
        "huge": lambda: "a" * 10_000,
        "empty": lambda: "",
        "customer_not_an_object": lambda: launch_token(integration, sub="ana", customer=["x"]),
        "bad_email": lambda: launch_token(integration, sub="ana", customer={"email": "<script>@"}),
        "control_characters": lambda: launch_token(integration, sub="ana", customer={"external_id": "a\x00b"}),
        "opened_in_the_future": lambda: launch_token(integration, sub="ana", ticket={"opened_at": now + 86_400}),
        "iat_a_string": lambda: launch_token(integration, sub="ana", iat="yesterday"),
        "jti_hostile": lambda: launch_token(integration, sub="ana", jti="'; drop table x; --"),
    }

    # when
    response = launch(client, tokens[case](), HTTP_ACCEPT_LANGUAGE="es")

    # then: a page in the agent's language, saying what to do, framable where the agent is
    assert response.status_code == status
    body = response.content.decode()
    assert f'data-code="{code}"' in body
    assert '<html lang="es">' in body
    assert not Issuance.objects.exists()
    assert "X-Frame-Options" not in response


def test_a_launch_token_is_good_once(client, integration, agent):
    # given
    token = launch_token(integration, sub="ana")
    assert launch(client, token).status_code == 200

    # when: the same token again (a reload, or someone who saw the URL)
    again = launch(client, token, HTTP_ACCEPT_LANGUAGE="es")

    # then
    assert again.status_code == 401
    assert 'data-code="replayed"' in again.content.decode()
    assert "Este enlace de la barra lateral ya se usó" in again.content.decode()
    assert HelpdeskLaunch.objects.count() == 1


def test_spent_token_ids_are_forgotten_once_they_expire(integration, agent):
    # given: an id spent long ago
    from datetime import timedelta

    from django.utils import timezone

    HelpdeskLaunch.objects.create(
        integration=integration, jti="old-one-123", expires_at=timezone.now() - timedelta(hours=1)
    )

    # when
    sidebar_launch_accept(token=launch_token(integration, sub="ana"))

    # then
    assert not HelpdeskLaunch.objects.filter(jti="old-one-123").exists()
    assert HelpdeskLaunch.objects.count() == 1  # the new launch's


def test_the_launch_may_be_posted_as_a_form_from_the_helpdesk(integration, agent):
    client = Client(enforce_csrf_checks=True)
    response = client.post(LAUNCH, {"token": launch_token(integration, sub="ana")})
    assert response.status_code == 200


# --- Which customer -------------------------------------------------------------------


def test_no_matching_customer_offers_to_create_them_from_the_ticket(client, integration, agent):
    # given
    reason_create()
    token = launch_token(
        integration,
        sub="ana",
        customer={"email": "new@example.com", "name": "Nova Cliente", "phone": "+34 612 345 678"},
    )
    page = launch(client, token)
    body = page.content.decode()
    assert 'data-testid="no-match"' in body and 'value="Nova Cliente"' in body
    sidebar_token = page.context["sidebar_token"]

    # when: the agent creates them (a plain form: the token rides in it, no cookie, no CSRF)
    response = Client(enforce_csrf_checks=True).post(
        reverse("csr:sidebar"),
        {
            "sidebar_token": sidebar_token,
            "create": "1",
            "ticket_email": "new@example.com",
            "name": "Nova Cliente",
            "email": "new@example.com",
            "phone": "+34612345678",
            "preferred_channel": "email",
            "language": "es",
            "tier": "standard",
        },
    )

    # then
    assert response.status_code == 200, response.content.decode()[:2000]
    customer = Customer.objects.get(email="new@example.com")
    assert customer.created_by == agent
    assert 'id="issue-form"' in response.content.decode()
    event = AuditEvent.objects.get(action="customer.create")
    assert event.actor_label == "user:ana via helpdesk:Zendesk"


def test_several_matching_customers_are_offered_to_choose_from(client, integration, agent):
    reason_create()
    first = customer_create(name="Ana One", email="same@example.com")
    customer_create(name="Ana Two", email="same@example.com")
    page = launch(client, launch_token(integration, sub="ana", customer={"email": "same@example.com"}))
    assert 'data-testid="candidates"' in page.content.decode()
    response = Client(enforce_csrf_checks=True).post(
        reverse("csr:sidebar"), {"sidebar_token": page.context["sidebar_token"], "customer": first.pk}
    )
    assert response.status_code == 200
    assert response.context["customer"] == first


def test_the_external_id_wins_over_the_email(client, integration, agent):
    customer_create(name="By email", email="x@example.com")
    by_id = customer_create(name="By id", email="other@example.com", external_id="C-42")
    page = launch(
        client, launch_token(integration, sub="ana", customer={"email": "x@example.com", "external_id": "C-42"})
    )
    assert page.context["customer"] == by_id


def test_the_sidebar_page_wants_a_sidebar_token(client, agent):
    client.force_login(agent)
    response = client.post(reverse("csr:sidebar"), {"customer": 1})
    assert response.status_code == 401


# --- Giving through the sidebar token -------------------------------------------------


def _sidebar(client, integration):
    customer = customer_create(name="Lucía Pérez", email="lucia@example.com")
    offer = offer_create(description="Five off your next order", cost_amount=Decimal("3.00"))
    reason = reason_create()
    page = launch(client, launch_token(integration, sub="ana"))
    return page.context["sidebar_token"], customer, offer, reason


def test_the_sidebar_gives_through_the_same_service_audited_as_the_agent_via_the_integration(integration, agent):
    # given: a browser that never had a cookie of ours, and sends no CSRF token
    client = Client(enforce_csrf_checks=True)
    token, customer, offer, reason = _sidebar(client, integration)
    client.cookies.clear()

    # when
    response = client.post(
        reverse("csr:issue", args=[customer.pk]),
        {"offer": offer.pk, "reason_code": reason.pk, "channel": "email", "idempotency_key": "k" * 32},
        HTTP_AUTHORIZATION=f"Sidebar {token}",
        HTTP_HX_REQUEST="true",
    )

    # then
    assert response.status_code == 200
    issuance = Issuance.objects.get()
    assert issuance.csr == agent and issuance.status == Issuance.Status.ISSUED
    assert AuditEvent.objects.get(action="issuance.create").actor_label == "user:ana via helpdesk:Zendesk"
    assert frame_ancestors(response).startswith("frame-ancestors https://acme.zendesk.com")

    # and the status polling and the budget answer to the token too
    status = client.get(
        reverse("csr:issuance", args=[issuance.pk]), HTTP_AUTHORIZATION=f"Sidebar {token}", HTTP_HX_REQUEST="true"
    )
    assert status.status_code == 200 and 'data-status="issued"' in status.content.decode()
    budget = client.get(reverse("csr:budget") + "?currency=USD", HTTP_AUTHORIZATION=f"Sidebar {token}")
    assert budget.status_code == 200 and 'data-testid="left-day"' in budget.content.decode()


def test_the_same_give_through_the_sidebar_respects_the_limits(integration):
    # given: an agent whose policy allows less than the offer costs, refused outright
    staff_user(username="ana", policy=policy_create(day_cost_amount=Decimal("1.00"), over_limit="refuse"))
    client = Client()
    token, customer, offer, reason = _sidebar(client, integration)

    # when
    response = client.post(
        reverse("csr:issue", args=[customer.pk]),
        {"offer": offer.pk, "reason_code": reason.pk, "channel": "email"},
        HTTP_AUTHORIZATION=f"Sidebar {token}",
        HTTP_HX_REQUEST="true",
    )

    # then
    assert response.status_code == 403
    assert not Issuance.objects.filter(status=Issuance.Status.ISSUED).exists()


def test_a_cookie_authenticated_give_still_needs_its_csrf_token(agent):
    customer = customer_create(name="Lucía Pérez")
    offer = offer_create()
    reason = reason_create()
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    response = client.post(
        reverse("csr:issue", args=[customer.pk]), {"offer": offer.pk, "reason_code": reason.pk, "channel": "email"}
    )
    assert response.status_code == 403
    assert not Issuance.objects.exists()


@pytest.mark.parametrize("case", ["expired", "forged", "secret_rotated", "integration_off", "agent_left"])
def test_a_sidebar_token_no_longer_good_is_refused_with_a_clear_answer(settings, integration, agent, case):
    # given
    client = Client()
    token, customer, offer, reason = _sidebar(client, integration)
    if case == "expired":
        settings.SIDEBAR_SESSION_SECONDS = -1
    elif case == "forged":
        token = sidebar_token_make(user=agent, integration=integration, language="en")[:-4] + "AAAA"
    elif case == "secret_rotated":
        from appease.core.context import SYSTEM
        from appease.issuance.services.helpdesk import helpdesk_integration_secret_rotate

        helpdesk_integration_secret_rotate(actor=SYSTEM, integration_id=integration.pk)
    elif case == "integration_off":
        HelpdeskIntegration.objects.update(is_active=False)
    else:
        agent.is_active = False
        agent.save()

    # when
    response = client.post(
        reverse("csr:issue", args=[customer.pk]),
        {"offer": offer.pk, "reason_code": reason.pk, "channel": "email"},
        HTTP_AUTHORIZATION=f"Sidebar {token}",
        HTTP_HX_REQUEST="true",
        HTTP_ACCEPT_LANGUAGE="pt-BR",
    )

    # then: a fragment htmx swaps in, in the browser's language
    assert response.status_code == 401
    assert 'data-testid="sidebar-error"' in response.content.decode()
    assert "Reabra o ticket" in response.content.decode()
    assert not Issuance.objects.exists()


# --- Integrations ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "https://x.example.com; script-src *",
        "https://x.example.com 'unsafe-inline'",
        "*",
        "http://evil.example.com",
        "javascript:alert(1)",
        "https://a.example.com/path",
    ],
)
def test_frame_ancestors_are_origins_only(text):
    with pytest.raises(ValidationError):
        frame_ancestors_parse(text)


def test_frame_ancestors_accept_origins_wildcards_and_loopback():
    text = "https://acme.zendesk.com/\n\n https://*.freshdesk.com \nhttp://127.0.0.1:4567"
    assert frame_ancestors_parse(text) == [
        "https://acme.zendesk.com",
        "https://*.freshdesk.com",
        "http://127.0.0.1:4567",
    ]


def test_the_admin_shows_the_secret_once_and_never_audits_it(client):
    # given
    from django.contrib.auth.models import User

    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)

    # when
    response = client.post(
        reverse("admin:appease_helpdeskintegration_add"),
        {
            "name": "Acme Zendesk",
            "kind": "zendesk",
            "key_id": "acme",
            "frame_ancestors": "https://acme.zendesk.com",
            "is_active": "on",
        },
    )

    # then
    integration = HelpdeskIntegration.objects.get()
    assert response.status_code == 200
    assert integration.secret in response.content.decode()
    change = client.get(reverse("admin:appease_helpdeskintegration_change", args=[integration.pk]))
    assert integration.secret not in change.content.decode()
    event = AuditEvent.objects.get(action="helpdeskintegration.create")
    assert integration.secret not in str(event.after)

    # when: rotated
    old = integration.secret
    rotated = client.post(
        reverse("admin:appease_helpdeskintegration_changelist"),
        {"action": "rotate_secret", "_selected_action": [integration.pk]},
    )
    integration.refresh_from_db()
    assert integration.secret != old and integration.secret in rotated.content.decode()
    assert AuditEvent.objects.filter(action="helpdeskintegration.secret_rotate").exists()
    assert integration.secret not in str(AuditEvent.objects.values_list("after", flat=True))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_launch_token_racing_eight_times_opens_one_sidebar(integration, agent):
    # given: one token, sent by eight requests at the same moment
    token = launch_token(integration, sub="ana")

    # when
    results = run_together(8, lambda _i: sidebar_launch_accept(token=token))

    # then: one accepted, seven refused as replays
    assert sum(isinstance(result, Launch) for result in results) == 1
    assert sorted(result.code for result in results if isinstance(result, LaunchRefused)) == ["replayed"] * 7
    assert HelpdeskLaunch.objects.count() == 1
