"""The CSR web UI: find the customer, give an appeasement in one click, watch it go.

Server-rendered, htmx for the partial updates. Views call the same services and
selectors as the API; they only turn requests into calls and results into pages.
"""

from __future__ import annotations

from functools import wraps

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext, gettext_lazy, ngettext
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_POST

from appease.context import Actor
from appease.exceptions import ApplicationError
from appease.models import Channel, Customer, ReasonCode
from appease.roles import CSR, SUPERVISOR, has_role
from appease.selectors import (
    approvals_pending,
    customer_appeasement_summary,
    customer_search,
    issuances_visible_to,
    offers_available_to,
)
from appease.services.customers import customer_create
from appease.services.delivery import delivery_resend
from appease.services.issuance import issuance_approve, issuance_create, issuance_reject
from appease.services.limits import limits_remaining, policy_for
from coupons.models import Offer

FREQUENT_CLAIMANT_COUNT = 2


def role_required(*roles: str):
    def decorator(view):
        @wraps(view)
        @login_required
        def wrapper(request, *args, **kwargs):
            if not has_role(request.user, *roles):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


staff_required = role_required(CSR, SUPERVISOR)
supervisor_required = role_required(SUPERVISOR)


class IssueForm(forms.Form):
    offer = forms.ModelChoiceField(queryset=Offer.objects.none(), label=gettext_lazy("Offer"), empty_label=None)
    reason_code = forms.ModelChoiceField(
        queryset=ReasonCode.objects.filter(is_active=True),
        label=gettext_lazy("Reason"),
        empty_label=gettext_lazy("Choose the reason…"),
    )
    channel = forms.ChoiceField(choices=Channel.choices, label=gettext_lazy("Send by"))
    note = forms.CharField(
        label=gettext_lazy("Note"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    complaint_started_at = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, user, customer: Customer, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["offer"].queryset = offers_available_to(user)
        self.fields["channel"].initial = customer.preferred_channel


class CustomerForm(forms.ModelForm):
    class Meta:
        model = Customer
        fields = [
            "name",
            "email",
            "phone",
            "preferred_channel",
            "channel_handle",
            "language",
            "tier",
            "external_id",
            "consent_email",
            "consent_sms",
            "consent_chat",
            "consent_social",
        ]


def _budget_context(user, currency: str | None = None):
    policy = policy_for(user)
    if policy is None:
        return {"budget": None}
    currencies = [currency] if currency else list(policy.budgets.values_list("currency", flat=True))
    return {"budget": [limits_remaining(user=user, currency=c) for c in currencies]}


@require_GET
@staff_required
def home(request):
    query = request.GET.get("q", "")
    context = {"query": query, "results": customer_search(query=query) if query else None}
    if request.htmx:
        return render(request, "csr/_search_results.html", context)
    context.update(_budget_context(request.user))
    context["pending_count"] = approvals_pending(request.user).count() if has_role(request.user, SUPERVISOR) else 0
    return render(request, "csr/home.html", context)


@staff_required
def customer_new(request):
    form = CustomerForm(request.POST or None, initial={"name": request.GET.get("name", "")})
    if request.method == "POST" and form.is_valid():
        fields = {name: form.cleaned_data[name] for name in CustomerForm.Meta.fields}
        try:
            customer = customer_create(actor=Actor.from_request(request), **fields)
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                form.add_error(field if field in form.fields else None, messages)
        else:
            return redirect("csr:customer", customer_id=customer.pk)
    return render(request, "csr/customer_new.html", {"form": form})


@require_GET
@staff_required
def customer_panel(request, customer_id: int):
    customer = get_object_or_404(Customer, pk=customer_id)
    form = IssueForm(user=request.user, customer=customer, initial={"complaint_started_at": timezone.now().isoformat()})
    return render(request, "csr/customer.html", _panel_context(request, customer, form))


def frequent_claimant_text(summary: dict) -> str:
    """ "Frequent claimant: 1 appeasement …, from 1 rep.": each number with its own plural."""
    appeasements = ngettext("%(count)d appeasement", "%(count)d appeasements", summary["count"]) % {
        "count": summary["count"]
    }
    reps = ngettext("%(count)d rep", "%(count)d reps", summary["reps"]) % {"count": summary["reps"]}
    days = ngettext("in the last %(count)d day", "in the last %(count)d days", summary["window_days"]) % {
        "count": summary["window_days"]
    }
    return gettext("Frequent claimant: %(appeasements)s %(days)s, from %(reps)s.") % {
        "appeasements": appeasements,
        "days": days,
        "reps": reps,
    }


def _panel_context(request, customer: Customer, form: IssueForm) -> dict:
    # The warning counts every rep's appeasements; the list shows only what this user
    # may see (a rep their own, a supervisor their team's).
    summary = customer_appeasement_summary(customer=customer)
    history = issuances_visible_to(request.user).filter(customer=customer).order_by("-created_at")[:20]
    return {
        "customer": customer,
        "form": form,
        "summary": summary,
        "frequent": summary["count"] >= FREQUENT_CLAIMANT_COUNT,
        "frequent_text": frequent_claimant_text(summary),
        "history": history,
        "open_cases": customer.cases.filter(status__in=["open", "claimed"]).order_by("-priority_score")[:5],
        "offers": form.fields["offer"].queryset,
        **_budget_context(request.user),
    }


@require_POST
@staff_required
@sensitive_variables()  # the claimed code's plaintext is a local below
def issue(request, customer_id: int):
    customer = get_object_or_404(Customer, pk=customer_id)
    form = IssueForm(request.POST, user=request.user, customer=customer)
    error = None
    issuance = None
    if form.is_valid():
        started = parse_datetime(form.cleaned_data["complaint_started_at"] or "")
        try:
            issuance = issuance_create(
                actor=Actor.from_request(request),
                customer=customer,
                offer=form.cleaned_data["offer"],
                reason_code=form.cleaned_data["reason_code"],
                channel=form.cleaned_data["channel"],
                note=form.cleaned_data["note"],
                complaint_started_at=started,
            )
        except ValidationError as invalid:
            for field, messages in invalid.message_dict.items():
                form.add_error(field if field in form.fields else None, messages)
        except ApplicationError as refused:
            error = refused
    context = {"form": form, "issuance": issuance, "error": error, "customer": customer, "channels": Channel.choices}
    context.update(_budget_context(request.user, issuance.currency if issuance else None))
    status = 200 if issuance else (403 if error else 400)
    if request.htmx:
        response = render(request, "csr/_issue_result.html", context, status=status)
        if issuance:
            response["HX-Trigger"] = "budget-changed"
        return response
    if issuance:
        return redirect("csr:issuance", issuance_id=issuance.pk)
    return render(request, "csr/customer.html", {**_panel_context(request, customer, form), **context}, status=status)


@require_GET
@staff_required
def issuance_detail(request, issuance_id):
    issuance = get_object_or_404(issuances_visible_to(request.user), pk=issuance_id)
    template = "csr/_issuance_status.html" if request.htmx else "csr/issuance.html"
    return render(request, template, {"issuance": issuance, "channels": Channel.choices})


@require_POST
@staff_required
def resend(request, issuance_id):
    get_object_or_404(issuances_visible_to(request.user), pk=issuance_id)
    error = None
    try:
        delivery_resend(
            actor=Actor.from_request(request), issuance_id=issuance_id, channel=request.POST.get("channel", "")
        )
    except ValidationError as invalid:
        error = " ".join(invalid.messages)
    except ApplicationError as refused:
        error = refused.message
    issuance = get_object_or_404(issuances_visible_to(request.user), pk=issuance_id)
    context = {"issuance": issuance, "channels": Channel.choices, "resend_error": error}
    if request.htmx:
        return render(request, "csr/_issuance_status.html", context)
    return redirect("csr:issuance", issuance_id=issuance_id)


@require_GET
@staff_required
def budget(request):
    return render(request, "csr/_budget.html", _budget_context(request.user))


@require_GET
@supervisor_required
def approvals(request):
    pending = approvals_pending(request.user)
    return render(request, "csr/approvals.html", {"pending": pending})


@require_POST
@supervisor_required
@sensitive_variables()
def approval_decide(request, issuance_id, decision: str):
    if decision not in ("approve", "reject"):
        raise Http404
    get_object_or_404(issuances_visible_to(request.user), pk=issuance_id)
    comment = request.POST.get("comment", "")
    actor = Actor.from_request(request)
    error = None
    issuance = None
    try:
        if decision == "approve":
            issuance = issuance_approve(actor=actor, issuance_id=issuance_id, comment=comment)
        else:
            issuance = issuance_reject(actor=actor, issuance_id=issuance_id, comment=comment)
    except ApplicationError as refused:
        error = refused.message
    except ValidationError as invalid:
        error = " ".join(invalid.messages)
    if issuance is None:
        issuance = get_object_or_404(issuances_visible_to(request.user), pk=issuance_id)
    if request.htmx:
        return render(request, "csr/_approval_row.html", {"item": issuance, "error": error})
    return redirect("csr:approvals")


@require_POST
def language_set(request):
    """Django's set_language, and, for a signed-in member of staff, their profile keeps
    the choice (so it follows them to any browser)."""
    from django.conf import settings
    from django.views.i18n import set_language

    from appease.models import StaffProfile

    response = set_language(request)
    language = request.POST.get("language", "")
    if request.user.is_authenticated and language in dict(settings.LANGUAGES):
        StaffProfile.objects.filter(user=request.user).update(language=language)
    return response


class TwoFactorForm(forms.Form):
    token = forms.CharField(
        label=gettext_lazy("Code from your authenticator app"),
        max_length=8,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}),
    )


