"""Filters every app's API lists share (django-filter)."""

from datetime import UTC

import django_filters
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django_filters.fields import IsoDateTimeField


class UTCIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 instant, handed to the database in UTC. Python accepts offsets up to
    ±23:59 and PostgreSQL only up to ±15:59, so `0175-03-14T12:12:10+22:19` reached the SQL
    as written and was a 500 (found by the fuzzer). Given but empty (`?created_after=`) is
    not a date and time either: refused, as the schema says, not read as "no filter"."""

    def to_python(self, value):
        if value == "":
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValidationError(_("Enter a date and time between the years 1 and 9999."), code="invalid") from None


class UTCIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCIsoDateTimeField
