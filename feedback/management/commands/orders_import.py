"""Import the shop's orders from a CSV file, row by row (docs/feedback.md, "Orders")."""

from __future__ import annotations

import io
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from appease.core.context import SYSTEM
from feedback.services.orders import OrdersFileInvalid, orders_import


class Command(BaseCommand):
    help = (
        "Import orders from a CSV file with the columns reference, total, currency, placed_at and any of "
        "external_id, email, phone, name. Read as it goes; each row is imported whole or not at all, a bad "
        "row is reported with its line number and the others go on; the same file again changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="the CSV file (UTF-8), or - for standard input")
        parser.add_argument(
            "--language",
            default=settings.LANGUAGE_CODE,
            choices=[code for code, _name in settings.LANGUAGES],
            help="the language of the problems reported",
        )

    def handle(self, *args, path, language, **options):
        with translation.override(language):
            try:
                if path == "-":
                    stream = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")
                    result = orders_import(actor=SYSTEM, lines=stream)
                else:
                    with open(path, encoding="utf-8-sig", newline="") as stream:
                        result = orders_import(actor=SYSTEM, lines=stream)
            except OSError as error:
                raise CommandError(str(error)) from None
            except UnicodeDecodeError:
                raise CommandError(translation.gettext("The file is not UTF-8 text.")) from None
            except OrdersFileInvalid as invalid:
                raise CommandError(str(invalid.problem)) from None
            for problem in result.problems:
                self.stderr.write(str(problem))
            summary = translation.gettext(
                "Orders imported: %(created)d new, %(completed)d completed, %(unchanged)d unchanged, "
                "%(refused)d refused; %(repurchases)d appeasements followed by an order."
            ) % vars(result)
        self.stdout.write(summary)
        if result.refused:
            raise CommandError(f"{result.refused} row(s) refused; the others were imported.")
