"""Supervisors' admin for the issuance domain: limits, reason codes, customers,
issuances (approve, reject, void) and the audit log."""

from __future__ import annotations

import json

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from modeltranslation.admin import TranslationAdmin

from appease.core.admin import (
    AuditedAdminMixin,
    AuditedModelAdmin,
    ReadOnlyAdmin,
)
from appease.core.admin_money import MoneyAdminMixin
from appease.core.audit import audit_event_record
from appease.core.context import Actor
from appease.core.exceptions import ApplicationError
from appease.core.money import format_money
from appease.core.privacy import customer_erase, customer_export
from appease.issuance.models import (
    Customer,
    CustomerOrder,
    HelpdeskIntegration,
    Issuance,
    LimitBudget,
    LimitPolicy,
    OfferMessage,
    ReasonCode,
    StaffProfile,
    Team,
)
from appease.issuance.selectors import issuances_visible_to, policy_for
from appease.issuance.services.customers import HISTORY_FIELDS, customer_history_refresh, customers_import
from appease.issuance.services.helpdesk import helpdesk_integration_secret_rotate
from appease.issuance.services.issuance import issuance_approve, issuance_reject, issuance_void


class LimitBudgetInline(admin.TabularInline):
    model = LimitBudget
    extra = 0
    fields = [
        "currency",
        "max_face_per_issuance_amount",
        "day_cost_amount",
        "week_cost_amount",
        "month_cost_amount",
        "day_face_amount",
        "week_face_amount",
        "month_face_amount",
    ]


class NotOwnLimitsMixin:
    """Nobody but an administrator changes the limits that apply to themselves: a
    supervisor cannot raise their own budget (they see it, read-only)."""

    def governs(self, request, obj) -> bool:
        raise NotImplementedError

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and not request.user.is_superuser and self.governs(request, obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and not request.user.is_superuser and self.governs(request, obj):
            return False
        return super().has_delete_permission(request, obj)


@admin.register(LimitPolicy)
class LimitPolicyAdmin(NotOwnLimitsMixin, AuditedModelAdmin):
    list_display = ["name", "group", "over_limit", "budgets", "max_issuances_per_customer", "customer_window_days"]
    filter_horizontal = ["allowed_offers"]
    inlines = [LimitBudgetInline]

    def governs(self, request, obj) -> bool:
        own = policy_for(request.user)
        return own is not None and own.pk == obj.pk

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("budgets")

    @admin.display(description=_("cost per day"))
    def budgets(self, policy: LimitPolicy) -> str:
        """Each currency's daily cost budget in the reader's notation."""
        return " · ".join(
            format_money(budget.day_cost_amount, budget.currency) if budget.day_cost_amount is not None else "∞"
            for budget in policy.budgets.all()
        )


@admin.register(ReasonCode)
class ReasonCodeAdmin(AuditedAdminMixin, TranslationAdmin):
    list_display = ["code", "label", "incident_type", "is_active"]
    list_filter = ["incident_type", "is_active"]
    search_fields = ["code", "label"]


@admin.register(Team)
class TeamAdmin(AuditedAdminMixin, TranslationAdmin):
    list_display = ["name"]


class StaffProfileForm(forms.ModelForm):
    languages = forms.MultipleChoiceField(
        label=_("languages worked in"),
        choices=settings.LANGUAGES,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=StaffProfile._meta.get_field("languages").help_text,
    )

    class Meta:
        model = StaffProfile
        fields = ["user", "team", "policy", "language", "languages", "time_zone"]


@admin.register(StaffProfile)
class StaffProfileAdmin(NotOwnLimitsMixin, AuditedModelAdmin):
    form = StaffProfileForm
    list_display = ["user", "team", "policy", "language", "languages", "time_zone"]
    list_filter = ["team", "policy"]
    list_select_related = ["user", "team", "policy"]
    autocomplete_fields = ["user"]

    def governs(self, request, obj) -> bool:
        return obj.user_id == request.user.pk


class CustomerOrderInline(admin.TabularInline):
    """The customer's orders. Totals and times come from the shop (an order.placed event,
    the orders import) and count in the history; here a supervisor may add a bare
    reference, so a rep can find the customer by what they quote."""

    model = CustomerOrder
    extra = 0
    fields = ["reference", "total_amount", "currency", "placed_at", "source"]
    readonly_fields = ["total_amount", "currency", "placed_at", "source"]


class CustomerImportForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_("A header row naming the columns, e.g. name,email,phone,preferred_channel,language,tier."),
    )


