"""Orders as data: the shop's orders reach us (an `order.placed` event, the orders CSV
import), each is recorded once by its reference, the customer's history is computed
from them, and every appeasement followed by an order within REPURCHASE_WINDOW is
stamped as ordered again.

`appease.issuance` records the order and computes the history
(`customer_order_record`, `customer_history_refresh`); this module, a layer above, adds
what the issuance layer cannot know: the appeasement outcomes the order answers
(`repurchases_stamp`), and the two ways in.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from appease.core.context import SYSTEM, Actor
from appease.core.jsonvalues import json_value_errors
from appease.core.money import currency_exponent, fits_currency, is_known_currency
from appease.issuance.models import CustomerOrder
from appease.issuance.services.customers import OrderRecorded, customer_order_record
from feedback.models import AppeasementOutcome, MerchantEvent
from feedback.services.intake import CustomerRef, customer_find_or_create, customer_ref_errors, customer_ref_parse

ORDER_PLACED = "order.placed"

# A stored amount has 14 digits, 4 of them decimals (AMOUNT): ten before the point.
MAX_TOTAL = Decimal(10) ** 10
PLAIN_DECIMAL = re.compile(r"\d+(\.\d+)?")
# A shop's clock may run a little ahead of ours; an order further in the future is a mistake.
FUTURE_SKEW = timedelta(minutes=5)

IMPORT_COLUMNS = ["reference", "total", "currency", "placed_at", "external_id", "email", "phone", "name"]
REQUIRED_COLUMNS = ["reference", "total", "currency", "placed_at"]
CUSTOMER_COLUMNS = ["external_id", "email", "phone"]
MAX_IMPORT_PROBLEMS = 500  # a file of bad rows is named by its first problems, not a megabyte of them


@dataclass(frozen=True)
class OrderFields:
    reference: str
    total: Decimal
    currency: str
    placed_at: datetime


def _total(value) -> tuple[Decimal | None, str]:
    """The total as a Decimal, or why not. A string in plain decimal form ("40.50") or
    a JSON number; never an exponent, a comma, NaN or infinity, never below zero."""
    if isinstance(value, bool) or value is None or value == "":
        return None, _('Give the total, e.g. "40.50".')
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = repr(value)  # the shortest form that reads back as this float: 40.5, not 40.5000000000001
    elif isinstance(value, str):
        text = value.strip()
    else:
        return None, _('Give the total as a decimal number, e.g. "40.50".')
    if text.startswith("-"):
        return None, _("The total cannot be negative.")
    if not PLAIN_DECIMAL.fullmatch(text):
        return None, _('Give the total as a decimal number with a point, e.g. "40.50".')
    amount = Decimal(text)
    if amount >= MAX_TOTAL:
        return None, _("The total is too large.")
    return amount, ""


def order_fields_clean(raw: dict, *, fallback_placed_at=None, now=None) -> tuple[OrderFields | None, dict[str, str]]:
    """An order's fields from what the shop sent (`reference`, `total`, `currency`,
    `placed_at`, texts or JSON values), or the problems per field. `fallback_placed_at`:
    the event's `occurred_at`, when the order has no `placed_at` of its own."""
    errors: dict[str, str] = {}
    reference = raw.get("reference")
    if isinstance(reference, int) and not isinstance(reference, bool):
        reference = str(reference)
    if not isinstance(reference, str) or not reference.strip():
        errors["reference"] = _("Give the order's reference.")
    elif len(reference.strip()) > 100:
        errors["reference"] = _("At most 100 characters.")
    total, problem = _total(raw.get("total"))
    if problem:
        errors["total"] = problem
    currency = raw.get("currency")
    currency = currency.strip().upper() if isinstance(currency, str) else ""
    if not currency:
        errors["currency"] = _("Give the order's currency, an ISO 4217 code such as EUR.")
    elif not is_known_currency(currency):
        errors["currency"] = _("%(value)s is not an ISO 4217 currency code.") % {"value": currency[:10]}
    elif total is not None and not fits_currency(total, currency):
        errors["total"] = _("%(currency)s amounts have at most %(places)d decimal places.") % {
            "currency": currency,
            "places": currency_exponent(currency),
        }
    placed = raw.get("placed_at")
    placed_at = None
    if placed in (None, "") and fallback_placed_at is not None:
        placed_at = fallback_placed_at
    elif isinstance(placed, str):
        try:
            placed_at = parse_datetime(placed.strip())
        except ValueError:
            placed_at = None
    if placed_at is None or timezone.is_naive(placed_at):
        errors["placed_at"] = _("Give the time with its offset, e.g. 2026-12-07T09:30:00+01:00.")
    elif placed_at > (now or timezone.now()) + FUTURE_SKEW:
        errors["placed_at"] = _("An order cannot be placed in the future.")
    if errors:
        return None, errors
    return OrderFields(reference.strip(), total, currency, placed_at), {}


