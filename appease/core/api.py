"""API plumbing shared by every app: the single exception handler and error shape, the
Idempotency-Key header, money on the wire, client identity."""

from __future__ import annotations

import ipaddress
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema_field, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.throttling import BaseThrottle
from rest_framework.views import exception_handler as drf_exception_handler

from appease.core.exceptions import ApplicationError
from appease.core.idempotency import idempotency_key_begin, request_fingerprint
from appease.core.money import quantize
from appease.core.parsers import RequestTooLarge
from appease.core.permissions import StaffApiKeyAuthentication

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255},  # longer or empty: 400 invalid_idempotency_key
    OpenApiParameter.HEADER,
    description="Any unique string up to 255 characters. A retry with the same key and body "
    "returns the first response with no second effect; keys are kept at least 24 hours.",
)


@extend_schema_field(
    {
        "anyOf": [
            {"type": "array", "items": {"type": "string"}},
            {"type": "object", "additionalProperties": True, "description": "A nested input's errors, by field."},
        ]
    }
)
class FieldErrorsField(serializers.JSONField):
    """One input field's errors: a list of messages or, for a nested input (`customer`
    in an issuance), an object of the same shape."""


ERROR = inline_serializer(
    "Error",
    {
        "error": serializers.CharField(),
        "detail": serializers.CharField(),
        "fields": serializers.DictField(child=FieldErrorsField(), required=False),
    },
)


def money(amount: Decimal | None, currency: str) -> str | None:
    return None if amount is None else str(quantize(amount, currency))


def exception_handler(exc, context):
    """Every error answers `{"error": <machine code>, "detail": <text>, ...}`.

    Validation errors add `fields`: a list of messages per input field.
    """
    if isinstance(exc, RequestDataTooBig):  # Django's own limit (a view read request.body)
        exc = RequestTooLarge(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    elif isinstance(exc, TooManyFieldsSent):
        exc = exceptions.ParseError(_("The form has too many fields."))
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, ApplicationError):
        body = {"error": exc.code, "detail": exc.message, **exc.extra}
        return Response(body, status=exc.status)

    response = drf_exception_handler(exc, context)
    if response is None:
        return None

    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = {"error": "invalid", "detail": _("The request has invalid fields."), "fields": fields}
        response.status_code = status.HTTP_400_BAD_REQUEST
    elif isinstance(exc, exceptions.ParseError):
        response.data = {"error": "malformed_request", "detail": str(exc.detail)}
    elif isinstance(exc, exceptions.APIException):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
        response.data = {"error": code, "detail": str(exc.detail)}
    return response


def client_ip(request) -> str:
    """The caller's IP, honouring NUM_PROXIES the way DRF's throttles do."""
    return BaseThrottle().get_ident(request)


def login_client_ip(request) -> str | None:
    """django-axes' client address (AXES_CLIENT_IP_CALLABLE): `client_ip`, so login
    throttling is per (username, the real client) behind the proxy, as every other limit
    is. Something that is not an address (a proxy misconfigured, a header a client wrote)
    falls back to the connection's address: axes stores it in an address column."""
    for candidate in (client_ip(request), request.META.get("REMOTE_ADDR")):
        try:
            return str(ipaddress.ip_address((candidate or "").strip()))
        except ValueError:
            continue
    return None


def idempotency_begin(request, *, scope: str, owner: str):
    """Claim the request's Idempotency-Key, if it has one (None if not); a completed
    key comes back for `replay`. See appease.core.idempotency."""

    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    return idempotency_key_begin(scope=scope, owner=owner, key=key, fingerprint=request_fingerprint(request.data))


def replay(record, body) -> Response:
    """The first answer again, marked as a replay."""
    return Response(body, status=record.response_status, headers={"Idempotent-Replayed": "true"})


NO_NUL = r"^[^\u0000]*$"


def schema_no_nul_characters(result, generator, request, public):
    """drf-spectacular post-processing: every free-text string a client sends (request
    bodies and query parameters) says what DRF and Django forms enforce, that it holds
    no NUL character (PostgreSQL cannot store one; the field answers 400)."""

    def mark(schema):
        if not isinstance(schema, dict):
            return
        if schema.get("type") == "string" and not ({"enum", "format", "pattern"} & schema.keys()):
            schema["pattern"] = NO_NUL
        for key in ("properties", "patternProperties"):
            for child in (schema.get(key) or {}).values():
                mark(child)
        for key in ("items", "additionalProperties"):
            mark(schema.get(key))
        for key in ("allOf", "anyOf", "oneOf"):
            for child in schema.get(key) or []:
                mark(child)

    for name, component in (result.get("components", {}).get("schemas") or {}).items():
        if name.endswith("Request"):
            mark(component)
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                if parameter.get("in") == "query":
                    mark(parameter.get("schema"))
    return result


def schema_body_limits(result, generator, request, public):
    """drf-spectacular post-processing: every operation that takes a body may answer
    413 (over DATA_UPLOAD_MAX_MEMORY_SIZE, appease/core/parsers.py) and 400 (malformed or
    too deeply nested JSON): the schema says so, in the one error shape."""
    if "Error" not in (result.get("components", {}).get("schemas") or {}):
        return result
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    described = {
        "400": "Invalid fields, or a body that is not JSON or nests too deep.",
        "413": "The body is larger than the server accepts.",
    }
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                responses = operation.setdefault("responses", {})
                for code, description in described.items():
                    responses.setdefault(code, {"content": content, "description": description})
    return result


# The token first: DRF answers a request that authenticated as nobody with the first
# class's challenge, so a missing or invalid token is 401 with `WWW-Authenticate: Token`
# (with the session first it was 403, a refusal the client cannot act on).
STAFF_AUTH = [StaffApiKeyAuthentication, SessionAuthentication]


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request):
        """A page_size that is not a whole number is a 400 (DRF silently used the
        default; the schema says integer). Above the maximum it is capped, as before."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None:
            field = serializers.IntegerField(min_value=1)  # DRF's own messages
            try:
                field.run_validation(raw)
            except serializers.ValidationError as error:
                raise serializers.ValidationError({self.page_size_query_param: error.detail}) from None
        return super().get_page_size(request)

    def get_page_number(self, request, paginator):
        """`?page=` given but empty is an invalid page (404, as `?page=abc` is); DRF read
        it as the first page, which the schema (an integer) does not allow."""
        if request.query_params.get(self.page_query_param) == "":
            raise exceptions.NotFound(self.invalid_page_message)
        return super().get_page_number(request, paginator)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {**parameter["schema"], "minimum": 1}
        return parameters
