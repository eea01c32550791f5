"""The case queue in the CSR web UI, the customer's survey page, and the demo shop.

Views turn requests into service calls; the services do the work and the checks."""

from __future__ import annotations

import uuid

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from appease.core.context import Actor
from appease.core.exceptions import ApplicationError
from appease.core.idempotency import idempotency_key_begin, request_fingerprint
from appease.core.roles import CSR, SUPERVISOR, has_role
from appease.delivery.models import Channel
from appease.issuance.models import Customer, IncidentType, ReasonCode
from appease.issuance.selectors import offers_available_to, staff_languages
from appease.issuance.views import staff_required
from feedback.experiment_views import assignment_for
from feedback.models import ApologyTemplate, Case, FeedbackSite, Intervention, Priority
from feedback.selectors import case_history, case_issuances, cases_queue
from feedback.services.cases import (
    case_apologise,
    case_call_log,
    case_claim,
    case_claim_next,
    case_escalate,
    case_issue,
    case_log,
    case_note,
    case_reassign,
    case_resolve,
)
from feedback.services.experiments import experiment_context
from feedback.services.orders import MAX_IMPORT_PROBLEMS, OrdersFileInvalid, orders_import
from feedback.services.recommend import recommend, recommend_for
from feedback.services.surveys import follow_up_from_token, survey_answer


def _fail(request, error: Exception, where: str) -> None:
    """Keep a refusal for the next page, tagged with the form it answers (`where`): the
    case page shows it inside that form, announced and focused, where the rep is looking."""
    tags = f"where-{where}"
    if isinstance(error, ValidationError):
        for field, field_messages in error.message_dict.items():
            for message in field_messages:
                messages.error(request, message, extra_tags=f"{tags} field-{field}")
    else:
        messages.error(request, error.message, extra_tags=tags)


def _placed_messages(request) -> dict[str, list]:
    """The refusals kept by `_fail`, by the form they answer (the others stay in the
    page's general message list)."""
    placed: dict[str, list] = {}
    for message in messages.get_messages(request):
        for tag in message.extra_tags.split():
            if tag.startswith("where-"):
                placed.setdefault(tag.removeprefix("where-"), []).append(message)
    return placed


@require_GET
@staff_required
def queue(request):
    view = request.GET.get("view") or "active"
    mine = staff_languages(request.user)
    language = request.GET.get("language", "")
    languages = mine if language == "mine" else [language] if language in dict(settings.LANGUAGES) else None
    cases = cases_queue(
        status=view,
        priority=request.GET.get("priority", ""),
        incident_type=request.GET.get("incident_type", ""),
        assigned_to=request.user,
        languages=languages,
    )[:200]
    context = {
        "cases": cases,
        "view": view,
        "views": [
            ("active", _("Open and in progress")),
            ("open", _("Unclaimed")),
            ("mine", _("Mine")),
            ("closed", _("Closed")),
        ],
        "priorities": Priority.choices,
        "incident_types": IncidentType.choices,
        "language": language,
        "languages": settings.LANGUAGES,
        "my_languages": mine,
        "now": timezone.now(),
        "mine_count": Case.objects.filter(status=Case.Status.CLAIMED, assigned_to=request.user).count(),
        "open_count": Case.objects.filter(status=Case.Status.OPEN).count(),
    }
    template = "feedback/_queue_rows.html" if request.htmx else "feedback/queue.html"
    return render(request, template, context)


@require_POST
@staff_required
def claim_next(request):
    case = case_claim_next(actor=Actor.from_request(request))
    if case is None:
        messages.info(request, _("The queue is empty. Well done."))
        return redirect("cases:queue")
    return redirect("cases:detail", case_id=case.pk)


@require_POST
@staff_required
def claim(request, case_id: int):
    try:
        case_claim(actor=Actor.from_request(request), case_id=case_id)
    except ApplicationError as error:
        _fail(request, error, "claim")
    return redirect("cases:detail", case_id=case_id)


