"""The CSR web UI: find the customer, give an appeasement in one click, watch it go.

Server-rendered, htmx for the partial updates. Views call the same services and
selectors as the API; they only turn requests into calls and results into pages.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from functools import wraps

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy, ngettext
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_POST
from django.views.i18n import set_language

from appease.core.context import Actor
from appease.core.exceptions import ApplicationError
from appease.core.idempotency import idempotency_key_begin, idempotency_key_release, request_fingerprint
from appease.core.money import default_currency
from appease.core.roles import CSR, SUPERVISOR, has_role
from appease.delivery.models import Channel
from appease.issuance.models import Customer, Issuance, StaffProfile
from appease.issuance.panel import panel_extensions_context
from appease.issuance.selectors import (
    approvals_pending,
    customer_appeasement_summary,
    customer_search,
    issuance_recent_repeat,
    issuances_visible_to,
    limits_remaining,
    offers_available_to,
    policy_for,
    reason_codes_active,
)
from appease.issuance.services.customers import customer_create, customer_currency_set
from appease.issuance.services.deliveries import delivery_resend
from appease.issuance.services.issuance import (
    complaint_start_parse,
    issuance_approve,
    issuance_code_reveal,
    issuance_create,
    issuance_reject,
)
from appease.issuance.sidebar_auth import sidebar_authentication
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
    offer = forms.ModelChoiceField(
        queryset=Offer.objects.none(),
        label=gettext_lazy("Offer"),
        empty_label=None,
        error_messages={
            "required": gettext_lazy("Choose an offer."),
            "invalid_choice": gettext_lazy("This offer can no longer be given: choose another."),
        },
    )
    reason_code = forms.ModelChoiceField(
        queryset=reason_codes_active(),
        label=gettext_lazy("Reason"),
        empty_label=gettext_lazy("Choose the reason…"),
        # The rep's first key goes here: arrows choose the reason, digits the offer.
        widget=forms.Select(attrs={"autofocus": True}),
        error_messages={
            "required": gettext_lazy("Choose the reason."),
            "invalid_choice": gettext_lazy("This reason is no longer in use: choose another."),
        },
    )
    channel = forms.ChoiceField(choices=Channel.choices, label=gettext_lazy("Send by"))
    note = forms.CharField(label=gettext_lazy("Note"), required=False, max_length=2000)
    # The complaint's clock: set by the page when the rep starts (Start, or their first
    # keystroke) or from a telephony/helpdesk link's `started_at`; empty: not started.
    complaint_started_at = forms.CharField(widget=forms.HiddenInput, required=False)
    complaint_start_source = forms.ChoiceField(
        widget=forms.HiddenInput,
        required=False,
        choices=[("", ""), (Issuance.StartSource.REP, ""), (Issuance.StartSource.LINK, "")],
    )
    # An experiment's assignment (signed, checked on the give by the app that made it) and
    # the rep's reason when they give something else.
    experiment_token = forms.CharField(widget=forms.HiddenInput, required=False, max_length=2000)
    override_reason = forms.CharField(label=gettext_lazy("Why something else?"), required=False, max_length=255)

    def __init__(self, *args, user, customer: Customer, **kwargs):
        super().__init__(*args, **kwargs)
        # Only what this customer can use (their currency, or soft), none preselected.
        self.fields["offer"].queryset = offers_available_to(user, customer=customer)
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
            "currency",
            "tier",
            "external_id",
            "consent_email",
            "consent_sms",
            "consent_chat",
            "consent_social",
        ]


def currency_choices(current: str = "") -> list[tuple[str, str]]:
    """The currencies a customer can usefully have: the shop's, those of active offers,
    and the customer's own (the API accepts any ISO 4217 code)."""
    in_use = set(Offer.objects.filter(is_active=True).values_list("currency", flat=True))
    codes = sorted(in_use | {default_currency()} | ({current} if current else set()))
    return [(code, code) for code in codes]


class CustomerCurrencyForm(forms.Form):
    currency = forms.ChoiceField(label=gettext_lazy("Currency"))

    def __init__(self, *args, customer: Customer, **kwargs):
        super().__init__(*args, initial={"currency": customer.currency}, **kwargs)
        self.fields["currency"].choices = currency_choices(customer.currency)


