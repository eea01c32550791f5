"""`manage.py import_codes --offer <id or name> codes.csv`: a provider's codes, all or nothing."""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from coupons.management.cli import offer_from_option, progress_bar
from coupons.services.inventory import code_batch_import


class Command(BaseCommand):
    @property
    def help(self) -> str:  # gettext at parser creation: argparse cannot format lazy strings
        return _(
            "Import codes from a UTF-8 CSV file (one code per line; gift cards may add a balance: "
            "code,balance). Any bad line rejects the whole file and nothing is written."
        )

    def add_arguments(self, parser):
        parser.add_argument("--offer", required=True, help=_("The offer's id or exact name."))
        parser.add_argument("path", help=_("The CSV file to import."))

    def handle(self, *args, offer: str, path: str, verbosity: int, **options) -> None:
        target = offer_from_option(offer)
        try:
            # utf-8-sig: spreadsheet exports often start with a byte-order mark.
            text = Path(path).read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CommandError(_("%(path)s is not UTF-8 text.") % {"path": path}) from exc
        except OSError as exc:
            raise CommandError(_("Cannot read %(path)s: %(error)s") % {"path": path, "error": exc.strerror}) from exc

        with progress_bar(self, total=None, verbosity=verbosity) as bar:
            try:
                batch = code_batch_import(offer=target, text=text, filename=Path(path).name, progress=bar.update)
            except ValidationError as error:
                bar.close()
                if "file" not in error.message_dict:  # refused as a whole, e.g. a soft offer
                    raise CommandError(" ".join(error.messages)) from error
                for message in error.message_dict["file"]:
                    self.stderr.write(message)
                raise CommandError(
                    _("Nothing was imported: fix the lines above and import the whole file again.")
                ) from error

        self.stdout.write(
            self.style.SUCCESS(
                _("Imported %(count)d codes for “%(offer)s” as batch %(batch)d.")
                % {"count": batch.quantity, "offer": target.name, "batch": batch.pk}
            )
        )
