"""The issuance API: used by the CSR web UI (session) and by API clients (token)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    extend_schema_view,
    inline_serializer,
)
from phonenumber_field.serializerfields import PhoneNumberField
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from appease.core.api import ERROR, IDEMPOTENCY_HEADER, STAFF_AUTH, Pagination, idempotency_begin, money, replay
from appease.core.context import Actor
from appease.core.idempotency import idempotency_key_release
from appease.core.permissions import IsStaffMember, IsSupervisor
from appease.core.scopes import ScopeRequired
from appease.delivery.models import Channel
from appease.issuance.filters import (
    BIGINT_MAX,
    CustomerFilter,
    IssuanceFilter,
    OfferFilter,
    filter_parameters,
)
from appease.issuance.models import Customer, Issuance, ReasonCode
from appease.issuance.selectors import (
    customer_appeasement_summary,
    customers_matching,
    issuances_visible_to,
    limits_remaining,
    offers_available_to,
    reason_codes_active,
)
from appease.issuance.services.customers import customer_create, customer_update
from appease.issuance.services.deliveries import delivery_resend
from appease.issuance.services.issuance import (
    issuance_approve,
    issuance_create,
    issuance_record,
    issuance_reject,
    issuance_transaction,
    issuance_void,
)
from appease.issuance.services.limits import breach_message
from coupons.models import Offer


class IssuanceOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField(source="effective_status")
    csr = serializers.CharField(source="csr.username", allow_null=True, help_text="Empty when a rule gave it.")
    auto_rule_id = serializers.IntegerField(allow_null=True)
    case_id = serializers.IntegerField(allow_null=True)
    customer_id = serializers.IntegerField()
    offer_id = serializers.IntegerField()
    offer = serializers.CharField(source="offer.name")
    kind = serializers.CharField(source="offer.kind")
    reason_code = serializers.CharField(source="reason_code.code")
    channel = serializers.CharField()
    note = serializers.CharField()
    code_last4 = serializers.SerializerMethodField()
    face_value = serializers.SerializerMethodField()
    cost = serializers.SerializerMethodField()
    currency = serializers.CharField()
    breached_limits = serializers.SerializerMethodField(
        help_text="Each limit that sent it for approval, as data, with `message` worded in the caller's language."
    )
    complaint_started_at = serializers.DateTimeField(allow_null=True)
    complaint_start_source = serializers.CharField(
        help_text="Where the complaint's clock started: case, rep, link, api, event; empty when not timed."
    )
    created_at = serializers.DateTimeField()
    issued_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    redeemed_at = serializers.DateTimeField(allow_null=True)
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True, default=None)
    decision_comment = serializers.CharField()
    delivery = serializers.SerializerMethodField(help_text="The latest delivery of this appeasement.")

    def get_delivery(self, obj: Issuance) -> dict | None:
        delivery = obj.latest_delivery
        if delivery is None:
            return None
        return {
            "id": str(delivery.pk),
            "channel": delivery.channel,
            "status": delivery.status,
            "attempts": delivery.attempts,
            "failure_reason": delivery.failure_reason or None,
            "sent_at": delivery.sent_at,
        }

    def get_breached_limits(self, obj: Issuance) -> list[dict]:
        return [{**limit, "message": breach_message(limit, offer=obj.offer)} for limit in obj.breached_limits or []]

    def get_code_last4(self, obj: Issuance) -> str | None:
        return obj.code.last4 if obj.code_id else None

    def get_face_value(self, obj: Issuance) -> str:
        return money(obj.face_value_amount, obj.currency)

    def get_cost(self, obj: Issuance) -> str:
        return money(obj.cost_amount, obj.currency)


ISSUANCE_EXAMPLE = {
    "id": "5f0c6a3e-8d7b-4c8e-9f4e-2b8e1f6a9d10",
    "status": "issued",
    "csr": "maria",
    "auto_rule_id": None,
    "case_id": None,
    "customer_id": 42,
    "offer_id": 7,
    "offer": "10 € off",
    "kind": "amount_off",
    "reason_code": "late-parcel",
    "channel": "email",
    "note": "parcel two days late",
    "code_last4": "7KQ2",
    "face_value": "10.00",
    "cost": "6.00",
    "currency": "EUR",
    "breached_limits": [],
    "complaint_started_at": None,
    "complaint_start_source": "",
    "created_at": "2026-12-07T09:31:02Z",
    "issued_at": "2026-12-07T09:31:02Z",
    "delivered_at": None,
    "redeemed_at": None,
    "decided_by": None,
    "decision_comment": "",
    "delivery": {
        "id": "0b1e4c52-1d0e-4f59-a8a4-6a0b7b2c9e11",
        "channel": "email",
        "status": "pending",
        "attempts": 0,
        "failure_reason": None,
        "sent_at": None,
    },
}
# Waiting for a supervisor: no code yet, nothing sent.
PENDING_EXAMPLE = {
    **ISSUANCE_EXAMPLE,
    "status": "pending_approval",
    "code_last4": None,
    "issued_at": None,
    "delivery": None,
}
NO_SUCH_ISSUANCE_EXAMPLE = OpenApiExample(
    "No such issuance",
    value={"error": "not_found", "detail": "Not found."},
    response_only=True,
    status_codes=["404"],
)


def limits_payload(user, currency: str) -> dict | None:
    remaining = limits_remaining(user=user, currency=currency)
    if remaining is None:
        return None
    return {
        "currency": remaining.currency,
        "remaining_today": remaining.remaining["day"],
        "remaining_week": remaining.remaining["week"],
        "remaining_month": remaining.remaining["month"],
        "spent_today": remaining.spent["day"],
    }


class CustomerInputSerializer(serializers.Serializer):
    external_id = serializers.CharField(max_length=100, required=False, allow_blank=True)
    name = serializers.CharField(max_length=200)
    email = serializers.EmailField(required=False, allow_blank=True)
    phone = PhoneNumberField(required=False, allow_blank=True)
    preferred_channel = serializers.ChoiceField(choices=Channel.choices, required=False)
    channel_handle = serializers.CharField(max_length=200, required=False, allow_blank=True)
    language = serializers.ChoiceField(choices=Customer._meta.get_field("language").choices, required=False)
    tier = serializers.ChoiceField(choices=Customer.Tier.choices, required=False)
    currency = serializers.CharField(
        min_length=3, max_length=3, required=False, help_text="ISO 4217; the shop's DEFAULT_CURRENCY when left out."
    )
    consent_email = serializers.BooleanField(required=False)
    consent_sms = serializers.BooleanField(required=False)
    consent_chat = serializers.BooleanField(required=False)
    consent_social = serializers.BooleanField(required=False)


def _inline_customer_create(*, actor: Actor, fields: dict) -> Customer:
    """Create the request's inline customer; its errors are named as the caller sent
    them, under `customer` (`customer.email`), not as top-level fields."""
    try:
        return customer_create(actor=actor, **fields)
    except DjangoValidationError as error:
        raise serializers.ValidationError({"customer": error.message_dict}) from None


class IssuanceListCreateApi(APIView):
    """GET: issuances you may see, filtered and paginated. POST: give an appeasement."""

    authentication_classes = STAFF_AUTH
    permission_classes = [ScopeRequired, IsStaffMember]
    required_scopes = {"GET": "read", "POST": "issue"}
    pagination_class = Pagination  # GET pages its answer: the schema says so too
    scope = "issuances.create"

    @extend_schema_serializer(component_name="IssuanceCreateInput")
    class InputSerializer(serializers.Serializer):
        # Ids are bigints: a number beyond one names no row, and is refused as the field's error.
        customer_id = serializers.IntegerField(required=False, min_value=1, max_value=BIGINT_MAX)
        customer = CustomerInputSerializer(required=False)
        offer_id = serializers.IntegerField(min_value=1, max_value=BIGINT_MAX)
        reason_code = serializers.CharField(max_length=40)
        channel = serializers.ChoiceField(choices=Channel.choices, required=False)
        note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
        complaint_started_at = serializers.DateTimeField(required=False, allow_null=True)
        experiment_token = serializers.CharField(
            max_length=2000,
            required=False,
            allow_blank=True,
            default="",
            help_text="The `assignment.token` of `GET /api/v1/recommendations`: this give is in the experiment.",
        )
        override_reason = serializers.CharField(
            max_length=255,
            required=False,
            allow_blank=True,
            default="",
            help_text="Why another offer than the assigned one (required then).",
        )

        def validate(self, attrs):
            if ("customer_id" in attrs) == ("customer" in attrs):
                raise serializers.ValidationError({"customer_id": _("Give either customer_id or customer.")})
            return attrs

    @extend_schema_serializer(component_name="IssuanceCreated")
    class CreatedSerializer(IssuanceOutputSerializer):
        limits = serializers.DictField(allow_null=True)

    @extend_schema(
        operation_id="issuances_list",
        parameters=filter_parameters(IssuanceFilter),
        responses={
            200: IssuanceOutputSerializer(many=True),
            400: ERROR,
            401: ERROR,
            403: ERROR,
            404: OpenApiResponse(ERROR, description="No such page."),
        },
        examples=[
            OpenApiExample(
                "Today's, by email",
                description="`GET /api/v1/issuances?channel=email&created_after=2026-12-07T00:00:00Z`",
                value=ISSUANCE_EXAMPLE,
                response_only=True,
            )
        ],
    )
    def get(self, request):
        queryset = issuances_visible_to(request.user).order_by("-created_at")
        filterset = IssuanceFilter(request.query_params, queryset=queryset, request=request)
        if not filterset.is_valid():
            raise serializers.ValidationError(filterset.errors)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(filterset.qs, request, view=self)
        return paginator.get_paginated_response(IssuanceOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="issuances_create",
        parameters=[IDEMPOTENCY_HEADER],
        request=InputSerializer,
        responses={201: CreatedSerializer, 400: ERROR, 401: ERROR, 403: ERROR, 409: ERROR, 422: ERROR},
        examples=[
            OpenApiExample(
                "To a known customer",
                value={
                    "customer_id": 42,
                    "offer_id": 7,
                    "reason_code": "late-parcel",
                    "channel": "email",
                    "note": "parcel two days late",
                },
                request_only=True,
            ),
            OpenApiExample(
                "In an experiment, another offer with a reason",
                value={
                    "customer_id": 42,
                    "offer_id": 9,
                    "reason_code": "late-parcel",
                    "experiment_token": ".eJyrVkpUslJQ0lFQSk7NS85ITElRslIqzs9JzEtXslIqyywpSi1WsgIA:1v2xYz:abc",
                    "override_reason": "The customer already has a 10 € code",
                },
                request_only=True,
            ),
            OpenApiExample(
                "To a new customer",
                value={
                    "customer": {"name": "Lucía Pérez", "email": "lucia@example.com", "language": "es"},
                    "offer_id": 7,
                    "reason_code": "late-parcel",
                },
                request_only=True,
            ),
            OpenApiExample(
                "Given; sending by email",
                value={
                    **ISSUANCE_EXAMPLE,
                    "limits": {
                        "currency": "EUR",
                        "remaining_today": {"cost": "36.00", "face": "70.00"},
                        "remaining_week": {"cost": "136.00", "face": None},
                        "remaining_month": {"cost": "436.00", "face": None},
                        "spent_today": {"cost": "14.00", "face": "30.00"},
                    },
                },
                response_only=True,
                status_codes=["201"],
            ),
        ],
    )
    @method_decorator(sensitive_variables())  # the claimed code's plaintext is a local below
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        actor = Actor.from_request(request)

        record = idempotency_begin(request, scope=self.scope, owner=f"user:{request.user.pk}")
        if record is not None and record.is_completed:
            return self._replay(request, record)

        offer = Offer.objects.filter(pk=data["offer_id"]).first()
        reason = ReasonCode.objects.filter(code=data["reason_code"]).first()
        errors = {}
        if offer is None:
            errors["offer_id"] = [_("No such offer.")]
        if reason is None:
            errors["reason_code"] = [_("No such reason code.")]
        if "customer_id" in data:
            customer = Customer.objects.filter(pk=data["customer_id"]).first()
            if customer is None:
                errors["customer_id"] = [_("No such customer.")]
        if errors:
            # Nothing happened: forget the key, so a corrected retry runs (and a
            # concurrent twin does not wait for an answer that will never come).
            if record is not None:
                idempotency_key_release(record=record)
            raise serializers.ValidationError(errors)
        give = {
            "actor": actor,
            "offer": offer,
            "reason_code": reason,
            "channel": data.get("channel"),
            "note": data["note"],
            "complaint_started_at": data.get("complaint_started_at"),
            "idempotency_key": record,
            # Where it was given from, and an experiment's assignment: checked by the
            # listener that issued it (feedback).
            "context": {
                "path": "api",
                **(
                    {"experiment_token": data["experiment_token"], "override_reason": data["override_reason"]}
                    if data["experiment_token"]
                    else {}
                ),
            },
        }
        if "customer" in data:
            # One transaction: a refused issuance (400 on the channel, 403 over a limit)
            # leaves no customer behind, and a retry does not add another.
            with issuance_transaction(idempotency_key=record):
                customer = _inline_customer_create(actor=actor, fields=data["customer"])
                issuance = issuance_record(customer=customer, **give)
        else:
            issuance = issuance_create(customer=customer, **give)
        return Response(self._created(request, issuance), status=status.HTTP_201_CREATED)

    def _created(self, request, issuance: Issuance) -> dict:
        body = IssuanceOutputSerializer(issuance).data
        body["limits"] = limits_payload(request.user, issuance.currency)
        return body

    def _replay(self, request, record) -> Response:
        result = record.result or {}
        if "issuance_id" in result:
            issuance = issuances_visible_to(request.user).get(pk=result["issuance_id"])
            body = self._created(request, issuance)
        else:
            body = result
        return replay(record, body)


class IssuanceDecisionApi(APIView):
    """A supervisor's decision on one issuance: validate, check the supervisor may see
    it, call the one service, answer the issuance. Subclasses name the service and input."""

    authentication_classes = STAFF_AUTH
    permission_classes = [ScopeRequired, IsSupervisor]
    required_scope = "issue"
    InputSerializer: type[serializers.Serializer]
    service = None

    def post(self, request, issuance_id):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        get_object_or_404(issuances_visible_to(request.user), pk=issuance_id)
        issuance = type(self).service(
            actor=Actor.from_request(request), issuance_id=issuance_id, **serializer.validated_data
        )
        return Response(IssuanceOutputSerializer(issuance).data)


DECISION_RESPONSES = {200: IssuanceOutputSerializer, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR, 409: ERROR}


class ApproveInputSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class RejectInputSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=2000)


class VoidInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=255)


@extend_schema_view(
    post=extend_schema(
        operation_id="issuances_approve",
        request=ApproveInputSerializer,
        responses=DECISION_RESPONSES,
        examples=[
            OpenApiExample("Approve", value={"comment": "Loyal customer, twice late"}, request_only=True),
            OpenApiExample(
                "Given: the code is sent",
                value={**ISSUANCE_EXAMPLE, "decided_by": "sofia", "decision_comment": "Loyal customer, twice late"},
                response_only=True,
                status_codes=["200"],
            ),
            NO_SUCH_ISSUANCE_EXAMPLE,
        ],
    )
)
class IssuanceApproveApi(IssuanceDecisionApi):
    """A supervisor gives a pending issuance (within the supervisor's own limits)."""

    InputSerializer = ApproveInputSerializer
    service = staticmethod(issuance_approve)


@extend_schema_view(
    post=extend_schema(
        operation_id="issuances_reject",
        request=RejectInputSerializer,
        responses=DECISION_RESPONSES,
        examples=[
            OpenApiExample("Reject", value={"comment": "Already refunded by the carrier"}, request_only=True),
            OpenApiExample(
                "Rejected",
                value={
                    **PENDING_EXAMPLE,
                    "status": "rejected",
                    "decided_by": "sofia",
                    "decision_comment": "Already refunded by the carrier",
                },
                response_only=True,
                status_codes=["200"],
            ),
            NO_SUCH_ISSUANCE_EXAMPLE,
        ],
    )
)
class IssuanceRejectApi(IssuanceDecisionApi):
    """A supervisor refuses a pending issuance, saying why."""

    InputSerializer = RejectInputSerializer
    service = staticmethod(issuance_reject)


@extend_schema_view(
    post=extend_schema(
        operation_id="issuances_void",
        request=VoidInputSerializer,
        responses=DECISION_RESPONSES,
        examples=[
            OpenApiExample("Void", value={"reason": "given to the wrong customer"}, request_only=True),
            OpenApiExample(
                "Voided: the code no longer works",
                value={**ISSUANCE_EXAMPLE, "status": "voided"},
                response_only=True,
                status_codes=["200"],
            ),
            NO_SUCH_ISSUANCE_EXAMPLE,
        ],
    )
)
class IssuanceVoidApi(IssuanceDecisionApi):
    """A supervisor cancels a given, unredeemed appeasement: its code stops working."""

    InputSerializer = VoidInputSerializer
    service = staticmethod(issuance_void)


class IssuanceResendApi(APIView):
    """Send a failed appeasement again, through another channel (one click for the rep)."""

    authentication_classes = STAFF_AUTH
    permission_classes = [ScopeRequired, IsStaffMember]
    required_scope = "issue"

    @extend_schema_serializer(component_name="IssuanceResendInput")
    class InputSerializer(serializers.Serializer):
        channel = serializers.ChoiceField(choices=Channel.choices)

    @extend_schema(
        operation_id="issuances_resend",
        request=InputSerializer,
        responses={202: IssuanceOutputSerializer, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR, 409: ERROR},
        examples=[
            OpenApiExample("By SMS this time", value={"channel": "sms"}, request_only=True),
            OpenApiExample(
                "Queued for sending by SMS",
                value={
                    **ISSUANCE_EXAMPLE,
                    "status": "failed",
                    "delivery": {
                        "id": "9c3d2f0a-6b1e-4a7d-8e5f-1a2b3c4d5e6f",
                        "channel": "sms",
                        "status": "pending",
                        "attempts": 0,
                        "failure_reason": None,
                        "sent_at": None,
                    },
                },
                response_only=True,
                status_codes=["202"],
            ),
            NO_SUCH_ISSUANCE_EXAMPLE,
        ],
    )
    def post(self, request, issuance_id):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        get_object_or_404(issuances_visible_to(request.user), pk=issuance_id)
        delivery_resend(
            actor=Actor.from_request(request), issuance_id=issuance_id, channel=serializer.validated_data["channel"]
        )
        issuance = issuances_visible_to(request.user).get(pk=issuance_id)
        return Response(IssuanceOutputSerializer(issuance).data, status=status.HTTP_202_ACCEPTED)


class CustomerOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField(allow_null=True)
    name = serializers.CharField()
    email = serializers.CharField(help_text="Empty when unknown.")  # so not format: email
    phone = serializers.CharField()
    preferred_channel = serializers.CharField()
    channel_handle = serializers.CharField()
    language = serializers.CharField()
    tier = serializers.CharField()
    currency = serializers.CharField()
    orders_count = serializers.IntegerField()
    total_spend = serializers.SerializerMethodField()
    lifetime_value = serializers.SerializerMethodField()
    last_order_at = serializers.DateTimeField(allow_null=True)
    history_computed_at = serializers.DateTimeField(
        allow_null=True,
        help_text="When orders_count, total_spend, last_order_at and lifetime_value were last computed from the "
        "shop's orders (order.placed events, the orders import); null: typed in by staff. Read-only either way.",
    )

    def get_total_spend(self, obj: Customer) -> str:
        return money(obj.total_spend_amount, obj.currency)

    def get_lifetime_value(self, obj: Customer) -> str:
        return money(obj.lifetime_value_amount, obj.currency)


CUSTOMER_LOOKUPS = ("external_id", "email", "phone", "order_reference")

CUSTOMER_EXAMPLE = {
    "id": 42,
    "external_id": "shop-1042",
    "name": "Lucía Pérez",
    "email": "lucia@example.com",
    "phone": "+34612345678",
    "preferred_channel": "email",
    "channel_handle": "",
    "language": "es",
    "tier": "gold",
    "currency": "EUR",
    "orders_count": 12,
    "total_spend": "840.00",
    "lifetime_value": "1200.00",
    "last_order_at": "2026-11-30T18:04:00Z",
    "history_computed_at": "2026-11-30T18:04:02Z",
}


class CustomerListCreateApi(APIView):
    """GET: find customers, paginated: `q` searches name, email, phone, external id and
    order reference as the rep's search box does; `external_id`, `email` (any case),
    `phone` (international form, normalised) and `order_reference` look up exactly, each
    one given narrowing the answer. One of them is needed. POST: create one."""

    authentication_classes = STAFF_AUTH
    permission_classes = [ScopeRequired, IsStaffMember]
    required_scopes = {"GET": "read", "POST": "issue"}
    pagination_class = Pagination

    class QuerySerializer(serializers.Serializer):
        q = serializers.CharField(max_length=200, required=False, allow_blank=True)

    @extend_schema(
        operation_id="customers_search",
        parameters=[
            OpenApiParameter("q", str, description="Search by name, email, phone, external id or order reference."),
            *filter_parameters(CustomerFilter),
        ],
        responses={200: CustomerOutputSerializer(many=True), 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR},
        examples=[
            OpenApiExample(
                "By email",
                description="`GET /api/v1/customers?email=LUCIA@example.com`",
                value=CUSTOMER_EXAMPLE,
                response_only=True,
            )
        ],
    )
    def get(self, request):
        params = request.query_params
        if "q" not in params and not any(name in params for name in CUSTOMER_LOOKUPS):
            raise serializers.ValidationError(
                {"q": [_("Give q, or one of external_id, email, phone and order_reference.")]}
            )
        query = self.QuerySerializer(data=params)
        query.is_valid(raise_exception=True)
        if "q" in params:
            customers = customers_matching(query=query.validated_data["q"])
        else:
            customers = Customer.objects.order_by("name", "pk")
        filterset = CustomerFilter(params, queryset=customers, request=request)
        if not filterset.is_valid():
            raise serializers.ValidationError(filterset.errors)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(filterset.qs, request, view=self)
        return paginator.get_paginated_response(CustomerOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="customers_create",
        request=CustomerInputSerializer,
        responses={201: CustomerOutputSerializer, 400: ERROR, 401: ERROR, 403: ERROR},
        examples=[
            OpenApiExample(
                "A customer from the shop",
                value={
                    "external_id": "shop-1042",
                    "name": "Lucía Pérez",
                    "email": "lucia@example.com",
                    "phone": "+34612345678",
                    "preferred_channel": "email",
                    "language": "es",
                    "tier": "gold",
                    "currency": "EUR",
                    "consent_email": True,
                },
                request_only=True,
            ),
            OpenApiExample(
                "Created",
                value={
                    **CUSTOMER_EXAMPLE,
                    "orders_count": 0,
                    "total_spend": "0.00",
                    "lifetime_value": "0.00",
                    "last_order_at": None,
                    "history_computed_at": None,
                },
                response_only=True,
                status_codes=["201"],
            ),
        ],
    )
    def post(self, request):
        serializer = CustomerInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer = customer_create(actor=Actor.from_request(request), **serializer.validated_data)
        return Response(CustomerOutputSerializer(customer).data, status=status.HTTP_201_CREATED)


class CustomerUpdateInputSerializer(serializers.Serializer):
    """What PATCH may change: contact details, the preferred channel, the language and
    the consents. Every field is optional; those left out keep their value."""

    name = serializers.CharField(max_length=200)
    email = serializers.EmailField(allow_blank=True, max_length=254)
    phone = PhoneNumberField(allow_blank=True)
    preferred_channel = serializers.ChoiceField(choices=Channel.choices, allow_blank=True)
    channel_handle = serializers.CharField(max_length=200, allow_blank=True)
    language = serializers.ChoiceField(choices=Customer._meta.get_field("language").choices)
    consent_email = serializers.BooleanField()
    consent_sms = serializers.BooleanField()
    consent_chat = serializers.BooleanField()
    consent_social = serializers.BooleanField()

    def to_internal_value(self, data):
        # A field PATCH cannot change (tier, currency, a typo) is said, not silently dropped.
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: [_("This field cannot be changed here.")] for name in unknown})
        return super().to_internal_value(data)


