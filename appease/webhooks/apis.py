"""The webhook endpoints API (supervisors): register, list, read, change, delete, rotate.

The signing secret is in the answer to POST /webhook-endpoints and to
POST /webhook-endpoints/{id}/rotate-secret only. A retry with the same Idempotency-Key
gets the same answer, secret included, as long as that secret is still the endpoint's
(the client never saw the first answer); after a later rotation it is left out.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from appease.core.api import ERROR, IDEMPOTENCY_HEADER, STAFF_AUTH, Pagination, idempotency_begin, replay
from appease.core.context import Actor
from appease.core.idempotency import idempotency_key_settle
from appease.core.permissions import IsSupervisor
from appease.core.scopes import ScopeRequired
from appease.webhooks.models import EventType, WebhookEndpoint
from appease.webhooks.schema import EVENT_CALLBACKS
from appease.webhooks.selectors import webhook_endpoint_get, webhook_endpoints_list
from appease.webhooks.services import (
    secret_fingerprint,
    signing_secrets,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
)


class EndpointOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    events = serializers.ListField(child=serializers.ChoiceField(choices=EventType.choices))
    is_active = serializers.BooleanField()
    description = serializers.CharField()
    previous_secret_expires_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="WebhookEndpointWithSecret")
class EndpointWithSecretSerializer(EndpointOutputSerializer):
    secret = serializers.CharField(help_text="The signing secret, shown in this answer only.", required=False)


def _endpoint_or_404(endpoint_id) -> WebhookEndpoint:
    endpoint = webhook_endpoint_get(endpoint_id=endpoint_id)
    if endpoint is None:
        raise exceptions.NotFound(_("No such webhook endpoint."))
    return endpoint


def _with_secret(endpoint: WebhookEndpoint, secret: str | None) -> dict:
    body = dict(EndpointOutputSerializer(endpoint).data)
    if secret is not None:
        body["secret"] = secret
    return body


def _replayed(record) -> Response:
    """The first answer again; its secret only if it is still the endpoint's current one."""
    result = record.result or {}
    endpoint = webhook_endpoint_get(endpoint_id=result.get("endpoint_id"))
    if endpoint is None or "endpoint_id" not in result:
        return replay(record, result)
    current = signing_secrets(endpoint)[0]
    secret = current if result.get("secret_sha256") == secret_fingerprint(current) else None
    return replay(record, _with_secret(endpoint, secret))


EVENTS_EXAMPLE = ["issuance.created", "redemption.created"]
ENDPOINT_EXAMPLE = {
    "id": 3,
    "url": "https://hooks.example.com/appease",
    "events": EVENTS_EXAMPLE,
    "is_active": True,
    "description": "ERP",
    "previous_secret_expires_at": None,
    "created_at": "2026-12-01T09:00:00Z",
    "updated_at": "2026-12-01T09:00:00Z",
}
NO_SUCH_ENDPOINT_EXAMPLE = OpenApiExample(
    "No such endpoint",
    value={"error": "not_found", "detail": "No such webhook endpoint."},
    response_only=True,
    status_codes=["404"],
)


