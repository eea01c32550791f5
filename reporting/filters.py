"""The filters every report page shares (django-filter): a date range, team, rep,
reason code, incident type, offer, channel, and the currency money is shown in.

Dates are whole days in REPORTING_TIME_ZONE (the shop's days, whoever reads them);
`date_to` is inclusive. `dimensions()` hands the chosen filters to reporting.facts,
which reads each figure from a rollup when one holds them and from the live rows
otherwise.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from urllib.parse import urlencode

import django_filters
from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from appease.core.roles import CSR, SUPERVISOR
from appease.delivery.selectors import Channel
from appease.issuance.selectors import IncidentType, issuances_for_reports, reason_codes, teams
from coupons.selectors import offer_currencies, offers
from feedback.selectors import OutcomePath, OutcomeSegment, appeasement_outcomes, outcome_tier_choices
from reporting.facts import GIVEN, Facts, Family, day_bounds, zone

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
        params = {
            key: value for key, value in (self.data or {}).items() if value not in ("", None) and key not in PAGING
        }
        params.update({key: value for key, value in override.items() if value is not None})
        return urlencode(params)


def currency_choices() -> list[tuple[str, str]]:
    used = offer_currencies()
    used.add(settings.DEFAULT_CURRENCY)
    return [(code, code) for code in sorted(used)]


class RecoveryFilter(django_filters.FilterSet):
    """Filters the appeasements behind the recovery pages (feedback's AppeasementOutcome,
    one row per thing given, whatever the path): the period they were given in, the
    incident type, the customer's segment *when it was given*, the path, the currency
    (empty: every currency, each in rows of its own) and randomised appeasements only.

    The page's figures are grouped by currency, so `currency` narrows and never mixes.
    """

    date_from = django_filters.DateFilter(
        label=_("From"), method="filter_nothing", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = django_filters.DateFilter(
        label=_("To"), method="filter_nothing", widget=forms.DateInput(attrs={"type": "date"})
    )
    incident_type = django_filters.ChoiceFilter(label=_("Incident type"), choices=IncidentType.choices)
    tier = django_filters.ChoiceFilter(label=_("Tier"), choices=lambda: outcome_tier_choices())
    value_band = django_filters.ChoiceFilter(label=_("Value band"), choices=OutcomeSegment.Value.choices)
    repeat_band = django_filters.ChoiceFilter(label=_("Repeat band"), choices=OutcomeSegment.Repeat.choices)
    prior = django_filters.ChoiceFilter(label=_("Earlier appeasements"), choices=OutcomeSegment.Prior.choices)
    path = django_filters.ChoiceFilter(label=_("Given from"), choices=OutcomePath.choices)
    currency = django_filters.ChoiceFilter(
        label=_("Currency"), empty_label=_("Every currency"), choices=lambda: currency_choices()
    )
    randomised = django_filters.BooleanFilter(
        label=_("Randomised only"),
        method="filter_randomised",
        widget=forms.CheckboxInput,
        help_text=_("Only appeasements an experiment assigned, given as assigned."),
    )

    def __init__(self, data=None, queryset=None, **kwargs):
        data = data.copy() if data is not None else {}
        super().__init__(data, appeasement_outcomes() if queryset is None else queryset, **kwargs)

    def filter_nothing(self, queryset, name, value):
        return queryset  # applied through `period`

    def filter_randomised(self, queryset, name, value):
        if not value:
            return queryset
        return queryset.filter(experiment__isnull=False, arm=models.F("assigned_arm"))

    @property
    def qs(self):
        """The appeasements given in the period under the filters: only what the customer
        got (an apology sent from a case, or an issuance given; not one waiting for
        approval, rejected or voided)."""
        since, until = self.period
        return (
            super()
            .qs.filter(given_at__gte=since, given_at__lt=until)
            .filter(models.Q(issuance__isnull=True) | models.Q(issuance__status__in=GIVEN))
        )

    @property
    def dates(self) -> tuple[date, date]:
        data = self.form.cleaned_data if self.is_bound and self.is_valid() else {}
        today = timezone.now().astimezone(zone()).date()
        date_to = data.get("date_to") or today
        date_from = data.get("date_from") or date_to - timedelta(days=DEFAULT_DAYS - 1)
        return date_from, date_to

    @property
    def period(self) -> tuple[datetime, datetime]:
        return day_bounds(*self.dates)

    @property
    def selected_currency(self) -> str:
        """The currency chosen, or "" for every currency (each in its own rows)."""
        data = self.form.cleaned_data if self.is_bound and self.is_valid() else {}
        return data.get("currency") or ""

    def query_string(self, **override) -> str:
        params = {
            key: value for key, value in (self.data or {}).items() if value not in ("", None) and key not in PAGING
        }
        params.update({key: value for key, value in override.items() if value is not None})
        return urlencode(params)


class RecoveryListFilter(RecoveryFilter):
    """The recovery table's drill-down: one cell's appeasements (its arm, and which of
    them: answered, solved, redeemed, ordered again)."""

    OUTCOMES = {
        "answered": models.Q(answered_at__isnull=False, solved__isnull=False),
        "solved": models.Q(answered_at__isnull=False, solved=True),
        "redeemed": models.Q(redeemed_at__isnull=False),
        "repurchased": models.Q(repurchased_at__isnull=False),
    }

    arm = django_filters.CharFilter(label=_("Arm"), widget=forms.HiddenInput)
    outcome = django_filters.ChoiceFilter(
        label=_("Outcome"),
        method="filter_outcome",
        choices=[
            ("answered", _("Answered")),
            ("solved", _("Solved")),
            ("redeemed", _("Redeemed")),
            ("repurchased", _("Ordered again")),
        ],
    )

    def filter_outcome(self, queryset, name, value):
        return queryset.filter(self.OUTCOMES[value]) if value in self.OUTCOMES else queryset
