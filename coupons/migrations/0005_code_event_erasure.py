from django.db import migrations

from appease.core.db import append_only_except_erasure


class Migration(migrations.Migration):
    dependencies = [("coupons", "0004_rollup_refresh_indexes")]

    operations = [
        # An erasure may rewrite the words of a ledger row (a void reason that names the
        # customer), never its code, amounts, statuses, actors or time.
        append_only_except_erasure(
            "coupons_codeevent",
            unchanged=[
                "id",
                "code_id",
                "kind",
                "from_status",
                "to_status",
                "amount",
                "balance_after_amount",
                "currency",
                "actor_user_id",
                "actor_merchant_id",
                "redemption_id",
                "created_at",
            ],
        ),
    ]
