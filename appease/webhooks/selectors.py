"""Reads of the webhooks app for more than one caller."""

from __future__ import annotations

from django.db.models import QuerySet

from appease.webhooks.models import WebhookEndpoint


def webhook_endpoints_list() -> QuerySet[WebhookEndpoint]:
    """Endpoints not deleted, newest first."""
    return WebhookEndpoint.objects.filter(deleted_at__isnull=True).order_by("-created_at", "-pk")


def webhook_endpoint_get(*, endpoint_id) -> WebhookEndpoint | None:
    try:
        return webhook_endpoints_list().filter(pk=int(endpoint_id)).first()
    except (TypeError, ValueError, OverflowError):
        return None