def _budget_context(user, currency: str | None = None):
    """The rep's budgets, the one in `currency` (the customer's) first; the others
    follow, folded, so the one that matters is never below the fold."""
    policy = policy_for(user)
    if policy is None:
        return {"budget": None}
    currencies = sorted(policy.budgets.values_list("currency", flat=True))
    if currency:
        currencies = [currency] + [c for c in currencies if c != currency]
    return {"budget": [limits_remaining(user=user, currency=c) for c in currencies], "budget_currency": currency}


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
    form = CustomerForm(
        request.POST or None, initial={"name": request.GET.get("name", ""), "currency": default_currency()}
    )
    form.fields["currency"].widget = forms.Select(choices=currency_choices())
    form.fields["currency"].required = False  # left out: the shop's default
    if request.method == "POST" and form.is_valid():
        fields = {name: form.cleaned_data[name] for name in CustomerForm.Meta.fields}
        fields["currency"] = fields["currency"] or default_currency()
        try:
            customer = customer_create(actor=Actor.from_request(request), **fields)
        except ValidationError as error:
            _add_service_errors(form, error)
        else:
            return redirect("csr:customer", customer_id=customer.pk)
    status = 400 if form.errors else 200
    return render(request, "csr/customer_new.html", {"form": form}, status=status)


def _customer_currency(customer: Customer) -> str | None:
    return getattr(customer, "currency", None) or None


@require_GET
@staff_required
def customer_panel(request, customer_id: int):
    customer = get_object_or_404(Customer, pk=customer_id)
    initial = {}
    link_error = None
    try:
        # A telephony or helpdesk link may say when the call or ticket began.
        started = complaint_start_parse(request.GET.get("started_at"))
    except ValidationError as invalid:
        started, link_error = None, " ".join(invalid.messages)
    if started is not None:
        initial = {"complaint_started_at": started.isoformat(), "complaint_start_source": Issuance.StartSource.LINK}
    form = IssueForm(user=request.user, customer=customer, initial=initial)
    context = panel_context(request, customer, form)
    context["start_link_error"] = link_error
    return render(request, "csr/customer.html", context)


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


def _offers_context(user, form: IssueForm) -> dict:
    """The offers the form lists; when it lists none, whether that is the customer's
    currency (the policy allows offers, none in it) rather than the policy. Asked only
    then: the template calls it in the list's empty branch."""
    return {
        "offers": form.fields["offer"].queryset,
        "offers_in_other_currencies": lambda: offers_available_to(user).exists(),
    }


def panel_context(request, customer: Customer, form: IssueForm) -> dict:
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
        **_offers_context(request.user, form),
        "idempotency_key": uuid.uuid4().hex,
        "currency_form": CustomerCurrencyForm(customer=customer),
        "rendered_at": timezone.now().isoformat(),  # the timer counts on our clock, not the browser's
        **_budget_context(request.user, _customer_currency(customer)),
        **panel_extensions_context(request=request, customer=customer, form=form),
    }


# Giving the same offer to the same customer again this soon is more likely a slip
# (or a second rep on the same complaint) than a decision: the rep confirms it.
REPEAT_CONFIRM_WITHIN = timedelta(minutes=5)
ISSUE_KEY_SCOPE = "csr-issue"
# Service field names that are not the form's (None: said for the whole form, the clock is hidden).
ISSUE_FIELD_ALIASES = {"offer_id": "offer", "complaint_started_at": None}


def _add_service_errors(form: forms.Form, invalid: ValidationError, aliases: dict | None = None) -> None:
    for field, field_messages in invalid.message_dict.items():
        field = (aliases or {}).get(field, field)
        form.add_error(field if field in form.fields else None, field_messages)


@require_POST
@staff_required
def customer_currency(request, customer_id: int):
    """Change what the customer pays in (the offers the panel lists follow it)."""
    customer = get_object_or_404(Customer, pk=customer_id)
    form = CustomerCurrencyForm(request.POST, customer=customer)
    if form.is_valid():
        try:
            customer_currency_set(
                actor=Actor.from_request(request), customer_id=customer.pk, currency=form.cleaned_data["currency"]
            )
        except ValidationError as invalid:
            for message in invalid.messages:
                messages.error(request, message)
    else:
        for errors in form.errors.values():
            for message in errors:
                messages.error(request, message)
    return redirect("csr:customer", customer_id=customer.pk)