def repurchases_stamp(*, customer_id: int, placed_at: datetime) -> int:
    """One UPDATE: the customer's appeasements given before `placed_at` and within
    REPURCHASE_WINDOW of it are stamped as ordered again at `placed_at`, those with no
    order yet and those stamped with a later one (an earlier order that reached us late,
    e.g. by an import of past orders: the stamp is the *first* order in the window).
    Returns how many."""
    return (
        AppeasementOutcome.objects.filter(
            customer_id=customer_id,
            given_at__lt=placed_at,
            given_at__gte=placed_at - settings.REPURCHASE_WINDOW,
        )
        .filter(Q(repurchased_at__isnull=True) | Q(repurchased_at__gt=placed_at))
        .update(repurchased_at=placed_at)
    )


@dataclass(frozen=True)
class OrderResult:
    order: CustomerOrder
    done: str  # OrderRecorded: created, completed or unchanged
    repurchases: int


def order_record(*, actor: Actor, ref: CustomerRef, order: OrderFields, source: str) -> OrderResult:
    """Record one order inside the caller's transaction: its customer found (external
    id, then email in any case, then phone, as intake finds them) or created, paying in
    the order's currency; the order recorded once by its reference and the customer's
    history recomputed; their appeasements the order answers stamped. The same order
    again changes nothing; a conflict is a field error (`reference`, `total`, ...)."""
    if not transaction.get_connection().in_atomic_block:
        raise transaction.TransactionManagementError("order_record runs inside the caller's transaction")
    _serialise(order_keys(ref, order.reference))
    customer = customer_find_or_create(actor=actor, ref=ref, currency=order.currency)
    recorded, done = customer_order_record(
        customer=customer,
        reference=order.reference,
        total_amount=order.total,
        currency=order.currency,
        placed_at=order.placed_at,
        source=source,
    )
    stamped = 0
    if done != OrderRecorded.UNCHANGED:
        stamped = repurchases_stamp(customer_id=customer.pk, placed_at=order.placed_at)
    return OrderResult(recorded, done, stamped)


def order_keys(ref: CustomerRef, reference: str) -> list[str]:
    """What two requests recording the same order, or orders of the same new customer,
    have in common: the reference and each of the customer's identifiers."""
    keys = [f"order:{reference}"]
    if ref.external_id:
        keys.append(f"customer-external-id:{ref.external_id}")
    if ref.email:
        keys.append(f"customer-email:{ref.email.lower()}")
    if ref.phone:
        keys.append(f"customer-phone:{ref.phone}")
    return keys


def _serialise(keys: list[str]) -> None:
    """On PostgreSQL, wait for any other transaction recording the same order or the
    same customer (a transaction-level advisory lock per key, taken in one order so two
    callers never wait on each other): the customer is then looked up *after* the other
    one committed, and found rather than created twice, and the order found rather than
    refused as another customer's. A row lock cannot do it: neither row exists yet.
    (SQLite runs one writer at a time.)"""
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for key in sorted(set(keys)):
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])


def retried_once(attempt: Callable[[], object]):
    """Run `attempt` (a whole transaction) and, if it lost a race on a unique key (the
    same order or the same new customer recorded by another request at that moment, its
    INSERT then fails once the other commits), once more: the winner's rows are then
    committed and found, so the second run finds the order instead of inserting it."""
    try:
        return attempt()
    except IntegrityError:
        return attempt()


# --- order.placed events ---------------------------------------------------------------


def order_event_errors(data: dict, *, occurred_at=None) -> dict[str, str]:
    """What is wrong with an `order.placed` event's data, each problem named by its
    place (`data.order.total`, `data.customer.email`)."""
    errors: dict[str, str] = {}
    if data.get("customers") is not None:
        errors["data.customers"] = _("An order has one customer: give data.customer.")
    customer = data.get("customer")
    if customer is None:
        errors["data.customer"] = _("Give the order's customer: an email, a phone number or an external id.")
    else:
        for name, message in customer_ref_errors(customer).items():
            errors["data.customer" + (f".{name}" if name else "")] = message
    order = data.get("order")
    if not isinstance(order, dict):
        errors["data.order"] = _("Give the order: reference, total, currency and placed_at.")
    else:
        _fields, problems = order_fields_clean(order, fallback_placed_at=occurred_at)
        errors.update({f"data.order.{name}": message for name, message in problems.items()})
    return errors


def order_event_apply(*, event: MerchantEvent) -> dict:
    """Record the order of an `order.placed` event, in the event's transaction (the event
    is refused whole with the order's field errors). The event is processed there and
    then; its result says what happened: `{"order_id", "customer_id", "order", "repurchases"}`."""
    order, errors = order_fields_clean(event.data.get("order") or {}, fallback_placed_at=event.occurred_at)
    if errors:  # checked before the event was written; a clock moving past "the future" is all that is left
        raise ValidationError({f"data.order.{name}": message for name, message in errors.items()})
    try:
        recorded = order_record(
            actor=SYSTEM, ref=customer_ref_parse(event.data["customer"]), order=order, source=CustomerOrder.Source.EVENT
        )
    except ValidationError as error:
        raise ValidationError(
            {f"data.order.{name}": messages for name, messages in error.message_dict.items()}
        ) from None
    result = {
        "order_id": recorded.order.pk,
        "customer_id": recorded.order.customer_id,
        "order": recorded.done,
        "repurchases": recorded.repurchases,
    }
    now = timezone.now()
    MerchantEvent.objects.filter(pk=event.pk).update(processed_at=now, result=result)
    event.processed_at, event.result = now, result
    return result


