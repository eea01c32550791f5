"""The code inventory: generate, import, claim at issue time, void, expire."""

from __future__ import annotations

import csv
import io
import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from appease.core.exceptions import ApplicationError
from appease.core.money import fits_currency
from appease.core.queue import enqueue_on_commit
from coupons import codes
from coupons.events import code_expired_events, code_issued_event, code_voided_event
from coupons.models import AMOUNT, Code, CodeBatch, Offer

INSERT_CHUNK = 10_000
MAX_IMPORT_ERRORS = 200
# The largest balance the amount columns hold (14 digits, 4 of them decimals).
MAX_BALANCE = Decimal(10) ** (AMOUNT["max_digits"] - AMOUNT["decimal_places"]) - Decimal(1)

Progress = Callable[[int], None]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewCode:
    normalised: str
    display: str
    balance: Decimal | None


# --- Writing codes -------------------------------------------------------------------

_COPY_COLUMNS = (
    "offer_id",
    "batch_id",
    "lookup_hash",
    "ciphertext",
    "last4",
    "status",
    "currency",
    "initial_balance_amount",
    "balance_amount",
    "created_at",
)


def _rows(*, offer: Offer, batch: CodeBatch, new_codes: Iterable[NewCode]) -> Iterator[tuple]:
    now = timezone.now()
    for new in new_codes:
        yield (
            offer.pk,
            batch.pk,
            codes.lookup_hash(new.normalised),
            codes.encrypt(new.display),
            codes.last4(new.normalised),
            Code.Status.AVAILABLE,
            offer.currency,
            new.balance,
            new.balance,
            now,
        )


def _insert(*, offer: Offer, batch: CodeBatch, new_codes: Iterable[NewCode], progress: Progress | None) -> None:
    """Insert codes fast: COPY on PostgreSQL, batched INSERTs elsewhere."""
    rows = _rows(offer=offer, batch=batch, new_codes=new_codes)
    if connection.vendor == "postgresql":
        table = Code._meta.db_table
        sql = f"COPY {table} ({', '.join(_COPY_COLUMNS)}) FROM STDIN"
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            for count, row in enumerate(rows, start=1):
                copy.write_row(row)
                if progress and count % INSERT_CHUNK == 0:
                    progress(INSERT_CHUNK)
        if progress:
            progress(batch.quantity % INSERT_CHUNK)
        return
    chunk: list[Code] = []
    for row in rows:
        chunk.append(Code(**dict(zip(_COPY_COLUMNS, row, strict=True))))
        if len(chunk) == INSERT_CHUNK:
            Code.objects.bulk_create(chunk)
            if progress:
                progress(len(chunk))
            chunk = []
    if chunk:
        Code.objects.bulk_create(chunk)
        if progress:
            progress(len(chunk))


def _require_code_offer(offer: Offer) -> None:
    if offer.is_soft:
        raise ValidationError({"offer": _("Soft offers (apology, callback) carry no codes.")})


# --- Generation ----------------------------------------------------------------------


def code_batch_request(*, offer: Offer, quantity: int, actor=None) -> CodeBatch:
    """Ask for `quantity` new codes; a worker generates them (`code_batch_generate`)."""
    from coupons.tasks import code_batch_generate_task  # a service and its own task: the task module imports this one

    _require_code_offer(offer)
    if quantity < 1 or quantity > 10_000_000:
        raise ValidationError({"quantity": _("Ask for 1 to 10,000,000 codes.")})
    with transaction.atomic():
        batch = CodeBatch.objects.create(
            offer=offer, source=CodeBatch.Source.GENERATED, quantity=quantity, created_by=actor
        )
        enqueue_on_commit(code_batch_generate_task, batch.pk)
    return batch


def code_batch_generate(*, batch_id: int, progress: Progress | None = None) -> CodeBatch | None:
    """Generate a pending batch's codes in one transaction: all of them or none.

    Safe to run twice: only the caller whose conditional update moved the batch from
    `pending` to `running` does the work. A batch left `running` by a crashed worker is
    put back to `pending` by `code_batches_sweep`; should the first worker be alive
    after all, it finds its claim gone when it finishes and rolls its codes back, so a
    batch is never generated twice.
    """
    now = timezone.now()
    claimed = CodeBatch.objects.filter(pk=batch_id, status=CodeBatch.Status.PENDING).update(
        status=CodeBatch.Status.RUNNING, started_at=now
    )
    if not claimed:
        return None
    # This claim, and no later one: `started_at` is the claim's token.
    mine = CodeBatch.objects.filter(pk=batch_id, status=CodeBatch.Status.RUNNING, started_at=now)
    batch = CodeBatch.objects.select_related("offer").get(pk=batch_id)
    offer = batch.offer
    try:
        with transaction.atomic():
            _insert_generated(offer=offer, batch=batch, progress=progress)
            if not mine.update(status=CodeBatch.Status.DONE, finished_at=timezone.now()):
                raise _ClaimLost
    except _ClaimLost:
        logger.warning("code batch %s was re-claimed while this worker generated it; its codes are discarded", batch_id)
        return None
    except Exception as exc:
        mine.update(status=CodeBatch.Status.FAILED, finished_at=timezone.now(), error=type(exc).__name__)
        raise
    batch.refresh_from_db()
    return batch


