from django.urls import path

from appease.webhooks.apis import (
    WebhookEndpointDetailApi,
    WebhookEndpointListCreateApi,
    WebhookEndpointRotateSecretApi,
)

app_name = "webhooks-api"

urlpatterns = [
    path("webhook-endpoints", WebhookEndpointListCreateApi.as_view(), name="webhook-endpoints"),
    path("webhook-endpoints/<int:endpoint_id>", WebhookEndpointDetailApi.as_view(), name="webhook-endpoint-detail"),
    path(
        "webhook-endpoints/<int:endpoint_id>/rotate-secret",
        WebhookEndpointRotateSecretApi.as_view(),
        name="webhook-endpoint-rotate-secret",
    ),
]