# --- the orders CSV import -------------------------------------------------------------


@dataclass(frozen=True)
class ImportProblem:
    line: int
    column: str
    message: str

    def __str__(self) -> str:
        """The problem in the reader's language: `line 3: total: The total cannot be negative.`"""
        if self.column:
            return _("line %(line)d: %(field)s: %(message)s") % {
                "line": self.line,
                "field": self.column,
                "message": self.message,
            }
        return _("line %(line)d: %(message)s") % {"line": self.line, "message": self.message}


@dataclass
class OrdersImported:
    created: int = 0
    completed: int = 0
    unchanged: int = 0
    refused: int = 0
    repurchases: int = 0
    problems: list[ImportProblem] = field(default_factory=list)

    def add_problem(self, problem: ImportProblem) -> None:
        if len(self.problems) < MAX_IMPORT_PROBLEMS:
            self.problems.append(problem)


class OrdersFileInvalid(Exception):
    """The file cannot be read as an orders file at all (its header): nothing imported."""

    def __init__(self, problem: ImportProblem):
        super().__init__(problem.message)
        self.problem = problem


def _rows(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row by lower-cased column) for each non-empty row, read as it goes:
    comma or semicolon separated (whichever the header has more of)."""
    lines = iter(lines)
    first = next(lines, "")
    if first.startswith("\ufeff"):  # a spreadsheet's byte-order mark
        first = first[1:]
    delimiter = ";" if first.count(";") > first.count(",") else ","

    def joined() -> Iterator[str]:
        yield first
        yield from lines

    reader = csv.reader(joined(), delimiter=delimiter)
    try:
        header = [cell.strip().lower() for cell in next(reader)]
    except (StopIteration, csv.Error):
        header = []
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    unknown = [column for column in header if column and column not in IMPORT_COLUMNS]
    if missing or unknown or not any(column in header for column in CUSTOMER_COLUMNS):
        raise OrdersFileInvalid(
            ImportProblem(
                1,
                "",
                _(
                    "The first line must name the columns reference, total, currency, placed_at, and at least one "
                    "of external_id, email, phone (name is optional; no other columns)."
                ),
            )
        )
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield reader.line_num, {"__error__": _("This line is not valid CSV: %(error)s") % {"error": error}}
            continue
        except UnicodeDecodeError:
            # The rows before are imported; nothing after can be read.
            yield reader.line_num + 1, {"__error__": _("The file is not UTF-8 text from this line on.")}
            return
        if not any(cell.strip() for cell in cells):
            continue
        yield reader.line_num, {name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(header)}


def orders_import(*, actor: Actor, lines: Iterable[str], now=None) -> OrdersImported:
    """Import orders from CSV text, read line by line (`lines`: an open file, a
    request's upload), with the columns reference, total, currency, placed_at,
    external_id, email, phone, name.

    Each row is its own transaction: it is recorded whole (its customer, found or
    created, its order, the history and the repurchases) or not at all, with its
    problems named by line and column in the reader's language; the other rows go on.
    Idempotent by reference: the same file again changes nothing.
    A header that is not an orders file raises `OrdersFileInvalid` before any row."""
    result = OrdersImported()
    for line, row in _rows(lines):
        if "__error__" in row:
            result.refused += 1
            result.add_problem(ImportProblem(line, "", row["__error__"]))
            continue
        problems = _row_problems(row, now=now)
        if problems:
            result.refused += 1
            for column, message in problems.items():
                result.add_problem(ImportProblem(line, column, message))
            continue
        order, _errors = order_fields_clean(row, now=now)
        ref = customer_ref_parse(row)

        def attempt(order=order, ref=ref) -> OrderResult:
            with transaction.atomic(durable=True):
                return order_record(actor=actor, ref=ref, order=order, source=CustomerOrder.Source.IMPORT)

        try:
            recorded = retried_once(attempt)
        except ValidationError as error:
            result.refused += 1
            for column, messages in error.message_dict.items():
                result.add_problem(ImportProblem(line, _column(column), " ".join(messages)))
            continue
        setattr(result, recorded.done, getattr(result, recorded.done) + 1)
        result.repurchases += recorded.repurchases
    return result


def _column(name: str) -> str:
    """The import's column for a service's field name."""
    return {"__all__": "", "NON_FIELD_ERRORS": ""}.get(name, name)


def _row_problems(row: dict[str, str], *, now=None) -> dict[str, str]:
    problems: dict[str, str] = {}
    unstorable = json_value_errors(row)
    if unstorable:
        return {column: messages[0] for column, messages in unstorable.items()}
    _order, errors = order_fields_clean(row, now=now)
    problems.update(errors)
    for name, message in customer_ref_errors(
        {key: row.get(key) or None for key in ("email", "phone", "external_id", "name")}
    ).items():
        problems[name or "external_id, email, phone"] = message
    return problems
