"""Supervisors tune the feedback loop here: triage words and weights, service levels,
recommendations, apology templates, feedback sites and automatic rules. Cases,
feedback, follow-ups and events are read-only: they change through the services."""

from urllib.parse import urljoin

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.urls import reverse
from django.utils.html import escape, format_html
from django.utils.translation import gettext_lazy as _
from modeltranslation.admin import TranslationAdmin

from appease.core.admin import AuditedAdminMixin, AuditedModelAdmin, ReadOnlyAdmin
from appease.core.admin_money import MoneyAdminMixin
from appease.core.config import config_object_save, config_snapshot
from appease.core.context import Actor
from appease.core.money import format_money
from coupons.models import Offer
from feedback.models import (
    ApologyTemplate,
    AutoRule,
    Case,
    CaseEvent,
    Experiment,
    Feedback,
    FeedbackSite,
    FollowUp,
    IncidentProfile,
    KeywordRule,
    MerchantEvent,
    OwnerTeam,
    PriorityLevel,
    RecommendationRule,
)
from feedback.services.experiments import experiment_start, experiment_stop


@admin.register(OwnerTeam)
class OwnerTeamAdmin(AuditedAdminMixin, TranslationAdmin):
    list_display = ["name", "is_active"]


@admin.register(IncidentProfile)
class IncidentProfileAdmin(AuditedModelAdmin):
    list_display = ["incident_type", "impact_weight", "owner_team"]
    list_editable = ["impact_weight", "owner_team"]


@admin.register(KeywordRule)
class KeywordRuleAdmin(AuditedModelAdmin):
    list_display = ["language", "kind", "incident_type", "weight", "is_active"]
    list_filter = ["language", "kind", "incident_type", "is_active"]


@admin.register(PriorityLevel)
class PriorityLevelAdmin(AuditedModelAdmin):
    list_display = [
        "priority",
        "min_score",
        "creates_case",
        "first_response_seconds",
        "resolution_seconds",
        "business_hours_only",
    ]


@admin.register(FeedbackSite)
class FeedbackSiteAdmin(AuditedModelAdmin):
    list_display = ["name", "public_key", "default_language", "is_active", "created_at"]
    readonly_fields = ["public_key", "embed_snippet"]

    @admin.display(description=_("Embed"))
    def embed_snippet(self, obj):
        """The tag to paste into the shop's pages: absolute URLs (the shop is another
        origin), so the script and the intake are found wherever the page lives."""
        if not obj.pk:
            return "—"
        base = settings.PUBLIC_URL + "/"
        snippet = format_html(
            '<script src="{}" data-site-key="{}" data-endpoint="{}" data-language="{}" defer></script>',
            # The plain name, not the content-hashed one {% static %} gives in production: the
            # snippet lives on the shop's pages and must survive our upgrades (served with a
            # short cache, STATIC_MAX_AGE). A CDN's absolute STATIC_URL stays as it is.
            urljoin(base, settings.STATIC_URL + "feedback-widget.js"),
            obj.public_key,
            urljoin(base, reverse("feedback-api:feedback")),
            obj.default_language,
        )
        # Shown as text to copy, never as a live tag in the admin: escape() escapes even safe strings.
        return format_html('<code data-testid="embed-snippet">{}</code>', escape(snippet))


@admin.register(RecommendationRule)
class RecommendationRuleAdmin(AuditedModelAdmin):
    list_display = ["name", "incident_type", "tier", "min_past_incidents", "intervention", "offer", "rank", "is_active"]
    list_filter = ["intervention", "incident_type", "is_active"]


@admin.register(ApologyTemplate)
class ApologyTemplateAdmin(AuditedModelAdmin):
    list_display = ["name", "language", "incident_type", "is_active"]
    list_filter = ["language", "incident_type"]


@admin.register(AutoRule)
class AutoRuleAdmin(MoneyAdminMixin, AuditedModelAdmin):
    money_currency = "offer__currency"
    list_display = [
        "name",
        "event_type",
        "condition",
        "offer",
        "budget",
        "spent",
        "issued_count",
        "per_customer_cap",
        "is_paused",
    ]
    list_filter = ["event_type", "is_paused"]
    list_select_related = ["offer"]
    readonly_fields = ["spent_amount", "issued_count"]
    actions = ["pause", "resume"]
    # Spent by concurrent automatic issuances (conditional UPDATEs): never written back
    # from a form or a list that was loaded before they moved.
    COUNTERS = ("id", "spent_amount", "issued_count")

    def save_model(self, request, obj, form, change):
        fields = [field.name for field in obj._meta.concrete_fields if field.name not in self.COUNTERS]
        config_object_save(
            actor=Actor.from_request(request),
            obj=obj,
            before=config_snapshot(obj) if change else None,
            update_fields=fields,
        )

    # Money with its currency (the offer's: budgets are spent at the offer's cost).
    @admin.display(description=_("total budget"), ordering="budget_amount")
    def budget(self, obj):
        return format_money(obj.budget_amount, obj.offer.currency)

    @admin.display(description=_("spent"), ordering="spent_amount")
    def spent(self, obj):
        return format_money(obj.spent_amount, obj.offer.currency)

    @admin.display(description=_("condition"))
    def condition(self, obj):
        if not obj.condition_operator:
            return _("always")
        return f"{obj.condition_field} {obj.condition_operator} {obj.condition_value}"

    @admin.action(description=_("Pause selected rules"), permissions=["change"])
    def pause(self, request, queryset):
        for rule in queryset:
            rule.is_paused = True
            self.save_model(request, rule, None, change=True)

    @admin.action(description=_("Resume selected rules"), permissions=["change"])
    def resume(self, request, queryset):
        for rule in queryset:
            rule.is_paused = False
            self.save_model(request, rule, None, change=True)


