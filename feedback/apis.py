"""The feedback API: intake from the widget and the shop, events from the merchant's
systems, and the case queue for reps and API clients."""

from __future__ import annotations

import hashlib
import re
from contextlib import contextmanager

from django.conf import settings
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    inline_serializer,
)
from phonenumber_field.serializerfields import PhoneNumberField
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from appease.core.api import ERROR, IDEMPOTENCY_HEADER, STAFF_AUTH, Pagination, idempotency_begin, money, replay
from appease.core.context import Actor
from appease.core.idempotency import idempotency_key_release
from appease.core.permissions import IsStaffMember
from appease.core.quota import ApiQuotaThrottle
from appease.core.ratelimit import FailureLimiter
from appease.core.scopes import ScopeRequired
from appease.delivery.models import Channel
from appease.issuance.filters import BIGINT_MAX, filter_parameters
from appease.issuance.models import Customer, IncidentType, Issuance, ReasonCode
from appease.issuance.services.limits import breach_message
from coupons.auth import IsMerchant, MerchantApiKeyAuthentication
from coupons.models import Offer
from feedback.filters import CaseFilter
from feedback.models import ApologyTemplate, Case, Feedback, FeedbackSite, Intervention
from feedback.selectors import (
    case_issuances,
    case_timeline,
    cases_all,
    origin_allowed_by_a_site,
    site_allows_origin,
    staff_id_by_username,
)
from feedback.services.automation import event_receive
from feedback.services.cases import (
    case_apologise,
    case_claim,
    case_claim_next,
    case_escalate,
    case_issue,
    case_log,
    case_reassign,
    case_resolve,
)
from feedback.services.experiments import experiment_assign, experiment_context
from feedback.services.intake import CustomerRef, feedback_submit
from feedback.services.recommend import recommend, recommend_for


def intake_cors_enabled(sender, request, **kwargs) -> bool:
    """django-cors-headers' check_request_enabled receiver: CORS for the feedback intake
    alone (CORS_URLS_REGEX), for the origins an active site lists. (The library answers
    CORS when the URL regex matches *or* a receiver says yes: so the path is checked here
    too, or every path would answer CORS for those origins.)"""
    if not re.match(settings.CORS_URLS_REGEX, request.path_info):
        return False
    return origin_allowed_by_a_site(request.headers.get("Origin", ""))


class _IntakeThrottle(BaseThrottle):
    """Intake is open to the internet: every request counts, per IP and per site key.

    Counted with one atomic INCR per window (appease.core.ratelimit), not DRF's
    read-modify-write history, which concurrent requests overwrite (bench/feedback
    measured 10–19 % of a flood going uncounted).
    """

    scope = ""
    wait_seconds: int | None = None

    def limit(self) -> int:
        raise NotImplementedError

    def ident(self, request) -> str | None:
        raise NotImplementedError

    def limiter(self) -> FailureLimiter:
        return FailureLimiter(scope=self.scope, limit=self.limit(), window_seconds=60)

    def allow_request(self, request, view) -> bool:
        ident = self.ident(request)
        if ident is None:
            return True
        self.wait_seconds = self.limiter().record_failure([ident])  # "failure" here: one more request
        return self.wait_seconds is None

    def wait(self):
        return self.wait_seconds


class FeedbackIpThrottle(_IntakeThrottle):
    scope = "feedback-ip"

    def limit(self) -> int:
        return settings.FEEDBACK_RATE_PER_IP

    def ident(self, request) -> str:
        return f"ip:{self.get_ident(request)}"


class FeedbackKeyThrottle(_IntakeThrottle):
    scope = "feedback-key"

    def limit(self) -> int:
        return settings.FEEDBACK_RATE_PER_KEY

    def ident(self, request) -> str | None:
        key = request.data.get("site_key") if hasattr(request.data, "get") else None
        if not isinstance(key, str) or not key:
            return None  # no key to count (the request fails validation; the IP limit still counts it)
        # Hashed: the key is whatever the caller sent, and a cache key must stay short and plain.
        return "key:" + hashlib.sha256(key[:40].encode("utf-8", "surrogatepass")).hexdigest()


