"""The form supervisors change the organisation's recovery assumptions with, on the
return-on-appeasement page (saved by `recovery_settings_update`, never in the address)."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from reporting.filters import currency_choices


class RecoverySettingsForm(forms.Form):
    margin_percent = forms.DecimalField(
        label=_("Margin (%)"),
        min_value=0,
        max_value=100,
        max_digits=5,
        decimal_places=2,
        help_text=_("The share of an order's value the company keeps."),
    )
    horizon_days = forms.IntegerField(
        label=_("Horizon (days)"),
        min_value=1,
        max_value=3650,
        help_text=_("How long a kept customer's orders are counted for."),
    )
    currency = forms.ChoiceField(label=_("Currency of the order value"), choices=())
    order_value = forms.DecimalField(
        label=_("Average order value"),
        required=False,
        min_value=Decimal("0.01"),
        max_digits=18,
        decimal_places=4,
        help_text=_("Leave empty to use the value measured from the orders."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["currency"].choices = currency_choices()
