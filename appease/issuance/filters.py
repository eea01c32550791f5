import django_filters
from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from phonenumber_field.formfields import PhoneNumberField

from appease.core.filters import UTCIsoDateTimeFilter
from appease.delivery.models import Channel
from appease.issuance.models import Customer, IncidentType, Issuance
from coupons.models import Offer

BIGINT_MAX = 2**63 - 1


class IdFilter(django_filters.NumberFilter):
    """A row id: a whole number the database's bigint can hold (a larger one was a 500,
    found by the fuzzer: the number reached the SQL and overflowed)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", BIGINT_MAX)
        super().__init__(*args, **kwargs)


def filter_parameters(filterset_class, descriptions: dict[str, str] | None = None) -> list[OpenApiParameter]:
    """Query parameters as the filter set reads them: numbers, ISO date-times and choices
    typed, so the schema accepts exactly what the filters accept. `descriptions` words
    a parameter better than "Filter by <name>"."""
    descriptions = descriptions or {}
    parameters = []
    for name, spec in filterset_class.base_filters.items():
        kind, enum = OpenApiTypes.STR, None
        if isinstance(spec, IdFilter):
            kind = {"type": "integer", "minimum": 1, "maximum": BIGINT_MAX}
        elif isinstance(spec, django_filters.NumberFilter):
            kind = OpenApiTypes.NUMBER
        elif isinstance(spec, django_filters.IsoDateTimeFilter):
            kind = OpenApiTypes.DATETIME
        elif isinstance(spec, django_filters.ChoiceFilter):
            enum = ["", *(value for value, _label in spec.extra["choices"])]  # empty: no filter
        description = descriptions.get(name, f"Filter by {name}")
        parameters.append(OpenApiParameter(name, kind, enum=enum, description=description))
    return parameters


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


class UpperCharFilter(django_filters.CharFilter):
    """A code such as a currency, matched as stored (upper case) whatever case it is given in."""

    def filter(self, qs, value):
        return super().filter(qs, value.strip().upper() if value else value)


class PhoneFilter(django_filters.CharFilter):
    """A phone number in international form, normalised to E.164 as the model stores it
    (`+34 612-345-678` finds `+34612345678`); one that is not a number is the field's 400."""

    field_class = PhoneNumberField

    def filter(self, qs, value):
        return super().filter(qs, value.as_e164 if value else value)


class OfferFilter(django_filters.FilterSet):
    currency = UpperCharFilter(field_name="currency", max_length=3)
    kind = django_filters.ChoiceFilter(choices=Offer.Kind.choices)

    class Meta:
        model = Offer
        fields = []


class CustomerFilter(django_filters.FilterSet):
    """Exact look-ups a helpdesk has at hand: each given one narrows the answer."""

    external_id = django_filters.CharFilter(max_length=100)
    email = django_filters.CharFilter(lookup_expr="iexact", max_length=254)
    phone = PhoneFilter(field_name="phone", max_length=40)
    order_reference = django_filters.CharFilter(field_name="orders__reference", max_length=100, distinct=True)

    class Meta:
        model = Customer
        fields = []
