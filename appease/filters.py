import django_filters

from appease.models import Channel, IncidentType, Issuance


class IssuanceFilter(django_filters.FilterSet):
    csr = django_filters.CharFilter(field_name="csr__username")
    customer = django_filters.NumberFilter(field_name="customer_id")
    reason_code = django_filters.CharFilter(field_name="reason_code__code")
    incident_type = django_filters.ChoiceFilter(field_name="reason_code__incident_type", choices=IncidentType.choices)
    offer = django_filters.NumberFilter(field_name="offer_id")
    status = django_filters.ChoiceFilter(
        field_name="effective_status_db", choices=[*Issuance.Status.choices, ("redeemed", "Redeemed")]
    )
    channel = django_filters.ChoiceFilter(choices=Channel.choices)
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Issuance
        fields = []
