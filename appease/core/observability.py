"""Observability: request ids that follow work into Celery tasks, log lines that never
carry a whole code, email address or phone number, and health checks.

- `RequestIdMiddleware` (appease/middleware.py) puts the request's id in a context
  variable; `RequestIdFilter` writes it on every log record; Celery's
  `before_task_publish` copies it into the task's headers and `task_prerun` restores
  it in the worker, so one issuance can be followed from the API through its tasks.
- `RedactFilter` rewrites the whole log record (message with its arguments, exception,
  stack, `extra` fields): codes keep their last four characters, email addresses their
  first letter and domain, phone numbers their last three digits. The formatters
  (`RedactingFormatter`, `RedactingJsonFormatter`) redact the finished line once more.
"""

from __future__ import annotations

import contextvars
import logging
import re
from collections.abc import Mapping

from celery.signals import before_task_publish, task_postrun, task_prerun
from pythonjsonlogger.json import JsonFormatter

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

EMAIL = re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b")
# International numbers (+ and 8 or more digits, spaced or not), or 9–15 digits in a row.
PHONE = re.compile(r"(?<![\w-])(?:\+\d[\d ()-]{6,}\d|\d{9,15})(?![\w-])")
# Our codes: optional prefix, then groups of four from the unambiguous alphabet,
# dash- or space-separated (coupons/codes.py), or 12+ such characters in one run.
CODE = re.compile(r"\b(?:[A-Z0-9]{2,10}-)?(?:[2-9A-HJ-NP-Z]{4}[- ]){2,}[2-9A-HJ-NP-Z]{1,4}\b|\b[2-9A-HJ-NP-Z]{12,}\b")


def redact(text: str) -> str:
    text = EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    text = CODE.sub(lambda m: "****-" + re.sub(r"[- ]", "", m.group(0))[-4:], text)
    return PHONE.sub(lambda m: "***" + re.sub(r"\D", "", m.group(0))[-3:], text)


# What every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id", "taskName"}


def redact_value(value):
    """`redact` through the values a log record can carry in `extra` (strings, numbers,
    dicts, lists); anything else becomes its redacted text, as a formatter would print it."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(item) for item in value]
    return redact(str(value))


class RedactFilter(logging.Filter):
    """Personal data and codes out of the whole record, before any formatter sees it:
    the message with its arguments rendered, the exception (its message and traceback),
    the stack and every `extra` field.

    The record is changed in place, so every handler after this one (and every formatter,
    plain or JSON) gets the redacted record. The exception is rendered into `exc_text`
    and `exc_info` dropped: a formatter would otherwise render the original again."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, dict) and not record.args:  # a structured message
            record.msg = redact_value(record.msg)
        else:
            try:
                message = record.getMessage()
            except Exception:  # a broken format string: leave it to the handler's error path
                message = None
            if message is not None:
                record.msg, record.args = redact(message), ()
        if record.exc_info:
            record.exc_text = self._formatter.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(record.__dict__.items()):
            if key not in _RECORD_ATTRS:
                record.__dict__[key] = redact_value(value)
        return True


class RedactingFormatter(logging.Formatter):
    """The plain formatter with the finished line redacted again: a backstop for
    anything a filter could not see (a handler without the filter, a new field)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def _redact_strings(value):
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redact_strings(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_strings(item) for item in value]
    return value


class RedactingJsonFormatter(JsonFormatter):
    """One JSON object per line, every string in it redacted again (see
    RedactingFormatter). The values, not the finished line: a long number (an id, a
    byte count) must stay a JSON number, not become `***890`."""

    def process_log_record(self, log_data):
        return _redact_strings(super().process_log_record(log_data))


# The one JSON line format, for Django's LOGGING and gunicorn's logconfig_dict alike.
JSON_FORMATTER = {
    "()": "appease.core.observability.RedactingJsonFormatter",
    "format": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
    "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
}


class GunicornAccessFilter(logging.Filter):
    """gunicorn logs a request as `access_log_format % atoms`: lift the atoms we want
    into fields of the JSON line (before RedactFilter renders the message)."""

    FIELDS = {"method": "m", "path": "U", "status": "s", "bytes": "B", "ms": "M", "request_id": "{x-request-id}o"}
    NUMBERS = frozenset({"status", "bytes", "ms"})

    def filter(self, record: logging.LogRecord) -> bool:
        atoms = record.args if isinstance(record.args, Mapping) else None
        if atoms is not None:
            for field, atom in self.FIELDS.items():
                value = atoms[atom]
                if field in self.NUMBERS:
                    value = int(value) if str(value).isdigit() else None
                elif value == "-":
                    value = ""
                setattr(record, field, value)
        return True


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = request_id_var.get()
        return True


@before_task_publish.connect(dispatch_uid="appease-request-id-publish")
def _request_id_into_headers(headers=None, **kwargs) -> None:
    # A request id given with the task (the sweeper passes the delivery row's) stands.
    request_id = request_id_var.get()
    if headers is not None and request_id and not headers.get("request_id"):
        headers["request_id"] = request_id


@task_prerun.connect(dispatch_uid="appease-request-id-prerun")
def _request_id_from_headers(task=None, **kwargs) -> None:
    request_id = getattr(task.request, "request_id", None) if task is not None else None
    if request_id is None and task is not None:
        headers = getattr(task.request, "headers", None) or {}
        request_id = headers.get("request_id")
    request_id_var.set(request_id or "")


@task_postrun.connect(dispatch_uid="appease-request-id-postrun")
def _request_id_clear(**kwargs) -> None:
    request_id_var.set("")
