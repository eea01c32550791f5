"""The filters every report page shares (django-filter): a date range, team, rep,
reason code, incident type, offer, channel, and the currency money is shown in.

Dates are whole days in the server's time zone; `date_to` is inclusive.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

import django_filters
from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from appease.models import Channel, IncidentType, Issuance, ReasonCode, Team
from appease.roles import CSR, SUPERVISOR
from coupons.models import Offer
from feedback.models import Case

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
    team = django_filters.ModelChoiceFilter(
        label=_("Team"), queryset=Team.objects.all(), field_name="csr__profile__team"
    )
    rep = django_filters.ModelChoiceFilter(label=_("Rep"), queryset=_staff(), field_name="csr")
    reason_code = django_filters.ModelChoiceFilter(label=_("Reason"), queryset=ReasonCode.objects.all())
    incident_type = django_filters.ChoiceFilter(
        label=_("Incident type"), field_name="reason_code__incident_type", choices=IncidentType.choices
    )
    offer = django_filters.ModelChoiceFilter(label=_("Offer"), queryset=Offer.objects.all())
    channel = django_filters.ChoiceFilter(label=_("Channel"), choices=Channel.choices)
    customer = django_filters.NumberFilter(label=_("Customer"), field_name="customer_id", widget=forms.HiddenInput)
    currency = django_filters.ChoiceFilter(
        label=_("Currency"), method="filter_nothing", empty_label=None, choices=lambda: currency_choices()
    )

    class Meta:
        model = Issuance
        fields = []

    def __init__(self, data=None, *args, **kwargs):
        data = data.copy() if data is not None else {}
        data.setdefault("currency", settings.DEFAULT_CURRENCY)
        super().__init__(data, *args, **kwargs)
        self.form.fields["rep"].queryset = _staff()

    def filter_nothing(self, queryset, name, value):
        return queryset  # applied through `period` and `currency`, per query

    @property
    def qs(self):
        since, until = self.period
        return super().qs.filter(created_at__gte=since, created_at__lt=until)

    @property
    def period(self) -> tuple[datetime, datetime]:
        data = self.form.cleaned_data if self.is_bound and self.is_valid() else {}
        today = timezone.localdate()
        date_to = data.get("date_to") or today
        date_from = data.get("date_from") or date_to - timedelta(days=DEFAULT_DAYS - 1)
        zone = timezone.get_current_timezone()
        return (
            datetime.combine(date_from, time.min, tzinfo=zone),
            datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=zone),
        )

    @property
    def selected_currency(self) -> str:
        data = self.form.cleaned_data if self.is_bound and self.is_valid() else {}
        return data.get("currency") or settings.DEFAULT_CURRENCY

    def cases(self):
        """The cases of the same period, team, rep, incident type and channel."""
        since, until = self.period
        cases = Case.objects.filter(created_at__gte=since, created_at__lt=until)
        data = self.form.cleaned_data if self.is_valid() else {}
        if data.get("team"):
            cases = cases.filter(assigned_to__profile__team=data["team"])
        if data.get("rep"):
            cases = cases.filter(assigned_to=data["rep"])
        if data.get("incident_type"):
            cases = cases.filter(incident_type=data["incident_type"])
        if data.get("channel"):
            cases = cases.filter(channel=data["channel"])
        return cases

    def query_string(self, **override) -> str:
        """The current filters as a query string, with some replaced (for drill-downs)."""
        from urllib.parse import urlencode

        params = {
            key: value for key, value in (self.data or {}).items() if value not in ("", None) and key not in PAGING
        }
        params.update({key: value for key, value in override.items() if value is not None})
        return urlencode(params)


def currency_choices() -> list[tuple[str, str]]:
    used = set(Offer.objects.values_list("currency", flat=True).distinct())
    used.add(settings.DEFAULT_CURRENCY)
    return [(code, code) for code in sorted(used)]
