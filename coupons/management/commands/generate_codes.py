"""`manage.py generate_codes --offer <id or name> --count N [--now | --wait]`."""

from __future__ import annotations

import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from coupons.management.cli import offer_from_option, progress_bar
from coupons.models import CodeBatch
from coupons.services.inventory import code_batch_generate, code_batch_request

POLL_SECONDS = 0.5


class Command(BaseCommand):
    @property
    def help(self) -> str:  # gettext at parser creation: argparse cannot format lazy strings
        return _(
            "Generate new codes for an offer. By default a Celery worker generates them; "
            "--now generates them in this process with a progress bar."
        )

    def add_arguments(self, parser):
        parser.add_argument("--offer", required=True, help=_("The offer's id or exact name."))
        parser.add_argument("--count", type=int, required=True, help=_("How many codes to generate."))
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--now",
            action="store_true",
            help=_("Generate in this process instead of leaving it to a worker."),
        )
        mode.add_argument(
            "--wait",
            action="store_true",
            help=_("Leave it to a worker, but wait until the batch is done."),
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=3600,
            help=_("With --wait, give up waiting after this many seconds (default 3600)."),
        )

    def handle(self, *args, offer: str, count: int, now: bool, wait: bool, timeout: float, **options) -> None:
        target = offer_from_option(offer)
        try:
            batch = code_batch_request(offer=target, quantity=count)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error

        if now:
            # The request also queued the batch for a worker; whoever claims it first
            # (a conditional update) generates it, the other does nothing.
            with progress_bar(self, total=count, verbosity=options["verbosity"]) as bar:
                done = code_batch_generate(batch_id=batch.pk, progress=bar.update)
            if done is None:
                self.stdout.write(
                    _("A worker took batch %(batch)d first and is generating its %(count)d codes.")
                    % {"batch": batch.pk, "count": count}
                )
                return
            self._report_done(done)
            return

        if not wait:
            self.stdout.write(
                _("Batch %(batch)d of %(count)d codes is queued; a worker generates it.")
                % {"batch": batch.pk, "count": count}
            )
            return

        deadline = time.monotonic() + timeout
        while batch.status in (CodeBatch.Status.PENDING, CodeBatch.Status.RUNNING):
            if time.monotonic() > deadline:
                raise CommandError(
                    _("Batch %(batch)d is still %(status)s after %(seconds)d seconds. Is a worker running?")
                    % {"batch": batch.pk, "status": batch.get_status_display().lower(), "seconds": timeout}
                )
            time.sleep(POLL_SECONDS)
            batch.refresh_from_db(fields=["status", "error", "finished_at"])
        if batch.status == CodeBatch.Status.FAILED:
            raise CommandError(
                _("Batch %(batch)d failed (%(error)s); no codes were added.")
                % {"batch": batch.pk, "error": batch.error}
            )
        self._report_done(batch)

    def _report_done(self, batch: CodeBatch) -> None:
        self.stdout.write(
            self.style.SUCCESS(
                _("Generated %(count)d codes for “%(offer)s” as batch %(batch)d.")
                % {"count": batch.quantity, "offer": batch.offer.name, "batch": batch.pk}
            )
        )
