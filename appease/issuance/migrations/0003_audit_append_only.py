"""On PostgreSQL, the audit log refuses UPDATE and DELETE at the database level."""

from django.db import migrations

from appease.core.db import append_only


class Migration(migrations.Migration):
    dependencies = [("appease", "0002_issuance_domain")]
    operations = [append_only("appease_auditevent")]