@admin.register(Customer)
class CustomerAdmin(AuditedModelAdmin):
    list_display = ["name", "email", "phone", "preferred_channel", "language", "tier", "orders_count"]
    list_filter = ["tier", "preferred_channel", "language"]
    search_fields = ["name", "email", "external_id", "orders__reference"]
    inlines = [CustomerOrderInline]
    change_list_template = "admin/appease/customer/change_list.html"
    actions = ["export_personal_data", "erase_personal_data"]

    def get_readonly_fields(self, request, obj=None):
        # Once the shop's orders reach us the history is computed from them: not typed.
        computed = HISTORY_FIELDS if obj is not None and obj.history_computed_at is not None else []
        return [*super().get_readonly_fields(request, obj), *computed, "history_computed_at"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if obj.history_computed_at is not None and "currency" in form.changed_data:
            # Spend and lifetime value count the orders in the customer's currency: now another one.
            customer_history_refresh(customer_id=obj.pk)

    @admin.action(description=_("Export personal data (JSON)"), permissions=["change"])
    def export_personal_data(self, request, queryset):
        """The right of access: one JSON file with everything held about the customers."""
        data = [customer_export(customer) for customer in queryset]
        audit_event_record(
            actor=Actor.from_request(request),
            action="customer.export",
            obj=queryset.first(),
            after={"customers": [customer.pk for customer in queryset]},
        )
        response = HttpResponse(
            json.dumps(data, indent=2, ensure_ascii=False, default=str), content_type="application/json"
        )
        response["Content-Disposition"] = 'attachment; filename="personal-data.json"'
        return response

    @admin.action(description=_("Erase personal data (on the customer's request)"), permissions=["change"])
    def erase_personal_data(self, request, queryset):
        for customer in queryset:
            customer_erase(actor=Actor.from_request(request), customer=customer)
        messages.success(
            request,
            _("%(count)d customers erased: their personal data is gone, their financial trail kept.")
            % {"count": queryset.count()},
        )

    def get_urls(self):
        return [
            path("import/", self.admin_site.admin_view(self.import_view), name="appease_customer_import"),
            *super().get_urls(),
        ]

    def import_view(self, request):
        if not self.has_add_permission(request):
            return HttpResponseRedirect(reverse("admin:appease_customer_changelist"))
        form = CustomerImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                text = form.cleaned_data["file"].read().decode("utf-8-sig")
                count = customers_import(actor=Actor.from_request(request), text=text)
            except UnicodeDecodeError:
                form.add_error("file", _("The file must be UTF-8 text."))
            except ValidationError as error:
                for message in error.message_dict.get("file", []):
                    form.add_error(None, message)
            else:
                messages.success(request, _("%(count)d customers imported.") % {"count": count})
                return HttpResponseRedirect(reverse("admin:appease_customer_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "title": _("Import customers"),
        }
        return TemplateResponse(request, "admin/appease/customer/import.html", context)


@admin.register(Issuance)
class IssuanceAdmin(MoneyAdminMixin, ReadOnlyAdmin):
    """Read-only: issuances change only through approve, reject and void."""

    list_display = [
        "created_at",
        "csr",
        "customer",
        "offer",
        "reason_code",
        "channel",
        "status",
        "face_value_amount",
        "cost_amount",
        "decided_by",
    ]
    list_filter = ["status", "channel", "reason_code__incident_type", "reason_code", "offer", "csr"]
    list_select_related = ["csr", "customer", "offer", "reason_code", "decided_by"]
    search_fields = ["customer__name", "customer__email", "csr__username", "note"]
    date_hierarchy = "created_at"
    actions = ["approve_selected", "reject_selected", "void_selected"]
    show_full_result_count = False

    def get_queryset(self, request):
        return issuances_visible_to(request.user)

    def _decide(self, request, queryset, service, success, **kwargs):
        actor = Actor.from_request(request)
        done = 0
        for issuance in queryset:
            try:
                service(actor=actor, issuance_id=issuance.pk, **kwargs)
                done += 1
            except (ApplicationError, ValidationError) as error:
                text = error.message if isinstance(error, ApplicationError) else "; ".join(error.messages)
                messages.error(request, f"{issuance}: {text}")
        if done:
            messages.success(request, success % {"count": done})

    @admin.action(description=_("Approve selected issuances"), permissions=["view"])
    def approve_selected(self, request, queryset):
        self._decide(request, queryset, issuance_approve, _("%(count)d issuances approved."))

    @admin.action(description=_("Reject selected issuances"), permissions=["view"])
    def reject_selected(self, request, queryset):
        self._decide(
            request,
            queryset,
            issuance_reject,
            _("%(count)d issuances rejected."),
            comment=str(_("Rejected from the admin list.")),
        )

    @admin.action(description=_("Void selected issuances"), permissions=["view"])
    def void_selected(self, request, queryset):
        self._decide(
            request,
            queryset,
            issuance_void,
            _("%(count)d issuances voided."),
            reason=str(_("Voided from the admin list.")),
        )


@admin.register(OfferMessage)
class OfferMessageAdmin(AuditedModelAdmin):
    """The wording of an offer's message per language; empty fields use the defaults."""

    list_display = ["offer", "language"]
    list_filter = ["language", "offer"]


@admin.register(HelpdeskIntegration)
class HelpdeskIntegrationAdmin(AuditedModelAdmin):
    """A helpdesk app that may open the sidebar. Its shared secret is shown once, on the
    page after it is made or rotated (never in a form, a message cookie or the audit log)."""

    list_display = ["name", "kind", "key_id", "is_active", "created_at", "secret_rotated_at"]
    list_filter = ["kind", "is_active"]
    fields = ["name", "kind", "key_id", "frame_ancestors", "is_active"]
    actions = ["rotate_secret"]

    def response_add(self, request, obj, post_url_continue=None):
        return self._secret_page(request, obj, obj.secret)

    def _secret_page(self, request, integration, secret):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "integration": integration,
            "secret": secret,
            "audience": settings.SIDEBAR_LAUNCH_AUDIENCE,
            "title": _("Shared secret of %(name)s") % {"name": integration.name},
        }
        response = TemplateResponse(request, "admin/appease/helpdeskintegration/secret.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description=_("Rotate the shared secret (the old one stops working at once)"), permissions=["change"])
    def rotate_secret(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("Rotate one integration at a time."), messages.ERROR)
            return None
        integration = queryset.get()
        secret = helpdesk_integration_secret_rotate(actor=Actor.from_request(request), integration_id=integration.pk)
        integration.refresh_from_db()
        return self._secret_page(request, integration, secret)
