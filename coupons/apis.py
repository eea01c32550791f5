"""The checkout redemption API a merchant's checkout calls. Thin: validate, call one
service, serialize."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.debug import sensitive_variables
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from appease.core.api import ERROR, IDEMPOTENCY_HEADER, Pagination, client_ip, money
from appease.core.idempotency import idempotency_key_begin, idempotency_key_release, request_fingerprint
from appease.core.money import currency_exponent, fits_currency, is_known_currency
from appease.core.permissions import StaffApiKeyAuthentication
from appease.core.ratelimit import FAILED_LOOKUPS, FailureLimiter
from appease.core.scopes import ScopeRequired
from coupons import codes
from coupons.auth import IsMerchant, IsMerchantOrSupervisor, MerchantApiKeyAuthentication
from coupons.filters import RedemptionFilter
from coupons.models import MerchantAPIKey, Redemption
from coupons.selectors import redemptions_visible_to
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


CHECKOUT_REQUEST_EXAMPLE = OpenApiExample(
    "An order of 42.50 EUR",
    value={"code": "HXRW-M4TP-9BZC-D7KQ-2", "order_total": "42.50", "currency": "EUR"},
    request_only=True,
)
TOO_MANY_FAILED_LOOKUPS_EXAMPLE = OpenApiExample(
    "Too many unknown codes",
    value={"error": "too_many_failed_lookups", "detail": "Too many unknown codes were tried."},
    response_only=True,
    status_codes=["429"],
)


def refusal_example(summary: str, status_code: int, error: str, detail: str, **extra) -> OpenApiExample:
    """A checkout refusal as `RedemptionRefused` answers it (appease.core.api.exception_handler)."""
    return OpenApiExample(
        summary,
        value={"error": error, "detail": detail, **extra},
        response_only=True,
        status_codes=[str(status_code)],
    )


class CodeValidateApi(APIView):
    """Would this code pay for this order? Changes nothing."""

    authentication_classes = [MerchantApiKeyAuthentication]
    permission_classes = [ScopeRequired, IsMerchant]
    required_scope = "validate"

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
        examples=[
            CHECKOUT_REQUEST_EXAMPLE,
            OpenApiExample(
                "Valid: 10.00 off",
                value={
                    "valid": True,
                    "offer": "10 € off your next order",
                    "offer_id": 7,
                    "kind": "amount_off",
                    "discount": "10.00",
                    "currency": "EUR",
                    "balance": None,
                    "expires_at": "2027-03-07T09:31:02Z",
                },
                response_only=True,
                status_codes=["200"],
            ),
            OpenApiExample(
                "Refused: no such code",
                description="Counts as a failed look-up: past the limit, the answer is 429 `too_many_failed_lookups`.",
                value={"valid": False, "reason": "unknown"},
                response_only=True,
                status_codes=["200"],
            ),
            OpenApiExample(
                "Refused: expired",
                value={"valid": False, "reason": "expired"},
                response_only=True,
                status_codes=["200"],
            ),
            OpenApiExample(
                "Refused: already used",
                value={"valid": False, "reason": "redeemed"},
                response_only=True,
                status_codes=["200"],
            ),
            TOO_MANY_FAILED_LOOKUPS_EXAMPLE,
        ],
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


class RedemptionReadOutputSerializer(RedemptionReversedOutputSerializer):
    """A redemption as a merchant reconciles it: never the code, its last four only."""

    merchant_id = serializers.IntegerField()
    offer_id = serializers.IntegerField(source="code.offer_id")
    order_total = serializers.SerializerMethodField()

    def get_order_total(self, obj: Redemption) -> str:
        return money(obj.order_total_amount, obj.currency)


REDEMPTION_EXAMPLE = OpenApiExample(
    "A redemption",
    value={
        "id": "6f1c8e4e-3b8a-4a53-9d55-0e2d7f3b9a10",
        "code_last4": "7KQ2",
        "order_id": "A-1001",
        "discount": "10.00",
        "currency": "USD",
        "balance_remaining": None,
        "redeemed_at": "2026-12-01T10:15:00Z",
        "status": "active",
        "reversed_at": None,
        "reverse_reason": "",
        "merchant_id": 3,
        "offer_id": 12,
        "order_total": "42.50",
    },
    response_only=True,
)
# Merchant keys, staff keys (a supervisor's) and supervisors signed in.
READ_AUTH = [MerchantApiKeyAuthentication, StaffApiKeyAuthentication, SessionAuthentication]


class RedemptionPermission(IsMerchantOrSupervisor):
    """GET: a merchant key (its own) or a supervisor (all). POST: a merchant key only."""

    def has_permission(self, request, view) -> bool:
        if request.method == "POST":
            return IsMerchant().has_permission(request, view)
        return super().has_permission(request, view)


def redemptions_readable(request):
    """What the caller may read: a merchant its own redemptions, a supervisor all."""
    key = request.auth
    return redemptions_visible_to(merchant=key.merchant if isinstance(key, MerchantAPIKey) else None)


class RedemptionListCreateApi(APIView):
    """GET: redemptions for reconciliation (a merchant's own; a supervisor's: all),
    filtered and paginated. POST: redeem a code against an order, exactly once."""

    authentication_classes = READ_AUTH
    permission_classes = [ScopeRequired, RedemptionPermission]
    required_scopes = {"GET": ("redemptions:read", "read"), "POST": "redeem"}
    pagination_class = Pagination
    scope = "redemptions.create"

    @extend_schema(
        operation_id="redemptions_list",
        parameters=[
            OpenApiParameter("redeemed_after", OpenApiTypes.DATETIME, description="Redeemed at or after (ISO 8601)."),
            OpenApiParameter("redeemed_before", OpenApiTypes.DATETIME, description="Redeemed before (ISO 8601)."),
            OpenApiParameter("order_id", OpenApiTypes.STR, description="The merchant's order reference, exactly."),
            OpenApiParameter("status", OpenApiTypes.STR, enum=["", *Redemption.Status.values]),
        ],
        responses={
            200: RedemptionReadOutputSerializer(many=True),
            400: ERROR,
            401: ERROR,
            403: OpenApiResponse(ERROR, description="insufficient_scope, or not a merchant or supervisor"),
            404: OpenApiResponse(ERROR, description="No such page."),
            429: ERROR,
        },
        examples=[REDEMPTION_EXAMPLE],
    )
    def get(self, request):
        filterset = RedemptionFilter(request.query_params, queryset=redemptions_readable(request), request=request)
        if not filterset.is_valid():
            raise serializers.ValidationError(filterset.errors)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(filterset.qs, request, view=self)
        return paginator.get_paginated_response(RedemptionReadOutputSerializer(page, many=True).data)

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
        examples=[
            OpenApiExample(
                "Redeem against order A-1001",
                value={
                    "code": "HXRW-M4TP-9BZC-D7KQ-2",
                    "order_total": "42.50",
                    "currency": "EUR",
                    "order_id": "A-1001",
                },
                request_only=True,
            ),
            OpenApiExample(
                "Redeemed",
                value={
                    "id": "6f1c8e4e-3b8a-4a53-9d55-0e2d7f3b9a10",
                    "code_last4": "7KQ2",
                    "order_id": "A-1001",
                    "discount": "10.00",
                    "currency": "EUR",
                    "balance_remaining": None,
                    "redeemed_at": "2026-12-07T10:15:00Z",
                },
                response_only=True,
                status_codes=["201"],
            ),
            refusal_example("Refused: no such code", 422, "unknown", "This code does not exist."),
            refusal_example("Refused: expired", 422, "expired", "This code has expired."),
            refusal_example("Refused: cancelled", 422, "voided", "This code has been cancelled."),
            refusal_example(
                "Refused: another currency",
                422,
                "currency_mismatch",
                "This code is in another currency.",
                currency="USD",
            ),
            refusal_example(
                "Refused: order below the minimum",
                422,
                "below_min_order",
                "The order is below this code's minimum.",
                min_order="50.00",
            ),
            refusal_example("Refused: already used", 409, "already_redeemed", "This code has already been used."),
            TOO_MANY_FAILED_LOOKUPS_EXAMPLE,
        ],
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


class RedemptionDetailApi(APIView):
    """One redemption: a merchant's own, or any for a supervisor."""

    authentication_classes = READ_AUTH
    permission_classes = [ScopeRequired, IsMerchantOrSupervisor]
    required_scope = ("redemptions:read", "read")

    @extend_schema(
        operation_id="redemptions_retrieve",
        responses={200: RedemptionReadOutputSerializer, 401: ERROR, 403: ERROR, 404: ERROR, 429: ERROR},
        examples=[REDEMPTION_EXAMPLE],
    )
    def get(self, request, redemption_id):
        redemption = redemptions_readable(request).filter(pk=redemption_id).first()
        if redemption is None:
            raise exceptions.NotFound(_("No such redemption."))
        return Response(RedemptionReadOutputSerializer(redemption).data)


