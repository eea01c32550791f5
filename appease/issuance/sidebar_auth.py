"""Sidebar tokens as a way in to the CSR views, and the sidebar's framing rules
(appease/issuance/sidebar.py has the pages; docs/integrations.md the whole story).

With a sidebar token (an `Authorization: Sidebar …` header, or a `sidebar_token` form
field) a request is the token's agent, without a cookie: a helpdesk's frame on another
site may get none of ours. Such answers may be framed by the integration's allowed
origins only. Every other request keeps the session and its CSRF check, and every other
page X-Frame-Options: DENY and `frame-ancestors 'none'`.
"""

from __future__ import annotations

from functools import wraps

from csp.constants import NONE
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.utils import translation
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.views.decorators.csrf import csrf_exempt

from appease.issuance.models import HelpdeskIntegration
from appease.issuance.services.helpdesk import SidebarSession, sidebar_token_check

AUTH_SCHEME = "Sidebar"
TOKEN_FIELD = "sidebar_token"  # noqa: S105 (a form field's name)


def sidebar_framing(response, origins: list[str]):
    """Let `origins` (and only them) frame this answer; it leaks no URL to other sites."""
    response.xframe_options_exempt = True
    response._csp_replace = {"frame-ancestors": origins or [NONE]}
    response["Referrer-Policy"] = "no-referrer"
    add_never_cache_headers(response)
    return response


def _token_from(request) -> str:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme == AUTH_SCHEME:
        return value.strip()
    if request.method == "POST":
        return request.POST.get(TOKEN_FIELD, "")
    return ""


def _csrf_refusal(request):
    """The CSRF check Django's middleware skipped for this (token-aware) view: a response
    refusing the request, or None. As DRF's SessionAuthentication does it."""
    return CsrfViewMiddleware(lambda _request: None).process_view(request, None, (), {})


def sidebar_authentication(view):
    """A view the sidebar calls as well as the CSR pages. With a sidebar token, the
    request is the token's agent, in the ticket's language, without a cookie and so
    without CSRF (nothing a browser sends by itself authenticates it); the audit log
    says it came through the integration. Without one, the usual session, and the usual
    CSRF check. A token that is no longer good is refused, never quietly ignored."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        token = _token_from(request)
        if not token:
            refusal = _csrf_refusal(request)
            if refusal is not None:
                return refusal
            return view(request, *args, **kwargs)
        session = sidebar_token_check(token)
        if session is None:
            return sidebar_error(request, "session_expired", status=401, integration=None)
        act_as(request, session)
        response = view(request, *args, **kwargs)
        patch_vary_headers(response, ["Authorization"])
        return sidebar_framing(response, session.integration.frame_ancestor_origins)

    return csrf_exempt(wrapper)


def act_as(request, session: SidebarSession) -> None:
    request.user = session.user
    request.sidebar = session
    request.actor_via = f"helpdesk:{session.integration.name}"[:60]
    translation.activate(session.language)
    request.LANGUAGE_CODE = translation.get_language()


def sidebar_error(request, code: str, *, status: int, integration: HelpdeskIntegration | None, message: str = ""):
    """A refusal the agent can read inside the frame: translated, never a 500. Framed by
    the integration the token named, if any; else by any active integration's origins
    (the page holds nothing but the message)."""
    if not message:
        message = {
            "session_expired": translation.gettext(
                "The sidebar has been open too long, or was switched off. Reopen the ticket to load it again."
            ),
        }.get(code, translation.gettext("The sidebar could not be opened."))
    # To htmx (a give, a poll) a fragment it swaps in where the answer would have gone.
    template = "csr/_sidebar_error.html" if getattr(request, "htmx", False) else "csr/sidebar_error.html"
    response = render(request, template, {"message": message, "code": code}, status=status)
    if integration is not None and integration.is_active:
        origins = integration.frame_ancestor_origins
    else:
        origins = sorted(
            {o for i in HelpdeskIntegration.objects.filter(is_active=True) for o in i.frame_ancestor_origins}
        )
    return sidebar_framing(response, origins)
