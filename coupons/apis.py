"""The checkout redemption API a merchant's checkout calls. Thin: validate, call one
service, serialize."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.debug import sensitive_variables
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from appease.core.api import ERROR, IDEMPOTENCY_HEADER, client_ip, money
from appease.core.idempotency import idempotency_key_begin, idempotency_key_release, request_fingerprint
from appease.core.money import currency_exponent, fits_currency, is_known_currency
from appease.core.ratelimit import FAILED_LOOKUPS, FailureLimiter
from coupons import codes
from coupons.auth import IsMerchant, MerchantApiKeyAuthentication
from coupons.models import Redemption
from coupons.services.redemption import (
    UNKNOWN,
    RedemptionRefused,
    code_validate,
    redemption_create,
    redemption_reverse,
)


class TooManyFailedLookups(exceptions.Throttled):
    default_code = "too_many_failed_lookups"
    default_detail = gettext_lazy("Too many unknown codes were tried.")


class CodeLookupGuard:
    """Counts unknown-code look-ups per API key and per client IP (docs/adr/0003)."""

    def __init__(self, request) -> None:
        self.idents = [f"key:{request.auth.pk}", f"ip:{client_ip(request)}"]
        self.limiter = FailureLimiter(
            scope="code-lookup",
            limit=settings.FAILED_LOOKUP_LIMIT,
            window_seconds=settings.FAILED_LOOKUP_WINDOW_SECONDS,
        )

    def check(self) -> None:
        wait = self.limiter.blocked(self.idents)
        if wait:
            raise TooManyFailedLookups(wait=wait)

    def failed(self) -> None:
        """Count the failure; past the limit, answer 429 instead of the failure."""
        FAILED_LOOKUPS.inc()
        wait = self.limiter.record_failure(self.idents)
        if wait:
            raise TooManyFailedLookups(wait=wait)


class CheckoutInputSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=100, trim_whitespace=True)
    order_total = serializers.DecimalField(max_digits=14, decimal_places=4)
    currency = serializers.CharField(min_length=3, max_length=3)

    def validate_code(self, value: str) -> str:
        normalised = codes.normalise(value)
        if not normalised or len(normalised) > codes.MAX_CODE_LENGTH:
            raise serializers.ValidationError(_("A code has 1 to 64 letters and digits."))
        if not codes.NORMALISED_CODE.match(normalised):
            raise serializers.ValidationError(_("A code has only letters, digits, spaces and dashes."))
        return value

    def validate_order_total(self, value: Decimal) -> Decimal:
        if value <= 0:
            raise serializers.ValidationError(_("The order total must be greater than zero."))
        return value

    def validate_currency(self, value: str) -> str:
        value = value.upper()
        if not is_known_currency(value):
            raise serializers.ValidationError(_("%(value)s is not an ISO 4217 currency code.") % {"value": value})
        return value

    def validate(self, attrs):
        currency, total = attrs["currency"], attrs["order_total"]
        if not fits_currency(total, currency):
            raise serializers.ValidationError(
                {
                    "order_total": _("%(currency)s amounts have at most %(places)d decimal places.")
                    % {"currency": currency, "places": currency_exponent(currency)}
                }
            )
        return attrs


class CodeValidateApi(APIView):
    """Would this code pay for this order? Changes nothing."""

    authentication_classes = [MerchantApiKeyAuthentication]
    permission_classes = [IsMerchant]

    @extend_schema_serializer(component_name="CodeValidateInput")
    class InputSerializer(CheckoutInputSerializer):
        pass

    @extend_schema_serializer(component_name="CodeValidation")
    class OutputSerializer(serializers.Serializer):
        valid = serializers.BooleanField()
        reason = serializers.ChoiceField(
            choices=["unknown", "redeemed", "expired", "voided", "currency_mismatch", "below_min_order"],
            required=False,
        )
        offer = serializers.CharField(required=False)
        offer_id = serializers.IntegerField(required=False)
        kind = serializers.CharField(required=False)
        discount = serializers.CharField(required=False)
        currency = serializers.CharField(required=False)
        balance = serializers.CharField(required=False, allow_null=True)
        expires_at = serializers.DateTimeField(required=False, allow_null=True)

    @extend_schema(
        operation_id="codes_validate",
        request=InputSerializer,
        responses={200: OutputSerializer, 400: ERROR, 401: ERROR, 429: ERROR},
    )
    @method_decorator(sensitive_variables())  # error reports hide every local: the code is one
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        guard = CodeLookupGuard(request)
        guard.check()
        try:
            quote = code_validate(raw_code=data["code"], order_total=data["order_total"], currency=data["currency"])
        except RedemptionRefused as refusal:
            if refusal.reason == UNKNOWN:
                guard.failed()
            return Response({"valid": False, "reason": refusal.reason})
        offer = quote.code.offer
        return Response(
            self.OutputSerializer(
                {
                    "valid": True,
                    "offer": offer.description,
                    "offer_id": offer.pk,
                    "kind": offer.kind,
                    "discount": money(quote.discount, quote.currency),
                    "currency": quote.currency,
                    "balance": money(quote.balance, quote.currency),
                    "expires_at": quote.expires_at,
                }
            ).data
        )


class RedemptionOutputSerializer(serializers.Serializer):
    """The answer to a redemption: only fields that never change, so a replay of the
    Idempotency-Key returns exactly the first answer."""

    id = serializers.UUIDField()
    code_last4 = serializers.CharField(source="code.last4")
    order_id = serializers.CharField()
    discount = serializers.SerializerMethodField()
    currency = serializers.CharField()
    balance_remaining = serializers.SerializerMethodField(help_text="Gift cards only; null for coupons.")
    redeemed_at = serializers.DateTimeField()

    def get_discount(self, obj: Redemption) -> str:
        return money(obj.discount_amount, obj.currency)

    def get_balance_remaining(self, obj: Redemption) -> str | None:
        return money(obj.balance_after_amount, obj.currency)


class RedemptionReversedOutputSerializer(RedemptionOutputSerializer):
    status = serializers.CharField()
    reversed_at = serializers.DateTimeField(allow_null=True)
    reverse_reason = serializers.CharField()


class RedemptionCreateApi(APIView):
    """Redeem a code against an order, exactly once."""

    authentication_classes = [MerchantApiKeyAuthentication]
    permission_classes = [IsMerchant]
    scope = "redemptions.create"

    @extend_schema_serializer(component_name="RedemptionCreateInput")
    class InputSerializer(CheckoutInputSerializer):
        order_id = serializers.CharField(max_length=100)

    @extend_schema(
        operation_id="redemptions_create",
        parameters=[IDEMPOTENCY_HEADER],
        request=InputSerializer,
        responses={
            201: RedemptionOutputSerializer,
            400: ERROR,
            401: ERROR,
            409: OpenApiResponse(ERROR, description="already_redeemed, or the Idempotency-Key is in use"),
            422: OpenApiResponse(ERROR, description="unknown, expired, voided, currency_mismatch, below_min_order"),
            429: ERROR,
        },
    )
    @method_decorator(sensitive_variables())  # error reports hide every local: the code is one
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        merchant = request.auth.merchant

        record = None
        key = request.headers.get("Idempotency-Key")
        if key is not None:
            record = idempotency_key_begin(
                scope=self.scope,
                owner=f"merchant:{merchant.pk}",
                key=key,
                fingerprint=request_fingerprint(request.data),
            )
            if record.is_completed:
                return self._replay(record)

        guard = CodeLookupGuard(request)
        try:
            guard.check()
        except TooManyFailedLookups:
            if record is not None:
                idempotency_key_release(record=record)
            raise
        try:
            redemption = redemption_create(
                merchant=merchant,
                raw_code=data["code"],
                order_id=data["order_id"],
                order_total=data["order_total"],
                currency=data["currency"],
                idempotency_key=record,
            )
        except RedemptionRefused as refusal:
            if refusal.reason == UNKNOWN:
                guard.failed()
            raise
        return Response(RedemptionOutputSerializer(redemption).data, status=status.HTTP_201_CREATED)

    def _replay(self, record) -> Response:
        result = record.result or {}
        if "redemption_id" in result:
            redemption = Redemption.objects.select_related("code").get(pk=result["redemption_id"])
            body = RedemptionOutputSerializer(redemption).data
        else:
            body = result
        return Response(body, status=record.response_status, headers={"Idempotent-Replayed": "true"})


class RedemptionReverseApi(APIView):
    """The order was cancelled: give the value back. Reversing twice changes nothing."""

    authentication_classes = [MerchantApiKeyAuthentication]
    permission_classes = [IsMerchant]

    @extend_schema_serializer(component_name="RedemptionReverseInput")
    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=255)

    @extend_schema(
        operation_id="redemptions_reverse",
        request=InputSerializer,
        responses={200: RedemptionReversedOutputSerializer, 400: ERROR, 401: ERROR, 404: ERROR},
    )
    def post(self, request, redemption_id):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            redemption = redemption_reverse(
                merchant=request.auth.merchant,
                redemption_id=redemption_id,
                reason=serializer.validated_data["reason"],
            )
        except Redemption.DoesNotExist:
            raise exceptions.NotFound(_("No such redemption for this merchant.")) from None
        return Response(RedemptionReversedOutputSerializer(redemption).data)