@login_required
def two_factor(request):
    """Each member of staff enrols their own authenticator app (TOTP): the secret is
    shown to them once, here, and never to anyone in the admin."""
    import base64

    from django_otp import login as otp_login
    from django_otp.plugins.otp_totp.models import TOTPDevice

    if not has_role(request.user, CSR, SUPERVISOR):
        raise PermissionDenied
    confirmed = TOTPDevice.objects.filter(user=request.user, confirmed=True).first()
    if confirmed is not None:
        return render(request, "registration/two_factor.html", {"enrolled": True})
    device, _created = TOTPDevice.objects.get_or_create(
        user=request.user, confirmed=False, defaults={"name": "authenticator"}
    )
    form = TwoFactorForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["token"].strip()):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)
            messages.success(request, gettext("Two-factor sign-in is on for your account."))
            return redirect("two-factor")
        form.add_error("token", gettext("That code is not right, or has expired: try the current one."))
    return render(
        request,
        "registration/two_factor.html",
        {
            "enrolled": False,
            "form": form,
            "secret": base64.b32encode(device.bin_key).decode(),
            "config_url": device.config_url,
        },
    )


@require_GET
def favicon(request):
    """/favicon.ico, asked for by browsers on pages that name no icon (the API's JSON):
    the site's icon from the static files (a hashed name in production)."""
    return redirect(static("appease/favicon.svg"))