class CustomerDetailApi(APIView):
    """GET: a customer with their appeasement history (what you may see of it).
    PATCH: change their contact details, preferred channel or language."""

    authentication_classes = STAFF_AUTH
    permission_classes = [ScopeRequired, IsStaffMember]
    required_scopes = {"GET": "read", "PATCH": "issue"}

    @extend_schema(
        operation_id="customers_retrieve",
        responses={
            200: inline_serializer(
                "CustomerDetail",
                {
                    "customer": CustomerOutputSerializer(),
                    "recent": serializers.DictField(),
                    "issuances": IssuanceOutputSerializer(many=True),
                },
            ),
            401: ERROR,
            403: ERROR,
            404: ERROR,
        },
        examples=[
            OpenApiExample(
                "Appeased once this month",
                value={
                    "customer": CUSTOMER_EXAMPLE,
                    "recent": {
                        "window_days": 30,
                        "count": 1,
                        "reps": 1,
                        "by_currency": [{"currency": "EUR", "count": 1, "face": "10.00"}],
                    },
                    "issuances": [ISSUANCE_EXAMPLE],
                },
                response_only=True,
                status_codes=["200"],
            ),
            OpenApiExample(
                "No such customer",
                value={"error": "not_found", "detail": "Not found."},
                response_only=True,
                status_codes=["404"],
            ),
        ],
    )
    def get(self, request, customer_id: int):
        customer = get_object_or_404(Customer, pk=customer_id)
        summary = customer_appeasement_summary(customer=customer)
        summary["by_currency"] = [
            {**row, "face": money(row["face"], row["currency"])} for row in summary["by_currency"]
        ]
        issuances = issuances_visible_to(request.user).filter(customer=customer).order_by("-created_at")[:50]
        return Response(
            {
                "customer": CustomerOutputSerializer(customer).data,
                "recent": summary,
                "issuances": IssuanceOutputSerializer(issuances, many=True).data,
            }
        )

    @extend_schema(
        operation_id="customers_partial_update",
        request=CustomerUpdateInputSerializer,
        responses={200: CustomerOutputSerializer, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR, 409: ERROR},
        examples=[
            OpenApiExample(
                "A new phone, reached by SMS from now on",
                value={"phone": "+34 612 345 678", "preferred_channel": "sms"},
                request_only=True,
            ),
            OpenApiExample(
                "Field errors, in the caller's language",
                value={
                    "error": "invalid",
                    "detail": "La solicitud tiene campos no válidos.",
                    "fields": {"email": ["Introduce una dirección de correo electrónico válida."]},
                },
                response_only=True,
                status_codes=["400"],
            ),
        ],
    )
    def patch(self, request, customer_id: int):
        customer = get_object_or_404(Customer, pk=customer_id)
        serializer = CustomerUpdateInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        customer = customer_update(
            actor=Actor.from_request(request), customer_id=customer.pk, **serializer.validated_data
        )
        return Response(CustomerOutputSerializer(customer).data)


