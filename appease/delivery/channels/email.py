"""Email through Django's email framework (whatever EMAIL_BACKEND is: SMTP in
production, the console in the demo)."""

from __future__ import annotations

import smtplib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import BadHeaderError, EmailMultiAlternatives, get_connection
from django.core.validators import validate_email

from appease.delivery.channels.base import (
    INVALID_ADDRESS,
    REJECTED,
    UNAUTHORIZED,
    DeliveryError,
    OutboundMessage,
    PermanentError,
    SendResult,
    TransientError,
)

MESSAGE_ID_DOMAIN = "appease"


def message_id(idempotency_key: str) -> str:
    """The Message-ID of a delivery: the same on every resend of it, unlike
    `make_msgid()`, so a receiver that keeps Message-IDs can recognise a duplicate."""
    return f"<{idempotency_key}@{MESSAGE_ID_DOMAIN}>"


class EmailAdapter:
    """Sends a text email with an optional HTML alternative; one connection per send."""

    def __init__(self, *, from_email: str | None = None, timeout: float = 10, backend: str | None = None) -> None:
        self.from_email = from_email
        self.timeout = timeout
        self.backend = backend  # None: settings.EMAIL_BACKEND

    @classmethod
    def from_settings(cls, channel: str = "email") -> EmailAdapter:
        return cls(from_email=settings.DEFAULT_FROM_EMAIL, timeout=settings.EMAIL_TIMEOUT)

    def send(self, message: OutboundMessage) -> SendResult:
        try:
            validate_email(message.to)
        except ValidationError:
            raise PermanentError(INVALID_ADDRESS, "the recipient is not a valid email address") from None
        msgid = message_id(message.idempotency_key)
        email = EmailMultiAlternatives(
            subject=message.subject,
            body=message.text,
            from_email=self.from_email,
            to=[message.to],
            headers={"Message-ID": msgid},
            connection=get_connection(self.backend, fail_silently=False, timeout=self.timeout),
        )
        if message.html:
            email.attach_alternative(message.html, "text/html")
        try:
            sent = email.send(fail_silently=False)
        except BadHeaderError:
            raise PermanentError(REJECTED, "a header (subject or address) holds a newline") from None
        except smtplib.SMTPException as exc:
            raise _smtp_error(exc) from exc
        except OSError as exc:  # refused, reset, unreachable, timed out (socket.timeout), TLS
            raise TransientError(f"email: {type(exc).__name__}") from exc
        if not sent:
            raise TransientError("email: the backend reported nothing sent")
        return SendResult(provider_message_id=msgid)


def _smtp_error(exc: smtplib.SMTPException) -> DeliveryError:
    """4xx replies are transient, 5xx permanent; a refused recipient is an invalid address,
    refused credentials are `unauthorized`. Reply texts are not kept: they echo addresses."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        # Only raised when every recipient was refused; there is exactly one.
        code = next(iter(exc.recipients.values()), (None, b""))[0]
        return _by_code(code, "refused the recipient", INVALID_ADDRESS)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return _by_code(exc.smtp_code, "refused our credentials", UNAUTHORIZED)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return _by_code(exc.smtp_code, "refused the sender", REJECTED)
    if isinstance(exc, smtplib.SMTPResponseException):  # SMTPDataError, SMTPConnectError, HELO
        return _by_code(exc.smtp_code, "refused the message", REJECTED)
    # SMTPServerDisconnected, SMTPNotSupportedError (no STARTTLS) and the like.
    return TransientError(f"email: {type(exc).__name__}")


def _by_code(code: int | None, what: str, reason: str) -> DeliveryError:
    if isinstance(code, int) and 500 <= code < 600:
        return PermanentError(reason, f"SMTP server {what}: {code}", status_code=code)
    return TransientError(f"SMTP server {what}: {code}", status_code=code)
