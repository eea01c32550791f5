"""The case queue's filters for the API (`GET /api/v1/cases`)."""

from __future__ import annotations

import django_filters
from django.conf import settings

from appease.issuance.filters import IdFilter, UTCIsoDateTimeFilter
from appease.issuance.models import IncidentType
from appease.issuance.selectors import staff_languages
from feedback.models import Case, Priority
from feedback.selectors import CASE_VIEWS, cases_in_view

LANGUAGE_CHOICES = [("mine", "mine"), *settings.LANGUAGES]


class CaseFilter(django_filters.FilterSet):
    """`status` is one of the queue's views (open, active, mine, closed, all) or a case
    status (claimed, resolved, confirmed, unconfirmed); open when left out, as the web
    queue opens on the cases waiting for someone. Every other filter narrows it."""

    status = django_filters.ChoiceFilter(
        choices=[(view, view) for view in CASE_VIEWS]
        + [(value, label) for value, label in Case.Status.choices if value not in CASE_VIEWS],
        method="by_status",
    )
    priority = django_filters.ChoiceFilter(choices=Priority.choices)
    incident_type = django_filters.ChoiceFilter(choices=IncidentType.choices)
    assignee = django_filters.CharFilter(field_name="assigned_to__username", max_length=150)
    customer = IdFilter(field_name="customer_id")
    language = django_filters.ChoiceFilter(choices=LANGUAGE_CHOICES, method="by_language")
    created_after = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Case
        fields = []

    def by_status(self, queryset, name, value):
        if value in CASE_VIEWS:
            return cases_in_view(queryset, view=value, user=self.request.user)
        return queryset.filter(status=value)

    def by_language(self, queryset, name, value):
        languages = staff_languages(self.request.user) if value == "mine" else [value]
        return queryset.filter(language__in=languages) if languages else queryset

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        if not self.form.cleaned_data.get("status"):
            queryset = cases_in_view(queryset, view="open", user=self.request.user)
        return queryset