class CaseForm(forms.Form):
    customer = forms.IntegerField(widget=forms.HiddenInput)
    incident_type = forms.ChoiceField(
        label=gettext_lazy("Incident type"),
        choices=[("", gettext_lazy("Infer from the text")), *IncidentType.choices],
        required=False,
    )
    channel = forms.ChoiceField(label=gettext_lazy("Contacted us by"), choices=Channel.choices, required=False)
    order_reference = forms.CharField(label=gettext_lazy("Order reference"), max_length=100, required=False)
    rating = forms.TypedChoiceField(
        label=gettext_lazy("How upset (rating)"),
        choices=[("", "—"), ("1", "1 ★"), ("2", "2 ★"), ("3", "3 ★"), ("4", "4 ★"), ("5", "5 ★")],
        coerce=int,
        empty_value=None,
        required=False,
    )
    text = forms.CharField(
        label=gettext_lazy("What happened"), max_length=4000, widget=forms.Textarea(attrs={"rows": 4})
    )


@require_http_methods(["GET", "POST"])
@staff_required
def case_new(request):
    """A rep logs a case from a call or a chat; it is theirs at once."""
    customer = get_object_or_404(Customer, pk=request.POST.get("customer") or request.GET.get("customer") or 0)
    form = CaseForm(request.POST or None, initial={"customer": customer.pk, "channel": customer.preferred_channel})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            case = case_log(
                actor=Actor.from_request(request),
                customer=customer,
                rating=data["rating"],
                text=data["text"],
                incident_type=data["incident_type"],
                order_reference=data["order_reference"],
                channel=data["channel"],
            )
        except ValidationError as error:
            for field, field_messages in error.message_dict.items():
                form.add_error(field if field in form.fields else None, field_messages)
        except ApplicationError as error:
            form.add_error(None, error.message)
        else:
            return redirect("cases:detail", case_id=case.pk)
    status = 400 if form.errors else 200
    return render(request, "feedback/case_new.html", {"form": form, "customer": customer}, status=status)