@sidebar_authentication  # the helpdesk sidebar gives, polls and refreshes here too
@require_POST
@staff_required
@sensitive_variables()  # the claimed code's plaintext is a local below
def issue(request, customer_id: int):
    """One click is one appeasement. The form carries an idempotency key minted when it
    rendered: a double click, a retry after a lost answer, or a resubmitted page finds
    the first answer and replays it. Every refusal comes back as the form, field by
    field, with a 4xx status; a success comes back as a fresh form (new key) and the
    result, added to the list of what was given in this call."""
    customer = get_object_or_404(Customer, pk=customer_id)
    form = IssueForm(request.POST, user=request.user, customer=customer)
    issuance = refusal = repeat = None
    if form.is_valid():
        issuance, refusal, repeat = _give_once(request, customer, form)
    if issuance is not None:
        status = 200
    elif repeat is not None:
        status = 409
    elif refusal is not None:
        status = refusal.status
    else:
        status = 400
    if refusal is not None and refusal.code == "inventory_empty":
        form.add_error("offer", refusal.message)  # it is the offer's problem: said beside it
        refusal = None
    if issuance is not None:
        # The form starts again, blank, with a new key; the complaint's clock stays.
        form = IssueForm(
            user=request.user,
            customer=customer,
            initial={
                "complaint_started_at": request.POST.get("complaint_started_at", ""),
                "complaint_start_source": request.POST.get("complaint_start_source", ""),
            },
        )
    context = {
        "form": form,
        "issuance": issuance,
        "refusal": refusal,
        "repeat": repeat,
        "customer": customer,
        **_offers_context(request.user, form),
        "channels": Channel.choices,
        "idempotency_key": uuid.uuid4().hex,
        **panel_extensions_context(request=request, customer=customer, form=form),
    }
    if request.htmx:
        response = render(request, "csr/_issue_form.html", context, status=status)
        if issuance:
            response["HX-Trigger"] = "budget-changed"
        return response
    if issuance:
        return redirect("csr:issuance", issuance_id=issuance.pk)
    return render(request, "csr/customer.html", {**panel_context(request, customer, form), **context}, status=status)


def _give_once(request, customer: Customer, form: IssueForm):
    """(the issuance, or the refusal (an ApplicationError, or the stored answer of one),
    or the recent same appeasement to confirm); field errors go on `form`."""
    data = form.cleaned_data
    try:
        started = complaint_start_parse(data["complaint_started_at"], field="complaint_started_at")
    except ValidationError as invalid:
        _add_service_errors(form, invalid, ISSUE_FIELD_ALIASES)
        return None, None, None
    record = None
    key = request.POST.get("idempotency_key", "")
    if key:
        fingerprint = request_fingerprint(
            {
                "customer": customer.pk,
                "offer": data["offer"].pk,
                "reason": data["reason_code"].pk,
                "channel": data["channel"],
                "note": data["note"],
            }
        )
        try:
            record = idempotency_key_begin(
                scope=ISSUE_KEY_SCOPE, owner=f"user:{request.user.pk}", key=key, fingerprint=fingerprint
            )
        except ApplicationError as refused:
            return None, refused, None
        if record.is_completed:
            issuance, refusal = _replayed(request, record)
            return issuance, refusal, None
    if not request.POST.get("confirm_repeat"):
        repeat = issuance_recent_repeat(customer=customer, offer=data["offer"], within=REPEAT_CONFIRM_WITHIN)
        if repeat is not None:
            # Nothing happened: forget the key (the question's form brings its own).
            if record is not None:
                idempotency_key_release(record=record)
            return None, None, repeat
    try:
        issuance = issuance_create(
            actor=Actor.from_request(request),
            customer=customer,
            offer=data["offer"],
            reason_code=data["reason_code"],
            channel=data["channel"],
            note=data["note"],
            complaint_started_at=started,
            complaint_start_source=data["complaint_start_source"] or Issuance.StartSource.REP,
            idempotency_key=record,
            # Where it was given from (the helpdesk's sidebar posts to this view too), and
            # an experiment's assignment.
            context={"path": "sidebar" if getattr(request, "sidebar", None) else "panel", **_experiment_context(data)},
        )
    except ValidationError as invalid:
        _add_service_errors(form, invalid, ISSUE_FIELD_ALIASES)
        return None, None, None
    except ApplicationError as refused:
        return None, refused, None
    return issuance, None, None


def _experiment_context(data: dict) -> dict:
    """An experiment's assignment and the override's reason, for the listeners that check
    them (feedback's), nothing when the form carried no assignment."""
    if not data.get("experiment_token"):
        return {}
    return {"experiment_token": data["experiment_token"], "override_reason": data.get("override_reason", "")}


def _replayed(request, record):
    """The first answer to a key, again: the issuance it made, or the refusal it got."""
    result = record.result or {}
    if "issuance_id" in result:
        return issuances_visible_to(request.user).filter(pk=result["issuance_id"]).first(), None
    return None, ApplicationError(
        result.get("error", "refused"),
        result.get("detail", ""),
        status=record.response_status or 409,
        extra={key: value for key, value in result.items() if key not in ("error", "detail")},
    )


