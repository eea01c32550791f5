"""`manage.py codes_reencrypt [--batch-size N]`: every stored code under the newest key."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from coupons.services.keys import codes_reencrypt


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored code under the first key of CODE_ENCRYPTION_KEYS, so that the "
        "keys after it can be removed. In batches, each its own transaction; safe to run again "
        "(codes already under the newest key are left alone) and while the application runs."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=1000, help="Codes per transaction (default 1000).")

    def handle(self, *args, batch_size: int, **options) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        result = codes_reencrypt(batch_size=batch_size)
        self.stdout.write(f"{result.rewritten} codes re-encrypted under the newest key, {result.current} already were.")
        if result.unreadable:
            shown = ", ".join(str(pk) for pk in result.unreadable[:20])
            raise CommandError(
                f"{len(result.unreadable)} codes open with none of CODE_ENCRYPTION_KEYS (ids {shown}"
                f"{', …' if len(result.unreadable) > 20 else ''}): their key is missing. Do not retire any key."
            )
        self.stdout.write("Every code opens with the newest key: the other keys can be removed.")
