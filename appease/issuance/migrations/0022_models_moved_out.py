"""The kernel's and the outbox's models left this app for appease.core and
appease.delivery (ADR 0010). State only: their tables stay, under their old names."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from appease.core.db import content_types_move


class Migration(migrations.Migration):
    dependencies = [
        ("appease", "0021_translatable_names"),
        ("core", "0001_initial"),
        ("delivery", "0001_initial"),
        ("feedback", "0013_alter_followup_delivery"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name="auditevent",
                    name="actor",
                ),
                migrations.RemoveField(
                    model_name="delivery",
                    name="customer",
                ),
                migrations.RemoveField(
                    model_name="delivery",
                    name="issuance",
                ),
                migrations.RemoveField(
                    model_name="delivery",
                    name="requested_by",
                ),
                migrations.RemoveField(
                    model_name="delivery",
                    name="resend_of",
                ),
                migrations.RemoveField(
                    model_name="deliverystatusevent",
                    name="delivery",
                ),
                migrations.RemoveField(
                    model_name="deliveryattempt",
                    name="delivery",
                ),
                migrations.DeleteModel(
                    name="FailureCounter",
                ),
                migrations.DeleteModel(
                    name="IdempotencyKey",
                ),
                migrations.RemoveField(
                    model_name="staffapikey",
                    name="user",
                ),
                migrations.DeleteModel(
                    name="AuditEvent",
                ),
                migrations.DeleteModel(
                    name="DeliveryStatusEvent",
                ),
                migrations.DeleteModel(
                    name="Delivery",
                ),
                migrations.DeleteModel(
                    name="DeliveryAttempt",
                ),
                migrations.DeleteModel(
                    name="StaffAPIKey",
                ),
            ],
        ),
        # From here on the state has no appease.Delivery or appease.AuditEvent: merge the
        # content types post_migrate made for them if the move took two `migrate` runs
        # (e.g. `migrate delivery`, then `migrate`) into the moved ones. Unapplied, the
        # moves in core and delivery's first migrations take them back.
        content_types_move(
            ["failurecounter", "idempotencykey", "staffapikey", "auditevent"], "appease", "core", reversible=False
        ),
        content_types_move(
            ["delivery", "deliveryattempt", "deliverystatusevent"], "appease", "delivery", reversible=False
        ),
    ]
