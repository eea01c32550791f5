import django_filters
from django import forms

from appease.core.filters import UTCIsoDateTimeFilter
from appease.delivery.models import Channel
from appease.issuance.models import IncidentType, Issuance

BIGINT_MAX = 2**63 - 1


class IdFilter(django_filters.NumberFilter):
    """A row id: a whole number the database's bigint can hold (a larger one was a 500,
    found by the fuzzer: the number reached the SQL and overflowed)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", BIGINT_MAX)
        super().__init__(*args, **kwargs)


class IssuanceFilter(django_filters.FilterSet):
    csr = django_filters.CharFilter(field_name="csr__username")
    customer = IdFilter(field_name="customer_id")
    reason_code = django_filters.CharFilter(field_name="reason_code__code")
    incident_type = django_filters.ChoiceFilter(field_name="reason_code__incident_type", choices=IncidentType.choices)
    offer = IdFilter(field_name="offer_id")
    status = django_filters.ChoiceFilter(
        field_name="effective_status_db", choices=[*Issuance.Status.choices, ("redeemed", "Redeemed")]
    )
    channel = django_filters.ChoiceFilter(choices=Channel.choices)
    created_after = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Issuance
        fields = []
