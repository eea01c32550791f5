"""On PostgreSQL, the code ledger refuses UPDATE and DELETE at the database level."""

from django.db import migrations

from appease.core.db import append_only


class Migration(migrations.Migration):
    dependencies = [("coupons", "0001_initial")]
    operations = [append_only("coupons_codeevent")]
