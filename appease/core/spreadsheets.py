"""CSV files for people who open them in a spreadsheet (Excel, LibreOffice, Sheets).

Two things make a plain CSV unsafe or garbled there:

- Formula injection: a cell that starts with `=`, `+`, `-` or `@` (or a tab or carriage
  return before one) is run as a formula. Customer names, notes and labels are typed by
  strangers, so every text cell that starts so gets a leading apostrophe, which the
  spreadsheet shows as text (OWASP, "CSV Injection"). Numbers are left alone: `-5.00` is
  a number, not a formula.
- Encoding: Excel on Windows reads a CSV without a byte-order mark as the local code
  page, so "Cuándo" shows as "CuÃ¡ndo". The file starts with the UTF-8 BOM.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from django.http import StreamingHttpResponse

BOM = "\ufeff"
# ASCII triggers, and their full-width forms, which Excel in CJK locales also takes as formulas.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def _is_number(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except InvalidOperation:
        return False


def spreadsheet_cell(value):
    """The value as a spreadsheet will take it as data, never as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _is_number(value):
        return "'" + value
    return value


def csv_response(filename: str, header: list[str], rows: Iterable[Iterable]) -> StreamingHttpResponse:
    """Stream a CSV (rows are written as they come, never all in memory), with the BOM
    and every cell made safe."""

    class Echo:
        def write(self, value):
            return value

    writer = csv.writer(Echo())

    def lines():
        yield BOM + writer.writerow([spreadsheet_cell(cell) for cell in header])
        for row in rows:
            yield writer.writerow([spreadsheet_cell(cell) for cell in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