class CaseEventInline(admin.TabularInline):
    model = CaseEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "kind", "actor", "text", "data"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Case)
class CaseAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "subject",
        "status",
        "priority",
        "priority_score",
        "incident_type",
        "owner_team",
        "assigned_to",
        "created_at",
        "first_response_breaches",
        "resolution_breaches",
    ]
    list_filter = ["status", "priority", "incident_type", "owner_team", "source", "intervention"]
    list_select_related = ["owner_team", "assigned_to"]
    search_fields = ["subject", "customer__name", "customer__email", "order_reference"]
    date_hierarchy = "created_at"
    inlines = [CaseEventInline]
    show_full_result_count = False


@admin.register(Feedback)
class FeedbackAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "source", "site", "rating", "nps", "incident_type", "disposition", "case"]
    list_filter = ["source", "disposition", "incident_type", "site", "language"]
    search_fields = ["text", "customer__email"]
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(FollowUp)
class FollowUpAdmin(ReadOnlyAdmin):
    list_display = ["case", "customer", "status", "due_at", "sent_at", "answered_at", "solved", "csat"]
    list_filter = ["status", "solved"]


@admin.register(MerchantEvent)
class MerchantEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "merchant", "event_type", "event_id", "processed_at", "issued"]
    list_filter = ["event_type", "merchant"]
    search_fields = ["event_id"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(issued_total=Count("issuances"))

    @admin.display(description=_("issued"), ordering="issued_total")
    def issued(self, obj):
        return obj.issued_total


class ExperimentForm(forms.ModelForm):
    class Meta:
        model = Experiment
        fields = ["name", "incident_type", "method", "share_percent", "offers", "apology_arm"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "offers" in self.fields:
            # Arms are offers that can be given now (the apology arm is its own box).
            self.fields["offers"].queryset = Offer.objects.filter(is_active=True).exclude(kind=Offer.Kind.APOLOGY)

    def clean(self):
        cleaned = super().clean()
        offers = cleaned.get("offers")
        if offers is not None:
            inactive = [offer.name for offer in offers if not offer.is_active]
            if inactive:
                self.add_error("offers", _("These offers are not active: %(names)s.") % {"names": ", ".join(inactive)})
            arms = len(offers) + (1 if cleaned.get("apology_arm") else 0)
            if arms < 2:
                self.add_error(
                    "offers", _("An experiment needs at least two arms: two offers, or one and the apology-only arm.")
                )
        incident_type = cleaned.get("incident_type")
        running = Experiment.objects.filter(is_active=True, incident_type=incident_type)
        if self.instance.pk:
            running = running.exclude(pk=self.instance.pk)
        if incident_type and (self.instance.pk is None or self.instance.is_active) and running.exists():
            self.add_error("incident_type", _("Another experiment is running for this incident type: stop it first."))
        return cleaned


@admin.register(Experiment)
class ExperimentAdmin(AuditedModelAdmin):
    """Supervisors' randomised experiments: created running; arms and incident type are
    fixed once it exists (a different test is a new experiment), share and method may
    change; Start and Stop are audited actions."""

    form = ExperimentForm
    list_display = ["name", "incident_type", "method", "share_percent", "arms", "is_active", "started_at", "report"]
    list_filter = ["incident_type", "is_active", "method"]
    actions = ["start", "stop"]
    filter_horizontal = ["offers"]

    def get_readonly_fields(self, request, obj=None):
        fixed = ["incident_type", "offers", "apology_arm"] if obj is not None else []
        return [*fixed, "stopped_arms", "is_active", "started_at", "stopped_at", "created_by", "report"]

    def get_fields(self, request, obj=None):
        fields = ["name", "incident_type", "method", "share_percent", "offers", "apology_arm"]
        return fields + (
            ["stopped_arms", "is_active", "started_at", "stopped_at", "created_by", "report"] if obj else []
        )

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description=_("arms"))
    def arms(self, obj):
        count = obj.offers.count() + (1 if obj.apology_arm else 0)
        stopped = len(obj.stopped_arms or [])
        return f"{count - stopped}/{count}"

    @admin.display(description=_("report"))
    def report(self, obj):
        if not obj.pk:
            return "—"
        return format_html('<a href="{}">{}</a>', reverse("reports:experiment", args=[obj.pk]), _("Open the report"))

    def _each(self, request, queryset, service, done):
        actor = Actor.from_request(request)
        for experiment in queryset:
            try:
                service(actor=actor, experiment_id=experiment.pk)
            except ValidationError as refused:
                self.message_user(request, f"{experiment.name}: {' '.join(refused.messages)}", messages.ERROR)
            else:
                self.message_user(request, done % {"name": experiment.name}, messages.SUCCESS)

    @admin.action(description=_("Start selected experiments"), permissions=["change"])
    def start(self, request, queryset):
        self._each(request, queryset, experiment_start, _("Started: %(name)s."))

    @admin.action(description=_("Stop selected experiments"), permissions=["change"])
    def stop(self, request, queryset):
        self._each(request, queryset, experiment_stop, _("Stopped: %(name)s."))
