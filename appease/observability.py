"""Observability: request ids that follow work into Celery tasks, log lines that never
carry a whole code, email address or phone number, and health checks.

- `RequestIdMiddleware` (appease/middleware.py) puts the request's id in a context
  variable; `RequestIdFilter` writes it on every log record; Celery's
  `before_task_publish` copies it into the task's headers and `task_prerun` restores
  it in the worker, so one issuance can be followed from the API through its tasks.
- `RedactFilter` rewrites every log message: codes keep their last four characters,
  email addresses their first letter and domain, phone numbers their last three digits.
"""

from __future__ import annotations

import contextvars
import logging
import re

from celery.signals import before_task_publish, task_postrun, task_prerun

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


class RedactFilter(logging.Filter):
    """Personal data and codes out of every message (the formatted message, so values
    passed as arguments are caught too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler's error path
            return True
        redacted = redact(message)
        if redacted != message or record.args:
            record.msg, record.args = redacted, ()
        return True


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


@before_task_publish.connect(dispatch_uid="appease-request-id-publish")
def _request_id_into_headers(headers=None, **kwargs) -> None:
    request_id = request_id_var.get()
    if headers is not None and request_id:
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