class _ClaimLost(Exception):
    """The sweeper handed the batch to another worker; roll this one's codes back."""


def _new_generated(*, prefix: str, balance: Decimal | None) -> NewCode:
    normalised = codes.generate(prefix=prefix)
    return NewCode(normalised=normalised, display=codes.format_for_reading(normalised, prefix=prefix), balance=balance)


# A code costs ~45 µs of Python to make (a CSPRNG draw, an HMAC, a Fernet encryption),
# more than PostgreSQL takes to store it. From this many codes on, worker processes make
# the rows and this process only streams them into COPY (docs/benchmarks.md).
PARALLEL_MIN_CODES = 50_000
PARALLEL_CHUNK = 10_000
PARALLEL_CHUNK_TIMEOUT = 300  # seconds: a worker that died must not hang the batch


def _insert_generated(*, offer: Offer, batch: CodeBatch, progress: Progress | None) -> None:
    balance = offer.value_amount if offer.has_balance else None
    processes = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if connection.vendor == "postgresql" and batch.quantity >= PARALLEL_MIN_CODES and processes > 1:
        _copy_generated_in_parallel(offer=offer, batch=batch, balance=balance, processes=processes, progress=progress)
        return
    new_codes = (_new_generated(prefix=offer.code_prefix, balance=balance) for _ in range(batch.quantity))
    _insert(offer=offer, batch=batch, new_codes=new_codes, progress=progress)


