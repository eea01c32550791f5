"""Breach counters on cases: every missed target, every round of a reopened case.

The *_breached_at timestamps mean "breached in the current round" and are cleared when
a case reopens; these counters are never cleared. Filled from the timeline, which has
one `sla_breached` line per breach ever marked (data.target), and at least 1 where a
breach timestamp is set without such a line (rows written by a bulk loader)."""

from django.db import migrations, models
from django.db.models import Count, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce



def fill(apps, schema_editor):
    Case = apps.get_model("feedback", "Case")
    CaseEvent = apps.get_model("feedback", "CaseEvent")
    for target in ("first_response", "resolution"):
        lines = (
            CaseEvent.objects.filter(case=OuterRef("pk"), kind="sla_breached", data__target=target)
            .order_by()
            .values("case")
            .annotate(n=Count("pk"))
            .values("n")[:1]
        )
        Case.objects.filter(pk__in=CaseEvent.objects.filter(kind="sla_breached").values("case")).update(
            **{f"{target}_breaches": Coalesce(Subquery(lines), Value(0))}
        )
        Case.objects.filter(**{f"{target}_breached_at__isnull": False, f"{target}_breaches": 0}).update(
            **{f"{target}_breaches": 1}
        )


class Migration(migrations.Migration):
    dependencies = [("feedback", "0003_case_event_erasure")]

    operations = [
        migrations.AddField(
            model_name="case",
            name="first_response_breaches",
            field=models.PositiveSmallIntegerField(
                db_default=0,
                default=0,
                help_text="Times the first-response target was missed.",
                verbose_name="first responses late",
            ),
        ),
        migrations.AddField(
            model_name="case",
            name="resolution_breaches",
            field=models.PositiveSmallIntegerField(
                db_default=0,
                default=0,
                help_text="Times the resolution target was missed.",
                verbose_name="resolutions late",
            ),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
