"""The filters every report page shares (django-filter): a date range, team, rep,
reason code, incident type, offer, channel, and the currency money is shown in.

Dates are whole days in REPORTING_TIME_ZONE (the shop's days, whoever reads them);
`date_to` is inclusive. `dimensions()` hands the chosen filters to reporting.facts,
which reads each figure from a rollup when one holds them and from the live rows
otherwise.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import django_filters
from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from appease.core.roles import CSR, SUPERVISOR
from appease.delivery.selectors import Channel
from appease.issuance.selectors import IncidentType, issuances_for_reports, reason_codes, teams
from coupons.selectors import offer_currencies, offers
from reporting.facts import Facts, Family, day_bounds, zone

DEFAULT_DAYS = 90
PAGING = ("page", "export")  # never carried into the links a page builds


def _staff():
    return get_user_model().objects.filter(groups__name__in=[CSR, SUPERVISOR]).distinct().order_by("username")


class ReportFilter(django_filters.FilterSet):
    """Filters the issuances behind a report. `period` gives the aware [since, until)."""

    date_from = django_filters.DateFilter(
        label=_("From"), method="filter_nothing", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = django_filters.DateFilter(
        label=_("To"), method="filter_nothing", widget=forms.DateInput(attrs={"type": "date"})
    )
    team = django_filters.ModelChoiceFilter(label=_("Team"), queryset=teams(), field_name="csr__profile__team")
    rep = django_filters.ModelChoiceFilter(label=_("Rep"), queryset=_staff(), field_name="csr")
    reason_code = django_filters.ModelChoiceFilter(label=_("Reason"), queryset=reason_codes())
    incident_type = django_filters.ChoiceFilter(
        label=_("Incident type"), field_name="reason_code__incident_type", choices=IncidentType.choices
    )
    offer = django_filters.ModelChoiceFilter(label=_("Offer"), queryset=offers())
    channel = django_filters.ChoiceFilter(label=_("Channel"), choices=Channel.choices)
    customer = django_filters.NumberFilter(label=_("Customer"), field_name="customer_id", widget=forms.HiddenInput)
    currency = django_filters.ChoiceFilter(
        label=_("Currency"), method="filter_nothing", empty_label=None, choices=lambda: currency_choices()
    )

    DIMENSIONS = ("team", "rep", "reason_code", "incident_type", "offer", "channel", "customer")

    def __init__(self, data=None, queryset=None, *, rollups: bool = True, **kwargs):
        # rollups=False reads every figure from the live rows (the tests compare both).
        self.rollups = rollups
        self.names: dict[str, dict] = {}  # labels of dimension keys, read once (selectors.labels)
        data = data.copy() if data is not None else {}
        data.setdefault("currency", settings.DEFAULT_CURRENCY)
        # The issuances come from their own app's selectors (no Meta.model here).
        super().__init__(data, issuances_for_reports() if queryset is None else queryset, **kwargs)
        self.form.fields["rep"].queryset = _staff()

    def filter_nothing(self, queryset, name, value):
        return queryset  # applied through `period` and `currency`, per query

    @property
    def qs(self):
        """The live issuances (the list page, its export, the customers' anomalies)."""
        since, until = self.period
        return super().qs.filter(created_at__gte=since, created_at__lt=until)

    @property
    def dates(self) -> tuple[date, date]:
        """The first and last day of the period (inclusive), in the report zone."""
        data = self.form.cleaned_data if self.is_bound and self.is_valid() else {}
        today = timezone.now().astimezone(zone()).date()
        date_to = data.get("date_to") or today
        date_from = data.get("date_from") or date_to - timedelta(days=DEFAULT_DAYS - 1)
        return date_from, date_to

    @property
    def period(self) -> tuple[datetime, datetime]:
        """The aware [since, until) of the period."""
        return day_bounds(*self.dates)

    def dimensions(self) -> dict:
        """The dimension filters chosen (team, rep, reason…), by name."""
        data = self.form.cleaned_data if self.is_bound and self.is_valid() else {}
        return {name: data[name] for name in self.DIMENSIONS if data.get(name) not in (None, "")}

    @property
    def selected_currency(self) -> str:
        data = self.form.cleaned_data if self.is_bound and self.is_valid() else {}
        return data.get("currency") or settings.DEFAULT_CURRENCY

    def facts(self, family: Family, **options) -> Facts:
        """The rows of `family` to aggregate under these filters (reporting.facts)."""
        return family.facts(self, **options)

    def query_string(self, **override) -> str:
        """The current filters as a query string, with some replaced (for drill-downs)."""
        from urllib.parse import urlencode

        params = {
            key: value for key, value in (self.data or {}).items() if value not in ("", None) and key not in PAGING
        }
        params.update({key: value for key, value in override.items() if value is not None})
        return urlencode(params)


def currency_choices() -> list[tuple[str, str]]:
    used = offer_currencies()
    used.add(settings.DEFAULT_CURRENCY)
    return [(code, code) for code in sorted(used)]