class FeedbackIntakeApi(APIView):
    """Feedback from the widget or the shop. The site key is public; the honeypot field
    `website` must stay empty (bots fill it: they get a 201 and nothing is saved)."""

    authentication_classes = []
    permission_classes = [ScopeRequired, AllowAny]
    required_scope = None  # open to the widget: the site key is public
    throttle_classes = [ApiQuotaThrottle, FeedbackIpThrottle, FeedbackKeyThrottle]

    @extend_schema_serializer(component_name="FeedbackInput")
    class InputSerializer(serializers.Serializer):
        site_key = serializers.CharField(max_length=40)
        rating = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True)
        nps = serializers.IntegerField(min_value=0, max_value=10, required=False, allow_null=True)
        text = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="")
        incident_type = serializers.ChoiceField(choices=IncidentType.choices, required=False, allow_blank=True)
        # No default: the schema would give "" as the default of an `email` (or `uri`)
        # string, which a strict OpenAPI validator refuses; absent reads as "" below.
        email = serializers.EmailField(required=False, allow_blank=True)
        phone = PhoneNumberField(required=False, allow_blank=True, default="")
        external_id = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
        name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
        order_reference = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
        channel = serializers.ChoiceField(choices=Channel.choices, required=False, allow_blank=True, default="")
        page_url = serializers.URLField(max_length=500, required=False, allow_blank=True)
        language = serializers.CharField(max_length=10, required=False, allow_blank=True, default="")
        website = serializers.CharField(
            max_length=200, required=False, allow_blank=True, default="", help_text="Leave empty."
        )
        source = serializers.ChoiceField(
            choices=[Case.Source.WIDGET.value, Case.Source.API.value],
            required=False,
            default=Case.Source.API.value,
            help_text="Who posts: `widget` (the embeddable widget sends it) or `api` (the default: the shop's own "
            "forms and systems). Recorded on the feedback and its case; it proves nothing.",
        )

    @extend_schema_serializer(component_name="FeedbackReceived")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField(allow_null=True)
        disposition = serializers.ChoiceField(choices=Feedback.Disposition.choices)
        case_id = serializers.IntegerField(allow_null=True)

    @extend_schema(
        operation_id="feedback_create",
        auth=[],
        request=InputSerializer,
        responses={201: OutputSerializer, 400: ERROR, 403: ERROR, 429: ERROR},
        examples=[
            OpenApiExample(
                "A low rating from the shop's order page",
                value={
                    "site_key": "pk_Xq3v9TzL0bWm7RkA2sEe4nHp",
                    "rating": 1,
                    "text": "Mi pedido llegó tres días tarde.",
                    "incident_type": "late_delivery",
                    "email": "lucia@example.com",
                    "name": "Lucía Pérez",
                    "order_reference": "A-1001",
                    "language": "es",
                    "source": "api",
                },
                request_only=True,
            ),
            OpenApiExample(
                "Queued for a rep, as a case",
                value={"id": 311, "disposition": "queued", "case_id": 42},
                response_only=True,
                status_codes=["201"],
            ),
            OpenApiExample(
                "From an origin the site does not allow",
                value={"error": "origin_not_allowed", "detail": "This site does not accept feedback from this origin."},
                response_only=True,
                status_codes=["403"],
            ),
        ],
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        site = FeedbackSite.objects.filter(public_key=data["site_key"], is_active=True).first()
        if site is None:
            raise serializers.ValidationError({"site_key": [_("Unknown or inactive site key.")]})
        own_origin = f"{request.scheme}://{request.get_host()}"
        if not site_allows_origin(site, request.headers.get("Origin"), own_origin=own_origin):
            return Response(
                {"error": "origin_not_allowed", "detail": _("This site does not accept feedback from this origin.")},
                status=status.HTTP_403_FORBIDDEN,
            )
        if data["website"]:
            # A bot filled the honeypot: answer like a success so it learns nothing.
            return Response({"id": None, "disposition": "acknowledged", "case_id": None}, status=201)
        feedback = feedback_submit(
            actor=Actor.from_request(request),
            source=data["source"],
            site=site,
            ref=CustomerRef(
                email=data.get("email", ""),
                phone=str(data["phone"]) if data["phone"] else "",
                external_id=data["external_id"],
                name=data["name"],
            ),
            rating=data.get("rating"),
            nps=data.get("nps"),
            text=data["text"],
            incident_type=data.get("incident_type", ""),
            order_reference=data["order_reference"],
            channel=data["channel"],
            page_url=data.get("page_url", ""),
            language=data["language"],
        )
        body = {"id": feedback.pk, "disposition": feedback.disposition, "case_id": feedback.case_id}
        return Response(self.OutputSerializer(body).data, status=status.HTTP_201_CREATED)


class EventIntakeApi(APIView):
    """An event from the merchant's systems (`delivery_delayed`, `flight_delayed`,
    `order.placed`, …).

    The same `event_id` twice has no second effect: the answer is the first event's.
    Matching automatic rules give appeasements to the customers the event names.
    `order.placed` records the order in `data.order` (reference, total, currency,
    placed_at) for `data.customer` at once, idempotent by the order's reference; its
    problems are field errors named by place (`data.order.total`).
    """

    authentication_classes = [MerchantApiKeyAuthentication]
    permission_classes = [ScopeRequired, IsMerchant]
    required_scope = "events"

    @extend_schema_serializer(component_name="EventInput")
    class InputSerializer(serializers.Serializer):
        event_id = serializers.CharField(max_length=100)
        event_type = serializers.RegexField(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$", max_length=50)
        occurred_at = serializers.DateTimeField(required=False, allow_null=True)
        data = serializers.DictField(
            help_text="The event's fields (e.g. delay_minutes, order_reference; for order.placed, `order`: "
            "{reference, total (a decimal string), currency (ISO 4217), placed_at (with its offset)}) and `customer` "
            "({email|phone|external_id, name}) or `customers` (a list of those, up to 1,000). Every customer is "
            "checked (a valid email, an international phone number, an external id of at most 100 characters); "
            "errors name the customer by its index, e.g. `data.customers[3].email`."
        )

    @extend_schema_serializer(component_name="EventAccepted")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        event_id = serializers.CharField()
        event_type = serializers.CharField()
        duplicate = serializers.BooleanField()
        received_at = serializers.DateTimeField()
        processed_at = serializers.DateTimeField(allow_null=True)
        result = serializers.DictField()

    @extend_schema(
        operation_id="events_create",
        request=InputSerializer,
        responses={202: OutputSerializer, 200: OutputSerializer, 400: ERROR, 401: ERROR, 403: ERROR, 409: ERROR},
        examples=[
            OpenApiExample(
                "A parcel 3 hours late",
                value={
                    "event_id": "evt-20261207-0042",
                    "event_type": "delivery_delayed",
                    "occurred_at": "2026-12-07T08:00:00Z",
                    "data": {
                        "delay_minutes": 180,
                        "order_reference": "A-1001",
                        "customer": {"email": "lucia@example.com", "name": "Lucía Pérez"},
                    },
                },
                request_only=True,
            ),
            OpenApiExample(
                "An order placed",
                description="Recorded at once, idempotent by the order's reference: the customer's history "
                "(orders, spend, last order, lifetime value) is computed from their orders, and their "
                "appeasements within REPURCHASE_WINDOW before it are marked as ordered again.",
                value={
                    "event_id": "evt-20261207-0043",
                    "event_type": "order.placed",
                    "occurred_at": "2026-12-07T09:30:00+01:00",
                    "data": {
                        "customer": {"external_id": "shop-1042", "email": "lucia@example.com", "name": "Lucía Pérez"},
                        "order": {
                            "reference": "A-1002",
                            "total": "84.90",
                            "currency": "EUR",
                            "placed_at": "2026-12-07T09:30:00+01:00",
                        },
                    },
                },
                request_only=True,
            ),
            OpenApiExample(
                "The order recorded",
                value={
                    "id": 89,
                    "event_id": "evt-20261207-0043",
                    "event_type": "order.placed",
                    "duplicate": False,
                    "received_at": "2026-12-07T08:30:01Z",
                    "processed_at": "2026-12-07T08:30:01Z",
                    "result": {"order_id": 5120, "customer_id": 42, "order": "created", "repurchases": 1},
                },
                response_only=True,
                status_codes=["202"],
            ),
            OpenApiExample(
                "The order's reference is another customer's",
                value={
                    "error": "invalid",
                    "detail": "The request has invalid fields.",
                    "fields": {"data.order.reference": ["This order reference is another customer's order."]},
                },
                response_only=True,
                status_codes=["400"],
            ),
            OpenApiExample(
                "Accepted: the rules run next",
                value={
                    "id": 88,
                    "event_id": "evt-20261207-0042",
                    "event_type": "delivery_delayed",
                    "duplicate": False,
                    "received_at": "2026-12-07T08:00:03Z",
                    "processed_at": None,
                    "result": {},
                },
                response_only=True,
                status_codes=["202"],
            ),
            OpenApiExample(
                "The same event_id again: the first event's answer",
                value={
                    "id": 88,
                    "event_id": "evt-20261207-0042",
                    "event_type": "delivery_delayed",
                    "duplicate": True,
                    "received_at": "2026-12-07T08:00:03Z",
                    "processed_at": "2026-12-07T08:00:04Z",
                    "result": {
                        "rules": [5],
                        "issued": ["5f0c6a3e-8d7b-4c8e-9f4e-2b8e1f6a9d10"],
                        "skipped": [],
                        "case_id": None,
                    },
                },
                response_only=True,
                status_codes=["200"],
            ),
            OpenApiExample(
                "The event_id was used for another type",
                value={"error": "event_id_reused", "detail": "This event id was already used for another event type."},
                response_only=True,
                status_codes=["409"],
            ),
        ],
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        event, created = event_receive(
            merchant=request.auth.merchant,
            event_id=data["event_id"],
            event_type=data["event_type"],
            data=data["data"],
            occurred_at=data.get("occurred_at"),
        )
        body = {
            "id": event.pk,
            "event_id": event.event_id,
            "event_type": event.event_type,
            "duplicate": not created,
            "received_at": event.received_at,
            "processed_at": event.processed_at,
            "result": event.result,
        }
        return Response(self.OutputSerializer(body).data, status=202 if created else 200)


class CaseOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    subject = serializers.CharField()
    source = serializers.CharField()
    customer_id = serializers.IntegerField(allow_null=True)
    incident_type = serializers.CharField()
    incident_inferred = serializers.BooleanField()
    language = serializers.CharField()
    priority = serializers.CharField()
    priority_score = serializers.IntegerField()
    score_reasons = serializers.ListField(
        source="reasons",
        child=serializers.DictField(),
        help_text="Why the score: each {factor, points, params, text}; `text` in the request's language; "
        "the points add up to priority_score.",
    )
    sentiment = serializers.FloatField(allow_null=True)
    anger = serializers.FloatField(allow_null=True)
    owner_team = serializers.CharField(source="owner_team.name", allow_null=True, default=None)
    assigned_to = serializers.CharField(source="assigned_to.username", allow_null=True, default=None)
    first_response_due_at = serializers.DateTimeField(allow_null=True)
    resolution_due_at = serializers.DateTimeField(allow_null=True)
    first_response_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    intervention = serializers.CharField()
    created_at = serializers.DateTimeField()


CASE_FILTER_HELP = {
    "status": "A view of the queue: open (unclaimed, the default), active (open or being worked), mine (being "
    "worked by you), closed, all; or one case status: claimed, resolved, confirmed, unconfirmed",
    "assignee": "The username of the rep working the case",
    "customer": "The customer's id",
    "language": "A case language, or mine (the languages on your staff profile)",
    "created_after": "Opened at or after this instant (ISO 8601 with its offset)",
    "created_before": "Opened before this instant (ISO 8601 with its offset)",
}

CASE_EXAMPLE = {
    "id": 42,
    "status": "claimed",
    "subject": "My parcel is three days late",
    "source": "csr",
    "customer_id": 7,
    "incident_type": "late_delivery",
    "incident_inferred": False,
    "language": "es",
    "priority": "high",
    "priority_score": 64,
    "score_reasons": [{"factor": "incident", "points": 30, "params": {}, "text": "impact weight of Late delivery"}],
    "sentiment": -0.6,
    "anger": 0.4,
    "owner_team": "Logistics",
    "assigned_to": "ana",
    "first_response_due_at": "2026-12-07T10:30:00Z",
    "resolution_due_at": "2026-12-08T09:30:00Z",
    "first_response_at": None,
    "resolved_at": None,
    "intervention": "",
    "created_at": "2026-12-07T09:30:00Z",
}
NOT_FOUND = OpenApiResponse(ERROR, description="No such case.")
NOT_FOUND_EXAMPLE = OpenApiExample(
    "No such case",
    value={"error": "not_found", "detail": "Not found."},
    response_only=True,
    status_codes=["404"],
)
CASE_ID = OpenApiParameter("case_id", int, OpenApiParameter.PATH, description="The case's id")


def _case_or_404(case_id) -> Case:
    return get_object_or_404(cases_all(), pk=case_id)


@contextmanager
def _released_on_failure(record):
    """Around a service call: if it fails without completing the Idempotency-Key (a 404
    or a field error before the work, an unexpected error), forget the key so a corrected
    retry runs; a refusal the service stored as the answer stays (only unfinished keys go)."""
    try:
        yield
    except BaseException:
        if record is not None:
            idempotency_key_release(record=record)
        raise


class CaseListApi(APIView):
    """GET: the case queue, highest priority first, filtered and paged. POST: log a case
    for a customer (as a rep does from a call): triaged and scored like any feedback,
    and yours at once."""

    authentication_classes = STAFF_AUTH
    permission_classes = [ScopeRequired, IsStaffMember]
    required_scope = "cases"
    pagination_class = Pagination  # the answer is paged: the schema says so too
    required_scope = "cases"
    scope = "cases.create"

    @extend_schema_serializer(component_name="CaseCreateInput")
    class InputSerializer(serializers.Serializer):
        customer_id = serializers.IntegerField(min_value=1, max_value=BIGINT_MAX)
        text = serializers.CharField(max_length=4000, help_text="What happened, in the customer's words or yours.")
        incident_type = serializers.ChoiceField(
            choices=IncidentType.choices,
            required=False,
            allow_blank=True,
            default="",
            help_text="Left out: inferred from the text, as for any feedback.",
        )
        channel = serializers.ChoiceField(
            choices=Channel.choices, required=False, allow_blank=True, default="", help_text="How they contacted us."
        )
        order_reference = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
        rating = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True, default=None)

    @extend_schema(
        operation_id="cases_list",
        parameters=filter_parameters(CaseFilter, CASE_FILTER_HELP),
        responses={
            200: CaseOutputSerializer(many=True),
            400: ERROR,
            401: ERROR,
            403: ERROR,
            404: OpenApiResponse(ERROR, description="No such page."),
        },
        examples=[
            OpenApiExample(
                "A page of cases",
                value=CASE_EXAMPLE,
                response_only=True,
            )
        ],
    )
    def get(self, request):
        filterset = CaseFilter(request.query_params, queryset=cases_all(), request=request)
        if not filterset.is_valid():
            raise serializers.ValidationError(filterset.errors)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(filterset.qs, request, view=self)
        return paginator.get_paginated_response(CaseOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="cases_create",
        parameters=[IDEMPOTENCY_HEADER],
        request=InputSerializer,
        responses={201: CaseOutputSerializer, 400: ERROR, 401: ERROR, 403: ERROR, 409: ERROR, 422: ERROR},
        examples=[
            OpenApiExample(
                "Log a case from a helpdesk ticket",
                value={
                    "customer_id": 7,
                    "text": "My parcel is three days late",
                    "incident_type": "late_delivery",
                    "channel": "email",
                    "order_reference": "A-1001",
                    "rating": 1,
                },
                request_only=True,
            ),
            OpenApiExample("The case, yours", value=CASE_EXAMPLE, response_only=True, status_codes=["201"]),
        ],
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        record = idempotency_begin(request, scope=self.scope, owner=f"user:{request.user.pk}")
        if record is not None and record.is_completed:
            result = record.result or {}
            if "case_id" in result:
                return replay(record, CaseOutputSerializer(_case_or_404(result["case_id"])).data)
            return replay(record, result)
        with _released_on_failure(record):
            customer = Customer.objects.filter(pk=data.pop("customer_id")).first()
            if customer is None:
                raise serializers.ValidationError({"customer_id": [_("No such customer.")]})
            case = case_log(actor=Actor.from_request(request), customer=customer, idempotency_key=record, **data)
        return Response(CaseOutputSerializer(case).data, status=status.HTTP_201_CREATED)


class TimelineLineSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    label = serializers.CharField(source="get_kind_display", help_text="The kind in the request's language.")
    summary = serializers.CharField(help_text="What the line's data says, in the request's language.")
    text = serializers.CharField(help_text="The note, apology or feedback text, as written.")
    actor = serializers.CharField(source="actor.username", allow_null=True, default=None)
    data = serializers.DictField()
    created_at = serializers.DateTimeField()


class CaseIssuanceSerializer(serializers.Serializer):
    """An appeasement given from the case (an apology is one too, with no code)."""

    id = serializers.UUIDField()
    status = serializers.CharField(source="effective_status")
    case_id = serializers.IntegerField(allow_null=True)
    customer_id = serializers.IntegerField()
    offer_id = serializers.IntegerField()
    offer = serializers.CharField(source="offer.name")
    kind = serializers.CharField(source="offer.kind")
    reason_code = serializers.CharField(source="reason_code.code")
    channel = serializers.CharField()
    face_value = serializers.SerializerMethodField()
    cost = serializers.SerializerMethodField()
    currency = serializers.CharField()
    apology_text = serializers.CharField()
    breached_limits = serializers.SerializerMethodField(
        help_text="Each limit that sent it for approval, as data, with `message` worded in the caller's language."
    )
    created_at = serializers.DateTimeField()
    issued_at = serializers.DateTimeField(allow_null=True)
    delivery = serializers.SerializerMethodField(help_text="The latest delivery of this appeasement.")

    def get_face_value(self, obj) -> str:
        return money(obj.face_value_amount, obj.currency)

    def get_breached_limits(self, obj) -> list[dict]:
        return [{**limit, "message": breach_message(limit, offer=obj.offer)} for limit in obj.breached_limits or []]

    def get_cost(self, obj) -> str:
        return money(obj.cost_amount, obj.currency)

    @extend_schema_field(
        inline_serializer(
            "CaseIssuanceDelivery",
            {
                "id": serializers.UUIDField(),
                "channel": serializers.CharField(),
                "language": serializers.CharField(),
                "status": serializers.CharField(),
                "sent_at": serializers.DateTimeField(allow_null=True),
            },
            allow_null=True,
        )
    )
    def get_delivery(self, obj) -> dict | None:
        delivery = obj.latest_delivery
        if delivery is None:
            return None
        return {
            "id": str(delivery.pk),
            "channel": delivery.channel,
            "language": delivery.language,
            "status": delivery.status,
            "sent_at": delivery.sent_at,
        }


def _share(value: float) -> str:
    return f"{value:.3f}"


RECOMMENDATION_ESTIMATE = inline_serializer(
    "RecommendationEstimate",
    {
        "solved_share": serializers.CharField(help_text="The estimated solved share, 0 to 1, three decimals."),
        "interval_low": serializers.CharField(help_text="The 95% credible interval's lower end."),
        "interval_high": serializers.CharField(help_text="Its upper end."),
        "n_segment": serializers.IntegerField(help_text="Answered appeasements of this arm in the customer's segment."),
        "n_incident": serializers.IntegerField(help_text="Answered appeasements of this arm for the incident type."),
        "basis": serializers.ChoiceField(
            choices=["segment", "incident", "prior"],
            help_text="What ranks it: the segment's answers, the incident type's, or (too few) the rules.",
        ),
    },
)


def _estimate(obj) -> dict:
    low, high = obj.interval
    return {
        "solved_share": _share(obj.solved_share),
        "interval_low": _share(low),
        "interval_high": _share(high),
        "n_segment": obj.n_segment,
        "n_incident": obj.n_incident,
        "basis": obj.basis,
    }


class RecommendationValueSerializer(serializers.Serializer):
    """What an arm is expected to be worth: the fields the case and the helpdesk share."""

    arm = serializers.CharField(help_text="`offer:<id>`, or `apology`.")
    basis = serializers.ChoiceField(choices=["segment", "incident", "prior"])
    estimate = serializers.SerializerMethodField()
    cost = serializers.SerializerMethodField(help_text="What giving it costs, in the customer's currency.")
    cost_per_recovered = serializers.SerializerMethodField(
        help_text="The cost over the solved share; null for an arm that costs nothing."
    )
    recovery_value = serializers.SerializerMethodField(help_text="What keeping this customer is worth.")
    net_value = serializers.SerializerMethodField(help_text="Solved share × recovery value − cost.")
    evidence_line = serializers.CharField(help_text="The figures in a sentence, in the caller's language.")

    @extend_schema_field(RECOMMENDATION_ESTIMATE)
    def get_estimate(self, obj) -> dict:
        return _estimate(obj)

    def get_cost(self, obj) -> str:
        return money(obj.cost, obj.currency)

    def get_cost_per_recovered(self, obj) -> str | None:
        return money(obj.cost_per_recovered, obj.currency)

    def get_recovery_value(self, obj) -> str:
        return money(obj.recovery_value, obj.currency)

    def get_net_value(self, obj) -> str:
        return money(obj.net_value, obj.currency)


class RecommendationSerializer(RecommendationValueSerializer):
    intervention = serializers.CharField()
    label = serializers.CharField()
    reason = serializers.CharField()
    offer_id = serializers.IntegerField(source="offer.pk", allow_null=True, default=None)
    offer = serializers.CharField(source="offer.name", allow_null=True, default=None)
    suggested_value = serializers.SerializerMethodField()
    currency = serializers.CharField()
    ranked_by = serializers.CharField(help_text="learned (by its estimate) or rule (too few answers)")
    solved_percent = serializers.SerializerMethodField(help_text="The estimate, rounded; null without answers.")
    sample_size = serializers.IntegerField(source="n_incident", help_text="Answers for the incident type.")

    def get_suggested_value(self, obj) -> str | None:
        return money(obj.suggested_value, obj.currency)

    def get_solved_percent(self, obj) -> int | None:
        return round(obj.solved_share * 100) if obj.n_incident else None


class CaseDetailOutputSerializer(CaseOutputSerializer):
    customer = serializers.CharField(source="customer.name", allow_null=True, default=None)
    order_reference = serializers.CharField()
    channel = serializers.CharField()
    escalated_at = serializers.DateTimeField(allow_null=True)
    resolved_by = serializers.CharField(source="resolved_by.username", allow_null=True, default=None)
    resolution_note = serializers.CharField()
    timeline = TimelineLineSerializer(many=True, help_text="Everything that happened, oldest first.")
    issuances = CaseIssuanceSerializer(source="given", many=True, help_text="The appeasements given from this case.")
    recommendations = RecommendationSerializer(
        many=True, help_text="What to offer, best first, as the case page shows them (empty once closed)."
    )


class CaseDetailApi(APIView):
    """One case as its page shows it: the case, its timeline, what was given from it
    and (while open) the recommended interventions."""

    authentication_classes = STAFF_AUTH
    permission_classes = [ScopeRequired, IsStaffMember]
    required_scope = "cases"

    @extend_schema(
        operation_id="cases_retrieve",
        parameters=[CASE_ID],
        responses={200: CaseDetailOutputSerializer, 401: ERROR, 403: ERROR, 404: NOT_FOUND},
        examples=[
            OpenApiExample(
                "Being worked, with what to offer",
                value={
                    **CASE_EXAMPLE,
                    "customer": "Lucía Pérez",
                    "order_reference": "A-1001",
                    "channel": "email",
                    "escalated_at": None,
                    "resolved_by": None,
                    "resolution_note": "",
                    "timeline": [
                        {
                            "id": 901,
                            "kind": "opened",
                            "label": "Opened",
                            "summary": "",
                            "text": "My parcel is three days late",
                            "actor": None,
                            "data": {},
                            "created_at": "2026-12-07T09:30:00Z",
                        },
                        {
                            "id": 902,
                            "kind": "claimed",
                            "label": "Claimed",
                            "summary": "",
                            "text": "",
                            "actor": "ana",
                            "data": {},
                            "created_at": "2026-12-07T09:41:00Z",
                        },
                    ],
                    "issuances": [],
                    "recommendations": [
                        {
                            "arm": "offer:7",
                            "basis": "incident",
                            "estimate": {
                                "solved_share": "0.812",
                                "interval_low": "0.741",
                                "interval_high": "0.873",
                                "n_segment": 12,
                                "n_incident": 140,
                                "basis": "incident",
                            },
                            "cost": "3.50",
                            "cost_per_recovered": "4.31",
                            "recovery_value": "100.00",
                            "net_value": "77.70",
                            "evidence_line": (
                                "5 € off: 81% solved (74–87%), n=140, cost €3.50 → €4.31 per recovered customer"
                            ),
                            "intervention": "discount",
                            "label": "Discount",
                            "reason": "Late delivery for a valued customer: a discount on the next order.",
                            "offer_id": 7,
                            "offer": "5 € off",
                            "suggested_value": "10.00",
                            "currency": "EUR",
                            "ranked_by": "learned",
                            "solved_percent": 81,
                            "sample_size": 140,
                        }
                    ],
                },
                response_only=True,
                status_codes=["200"],
            ),
            NOT_FOUND_EXAMPLE,
        ],
    )
    def get(self, request, case_id: int):
        case = _case_or_404(case_id)
        case.timeline = case_timeline(case)
        case.given = case_issuances(case)
        case.recommendations = recommend(case, user=request.user) if case.is_open else []
        return Response(CaseDetailOutputSerializer(case).data)


class CaseNextApi(APIView):
    """Claim the highest-priority unclaimed case (two reps never get the same one)."""

    authentication_classes = STAFF_AUTH
    permission_classes = [ScopeRequired, IsStaffMember]
    required_scope = "cases"

    @extend_schema(
        operation_id="cases_next",
        request=None,
        responses={
            200: CaseOutputSerializer,
            204: OpenApiResponse(description="The queue is empty."),
            401: ERROR,
            403: ERROR,
        },
        examples=[
            OpenApiExample("The top case, now yours", value=CASE_EXAMPLE, response_only=True, status_codes=["200"])
        ],
    )
    def post(self, request):
        case = case_claim_next(actor=Actor.from_request(request))
        if case is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(CaseOutputSerializer(case).data)


class CaseClaimApi(APIView):
    """Take one particular unclaimed case. Two reps at once: one gets it, the other 409."""

    authentication_classes = STAFF_AUTH
    permission_classes = [ScopeRequired, IsStaffMember]
    required_scope = "cases"

    @extend_schema(
        operation_id="cases_claim",
        parameters=[CASE_ID],
        request=None,
        responses={
            200: CaseOutputSerializer,
            401: ERROR,
            403: ERROR,
            404: NOT_FOUND,
            409: OpenApiResponse(ERROR, description="Someone has it already (`not_open`)."),
        },
        examples=[
            OpenApiExample("Yours now", value=CASE_EXAMPLE, response_only=True, status_codes=["200"]),
            NOT_FOUND_EXAMPLE,
            OpenApiExample(
                "Someone has it already",
                value={"error": "not_open", "detail": "Someone else has this case already."},
                response_only=True,
                status_codes=["409"],
            ),
        ],
    )
    def post(self, request, case_id: int):
        case = case_claim(actor=Actor.from_request(request), case_id=case_id)
        return Response(CaseOutputSerializer(case).data)


class CaseReplyApi(APIView):
    """Reply to the customer with an apology: sent through the delivery outbox, on their
    channel and in their language, as the case page's apology does (the shop's active
    Apology offer, no code), and written on the case's timeline. Its owner or a
    supervisor may, while the case is open."""

    authentication_classes = STAFF_AUTH
    permission_classes = [ScopeRequired, IsStaffMember]
    required_scope = "cases"
    scope = "cases.reply"

    @extend_schema_serializer(component_name="CaseReplyInput")
    class InputSerializer(serializers.Serializer):
        text = serializers.CharField(
            max_length=2000,
            required=False,
            allow_blank=True,
            default="",
            help_text="Your words. Left out: the template's, filled in for the customer.",
        )
        template_id = serializers.IntegerField(
            min_value=1, max_value=BIGINT_MAX, required=False, allow_null=True, help_text="An apology template."
        )
        reason_code = serializers.CharField(
            max_length=40, required=False, help_text="Left out: the first active one for the case's incident type."
        )
        channel = serializers.ChoiceField(
            choices=Channel.choices, required=False, help_text="Left out: the customer's preferred channel."
        )

    @extend_schema(
        operation_id="cases_reply",
        parameters=[CASE_ID, IDEMPOTENCY_HEADER],
        request=InputSerializer,
        responses={
            201: CaseIssuanceSerializer,
            400: ERROR,
            401: ERROR,
            403: ERROR,
            404: NOT_FOUND,
            409: OpenApiResponse(ERROR, description="The case is closed, or the shop has no Apology offer."),
            422: ERROR,
        },
        examples=[
            OpenApiExample(
                "An apology in your words",
                value={"text": "Lo sentimos mucho: su pedido sale hoy.", "channel": "email"},
                request_only=True,
            )
        ],
    )
    def post(self, request, case_id: int):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        _case_or_404(case_id)
        record = idempotency_begin(request, scope=self.scope, owner=f"user:{request.user.pk}")
        if record is not None and record.is_completed:
            return _replay_issuance(record)
        with _released_on_failure(record):
            errors, template, reason = {}, None, None
            if data.get("template_id"):
                template = ApologyTemplate.objects.filter(pk=data["template_id"], is_active=True).first()
                if template is None:
                    errors["template_id"] = [_("No such apology template.")]
            if data.get("reason_code"):
                reason = ReasonCode.objects.filter(code=data["reason_code"], is_active=True).first()
                if reason is None:
                    errors["reason_code"] = [_("No such reason code.")]
            if errors:
                raise serializers.ValidationError(errors)
            issuance = case_apologise(
                actor=Actor.from_request(request),
                case_id=case_id,
                template=template,
                text=data["text"],
                reason_code=reason,
                channel=data.get("channel"),
                idempotency_key=record,
            )
        return Response(CaseIssuanceSerializer(issuance).data, status=status.HTTP_201_CREATED)


def _replay_issuance(record) -> Response:
    result = record.result or {}
    if "issuance_id" in result:
        issuance = Issuance.objects.select_related("offer", "reason_code").get(pk=result["issuance_id"])
        return replay(record, CaseIssuanceSerializer(issuance).data)
    return replay(record, result)


class CaseIssueApi(APIView):
    """Give an appeasement from the case, as the case page's give button does: your
    limits apply (over them, per your policy, it waits for a supervisor or is refused),
    the complaint's clock started when the case opened, and the issuance is the case's."""

    authentication_classes = STAFF_AUTH
    permission_classes = [ScopeRequired, IsStaffMember]
    required_scope = "cases"
    scope = "cases.issue"

    @extend_schema_serializer(component_name="CaseIssueInput")
    class InputSerializer(serializers.Serializer):
        offer_id = serializers.IntegerField(min_value=1, max_value=BIGINT_MAX)
        reason_code = serializers.CharField(max_length=40)
        channel = serializers.ChoiceField(
            choices=Channel.choices, required=False, help_text="Left out: the customer's preferred channel."
        )
        note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
        experiment_token = serializers.CharField(
            max_length=2000,
            required=False,
            allow_blank=True,
            default="",
            help_text="The experiment's assignment: `assignment.token` of `GET /api/v1/recommendations` "
            "for the case's customer and incident type.",
        )
        override_reason = serializers.CharField(
            max_length=255,
            required=False,
            allow_blank=True,
            default="",
            help_text="Why another offer than the assigned one (required then).",
        )

    @extend_schema(
        operation_id="cases_issue",
        parameters=[CASE_ID, IDEMPOTENCY_HEADER],
        request=InputSerializer,
        responses={
            201: CaseIssuanceSerializer,
            400: ERROR,
            401: ERROR,
            403: OpenApiResponse(ERROR, description="Not your case, or over a limit your policy refuses."),
            404: NOT_FOUND,
            409: OpenApiResponse(ERROR, description="The case is closed or has no customer; no code left."),
            422: ERROR,
        },
        examples=[
            OpenApiExample(
                "Give the recommended offer",
                value={"offer_id": 3, "reason_code": "late-parcel", "channel": "email", "note": "Ticket #5521"},
                request_only=True,
            )
        ],
    )
    def post(self, request, case_id: int):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        _case_or_404(case_id)
        record = idempotency_begin(request, scope=self.scope, owner=f"user:{request.user.pk}")
        if record is not None and record.is_completed:
            return _replay_issuance(record)
        with _released_on_failure(record):
            offer = Offer.objects.filter(pk=data["offer_id"]).first()
            reason = ReasonCode.objects.filter(code=data["reason_code"], is_active=True).first()
            errors = {}
            if offer is None:
                errors["offer_id"] = [_("No such offer.")]
            if reason is None:
                errors["reason_code"] = [_("No such reason code.")]
            if errors:
                raise serializers.ValidationError(errors)
            issuance = case_issue(
                actor=Actor.from_request(request),
                case_id=case_id,
                offer=offer,
                reason_code=reason,
                channel=data.get("channel"),
                note=data["note"],
                idempotency_key=record,
                context=experiment_context(data),
            )
        return Response(CaseIssuanceSerializer(issuance).data, status=status.HTTP_201_CREATED)


class CaseResolveApi(APIView):
    authentication_classes = STAFF_AUTH
    permission_classes = [ScopeRequired, IsStaffMember]
    required_scope = "cases"

    class InputSerializer(serializers.Serializer):
        note = serializers.CharField(max_length=4000)
        intervention = serializers.ChoiceField(
            choices=Intervention.values, required=False, allow_blank=True, default=""
        )

    @extend_schema(
        operation_id="cases_resolve",
        request=inline_serializer(
            "CaseResolveInput",
            {
                "note": serializers.CharField(max_length=4000),
                "intervention": serializers.ChoiceField(choices=["", *Intervention.values], required=False),
            },
        ),
        responses={200: CaseOutputSerializer, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR, 409: ERROR},
        examples=[
            OpenApiExample(
                "Solved with a discount",
                value={"note": "Gave 10 € off; the customer is happy.", "intervention": "discount"},
                request_only=True,
            ),
            OpenApiExample(
                "Resolved: waiting for the customer",
                value={
                    **CASE_EXAMPLE,
                    "status": "resolved",
                    "first_response_at": "2026-12-07T09:45:00Z",
                    "resolved_at": "2026-12-07T09:52:00Z",
                    "intervention": "discount",
                },
                response_only=True,
                status_codes=["200"],
            ),
            NOT_FOUND_EXAMPLE,
        ],
    )
    def post(self, request, case_id: int):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        get_object_or_404(Case, pk=case_id)
        case = case_resolve(actor=Actor.from_request(request), case_id=case_id, **serializer.validated_data)
        return Response(CaseOutputSerializer(case).data)


class CaseReassignApi(APIView):
    """Hand the case to another rep or supervisor: its owner or a supervisor may, while it
    is open (as on the case page)."""

    authentication_classes = STAFF_AUTH
    permission_classes = [ScopeRequired, IsStaffMember]
    required_scope = "cases"

    @extend_schema_serializer(component_name="CaseReassignInput")
    class InputSerializer(serializers.Serializer):
        assigned_to = serializers.CharField(max_length=150, help_text="The username of an active rep or supervisor.")

    @extend_schema(
        operation_id="cases_reassign",
        parameters=[CASE_ID],
        request=InputSerializer,
        responses={200: CaseOutputSerializer, 400: ERROR, 401: ERROR, 403: ERROR, 404: NOT_FOUND, 409: ERROR},
        examples=[OpenApiExample("To a colleague", value={"assigned_to": "bruno"}, request_only=True)],
    )
    def post(self, request, case_id: int):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        _case_or_404(case_id)
        to_user_id = staff_id_by_username(serializer.validated_data["assigned_to"])
        case = case_reassign(actor=Actor.from_request(request), case_id=case_id, to_user_id=to_user_id or 0)
        return Response(CaseOutputSerializer(case).data)


class CaseEscalateApi(APIView):
    """Ask the supervisors for help: they get an email and the case is marked escalated.
    Its owner or a supervisor may, while the case is open (as on the case page)."""

    authentication_classes = STAFF_AUTH
    permission_classes = [ScopeRequired, IsStaffMember]
    required_scope = "cases"

    @extend_schema_serializer(component_name="CaseEscalateInput")
    class InputSerializer(serializers.Serializer):
        text = serializers.CharField(max_length=4000, help_text="Why you escalate.")

    @extend_schema(
        operation_id="cases_escalate",
        parameters=[CASE_ID],
        request=InputSerializer,
        responses={200: CaseOutputSerializer, 400: ERROR, 401: ERROR, 403: ERROR, 404: NOT_FOUND, 409: ERROR},
        examples=[
            OpenApiExample(
                "Ask for help", value={"text": "Third late parcel this month; wants a refund."}, request_only=True
            )
        ],
    )
    def post(self, request, case_id: int):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        _case_or_404(case_id)
        case = case_escalate(actor=Actor.from_request(request), case_id=case_id, **serializer.validated_data)
        return Response(CaseOutputSerializer(case).data)


# --- Recommendations for a helpdesk's ticket ---------------------------------------------


class RecommendedOfferSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()
    face_value = serializers.SerializerMethodField()
    cost = serializers.SerializerMethodField()
    currency = serializers.CharField()

    def get_face_value(self, obj) -> str:
        return money(obj.value_amount, obj.currency)

    def get_cost(self, obj) -> str:
        return money(obj.cost_amount, obj.currency)


class RecommendationOutputSerializer(RecommendationValueSerializer):
    rank = serializers.SerializerMethodField(help_text="1 is the best, across pages.")
    intervention = serializers.CharField()
    intervention_label = serializers.CharField(source="label", help_text="In the caller's language.")
    reason = serializers.CharField(help_text="Why: the rule's reason, or that its estimate ranks it.")
    ranked_by = serializers.ChoiceField(
        choices=["rule", "learned"],
        help_text="`learned`: its estimate ranks it (enough answered appeasements); `rule`: the rules do.",
    )
    rule_id = serializers.IntegerField(allow_null=True)
    offer = RecommendedOfferSerializer(
        allow_null=True,
        help_text="The offer to give: one the caller may give, in the customer's currency (or soft). "
        "Null for the apology when no apology offer may be given.",
    )
    suggested_value = serializers.SerializerMethodField(help_text="The rule's size; null for soft or without a rule.")
    currency = serializers.CharField(help_text="The customer's: every amount here is in it.")

    def get_rank(self, obj) -> int:
        return self.context["ranks"][id(obj)]

    def get_suggested_value(self, obj) -> str | None:
        return money(obj.suggested_value, obj.currency)


class AssignmentSerializer(serializers.Serializer):
    """An experiment's assignment for this customer's incident: give `offer_id` (the
    arm), passing `token` as `experiment_token`; another offer needs an `override_reason`."""

    token = serializers.CharField()
    arm = serializers.CharField(help_text="`offer:<id>`, or `apology` (the apology-only holdout).")
    offer_id = serializers.IntegerField(source="offer.pk")
    experiment_id = serializers.IntegerField(source="experiment.pk")
    experiment_name = serializers.CharField(source="experiment.name")


class RecommendationPagination(Pagination):
    """The page of recommendations, and beside it the experiment's assignment (or null)."""

    def get_paginated_response_schema(self, schema):
        schema = super().get_paginated_response_schema(schema)
        schema["properties"]["assignment"] = {
            "type": "object",
            "nullable": True,
            "properties": {
                "token": {
                    "type": "string",
                    "example": ".eJyrVkpUslJQ0lFQSk7NS85ITElRslIqzs9JzEtXslIqyywpSi1WsgIA:1v2xYz:abc",
                },
                "arm": {"type": "string", "example": "offer:7"},
                "offer_id": {"type": "integer", "example": 7},
                "experiment_id": {"type": "integer", "example": 2},
                "experiment_name": {"type": "string", "example": "Late deliveries: 10 € off or an apology"},
            },
            "required": ["token", "arm", "offer_id", "experiment_id", "experiment_name"],
            "description": "This customer's incident is in a running experiment: the arm to give, "
            "and the token to give it with. Null otherwise (no customer, no experiment, not drawn).",
        }
        return schema


class RecommendationListApi(APIView):
    """What to give for a complaint, best first: the ranking the case page and the
    customer panel show (each offer the caller may give this customer and the apology,
    by expected net value once there are answers, by the supervisors' rules before),
    with the estimate, the cost and the evidence line, for a ticket that is not a case here."""

    authentication_classes = STAFF_AUTH
    permission_classes = [ScopeRequired, IsStaffMember]
    required_scope = "read"
    pagination_class = RecommendationPagination

    class QuerySerializer(serializers.Serializer):
        customer_id = serializers.IntegerField(required=False, min_value=1, max_value=BIGINT_MAX)
        incident_type = serializers.ChoiceField(choices=IncidentType.choices)
        order_reference = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")

    @extend_schema(
        operation_id="recommendations_list",
        parameters=[QuerySerializer],
        responses={200: RecommendationOutputSerializer(many=True), 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR},
        examples=[
            OpenApiExample(
                "A gold customer's late delivery",
                description="`GET /api/v1/recommendations?customer_id=42&incident_type=late_delivery`",
                value={
                    "arm": "offer:7",
                    "basis": "segment",
                    "estimate": {
                        "solved_share": "0.812",
                        "interval_low": "0.741",
                        "interval_high": "0.873",
                        "n_segment": 64,
                        "n_incident": 212,
                        "basis": "segment",
                    },
                    "cost": "3.50",
                    "cost_per_recovered": "4.31",
                    "recovery_value": "100.00",
                    "net_value": "77.70",
                    "evidence_line": "5 € off: 81% solved (74–87%), n=212, cost €3.50 → €4.31 per recovered customer",
                    "rank": 1,
                    "intervention": "discount",
                    "intervention_label": "Discount",
                    "reason": "Late delivery for a valued customer: a discount on the next order.",
                    "ranked_by": "learned",
                    "rule_id": 3,
                    "offer": {
                        "id": 7,
                        "name": "5 € off",
                        "kind": "amount_off",
                        "face_value": "5.00",
                        "cost": "3.50",
                        "currency": "EUR",
                    },
                    "suggested_value": "11.25",
                    "currency": "EUR",
                },
                response_only=True,
            )
        ],
    )
    def get(self, request):
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        customer = None
        if "customer_id" in data:
            customer = Customer.objects.filter(pk=data["customer_id"]).first()
            if customer is None:
                raise serializers.ValidationError({"customer_id": [_("No such customer.")]})
        ranked = recommend_for(
            customer=customer,
            incident_type=data["incident_type"],
            order_reference=data["order_reference"],
            user=request.user,
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(ranked, request, view=self)
        ranks = {id(item): rank for rank, item in enumerate(ranked, start=1)}
        context = {"ranks": ranks}
        response = paginator.get_paginated_response(
            RecommendationOutputSerializer(page, many=True, context=context).data
        )
        assignment = experiment_assign(customer=customer, incident_type=data["incident_type"], user=request.user)
        response.data["assignment"] = AssignmentSerializer(assignment).data if assignment is not None else None
        return response
