"""Provider status callbacks (delivered, failed, bounced), signed by the provider.

An unsigned or wrongly signed callback is refused with 403 and changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from appease.core.api import ERROR
from appease.core.parsers import BoundedFormParser, BoundedJSONParser
from appease.core.scopes import ScopeRequired
from appease.delivery.channels.webhook import verify
from appease.delivery.services import delivery_status_record


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """Twilio's request signature: base64(HMAC-SHA1(token, url + k1v1k2v2… sorted by key))."""
    payload = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


BAD_SIGNATURE_EXAMPLE = OpenApiExample(
    "Unsigned or wrongly signed",
    value={"error": "bad_signature", "detail": "The signature does not match."},
    response_only=True,
    status_codes=["403"],
)


class SmsStatusCallbackApi(APIView):
    """Twilio-compatible status callback: form fields MessageSid and MessageStatus,
    signed in X-Twilio-Signature with the account's auth token."""

    authentication_classes = []
    permission_classes = [ScopeRequired, AllowAny]
    required_scope = None  # the provider's signature is the credential
    parser_classes = [BoundedFormParser]

    @extend_schema(
        operation_id="delivery_callback_sms",
        request=inline_serializer(
            "SmsStatus", {"MessageSid": serializers.CharField(), "MessageStatus": serializers.CharField()}
        ),
        responses={204: None, 400: ERROR, 403: ERROR},
        examples=[
            OpenApiExample(
                "Delivered",
                value={"MessageSid": "SM3f9a1c2e4b6d8f0a1c3e5b7d9f1a3c5e", "MessageStatus": "delivered"},
                request_only=True,
                media_type="application/x-www-form-urlencoded",
            ),
            BAD_SIGNATURE_EXAMPLE,
        ],
    )
    def post(self, request):
        token = settings.SMS_AUTH_TOKEN
        params = {key: request.POST.get(key, "") for key in request.POST}
        expected = twilio_signature(token or "", request.build_absolute_uri(), params)
        given = request.headers.get("X-Twilio-Signature", "")
        if not token or not given or not hmac.compare_digest(expected, given):
            return Response({"error": "bad_signature", "detail": _("The signature does not match.")}, status=403)
        missing = _missing(params, ["MessageSid", "MessageStatus"])
        if missing:
            return missing
        delivery_status_record(provider_message_id=params["MessageSid"], provider_status=params["MessageStatus"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookStatusCallbackApi(APIView):
    """Chat and social gateways: JSON {"id", "status"}, signed like our own webhooks
    (X-Appease-Timestamp, X-Appease-Signature: sha256=HMAC(secret, "<timestamp>.<body>"))."""

    authentication_classes = []
    permission_classes = [ScopeRequired, AllowAny]
    required_scope = None  # the provider's signature is the credential
    parser_classes = [BoundedJSONParser]

    @extend_schema(
        operation_id="delivery_callback_webhook",
        request=inline_serializer("WebhookStatus", {"id": serializers.CharField(), "status": serializers.CharField()}),
        responses={204: None, 400: ERROR, 403: ERROR},
        examples=[
            OpenApiExample("Failed", value={"id": "msg_01HF3K9Q2V", "status": "failed"}, request_only=True),
            BAD_SIGNATURE_EXAMPLE,
        ],
    )
    def post(self, request):
        secret = settings.WEBHOOK_SECRET
        body = request.body.decode("utf-8", errors="replace")
        timestamp = request.headers.get("X-Appease-Timestamp", "")
        signature = request.headers.get("X-Appease-Signature", "")
        if not secret or not verify(secret, timestamp, body, signature):
            return Response({"error": "bad_signature", "detail": _("The signature does not match.")}, status=403)
        data = request.data if isinstance(request.data, dict) else {}
        missing = _missing(data, ["id", "status"])
        if missing:
            return missing
        delivery_status_record(provider_message_id=data["id"], provider_status=data["status"])
        return Response(status=status.HTTP_204_NO_CONTENT)


def _missing(data, fields: list[str]) -> Response | None:
    """400 naming each field that is absent, not a string, empty or holding a NUL (a
    signed but malformed callback: the provider's bug, nothing to record; PostgreSQL
    cannot store a NUL, so it was a 500 there). The messages are DRF's own."""
    errors = {}
    for name in fields:
        field = serializers.CharField(max_length=200)  # a provider id or status, never a megabyte
        value = data.get(name)
        if value is None:
            errors[name] = [field.error_messages["required"]]
        elif not isinstance(value, str):
            errors[name] = [field.error_messages["invalid"]]
        else:
            try:
                field.run_validation(value)
            except serializers.ValidationError as error:
                errors[name] = error.detail
    if not errors:
        return None
    return Response({"error": "invalid", "detail": _("The request has invalid fields."), "fields": errors}, status=400)