def _copy_generated_in_parallel(
    *, offer: Offer, batch: CodeBatch, balance: Decimal | None, processes: int, progress: Progress | None
) -> None:
    """The same rows as `_insert`, made by `processes` forked workers, in the caller's transaction."""
    # billiard is Celery's fork of multiprocessing: unlike the standard library's, its
    # pool may be started from a Celery worker process (a daemonic one). The workers are
    # forked before COPY starts; they inherit the settings (the keys) and never use the
    # database connection.
    import billiard

    now = timezone.now()
    sizes = [PARALLEL_CHUNK] * (batch.quantity // PARALLEL_CHUNK)
    if batch.quantity % PARALLEL_CHUNK:
        sizes.append(batch.quantity % PARALLEL_CHUNK)
    sql = f"COPY {Code._meta.db_table} ({', '.join(_COPY_COLUMNS)}) FROM STDIN"
    with (
        billiard.get_context("fork").Pool(processes) as pool,
        connection.cursor() as cursor,
        cursor.cursor.copy(sql) as copy,
    ):
        # At most two chunks per worker in flight: memory stays bounded when
        # PostgreSQL is the slower side.
        pending: deque = deque()
        for index, size in enumerate(sizes):
            job = (offer, batch, balance, now, size)
            pending.append((size, pool.apply_async(_generated_copy_text, (job,))))
            last = index == len(sizes) - 1
            while pending and (last or len(pending) >= 2 * processes):
                done, result = pending.popleft()
                copy.write(result.get(timeout=PARALLEL_CHUNK_TIMEOUT))
                if progress:
                    progress(done)


def _generated_copy_text(job: tuple[Offer, CodeBatch, Decimal | None, datetime, int]) -> bytes:
    """In a worker process: `count` new codes as COPY text rows. Touches no database.

    The rows `_rows` makes, in `_COPY_COLUMNS` order, written out directly: going
    through `_rows` and a per-value formatter took a third of the worker's time.
    """
    offer, batch, balance, now, count = job
    prefix = offer.code_prefix
    # Only lookup_hash, ciphertext and last4 differ from row to row.
    head = "\t".join(map(_copy_text_value, (offer.pk, batch.pk)))
    tail = "\t".join(map(_copy_text_value, (Code.Status.AVAILABLE, offer.currency, balance, balance, now)))
    lines = []
    for _index in range(count):
        normalised = codes.generate(prefix=prefix)
        # A Fernet token is url-safe base64 and a code is letters and digits: neither
        # needs escaping in COPY's text format.
        ciphertext = codes.encrypt(codes.format_for_reading(normalised, prefix=prefix))
        digest = codes.lookup_hash(normalised).hex()
        lines.append(f"{head}\t\\\\x{digest}\t{ciphertext}\t{codes.last4(normalised)}\t{tail}\n")
    return "".join(lines).encode()


def _copy_text_value(value) -> str:
    """A value in COPY's text format, as psycopg's `write_row` would send it."""
    if value is None:
        return "\\N"
    if isinstance(value, bytes):
        return "\\\\x" + value.hex()
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def code_batches_sweep(*, lease: timedelta = timedelta(minutes=15)) -> list[int]:
    """Re-queue batches a crashed worker left running, and pending ones never picked up."""
    from coupons.tasks import code_batch_generate_task  # a service and its own task: the task module imports this one

    now = timezone.now()
    CodeBatch.objects.filter(status=CodeBatch.Status.RUNNING, started_at__lt=now - lease).update(
        status=CodeBatch.Status.PENDING, started_at=None
    )
    pending = list(
        CodeBatch.objects.filter(
            status=CodeBatch.Status.PENDING,
            source=CodeBatch.Source.GENERATED,
            created_at__lt=now - timedelta(seconds=30),
        ).values_list("pk", flat=True)
    )
    for batch_id in pending:
        code_batch_generate_task.delay(batch_id)
    return pending


# --- Import --------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportError_:
    line: int
    message: str

    def __str__(self) -> str:
        return _("line %(line)d: %(message)s") % {"line": self.line, "message": self.message}


def _parse_import(*, offer: Offer, text: str) -> tuple[list[tuple[int, NewCode]], list[ImportError_]]:
    """Rows of `code[,balance]`, a header line optional. Line numbers are the file's."""
    parsed: list[tuple[int, NewCode]] = []
    errors: list[ImportError_] = []
    seen: dict[str, int] = {}
    reader = csv.reader(io.StringIO(text))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            # E.g. a line over the csv module's field size limit: report it, read on.
            errors.append(ImportError_(reader.line_num, _("unreadable line (%(error)s)") % {"error": exc}))
            continue
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if line == 1 and row[0].strip().lower() in {"code", "codes"}:
            continue
        if any(cell.strip() for cell in row[2:]):
            # Most likely an unquoted thousands separator (`CODE,1,000.00`): reading
            # only the first two cells would import a balance of 1.
            errors.append(ImportError_(line, _("too many columns (a line is code or code,balance)")))
            continue
        raw = row[0]
        normalised = codes.normalise(raw)
        if not normalised:
            errors.append(ImportError_(line, _("the code is empty")))
            continue
        if len(normalised) > codes.MAX_CODE_LENGTH or not codes.NORMALISED_CODE.match(normalised):
            errors.append(ImportError_(line, _("a code is 1 to 64 letters and digits")))
            continue
        if normalised in seen:
            errors.append(
                ImportError_(line, _("duplicate of line %(first)d in this file") % {"first": seen[normalised]})
            )
            continue
        seen[normalised] = line
        balance = None
        if offer.has_balance:
            balance_text = row[1].strip() if len(row) > 1 else ""
            if not balance_text:
                balance = offer.value_amount
            else:
                try:
                    balance = Decimal(balance_text)
                except InvalidOperation:
                    errors.append(
                        ImportError_(line, _("the balance %(value)r is not a number") % {"value": balance_text})
                    )
                    continue
                if not balance.is_finite() or balance <= 0 or not fits_currency(balance, offer.currency):
                    errors.append(
                        ImportError_(
                            line,
                            _("the balance must be above zero with at most the decimals of %(currency)s")
                            % {"currency": offer.currency},
                        )
                    )
                    continue
                if balance > MAX_BALANCE:
                    errors.append(
                        ImportError_(line, _("the balance is more than %(max)s") % {"max": f"{MAX_BALANCE:,}"})
                    )
                    continue
        elif len(row) > 1 and row[1].strip():
            errors.append(ImportError_(line, _("only gift-card codes carry a balance")))
            continue
        parsed.append((line, NewCode(normalised=normalised, display=raw.strip(), balance=balance)))
    return parsed, errors


def _already_stored(parsed: list[tuple[int, NewCode]]) -> list[ImportError_]:
    errors = []
    for start in range(0, len(parsed), 1000):
        chunk = parsed[start : start + 1000]
        by_hash = {codes.lookup_hash(new.normalised): line for line, new in chunk}
        for stored in Code.objects.filter(lookup_hash__in=list(by_hash)).values_list("lookup_hash", flat=True):
            errors.append(ImportError_(by_hash[bytes(stored)], _("this code is already in the inventory")))
    return sorted(errors, key=lambda error: error.line)


def code_batch_import(
    *, offer: Offer, text: str, filename: str = "", actor=None, progress: Progress | None = None
) -> CodeBatch:
    """Import a provider's codes from CSV text, all or nothing.

    Every malformed row and every duplicate (in the file or against the inventory) is
    reported with its line number in one ValidationError, and nothing is written.
    """
    _require_code_offer(offer)
    parsed, errors = _parse_import(offer=offer, text=text)
    errors.extend(_already_stored(parsed))
    if not parsed and not errors:
        errors.append(ImportError_(1, _("the file has no codes")))
    if errors:
        errors.sort(key=lambda error: error.line)
        messages = [str(error) for error in errors[:MAX_IMPORT_ERRORS]]
        if len(errors) > MAX_IMPORT_ERRORS:
            messages.append(_("… and %(count)d more errors") % {"count": len(errors) - MAX_IMPORT_ERRORS})
        raise ValidationError({"file": messages})
    with transaction.atomic():
        now = timezone.now()
        batch = CodeBatch.objects.create(
            offer=offer,
            source=CodeBatch.Source.IMPORTED,
            status=CodeBatch.Status.DONE,
            quantity=len(parsed),
            filename=filename[:255],
            created_by=actor,
            started_at=now,
            finished_at=now,
        )
        # The unique index on lookup_hash still guards against a concurrent import of
        # the same codes: the loser's whole transaction rolls back.
        _insert(offer=offer, batch=batch, new_codes=(new for _line, new in parsed), progress=progress)
    return batch


# --- Lifecycle -----------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedCode:
    code: Code
    plaintext: str


def code_issue(*, offer: Offer, actor=None, reason: str = "") -> IssuedCode:
    """Take a code from the offer's inventory (or make one) and mark it issued.

    Runs inside the caller's transaction. Concurrent callers never get the same code:
    the row is claimed with SELECT … FOR UPDATE SKIP LOCKED, so a second caller skips
    a row the first holds instead of waiting for it.
    """
    _require_code_offer(offer)
    now = timezone.now()
    code = (
        Code.objects.select_for_update(skip_locked=True)
        .filter(offer=offer, status=Code.Status.AVAILABLE)
        .order_by("pk")
        .first()
    )
    if code is None:
        if not offer.generate_on_demand:
            raise ApplicationError(
                "inventory_empty",
                _("No codes are left for “%(offer)s”. Ask a supervisor to add codes.") % {"offer": offer.name},
                status=409,
            )
        code = _generate_one(offer=offer)
    code.status = Code.Status.ISSUED
    code.issued_at = now
    code.expires_at = now + timedelta(days=offer.validity_days)
    code.save(update_fields=["status", "issued_at", "expires_at"])
    code_issued_event(code=code, actor_user=actor, reason=reason)
    return IssuedCode(code=code, plaintext=codes.decrypt(code.ciphertext))


def _generate_one(*, offer: Offer) -> Code:
    balance = offer.value_amount if offer.has_balance else None
    new = _new_generated(prefix=offer.code_prefix, balance=balance)
    return Code.objects.create(
        offer=offer,
        lookup_hash=codes.lookup_hash(new.normalised),
        ciphertext=codes.encrypt(new.display),
        last4=codes.last4(new.normalised),
        currency=offer.currency,
        initial_balance_amount=balance,
        balance_amount=balance,
    )


@transaction.atomic
def code_void(*, code: Code, actor, reason: str) -> Code:
    """Cancel an unredeemed code (issued or still in the inventory)."""
    if not reason.strip():
        raise ValidationError({"reason": _("Say why the code is voided.")})
    # Locked so the ledger's from-state is the state we changed.
    locked = Code.objects.select_for_update().get(pk=code.pk)
    if locked.status not in (Code.Status.AVAILABLE, Code.Status.ISSUED):
        raise ApplicationError("not_voidable", _("Only an unredeemed, unexpired code can be voided."), status=409)
    from_status = locked.status
    locked.status = Code.Status.VOIDED
    locked.voided_at = timezone.now()
    locked.save(update_fields=["status", "voided_at"])
    code_voided_event(code=locked, from_status=from_status, actor_user=actor, reason=reason)
    return locked


def codes_expire(*, now=None, chunk: int = 1000) -> int:
    """Move issued codes past their expiry to `expired`, with a ledger row each."""
    now = now or timezone.now()
    total = 0
    while True:
        with transaction.atomic():
            batch = list(
                Code.objects.select_for_update(skip_locked=True)
                .filter(status=Code.Status.ISSUED, expires_at__lte=now)
                .order_by("pk")[:chunk]
            )
            if not batch:
                return total
            Code.objects.filter(pk__in=[code.pk for code in batch]).update(status=Code.Status.EXPIRED)
            code_expired_events(codes=batch)
            total += len(batch)