class IssueFromCaseForm(forms.Form):
    offer = forms.ModelChoiceField(
        queryset=None, label=gettext_lazy("Offer"), empty_label=gettext_lazy("Choose the offer…")
    )
    reason_code = forms.ModelChoiceField(
        queryset=ReasonCode.objects.filter(is_active=True), label=gettext_lazy("Reason"), empty_label=None
    )
    channel = forms.ChoiceField(choices=Channel.choices, label=gettext_lazy("Send by"))
    note = forms.CharField(label=gettext_lazy("Note"), required=False, max_length=2000)

    def __init__(self, *args, user, case: Case, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["offer"].queryset = offers_available_to(user, customer=case.customer)
        reasons = ReasonCode.objects.filter(is_active=True, incident_type=case.incident_type)
        self.fields["reason_code"].initial = reasons.values_list("pk", flat=True).first()
        if case.customer:
            self.fields["channel"].initial = case.customer.preferred_channel


def _case_or_404(case_id) -> Case:
    return get_object_or_404(
        Case.objects.select_related("customer", "assigned_to", "owner_team", "resolved_by"), pk=case_id
    )


@require_GET
@staff_required
def case_detail(request, case_id: int):
    case = _case_or_404(case_id)
    recommendations = recommend(case, user=request.user) if case.is_open else []
    top = recommendations[0] if recommendations else None
    # Preselected only when it is the recommendation, and one the customer can use.
    recommended = top.offer if top and top.offer and (not case.customer or top.offer.usable_by(case.customer)) else None
    form = IssueFromCaseForm(user=request.user, case=case, initial={"offer": recommended.pk if recommended else None})
    templates = ApologyTemplate.objects.filter(is_active=True, language=case.language).filter(
        Q(incident_type=case.incident_type) | Q(incident_type="")
    )
    can_act = case.is_open and (
        case.assigned_to_id == request.user.pk or request.user.groups.filter(name=SUPERVISOR).exists()
    )
    placed = _placed_messages(request)
    # A refusal for a form the page no longer shows (the case was closed meanwhile) goes on top.
    shown = {"note"} | ({"claim"} if case.status == "open" else set())
    if can_act:
        shown |= {"issue", "apology", "resolve", "reassign", "escalate"}
    placed["top"] = [message for where, kept in placed.items() if where not in shown for message in kept]
    user_model = get_user_model()
    staff = (
        user_model.objects.filter(is_active=True, groups__name__in=[CSR, SUPERVISOR]).distinct().order_by("username")
    )
    return render(
        request,
        "feedback/case.html",
        {
            "case": case,
            "events": case.events.select_related("actor"),
            "history": case_history(case),
            "given": case_issuances(case),
            "recommendations": recommendations,
            "form": form,
            "apologies": [(template, template.render(case.customer)) for template in templates],
            "interventions": Intervention.choices,
            "staff": staff,
            "placed": placed,
            "idempotency_key": uuid.uuid4().hex,
            "can_act": can_act,
            "now": timezone.now(),
            "experiment": assignment_for(user=request.user, customer=case.customer, incident_type=case.incident_type)
            if can_act and case.customer
            else None,
        },
    )


# The customer panel shows this many recommendations (the case page five).
PANEL_RECOMMENDATIONS = 3


class PanelRecommendationsForm(forms.Form):
    """The customer panel's question: the reason the rep picked (its incident type), or
    an incident type."""

    reason_code = forms.ModelChoiceField(
        queryset=ReasonCode.objects.filter(is_active=True),
        required=False,
        error_messages={"invalid_choice": gettext_lazy("This reason is no longer in use: choose another.")},
    )
    incident_type = forms.ChoiceField(choices=IncidentType.choices, required=False)

    def clean(self):
        data = super().clean()
        if not self.errors and not data.get("reason_code") and not data.get("incident_type"):
            raise ValidationError(gettext_lazy("Choose the reason."))
        return data


@require_GET
@staff_required
def panel_recommendations(request, customer_id: int):
    """The customer panel's recommendations, a fragment: loaded when the rep picks the
    reason (the panel's app sits below this one, so it asks here rather than imports).
    Only offers this rep may give this customer; the first is one click away."""
    customer = get_object_or_404(Customer, pk=customer_id)
    form = PanelRecommendationsForm(request.GET)
    if not form.is_valid():
        error = " ".join(message for messages_ in form.errors.values() for message in messages_)
        return render(request, "feedback/_panel_recommendations.html", {"error": error}, status=400)
    reason = form.cleaned_data.get("reason_code")
    incident_type = reason.incident_type if reason is not None else form.cleaned_data["incident_type"]
    ranked = recommend_for(customer=customer, incident_type=incident_type, user=request.user)
    context = {
        "recommendations": ranked[:PANEL_RECOMMENDATIONS],
        "incident_label": IncidentType(incident_type).label,
        "customer": customer,
    }
    return render(request, "feedback/_panel_recommendations.html", context)


@require_POST
@staff_required
def note(request, case_id: int):
    # "Log as a call": the rep spoke to the customer, which is a response; a note is not.
    log = case_call_log if request.POST.get("kind") == "call" else case_note
    try:
        log(actor=Actor.from_request(request), case_id=case_id, text=request.POST.get("text", ""))
    except (ValidationError, ApplicationError) as error:
        _fail(request, error, "note")
    return redirect("cases:detail", case_id=case_id)


@require_POST
@staff_required
def issue(request, case_id: int):
    case = _case_or_404(case_id)
    form = IssueFromCaseForm(request.POST, user=request.user, case=case)
    if not form.is_valid():
        labelled = {
            field: [f"{form.fields[field].label}: {message}" for message in field_messages]
            for field, field_messages in form.errors.items()
        }
        _fail(request, ValidationError(labelled), "issue")
        return redirect("cases:detail", case_id=case_id)
    # The form's key (minted when the page rendered): the same form sent twice gives once.
    record = None
    try:
        key = request.POST.get("idempotency_key", "")
        if key:
            data = form.cleaned_data
            fingerprint = request_fingerprint(
                {
                    "case": case.pk,
                    "offer": data["offer"].pk,
                    "reason": data["reason_code"].pk,
                    "channel": data["channel"],
                    "note": data["note"],
                }
            )
            record = idempotency_key_begin(
                scope="csr-case-issue", owner=f"user:{request.user.pk}", key=key, fingerprint=fingerprint
            )
            if record.is_completed:
                if "issuance_id" not in (record.result or {}):
                    raise ApplicationError(record.result.get("error", "refused"), record.result.get("detail", ""))
                messages.info(request, _("That was given already: it is not given twice."))
                return redirect("cases:detail", case_id=case_id)
        issuance = case_issue(
            actor=Actor.from_request(request),
            case_id=case_id,
            idempotency_key=record,
            context=experiment_context(request.POST),
            **form.cleaned_data,
        )
    except (ValidationError, ApplicationError) as error:
        _fail(request, error, "issue")
    else:
        if issuance.status == issuance.Status.PENDING_APPROVAL:
            messages.warning(request, _("Over your limits: sent to a supervisor for approval."))
        else:
            messages.success(request, _("Given: %(offer)s.") % {"offer": issuance.offer.name})
    return redirect("cases:detail", case_id=case_id)


@require_POST
@staff_required
def apologise(request, case_id: int):
    _case_or_404(case_id)
    template = ApologyTemplate.objects.filter(pk=request.POST.get("template") or 0, is_active=True).first()
    try:
        case_apologise(
            actor=Actor.from_request(request),
            case_id=case_id,
            template=template,
            text=request.POST.get("text", ""),
            channel=request.POST.get("channel") or None,
            context=experiment_context(request.POST),
        )
    except (ValidationError, ApplicationError) as error:
        _fail(request, error, "apology")
    else:
        messages.success(request, _("Apology sent."))
    return redirect("cases:detail", case_id=case_id)


@require_POST
@staff_required
def resolve(request, case_id: int):
    try:
        case_resolve(
            actor=Actor.from_request(request),
            case_id=case_id,
            note=request.POST.get("note", ""),
            intervention=request.POST.get("intervention", ""),
        )
    except (ValidationError, ApplicationError) as error:
        _fail(request, error, "resolve")
        return redirect("cases:detail", case_id=case_id)
    messages.success(request, _("Case resolved. The customer will be asked whether it worked."))
    return redirect("cases:queue")


@require_POST
@staff_required
def reassign(request, case_id: int):
    try:
        case_reassign(actor=Actor.from_request(request), case_id=case_id, to_user_id=request.POST.get("to") or 0)
    except (ValidationError, ApplicationError) as error:
        _fail(request, error, "reassign")
    return redirect("cases:detail", case_id=case_id)


@require_POST
@staff_required
def escalate(request, case_id: int):
    try:
        case_escalate(actor=Actor.from_request(request), case_id=case_id, text=request.POST.get("text", ""))
    except (ValidationError, ApplicationError) as error:
        _fail(request, error, "escalate")
    else:
        messages.success(request, _("Escalated to the supervisors."))
    return redirect("cases:detail", case_id=case_id)


def _survey_language(request, customer) -> str:
    """The page's language: one chosen on the page (?lang=), else the customer's own if
    they have one other than the shop's default, else what the browser asks for
    (Accept-Language), else the customer's."""
    known = {code for code, _name in settings.LANGUAGES}
    chosen = request.GET.get("lang", "")
    if chosen in known:
        return chosen
    if customer.language and customer.language != settings.LANGUAGE_CODE:
        return customer.language
    browser = translation.get_language_from_request(request)
    return browser if browser in known else customer.language or settings.LANGUAGE_CODE


@require_http_methods(["GET", "POST"])
def survey(request, token: str):
    """The customer's one-question page, in their language; works once."""
    try:
        follow_up = follow_up_from_token(token)
    except ApplicationError:
        raise Http404 from None
    language = _survey_language(request, follow_up.customer)
    with translation.override(language):
        state, errors = "ask", {}
        if follow_up.answered_at is not None:
            state = "answered"
        elif follow_up.expires_at <= timezone.now() or follow_up.status != follow_up.Status.SENT:
            state = "expired"
        elif request.method == "POST":
            solved = {"yes": True, "no": False}.get(request.POST.get("solved", ""))
            try:
                # The answer just given, for the thank-you page (the row read above has none yet).
                follow_up = survey_answer(
                    token=token,
                    solved=solved,
                    csat=request.POST.get("csat", ""),  # the service checks it: a word is a field error
                    comment=request.POST.get("comment", ""),
                )
            except ValidationError as error:
                errors = error.message_dict
            except ApplicationError as error:
                state = "answered" if error.code == "already_answered" else "expired"
            else:
                state = "thanks"
        status = {"ask": 400 if errors else 200, "thanks": 200, "answered": 409, "expired": 410}[state]
        return render(
            request,
            "feedback/survey.html",
            {"state": state, "errors": errors, "follow_up": follow_up, "scale": range(1, 6), "language": language},
            status=status,
        )


@require_GET
def demo_shop(request):
    """A pretend merchant page with the widget on it (the demo's first feedback site)."""
    if not settings.DEMO_SHOP:
        raise Http404
    site = FeedbackSite.objects.filter(is_active=True).order_by("pk").first()
    if site is None:
        raise Http404("Create a feedback site in the admin first (make demo does).")
    return render(
        request,
        "feedback/demo_shop.html",
        {
            "site_key": site.public_key,
            "endpoint": request.build_absolute_uri(reverse("feedback-api:feedback")),
            "language": request.GET.get("lang") or translation.get_language(),
        },
    )


# The admin's page imports what a request can in a minute or two (about 50 rows a second
# on a busy two-core machine, each row its own transaction); a bigger file is for the command.
ORDERS_IMPORT_MAX_BYTES = 256 * 1024


class OrdersImportForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("CSV file"),
        help_text=gettext_lazy("Columns: reference, total, currency, placed_at, external_id, email, phone, name."),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > ORDERS_IMPORT_MAX_BYTES:
            raise ValidationError(
                _("The file is too large for this page (%(kb)d KB at most): use the orders_import command.")
                % {"kb": ORDERS_IMPORT_MAX_BYTES // 1024}
            )
        return upload


def orders_import_page(request):
    """The admin's orders import (supervisors): the file read line by line, each row
    imported whole or refused with its line number, the same file again changing nothing."""
    if not (request.user.is_superuser or has_role(request.user, SUPERVISOR)):
        raise Http404
    form = OrdersImportForm(request.POST or None, request.FILES or None)
    result, problems = None, []
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            # Line by line as bytes (a multi-byte character never spans a newline), decoded as it goes.
            result = orders_import(
                actor=Actor.from_request(request), lines=(line.decode("utf-8-sig") for line in upload)
            )
        except OrdersFileInvalid as invalid:
            problems = [invalid.problem]
        else:
            problems = result.problems
            messages.success(
                request,
                _(
                    "Orders imported: %(created)d new, %(completed)d completed, %(unchanged)d unchanged, "
                    "%(refused)d refused; %(repurchases)d appeasements followed by an order."
                )
                % vars(result),
            )
    context = {
        **admin.site.each_context(request),
        "title": _("Import orders"),
        "form": form,
        "result": result,
        "problems": problems,
        "problems_capped": len(problems) >= MAX_IMPORT_PROBLEMS,
    }
    return render(request, "feedback/orders_import.html", context)
