"""The feedback API: intake from the widget and the shop, events from the merchant's
systems, and the case queue for reps and API clients."""

from __future__ import annotations

import hashlib
import re

from django.conf import settings
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from phonenumber_field.serializerfields import PhoneNumberField
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from appease.core.api import ERROR, STAFF_AUTH, Pagination
from appease.core.context import Actor
from appease.core.permissions import IsStaffMember
from appease.core.quota import ApiQuotaThrottle
from appease.core.ratelimit import FailureLimiter
from appease.core.scopes import ScopeRequired
from appease.delivery.models import Channel
from appease.issuance.models import IncidentType
from appease.issuance.selectors import staff_languages
from coupons.auth import IsMerchant, MerchantApiKeyAuthentication
from feedback.models import Case, Feedback, FeedbackSite, Intervention, Priority
from feedback.selectors import cases_queue, origin_allowed_by_a_site, site_allows_origin
from feedback.services.automation import event_receive
from feedback.services.cases import case_claim_next, case_resolve
from feedback.services.intake import CustomerRef, feedback_submit


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
    """An event from the merchant's systems (`delivery_delayed`, `flight_delayed`, …).

    The same `event_id` twice has no second effect: the answer is the first event's.
    Matching automatic rules give appeasements to the customers the event names.
    """

    authentication_classes = [MerchantApiKeyAuthentication]
    permission_classes = [ScopeRequired, IsMerchant]
    required_scope = "events"

    @extend_schema_serializer(component_name="EventInput")
    class InputSerializer(serializers.Serializer):
        event_id = serializers.CharField(max_length=100)
        event_type = serializers.RegexField(r"^[a-z][a-z0-9_]*$", max_length=50)
        occurred_at = serializers.DateTimeField(required=False, allow_null=True)
        data = serializers.DictField(
            help_text="The event's fields (e.g. delay_minutes, order_reference) and `customer` "
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


CASE_LIST_STATUSES = ["open", "active", "mine", "closed", "all"]


def _languages(choice: str, user) -> list[str] | None:
    if choice == "mine":
        return staff_languages(user) or None
    return [choice] if choice else None


class CaseListApi(APIView):
    """The case queue, highest priority first."""

    authentication_classes = STAFF_AUTH
    permission_classes = [ScopeRequired, IsStaffMember]
    required_scope = "cases"
    pagination_class = Pagination  # the answer is paged: the schema says so too

    class FilterSerializer(serializers.Serializer):
        """The query string: an unknown value is a 400, not silently the default queue."""

        status = serializers.ChoiceField(choices=CASE_LIST_STATUSES, required=False, allow_blank=True)
        priority = serializers.ChoiceField(choices=Priority.values, required=False, allow_blank=True)
        incident_type = serializers.ChoiceField(choices=IncidentType.values, required=False, allow_blank=True)
        language = serializers.ChoiceField(
            choices=["mine", *(code for code, _name in settings.LANGUAGES)], required=False, allow_blank=True
        )

    @extend_schema(
        operation_id="cases_list",
        parameters=[
            OpenApiParameter(
                "status",
                str,
                enum=["", *CASE_LIST_STATUSES],
                description="open (unclaimed, the default), active (open or being worked), mine (being worked "
                "by you), closed, all",
            ),
            OpenApiParameter("priority", str, enum=["", *Priority.values]),
            OpenApiParameter("incident_type", str, enum=["", *IncidentType.values]),
            OpenApiParameter(
                "language",
                str,
                enum=["", "mine", *(code for code, _name in settings.LANGUAGES)],
                description="a case language, or mine (the languages on your staff profile)",
            ),
        ],
        responses={
            200: CaseOutputSerializer(many=True),
            400: ERROR,
            401: ERROR,
            403: ERROR,
            404: OpenApiResponse(ERROR, description="No such page."),
        },
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        queryset = cases_queue(
            status=filters.validated_data.get("status") or "open",
            priority=filters.validated_data.get("priority") or "",
            incident_type=filters.validated_data.get("incident_type") or "",
            assigned_to=request.user,
            languages=_languages(filters.validated_data.get("language") or "", request.user),
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(CaseOutputSerializer(page, many=True).data)


class CaseNextApi(APIView):
    """Claim the highest-priority unclaimed case (two reps never get the same one)."""

    authentication_classes = STAFF_AUTH
    permission_classes = [ScopeRequired, IsStaffMember]
    required_scope = "cases"

    @extend_schema(
        operation_id="cases_next",
        request=None,
        responses={200: CaseOutputSerializer, 204: None, 401: ERROR, 403: ERROR},
    )
    def post(self, request):
        case = case_claim_next(actor=Actor.from_request(request))
        if case is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(CaseOutputSerializer(case).data)


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
    )
    def post(self, request, case_id: int):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        get_object_or_404(Case, pk=case_id)
        case = case_resolve(actor=Actor.from_request(request), case_id=case_id, **serializer.validated_data)
        return Response(CaseOutputSerializer(case).data)