class RedemptionReverseApi(APIView):
    """The order was cancelled: give the value back. Reversing twice changes nothing."""

    authentication_classes = [MerchantApiKeyAuthentication]
    permission_classes = [ScopeRequired, IsMerchant]
    required_scope = "reverse"

    @extend_schema_serializer(component_name="RedemptionReverseInput")
    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=255)

    @extend_schema(
        operation_id="redemptions_reverse",
        request=InputSerializer,
        responses={200: RedemptionReversedOutputSerializer, 400: ERROR, 401: ERROR, 404: ERROR},
        examples=[
            OpenApiExample("The order was cancelled", value={"reason": "order cancelled"}, request_only=True),
            OpenApiExample(
                "Reversed: the code can be used again",
                value={
                    "id": "6f1c8e4e-3b8a-4a53-9d55-0e2d7f3b9a10",
                    "code_last4": "7KQ2",
                    "order_id": "A-1001",
                    "discount": "10.00",
                    "currency": "EUR",
                    "balance_remaining": None,
                    "redeemed_at": "2026-12-07T10:15:00Z",
                    "status": "reversed",
                    "reversed_at": "2026-12-07T11:02:00Z",
                    "reverse_reason": "order cancelled",
                },
                response_only=True,
                status_codes=["200"],
            ),
            refusal_example("No such redemption", 404, "not_found", "No such redemption for this merchant."),
        ],
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
