"""Webhooks in the admin: endpoints (written through the services, so audited; the secret
shown once, in the message after saving or rotating) and every event each endpoint was
sent, dead letters one filter and one click (send again) away."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from appease.core.admin import ReadOnlyAdmin
from appease.core.context import Actor
from appease.delivery.models import Delivery
from appease.delivery.services import deliveries_requeue
from appease.webhooks.models import EventType, WebhookDelivery, WebhookEndpoint
from appease.webhooks.services import (
    endpoint_events_checked,
    endpoint_url_checked,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
)


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(label=_("URL"), max_length=255, assume_scheme="https")
    events = forms.MultipleChoiceField(
        label=_("events"), choices=EventType.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "events", "is_active", "description"]

    # The services' own checks, so a refusal is the field's error, not a failed save.
    def clean_url(self):
        try:
            return endpoint_url_checked(self.cleaned_data["url"])
        except ValidationError as error:
            raise ValidationError(error.message_dict["url"]) from None

    def clean_events(self):
        try:
            return endpoint_events_checked(self.cleaned_data["events"])
        except ValidationError as error:
            raise ValidationError(error.message_dict["events"]) from None


def _secret_shown(request, endpoint: WebhookEndpoint, secret: str) -> None:
    messages.warning(
        request,
        _("The signing secret of %(url)s is %(secret)s. Copy it now: it is not shown again.")
        % {"url": endpoint.url, "secret": secret},
    )


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "is_active", "event_list", "created_by", "created_at"]
    list_filter = ["is_active"]
    readonly_fields = ["created_by", "created_at", "updated_at", "previous_secret_expires_at"]
    actions = ["rotate_secret"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(deleted_at__isnull=True)

    @admin.display(description=_("events"))
    def event_list(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.events)

    def save_model(self, request, obj, form, change):
        actor = Actor.from_request(request)
        data = {name: form.cleaned_data[name] for name in ("url", "events", "is_active", "description")}
        if change:
            saved = webhook_endpoint_update(actor=actor, endpoint_id=obj.pk, **data)
        else:
            saved, secret = webhook_endpoint_create(actor=actor, **data)
            _secret_shown(request, saved, secret)
        obj.pk = saved.pk

    def get_deleted_objects(self, objs, request):
        # Deleting marks the endpoint deleted and keeps the row (its deliveries point at
        # it): nothing else is deleted, nothing blocks it.
        objs = list(objs)
        return [str(obj) for obj in objs], {self.opts.verbose_name_plural: len(objs)}, set(), []

    def delete_model(self, request, obj):
        webhook_endpoint_delete(actor=Actor.from_request(request), endpoint_id=obj.pk)

    def delete_queryset(self, request, queryset):
        for endpoint in queryset:
            webhook_endpoint_delete(actor=Actor.from_request(request), endpoint_id=endpoint.pk)

    @admin.action(description=_("Rotate the signing secret of the selected endpoints"), permissions=["change"])
    def rotate_secret(self, request, queryset):
        for endpoint in queryset:
            rotated, secret = webhook_endpoint_rotate_secret(actor=Actor.from_request(request), endpoint_id=endpoint.pk)
            _secret_shown(request, rotated, secret)


class DeadLetterFilter(admin.SimpleListFilter):
    title = _("dead letters")
    parameter_name = "dead"

    def lookups(self, request, model_admin):
        return [("yes", _("Gave up or failed"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(delivery__status__in=[Delivery.Status.DEAD, Delivery.Status.FAILED])
        return queryset


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """Every event sent (or being sent) to each endpoint."""

    list_display = ["event_type", "endpoint", "status", "attempts", "failure", "created_at"]
    list_filter = [DeadLetterFilter, "delivery__status", "event__type"]
    list_select_related = ["event", "endpoint", "delivery"]
    actions = ["redeliver"]

    @admin.display(description=_("event"), ordering="event__type")
    def event_type(self, link: WebhookDelivery) -> str:
        return f"{link.event.type} ({link.event.pk})"

    @admin.display(description=_("status"), ordering="delivery__status")
    def status(self, link: WebhookDelivery) -> str:
        return link.delivery.get_status_display()

    @admin.display(description=_("attempts"))
    def attempts(self, link: WebhookDelivery) -> int:
        return link.delivery.attempts

    @admin.display(description=_("failure reason"))
    def failure(self, link: WebhookDelivery) -> str:
        return link.delivery.failure_reason_label or link.delivery.last_error

    @admin.display(description=_("created at"), ordering="delivery__created_at")
    def created_at(self, link: WebhookDelivery):
        return link.delivery.created_at

    @admin.action(description=_("Send the selected dead webhooks again"), permissions=["view"])
    def redeliver(self, request, queryset):
        ids = list(queryset.values_list("delivery_id", flat=True))
        outcome = deliveries_requeue(actor=Actor.from_request(request), ids=ids, via="admin")
        if outcome.requeued:
            messages.success(request, _("%(count)d webhooks queued again.") % {"count": len(outcome.requeued)})
        left = len(ids) - len(outcome.requeued)
        if left:
            messages.warning(
                request,
                _("%(count)d not queued again (not dead, or their endpoint is inactive).") % {"count": left},
            )
