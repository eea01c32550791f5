"""The outbox in the admin: every message sent or being sent, dead letters one filter away."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from appease.core.admin import ReadOnlyAdmin
from appease.core.context import Actor
from appease.delivery.models import Delivery, DeliveryAttempt
from appease.delivery.services import deliveries_requeue


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ["number", "channel", "started_at", "finished_at", "outcome", "status_code", "detail"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class DeadLetterFilter(admin.SimpleListFilter):
    title = _("dead letters")
    parameter_name = "dead"

    def lookups(self, request, model_admin):
        return [("yes", _("Gave up or failed"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(status__in=[Delivery.Status.DEAD, Delivery.Status.FAILED])
        return queryset


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    """Every message sent or being sent; dead letters are one filter away."""

    list_display = ["created_at", "issuance", "channel", "status", "attempts", "failure", "sent_at"]
    list_filter = [DeadLetterFilter, "status", "channel", "kind"]
    # Through the `issuance` foreign key (Delivery.issuance), by name: no import of the app.
    list_select_related = ["issuance__offer", "issuance__customer"]
    readonly_fields = [
        "issuance",
        "kind",
        "channel",
        "language",
        "status",
        "attempts",
        "next_attempt_at",
        "lease_expires_at",
        "provider_message_id",
        "failure",
        "last_error",
        "resend_of",
        "requested_by",
        "request_id",
        "created_at",
        "sent_at",
        "delivered_at",
        "failed_at",
    ]
    exclude = ["address"]
    inlines = [DeliveryAttemptInline]
    actions = ["requeue_dead"]

    @admin.action(description=_("Send selected dead deliveries again"), permissions=["view"])
    def requeue_dead(self, request, queryset):
        not_dead = queryset.exclude(status=Delivery.Status.DEAD).count()
        outcome = deliveries_requeue(
            actor=Actor.from_request(request), ids=queryset.values_list("pk", flat=True), via="admin"
        )
        if outcome.requeued:
            messages.success(request, _("%(count)d deliveries queued again.") % {"count": len(outcome.requeued)})
        left = len(outcome.skipped) + not_dead
        if left:
            messages.warning(
                request,
                _("%(count)d not queued again (not dead, resent since, or the customer cannot be reached).")
                % {"count": left},
            )

    @admin.display(description=_("failure reason"), ordering="failure_reason")
    def failure(self, delivery: Delivery) -> str:
        return delivery.failure_reason_label

    show_full_result_count = False
