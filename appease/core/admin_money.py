"""Money in the admin as the reader's language writes it, with its currency.

`MoneyAdminMixin` shows every `<name>_amount` DecimalField of the model, wherever the
admin shows it without a form input (list columns, read-only fields, view-only pages),
through `appease.core.money.format_money`: "1.234,56 €" for a Spanish supervisor, never a
bare "1234.5600" beside a "EUR" column. Form inputs stay plain numbers.
"""

from __future__ import annotations

from django.db import models

from appease.core.money import format_money

SUFFIX = "_money"


class MoneyAdminMixin:
    # Where the currency of a row is: a field name, or a path like "offer__currency".
    money_currency = "currency"

    def __init__(self, model, admin_site):
        super().__init__(model, admin_site)
        self.money_fields = [
            field
            for field in model._meta.concrete_fields
            if isinstance(field, models.DecimalField) and (field.name == "amount" or field.name.endswith("_amount"))
        ]
        for field in self.money_fields:
            setattr(self, field.name + SUFFIX, self._column(field))

    def currency_of(self, obj) -> str:
        value = obj
        for part in self.money_currency.split("__"):
            value = getattr(value, part, None)  # None on an add form: no offer yet
        return str(value or "")

    def _column(self, field):
        def column(obj):
            amount, currency = getattr(obj, field.name), self.currency_of(obj)
            if amount is None or not currency:
                return self.get_empty_value_display()
            return format_money(amount, currency)

        column.short_description = field.verbose_name
        column.admin_order_field = field.name
        column.__name__ = field.name + SUFFIX
        return column

    def _swap(self, names, which) -> list:
        swapped = [name + SUFFIX if isinstance(name, str) and name in which else name for name in names]
        return list(dict.fromkeys(swapped))  # a field and its money column: once

    def get_list_display(self, request):
        return self._swap(super().get_list_display(request), {f.name for f in self.money_fields})

    def _read_only_money(self, request, obj) -> set[str]:
        if not self.has_change_permission(request, obj):
            return {f.name for f in self.money_fields}
        return {f.name for f in self.money_fields} & set(super().get_readonly_fields(request, obj))

    def get_readonly_fields(self, request, obj=None):
        shown = self._read_only_money(request, obj)
        return self._swap([*super().get_readonly_fields(request, obj), *sorted(shown)], shown)

    def get_fields(self, request, obj=None):
        return self._swap(super().get_fields(request, obj), self._read_only_money(request, obj))

    def get_fieldsets(self, request, obj=None):
        shown = self._read_only_money(request, obj)
        return [
            (name, {**options, "fields": self._swap_nested(options["fields"], shown)})
            for name, options in super().get_fieldsets(request, obj)
        ]

    def _swap_nested(self, fields, shown):
        return [
            tuple(self._swap(field, shown)) if isinstance(field, list | tuple) else self._swap([field], shown)[0]
            for field in fields
        ]
