"""Deliveries name their customer: a follow-up is sent to a customer, not for an issuance."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def backfill(apps, schema_editor):
    Delivery = apps.get_model("appease", "Delivery")
    Issuance = apps.get_model("appease", "Issuance")
    Delivery.objects.filter(customer__isnull=True).update(
        customer=Subquery(Issuance.objects.filter(pk=OuterRef("issuance_id")).values("customer_id")[:1])
    )


class Migration(migrations.Migration):
    dependencies = [
        ("appease", "0006_policy_related_name"),
    ]

    operations = [
        migrations.AddField(
            model_name="delivery",
            name="customer",
            field=models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.PROTECT, related_name="deliveries", to="appease.customer"
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="delivery",
            name="customer",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="deliveries", to="appease.customer"
            ),
        ),
    ]