# --- What a helpdesk reads before giving: offers, reasons, one issuance -----------------

BUDGET_EXAMPLE = {
    "currency": "EUR",
    "remaining_today": {"cost": "42.00", "face": "80.00"},
    "remaining_week": {"cost": "142.00", "face": None},
    "remaining_month": {"cost": "442.00", "face": None},
    "spent_today": {"cost": "8.00", "face": "20.00"},
}


class OfferOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()
    description = serializers.CharField(help_text="What the customer reads.")
    face_value = serializers.SerializerMethodField(help_text="Amount off, gift-card balance or the item's price.")
    percent = serializers.DecimalField(max_digits=5, decimal_places=2, allow_null=True)
    max_discount = serializers.SerializerMethodField()
    min_order = serializers.SerializerMethodField()
    cost = serializers.SerializerMethodField(help_text="What giving it costs the company, counted against budgets.")
    currency = serializers.CharField()
    validity_days = serializers.IntegerField()
    budget = serializers.SerializerMethodField(
        help_text="What the caller has left to give in the offer's currency today, this week and this month "
        "(cost and face value; null: no limit); null when the caller has no limit policy."
    )

    def get_face_value(self, obj: Offer) -> str:
        return money(obj.value_amount, obj.currency)

    def get_max_discount(self, obj: Offer) -> str | None:
        return money(obj.max_discount_amount, obj.currency)

    def get_min_order(self, obj: Offer) -> str:
        return money(obj.min_order_amount, obj.currency)

    def get_cost(self, obj: Offer) -> str:
        return money(obj.cost_amount, obj.currency)

    def get_budget(self, obj: Offer) -> dict | None:
        # One read per currency on the page, not one per offer.
        budgets = self.context.setdefault("budgets", {})
        if obj.currency not in budgets:
            budgets[obj.currency] = limits_payload(self.context["user"], obj.currency)
        return budgets[obj.currency]


