"""Create or update staff accounts from a CSV file (name, email, role, team, languages)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from appease.accounts.services import StaffImportInvalid, staff_csv_read, staff_import
from appease.core.context import SYSTEM


class Command(BaseCommand):
    help = (
        "Import staff from a CSV file with the columns name, email, role, team, languages. "
        "Every line is checked first; with any problem nothing is changed."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="the CSV file (UTF-8), or - for standard input")
        parser.add_argument(
            "--invite", action="store_true", help="email new local accounts a link to choose their password"
        )
        parser.add_argument(
            "--language",
            default=settings.LANGUAGE_CODE,
            choices=[code for code, _name in settings.LANGUAGES],
            help="the language of the problems reported",
        )

    def handle(self, *args, path, invite, language, **options):
        import sys

        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
        with translation.override(language):
            try:
                result = staff_import(rows=staff_csv_read(data), actor=SYSTEM, invite=invite)
            except StaffImportInvalid as invalid:
                for problem in invalid.problems:
                    self.stderr.write(f"line {problem.line}, {problem.field}: {problem.message}")
                raise CommandError(f"{len(invalid.problems)} problem(s): nothing was imported.") from None
        self.stdout.write(
            f"{len(result.created)} created, {len(result.updated)} updated, "
            f"{len(result.unchanged)} unchanged, {len(result.invited)} invited."
        )
