"""Supervisors manage offers, codes and merchant keys here. Codes are never shown in
full: the admin knows only their last four characters."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from modeltranslation.admin import TranslationAdmin
from rest_framework_api_key.admin import APIKeyModelAdmin

from appease.core.admin import (
    AuditedAdminMixin,
    AuditedAPIKeyMixin,
    ReadOnlyAdmin,
    ScopedKeyAdminMixin,
    scoped_key_form,
)
from appease.core.admin_money import MoneyAdminMixin
from appease.core.money import format_money
from appease.core.scopes import MERCHANT
from coupons import codes
from coupons.models import Code, CodeBatch, CodeEvent, Merchant, MerchantAPIKey, Offer, Redemption
from coupons.services.inventory import code_batch_import, code_batch_request


class CodeBatchForm(forms.Form):
    quantity = forms.IntegerField(
        label=_("Generate this many codes"), min_value=1, max_value=10_000_000, required=False
    )
    file = forms.FileField(
        label=_("…or import a CSV file"),
        required=False,
        help_text=_("One code per line; gift cards may add a balance column: code,balance."),
    )

    def clean(self):
        data = super().clean()
        if bool(data.get("quantity")) == bool(data.get("file")):
            raise ValidationError(_("Either give a quantity to generate or a file to import."))
        return data


@admin.register(Offer)
class OfferAdmin(MoneyAdminMixin, AuditedAdminMixin, TranslationAdmin):
    list_display = ["name", "kind", "face_value", "cost_amount", "validity_days", "is_active", "available"]
    list_filter = ["kind", "is_active", "currency"]
    search_fields = ["name"]
    fieldsets = [
        (None, {"fields": ["name", "kind", "description", "is_active"]}),
        (
            _("Value"),
            {"fields": ["currency", "value_amount", "percent", "max_discount_amount", "item_sku", "cost_amount"]},
        ),
        (_("Rules"), {"fields": ["validity_days", "min_order_amount"]}),
        (_("Codes"), {"fields": ["code_prefix", "generate_on_demand", "low_inventory_threshold"]}),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(available_count=Count("codes", filter=Q(codes__status=Code.Status.AVAILABLE)))
        )

    @admin.display(description=_("face value"))
    def face_value(self, offer: Offer) -> str:
        if offer.kind == Offer.Kind.PERCENT_OFF:
            return f"{offer.percent}%"
        if offer.is_soft:
            return "—"
        return format_money(offer.value_amount, offer.currency)

    @admin.display(description=_("codes available"), ordering="available_count")
    def available(self, offer: Offer) -> int:
        return offer.available_count

    def get_urls(self):
        return [
            path(
                "<int:offer_id>/codes/",
                self.admin_site.admin_view(self.add_codes_view),
                name="coupons_offer_add_codes",
            ),
            *super().get_urls(),
        ]

    def add_codes_view(self, request, offer_id: int):
        offer = self.get_object(request, str(offer_id))
        if offer is None or not request.user.has_perm("coupons.add_codebatch"):
            return HttpResponseRedirect(reverse("admin:coupons_offer_changelist"))
        form = CodeBatchForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                if form.cleaned_data["quantity"]:
                    batch = code_batch_request(offer=offer, quantity=form.cleaned_data["quantity"], actor=request.user)
                    messages.success(request, _("%(count)d codes are being generated.") % {"count": batch.quantity})
                else:
                    upload = form.cleaned_data["file"]
                    text = upload.read().decode("utf-8-sig")
                    batch = code_batch_import(offer=offer, text=text, filename=upload.name, actor=request.user)
                    messages.success(request, _("%(count)d codes imported.") % {"count": batch.quantity})
                return HttpResponseRedirect(reverse("admin:coupons_codebatch_changelist"))
            except UnicodeDecodeError:
                form.add_error("file", _("The file must be UTF-8 text."))
            except ValidationError as error:
                for message in error.message_dict.get("file", []) + error.message_dict.get("offer", []):
                    form.add_error(None, message)
                for message in error.message_dict.get("quantity", []):
                    form.add_error("quantity", message)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "offer": offer,
            "form": form,
            "title": _("Add codes to %(offer)s") % {"offer": offer},
        }
        return TemplateResponse(request, "admin/coupons/offer/add_codes.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        extra_context["add_codes_url"] = reverse("admin:coupons_offer_add_codes", args=[object_id])
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(CodeBatch)
class CodeBatchAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "offer", "source", "quantity", "status", "filename", "created_by", "finished_at"]
    list_filter = ["source", "status"]
    list_select_related = ["offer", "created_by"]


@admin.register(Code)
class CodeAdmin(MoneyAdminMixin, ReadOnlyAdmin):
    list_display = ["masked", "offer", "status", "balance_amount", "issued_at", "expires_at"]
    list_filter = ["status", "offer"]
    list_select_related = ["offer"]
    search_fields = ["last4"]
    search_help_text = _("Type a whole code to find it exactly, or its last four characters.")
    fields = [
        "masked",
        "offer",
        "batch",
        "status",
        "currency",
        "initial_balance_amount",
        "balance_amount",
        "created_at",
        "issued_at",
        "expires_at",
        "redeemed_at",
        "voided_at",
    ]
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description=_("code"))
    def masked(self, code: Code) -> str:
        return codes.masked(code.last4)

    def get_search_results(self, request, queryset, search_term):
        normalised = codes.normalise(search_term)
        if len(normalised) > 4:
            # A whole code: found by its keyed hash, never by scanning plaintext.
            return queryset.filter(lookup_hash=codes.lookup_hash(normalised)), False
        return super().get_search_results(request, queryset, normalised)


@admin.register(CodeEvent)
class CodeEventAdmin(MoneyAdminMixin, ReadOnlyAdmin):
    list_display = [
        "created_at",
        "code",
        "kind",
        "from_status",
        "to_status",
        "amount",
        "balance_after_amount",
        "actor_label",
        "reason",
    ]
    list_filter = ["kind"]
    list_select_related = ["code", "actor_user", "actor_merchant"]
    show_full_result_count = False


@admin.register(Redemption)
class RedemptionAdmin(MoneyAdminMixin, ReadOnlyAdmin):
    list_display = [
        "redeemed_at",
        "code",
        "merchant",
        "order_id",
        "discount_amount",
        "balance_after_amount",
        "status",
        "reversed_at",
    ]
    list_filter = ["status", "merchant"]
    list_select_related = ["code", "merchant"]
    search_fields = ["order_id"]


class MerchantAPIKeyInline(admin.TabularInline):
    model = MerchantAPIKey
    fields = ["prefix", "name", "scopes", "created", "expiry_date", "revoked"]
    readonly_fields = ["prefix", "name", "scopes", "created", "expiry_date", "revoked"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    list_display = ["name", "is_active", "created_at"]
    inlines = [MerchantAPIKeyInline]


@admin.register(MerchantAPIKey)
class MerchantAPIKeyAdmin(ScopedKeyAdminMixin, AuditedAPIKeyMixin, APIKeyModelAdmin):
    form = scoped_key_form(MerchantAPIKey, MERCHANT, owner="merchant")
    list_display = [*APIKeyModelAdmin.list_display, "merchant", "scopes_shown"]
    search_fields = [*APIKeyModelAdmin.search_fields, "merchant__name"]
