"""The starting targets counted a "business day" as 24 business hours (2⅔ business days
with 9-hour days). Bands still holding those first values get the business days the
documentation promises (feedback.defaults.priority_levels: the configured opening hours
per day); bands a supervisor changed are left alone. Open cases keep their due times."""

from django.db import migrations

from feedback.defaults import priority_levels

# (priority, first response, resolution) as migration 0002 created them.
OLD = {"high": (15 * 60, 24 * 3600), "normal": (4 * 3600, 3 * 24 * 3600), "low": (24 * 3600, 7 * 24 * 3600)}


def forward(apps, schema_editor):
    PriorityLevel = apps.get_model("feedback", "PriorityLevel")
    new = {row[0]: (row[3], row[4]) for row in priority_levels()}
    for priority, (first, resolution) in OLD.items():
        level = PriorityLevel.objects.filter(priority=priority).first()
        if level is None:
            continue
        if level.first_response_seconds == first:
            level.first_response_seconds = new[priority][0]
        if level.resolution_seconds == resolution:
            level.resolution_seconds = new[priority][1]
        level.save(update_fields=["first_response_seconds", "resolution_seconds"])


class Migration(migrations.Migration):
    dependencies = [("feedback", "0006_score_reasons_as_data")]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