class WebhookEndpointListCreateApi(APIView):
    """GET: the registered endpoints. POST: register one (its secret is in the answer only)."""

    authentication_classes = STAFF_AUTH
    permission_classes = [ScopeRequired, IsSupervisor]
    required_scope = "webhooks"
    pagination_class = Pagination
    scope = "webhook_endpoints.create"

    @extend_schema_serializer(
        component_name="WebhookEndpointCreateInput",
        examples=[
            OpenApiExample(
                "Redemptions to the shop's system",
                value={"url": "https://hooks.example.com/appease", "events": EVENTS_EXAMPLE, "description": "ERP"},
            )
        ],
    )
    class InputSerializer(serializers.Serializer):
        url = serializers.URLField(max_length=255)
        events = serializers.ListField(
            child=serializers.ChoiceField(choices=EventType.choices), min_length=1, max_length=50
        )
        is_active = serializers.BooleanField(required=False, default=True)
        description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    @extend_schema(
        operation_id="webhook_endpoints_list",
        responses={
            200: EndpointOutputSerializer(many=True),
            400: ERROR,
            401: ERROR,
            403: ERROR,
            404: OpenApiResponse(ERROR, description="No such page."),
        },
        examples=[OpenApiExample("The shop's ERP", value=ENDPOINT_EXAMPLE, response_only=True, status_codes=["200"])],
    )
    def get(self, request):
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(webhook_endpoints_list(), request, view=self)
        return paginator.get_paginated_response(EndpointOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="webhook_endpoints_create",
        parameters=[IDEMPOTENCY_HEADER],
        callbacks=EVENT_CALLBACKS,
        request=InputSerializer,
        responses={201: EndpointWithSecretSerializer, 400: ERROR, 401: ERROR, 403: ERROR, 409: ERROR, 422: ERROR},
        examples=[
            OpenApiExample(
                "Registered: its secret, shown once",
                value={**ENDPOINT_EXAMPLE, "secret": "whsec_Q3b7kX9pL2mV8tR1yN6cF0dH4sJ5wZ7aE2gU9iO3qKx"},
                response_only=True,
                status_codes=["201"],
            )
        ],
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        record = idempotency_begin(request, scope=self.scope, owner=f"user:{request.user.pk}")
        if record is not None and record.is_completed:
            return _replayed(record)
        try:
            endpoint, secret = webhook_endpoint_create(
                actor=Actor.from_request(request), **serializer.validated_data, idempotency_key=record
            )
        except BaseException as error:
            idempotency_key_settle(record=record, error=error)
            raise
        return Response(_with_secret(endpoint, secret), status=status.HTTP_201_CREATED)


class WebhookEndpointDetailApi(APIView):
    """GET, PATCH (url, events, is_active, description) or DELETE one endpoint."""

    authentication_classes = STAFF_AUTH
    permission_classes = [ScopeRequired, IsSupervisor]
    required_scope = "webhooks"

    class PatchSerializer(serializers.Serializer):
        url = serializers.URLField(max_length=255, required=False)
        events = serializers.ListField(
            child=serializers.ChoiceField(choices=EventType.choices), min_length=1, max_length=50, required=False
        )
        is_active = serializers.BooleanField(required=False)
        description = serializers.CharField(max_length=200, required=False, allow_blank=True)

    @extend_schema(
        operation_id="webhook_endpoints_retrieve",
        responses={200: EndpointOutputSerializer, 401: ERROR, 403: ERROR, 404: ERROR},
        examples=[
            OpenApiExample("The shop's ERP", value=ENDPOINT_EXAMPLE, response_only=True, status_codes=["200"]),
            NO_SUCH_ENDPOINT_EXAMPLE,
        ],
    )
    def get(self, request, endpoint_id):
        return Response(EndpointOutputSerializer(_endpoint_or_404(endpoint_id)).data)

    @extend_schema(
        operation_id="webhook_endpoints_update",
        request=PatchSerializer,
        responses={200: EndpointOutputSerializer, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR},
        examples=[
            OpenApiExample(
                "Pause it and add voids",
                value={"is_active": False, "events": [*EVENTS_EXAMPLE, "issuance.voided"]},
                request_only=True,
            ),
            OpenApiExample(
                "Paused",
                value={
                    **ENDPOINT_EXAMPLE,
                    "is_active": False,
                    "events": [*EVENTS_EXAMPLE, "issuance.voided"],
                    "updated_at": "2026-12-07T10:00:00Z",
                },
                response_only=True,
                status_codes=["200"],
            ),
            NO_SUCH_ENDPOINT_EXAMPLE,
        ],
    )
    def patch(self, request, endpoint_id):
        _endpoint_or_404(endpoint_id)
        serializer = self.PatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            endpoint = webhook_endpoint_update(
                actor=Actor.from_request(request), endpoint_id=endpoint_id, **serializer.validated_data
            )
        except WebhookEndpoint.DoesNotExist:
            raise exceptions.NotFound(_("No such webhook endpoint.")) from None
        return Response(EndpointOutputSerializer(endpoint).data)

    @extend_schema(
        operation_id="webhook_endpoints_destroy",
        responses={204: None, 401: ERROR, 403: ERROR, 404: ERROR},
        examples=[NO_SUCH_ENDPOINT_EXAMPLE],
    )
    def delete(self, request, endpoint_id):
        _endpoint_or_404(endpoint_id)
        try:
            webhook_endpoint_delete(actor=Actor.from_request(request), endpoint_id=endpoint_id)
        except WebhookEndpoint.DoesNotExist:
            raise exceptions.NotFound(_("No such webhook endpoint.")) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookEndpointRotateSecretApi(APIView):
    """A new signing secret (in this answer only); the old one keeps signing beside it
    for the overlap window (WEBHOOKS_ROTATION_OVERLAP_HOURS)."""

    authentication_classes = STAFF_AUTH
    permission_classes = [ScopeRequired, IsSupervisor]
    required_scope = "webhooks"
    scope = "webhook_endpoints.rotate_secret"

    @extend_schema(
        operation_id="webhook_endpoints_rotate_secret",
        parameters=[IDEMPOTENCY_HEADER],
        request=None,
        responses={200: EndpointWithSecretSerializer, 401: ERROR, 403: ERROR, 404: ERROR, 409: ERROR, 422: ERROR},
        examples=[
            OpenApiExample(
                "The new secret, shown once",
                description="The old secret keeps signing beside it until `previous_secret_expires_at`.",
                value={
                    **ENDPOINT_EXAMPLE,
                    "previous_secret_expires_at": "2026-12-08T10:00:00Z",
                    "updated_at": "2026-12-07T10:00:00Z",
                    "secret": "whsec_Q3b7kX9pL2mV8tR1yN6cF0dH4sJ5wZ7aE2gU9iO3qKx",
                },
                response_only=True,
                status_codes=["200"],
            ),
            NO_SUCH_ENDPOINT_EXAMPLE,
        ],
    )
    def post(self, request, endpoint_id):
        _endpoint_or_404(endpoint_id)
        record = idempotency_begin(request, scope=f"{self.scope}:{endpoint_id}", owner=f"user:{request.user.pk}")
        if record is not None and record.is_completed:
            return _replayed(record)
        try:
            endpoint, secret = webhook_endpoint_rotate_secret(
                actor=Actor.from_request(request), endpoint_id=endpoint_id, idempotency_key=record
            )
        except BaseException as error:
            idempotency_key_settle(record=record, error=error)
            if isinstance(error, WebhookEndpoint.DoesNotExist):
                raise exceptions.NotFound(_("No such webhook endpoint.")) from None
            raise
        return Response(_with_secret(endpoint, secret))
