"""The helpdesk sidebar: the customer panel in a helpdesk's ticket sidebar frame.

The helpdesk's app opens `/csr/sidebar/launch` with a launch token (a JWT signed with
the integration's shared secret, appease.issuance.services.helpdesk). Accepted, the page
carries a sidebar token that authenticates the sidebar's own requests (the give, the
status polling, the budget) in an `Authorization: Sidebar …` header or a `sidebar_token`
form field: a frame on another site may get no cookie of ours, so none is needed.
Cookie-authenticated requests to the same views keep their CSRF check.

Only these answers may be framed, and only by the integration's allowed origins
(`frame-ancestors`); every other page keeps X-Frame-Options: DENY and
`frame-ancestors 'none'`.
"""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from appease.core.context import Actor
from appease.core.money import default_currency
from appease.core.roles import CSR, SUPERVISOR, has_role
from appease.issuance.models import Customer, Issuance
from appease.issuance.selectors import customers_for_ticket
from appease.issuance.services.customers import customer_create
from appease.issuance.services.helpdesk import (
    LaunchRefused,
    SidebarSession,
    TicketCustomer,
    launch_integration_guess,
    sidebar_launch_accept,
    sidebar_token_make,
)
from appease.issuance.services.issuance import complaint_start_parse
from appease.issuance.sidebar_auth import AUTH_SCHEME, act_as, sidebar_authentication, sidebar_error, sidebar_framing
from appease.issuance.views import CustomerForm, IssueForm, currency_choices, panel_context


@csrf_exempt  # the launch token, not a cookie, is the proof: a helpdesk's form may POST it
@require_http_methods(["GET", "POST"])
def sidebar_launch(request):
    token = request.POST.get("token", "") if request.method == "POST" else request.GET.get("token", "")
    try:
        launch = sidebar_launch_accept(token=token)
    except LaunchRefused as refused:  # worded in the browser's language (LocaleMiddleware's)
        return sidebar_error(
            request,
            refused.code,
            status=refused.status,
            integration=launch_integration_guess(token or ""),
            message=refused.message,
        )
    session = SidebarSession(
        user=launch.user,
        integration=launch.integration,
        language=launch.language,
        token=sidebar_token_make(user=launch.user, integration=launch.integration, language=launch.language),
    )
    act_as(request, session)
    ticket = {
        "customer": launch.customer,
        "started_at": launch.opened_at.isoformat() if launch.opened_at else "",
        "ticket_id": launch.ticket_id,
    }
    return sidebar_framing(_sidebar_page(request, session, ticket), launch.integration.frame_ancestor_origins)


class TicketForm(forms.Form):
    """What the sidebar page carries from the launch to its next full page (a customer
    chosen or created): the ticket's requester and opening time."""

    customer = forms.IntegerField(required=False, min_value=1)
    started_at = forms.CharField(required=False, max_length=40)
    ticket_id = forms.CharField(required=False, max_length=100)
    ticket_email = forms.CharField(required=False, max_length=254)
    ticket_phone = forms.CharField(required=False, max_length=32)
    ticket_external_id = forms.CharField(required=False, max_length=100)
    ticket_name = forms.CharField(required=False, max_length=200)


@require_http_methods(["POST"])
@sidebar_authentication
def sidebar_page(request):
    """The sidebar again, after the agent chose one of several matching customers or
    created the customer from the ticket. Token-authenticated only."""
    session = getattr(request, "sidebar", None)
    if session is None:
        return sidebar_error(request, "session_expired", status=401, integration=None)
    form = TicketForm(request.POST)
    if not form.is_valid():
        return sidebar_error(request, "invalid", status=400, integration=session.integration)
    data = form.cleaned_data
    ticket = {
        "customer": TicketCustomer(
            email=data["ticket_email"],
            phone=data["ticket_phone"],
            external_id=data["ticket_external_id"],
            name=data["ticket_name"],
        ),
        "started_at": data["started_at"],
        "ticket_id": data["ticket_id"],
    }
    if request.POST.get("create"):
        return _sidebar_create(request, session, ticket)
    customer = get_object_or_404(Customer, pk=data["customer"], erased_at__isnull=True) if data["customer"] else None
    return _sidebar_page(request, session, ticket, customer=customer)


def _sidebar_create(request, session: SidebarSession, ticket: dict):
    form = CustomerForm(request.POST)
    form.fields["currency"].widget = forms.Select(choices=currency_choices())
    form.fields["currency"].required = False
    if form.is_valid():
        fields = {name: form.cleaned_data[name] for name in CustomerForm.Meta.fields}
        fields["currency"] = fields["currency"] or default_currency()
        try:
            customer = customer_create(actor=Actor.from_request(request), **fields)
        except ValidationError as invalid:
            for field, errors in invalid.message_dict.items():
                form.addsidebar_error(field if field in form.fields else None, errors)
        else:
            return _sidebar_page(request, session, ticket, customer=customer)
    return _sidebar_page(request, session, ticket, new_customer_form=form, status=400)


def _new_customer_form(ticket_customer: TicketCustomer, language: str):
    form = CustomerForm(
        initial={
            "name": ticket_customer.name,
            "email": ticket_customer.email,
            "phone": ticket_customer.phone,
            "external_id": ticket_customer.external_id or None,
            "language": language,
            "currency": default_currency(),
        }
    )
    form.fields["currency"].widget = forms.Select(choices=currency_choices())
    form.fields["currency"].required = False
    return form


def _waiting_since(started_at: str) -> datetime | None:
    try:
        moment = complaint_start_parse(started_at)
    except ValidationError:
        return None
    return timezone.localtime(moment, ZoneInfo(settings.SHOP_TIME_ZONE)) if moment else None


def _sidebar_page(request, session: SidebarSession, ticket: dict, *, customer=None, new_customer_form=None, status=200):
    """The panel for the ticket's customer, or the choice between the customers it may
    be, or the form to create them from the ticket's details."""
    if not has_role(request.user, CSR, SUPERVISOR):
        raise PermissionDenied
    ticket_customer: TicketCustomer = ticket["customer"]
    candidates = []
    if customer is None and new_customer_form is None and ticket_customer:
        candidates = customers_for_ticket(
            email=ticket_customer.email, phone=ticket_customer.phone, external_id=ticket_customer.external_id
        )
        if len(candidates) == 1:
            customer = candidates[0]
    context = {
        "sidebar_token": session.token,
        "sidebar_headers": json.dumps({"Authorization": f"{AUTH_SCHEME} {session.token}"}),
        "integration": session.integration,
        "ticket": ticket,
        "ticket_customer": ticket_customer,
        "waiting_since": _waiting_since(ticket["started_at"]),
        "shop_time_zone": settings.SHOP_TIME_ZONE,
        "candidates": candidates if customer is None else [],
    }
    if customer is not None:
        initial = {}
        if context["waiting_since"] is not None:
            # The ticket's opening is the complaint's start, as a helpdesk link's started_at.
            initial = {
                "complaint_started_at": ticket["started_at"],
                "complaint_start_source": Issuance.StartSource.LINK,
            }
        form = IssueForm(user=request.user, customer=customer, initial=initial)
        context.update(panel_context(request, customer, form))
    elif not candidates:
        context["new_customer_form"] = new_customer_form or _new_customer_form(ticket_customer, session.language)
    return render(request, "csr/sidebar.html", context, status=status)