@sidebar_authentication  # the helpdesk sidebar gives, polls and refreshes here too
@require_GET
@staff_required
def issuance_detail(request, issuance_id):
    issuance = get_object_or_404(issuances_visible_to(request.user), pk=issuance_id)
    template = "csr/_issuance_status.html" if request.htmx else "csr/issuance.html"
    return render(request, template, {"issuance": issuance, "channels": Channel.choices})


class ResendForm(forms.Form):
    channel = forms.ChoiceField(choices=Channel.choices, label=gettext_lazy("Send by"))
    address = forms.CharField(
        label=gettext_lazy("To (leave empty for the customer's own)"), required=False, max_length=255
    )


def _status_response(request, issuance_id, *, status: int = 200, **extra):
    issuance = get_object_or_404(issuances_visible_to(request.user), pk=issuance_id)
    context = {"issuance": issuance, "channels": Channel.choices, **extra}
    if request.htmx:
        return render(request, "csr/_issuance_status.html", context, status=status)
    return render(request, "csr/issuance.html", context, status=status)


@sidebar_authentication  # the helpdesk sidebar gives, polls and refreshes here too
@require_POST
@staff_required
def resend(request, issuance_id):
    """Send a given appeasement again, at any time, to the customer's contact or to a
    corrected one; a refusal comes back beside the form with a 4xx status."""
    get_object_or_404(issuances_visible_to(request.user), pk=issuance_id)
    form = ResendForm(request.POST, auto_id=f"resend-{issuance_id}-%s")
    status = 400
    refusal = None
    if form.is_valid():
        try:
            delivery_resend(
                actor=Actor.from_request(request),
                issuance_id=issuance_id,
                channel=form.cleaned_data["channel"],
                address=form.cleaned_data["address"],
            )
        except ValidationError as invalid:
            _add_service_errors(form, invalid)
        except ApplicationError as refused:
            refusal, status = refused, refused.status
        else:
            if not request.htmx:
                return redirect("csr:issuance", issuance_id=issuance_id)
            return _status_response(request, issuance_id, resent=True)
    return _status_response(request, issuance_id, status=status, resend_form=form, resend_refusal=refusal)


@sidebar_authentication  # the helpdesk sidebar gives, polls and refreshes here too
@require_POST
@staff_required
@sensitive_variables()  # the code's plaintext is a local below
def reveal(request, issuance_id):
    """The full code of an appeasement the rep gave, to read out on a call (audited,
    rate-limited). Shown in the page, never stored in it beyond this answer."""
    get_object_or_404(issuances_visible_to(request.user), pk=issuance_id)
    try:
        plaintext = issuance_code_reveal(actor=Actor.from_request(request), issuance_id=issuance_id)
    except ApplicationError as refused:
        return _status_response(request, issuance_id, status=refused.status, reveal_refusal=refused)
    response = _status_response(request, issuance_id, revealed=plaintext)
    response["Cache-Control"] = "no-store"
    return response


@sidebar_authentication  # the helpdesk sidebar gives, polls and refreshes here too
@require_GET
@staff_required
def budget(request):
    currency = request.GET.get("currency", "")
    return render(request, "csr/_budget.html", _budget_context(request.user, currency if len(currency) == 3 else None))


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
    status = 200
    issuance = None
    try:
        if decision == "approve":
            issuance = issuance_approve(actor=actor, issuance_id=issuance_id, comment=comment)
        else:
            issuance = issuance_reject(actor=actor, issuance_id=issuance_id, comment=comment)
    except ApplicationError as refused:
        error, status = refused, refused.status
    except ValidationError as invalid:
        error, status = ApplicationError("invalid", " ".join(invalid.messages), status=400), 400
    if issuance is None:
        issuance = get_object_or_404(issuances_visible_to(request.user), pk=issuance_id)
    context = {"item": issuance, "error": error, "comment": comment}
    if request.htmx:
        return render(request, "csr/_approval_row.html", context, status=status)
    if error is not None:
        pending = approvals_pending(request.user)
        return render(
            request, "csr/approvals.html", {"pending": pending, "errors": {str(issuance.pk): context}}, status=status
        )
    return redirect("csr:approvals")


@require_POST
def language_set(request):
    """Django's set_language, and, for a signed-in member of staff, their profile keeps
    the choice (so it follows them to any browser)."""

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