OFFER_EXAMPLE = {
    "id": 7,
    "name": "10 € off",
    "kind": "amount_off",
    "description": "10 € off your next order",
    "face_value": "10.00",
    "percent": None,
    "max_discount": None,
    "min_order": "0.00",
    "cost": "6.00",
    "currency": "EUR",
    "validity_days": 90,
    "budget": BUDGET_EXAMPLE,
}


class OfferListApi(APIView):
    """The offers the caller may give: active, allowed by their limit policy and, with
    `customer_id`, only those that customer can use (their currency, or an apology or
    callback whatever they pay in): the list the rep's customer panel shows. Each comes
    with its cost and what the caller has left in its currency."""

    authentication_classes = STAFF_AUTH
    permission_classes = [ScopeRequired, IsStaffMember]
    required_scope = "read"
    pagination_class = Pagination

    class QuerySerializer(serializers.Serializer):
        customer_id = serializers.IntegerField(required=False, min_value=1, max_value=BIGINT_MAX)

    @extend_schema(
        operation_id="offers_list",
        parameters=[
            OpenApiParameter(
                "customer_id",
                {"type": "integer", "minimum": 1, "maximum": BIGINT_MAX},
                description="Only the offers this customer can be given.",
            ),
            *filter_parameters(OfferFilter),
        ],
        responses={200: OfferOutputSerializer(many=True), 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR},
        examples=[
            OpenApiExample(
                "For a customer paying in EUR",
                description="`GET /api/v1/offers?customer_id=42`",
                value=OFFER_EXAMPLE,
                response_only=True,
            )
        ],
    )
    def get(self, request):
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        customer = None
        if "customer_id" in query.validated_data:
            customer = Customer.objects.filter(pk=query.validated_data["customer_id"]).first()
            if customer is None:
                raise serializers.ValidationError({"customer_id": [_("No such customer.")]})
        offers = offers_available_to(request.user, customer=customer).order_by("kind", "name", "pk")
        filterset = OfferFilter(request.query_params, queryset=offers, request=request)
        if not filterset.is_valid():
            raise serializers.ValidationError(filterset.errors)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(filterset.qs, request, view=self)
        context = {"user": request.user}
        return paginator.get_paginated_response(OfferOutputSerializer(page, many=True, context=context).data)


class ReasonCodeOutputSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="What POST /issuances takes as `reason_code`.")
    label = serializers.CharField(help_text="The name, in the caller's language (Accept-Language).")
    incident_type = serializers.CharField()
    incident_type_label = serializers.CharField(source="get_incident_type_display")


class ReasonCodeListApi(APIView):
    """The reasons an appeasement may be given for (those in use), named in the caller's
    language, as the rep's give form lists them."""

    authentication_classes = STAFF_AUTH
    permission_classes = [ScopeRequired, IsStaffMember]
    required_scope = "read"
    pagination_class = Pagination

    @extend_schema(
        operation_id="reason_codes_list",
        parameters=[
            OpenApiParameter(
                "Accept-Language", str, OpenApiParameter.HEADER, description="en, es or pt-br: the labels' language."
            )
        ],
        responses={200: ReasonCodeOutputSerializer(many=True), 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR},
        examples=[
            OpenApiExample(
                "In Spanish",
                description="`Accept-Language: es`",
                value={
                    "code": "late-parcel",
                    "label": "Paquete con retraso",
                    "incident_type": "late_delivery",
                    "incident_type_label": "Entrega tardía",
                },
                response_only=True,
            )
        ],
    )
    def get(self, request):
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(reason_codes_active(), request, view=self)
        return paginator.get_paginated_response(ReasonCodeOutputSerializer(page, many=True).data)


class DeliveryOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    channel = serializers.CharField()
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    failure_reason = serializers.SerializerMethodField()
    resend_of = serializers.UUIDField(allow_null=True, source="resend_of_id")
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)

    def get_failure_reason(self, obj) -> str | None:
        return obj.failure_reason or None


class IssuanceDetailOutputSerializer(IssuanceOutputSerializer):
    customer = serializers.CharField(source="customer.name", help_text="The customer's name.")
    reason = serializers.CharField(source="reason_code.label", help_text="The reason, in the caller's language.")
    deliveries = serializers.SerializerMethodField(help_text="Every delivery of it, oldest first, with its status.")

    @extend_schema_field(DeliveryOutputSerializer(many=True))
    def get_deliveries(self, obj: Issuance) -> list[dict]:
        deliveries = sorted(obj.deliveries.all(), key=lambda delivery: delivery.created_at)
        return DeliveryOutputSerializer(deliveries, many=True).data


class IssuanceDetailApi(APIView):
    """One issuance, if the caller may see it (the list's rule: a rep their own, a
    supervisor their team's, all without a team). The code shows as its last four only."""

    authentication_classes = STAFF_AUTH
    permission_classes = [ScopeRequired, IsStaffMember]
    required_scope = "read"

    @extend_schema(
        operation_id="issuances_retrieve",
        responses={
            200: IssuanceDetailOutputSerializer,
            401: ERROR,
            403: ERROR,
            404: OpenApiResponse(ERROR, description="No such issuance, or not one the caller may see."),
        },
        examples=[
            OpenApiExample(
                "Given and delivered by email",
                value={
                    "id": "5f0c6a3e-8d7b-4c8e-9f4e-2b8e1f6a9d10",
                    "status": "delivered",
                    "csr": "maria",
                    "auto_rule_id": None,
                    "case_id": None,
                    "customer_id": 42,
                    "customer": "Lucía Pérez",
                    "offer_id": 7,
                    "offer": "10 € off",
                    "kind": "amount_off",
                    "reason_code": "late-parcel",
                    "reason": "Late parcel",
                    "channel": "email",
                    "note": "parcel two days late",
                    "code_last4": "7KQ2",
                    "face_value": "10.00",
                    "cost": "6.00",
                    "currency": "EUR",
                    "breached_limits": [],
                    "complaint_started_at": None,
                    "complaint_start_source": "",
                    "created_at": "2026-12-07T09:31:02Z",
                    "issued_at": "2026-12-07T09:31:02Z",
                    "delivered_at": "2026-12-07T09:31:05Z",
                    "redeemed_at": None,
                    "decided_by": None,
                    "decision_comment": "",
                    "delivery": {
                        "id": "0b1e4c52-1d0e-4f59-a8a4-6a0b7b2c9e11",
                        "channel": "email",
                        "status": "sent",
                        "attempts": 1,
                        "failure_reason": None,
                        "sent_at": "2026-12-07T09:31:05Z",
                    },
                    "deliveries": [
                        {
                            "id": "0b1e4c52-1d0e-4f59-a8a4-6a0b7b2c9e11",
                            "channel": "email",
                            "status": "sent",
                            "attempts": 1,
                            "failure_reason": None,
                            "resend_of": None,
                            "created_at": "2026-12-07T09:31:02Z",
                            "sent_at": "2026-12-07T09:31:05Z",
                        }
                    ],
                },
                response_only=True,
            )
        ],
    )
    def get(self, request, issuance_id):
        issuance = get_object_or_404(issuances_visible_to(request.user), pk=issuance_id)
        return Response(IssuanceDetailOutputSerializer(issuance).data)
