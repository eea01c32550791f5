"""An erasure may rewrite the text of a case's timeline; nothing else about it."""

from django.db import migrations

from appease.core.db import append_only_except_erasure


class Migration(migrations.Migration):
    dependencies = [("feedback", "0002_defaults")]

    operations = [
        append_only_except_erasure(
            "feedback_caseevent", unchanged=["id", "case_id", "kind", "actor_id", "created_at"]
        ),
    ]
