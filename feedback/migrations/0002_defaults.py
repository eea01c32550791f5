"""The starting configuration (feedback/defaults.py); the case timeline is append-only
on PostgreSQL."""

from django.db import migrations

from appease.core.db import append_only
from feedback.defaults import load_defaults


def forward(apps, schema_editor):
    load_defaults(apps)


class Migration(migrations.Migration):
    dependencies = [("feedback", "0001_initial")]

    operations = [
        migrations.RunPython(forward, migrations.RunPython.noop),
        append_only("feedback_caseevent"),
    ]
