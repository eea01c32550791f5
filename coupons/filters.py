"""Query filters of the coupons API lists."""

import django_filters

from appease.core.filters import UTCIsoDateTimeFilter
from coupons.models import Redemption


class RedemptionFilter(django_filters.FilterSet):
    """A merchant's reconciliation: redemptions of a period, or of one order."""

    redeemed_after = UTCIsoDateTimeFilter(field_name="redeemed_at", lookup_expr="gte")
    redeemed_before = UTCIsoDateTimeFilter(field_name="redeemed_at", lookup_expr="lt")
    order_id = django_filters.CharFilter(field_name="order_id", max_length=100)
    status = django_filters.ChoiceFilter(choices=Redemption.Status.choices)

    class Meta:
        model = Redemption
        fields = []
