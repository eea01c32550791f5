"""Real local servers for the channel adapters: an SMTP server (aiosmtpd) and an HTTP
server playing the provider (pytest-httpserver's `httpserver`), both on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from appease.delivery.channels.base import OutboundMessage


def free_port() -> int:
    """A port nothing listens on (free a moment ago; fine on a test machine)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_message(**overrides) -> OutboundMessage:
    fields = {
        "channel": "email",
        "to": "maria@example.com",
        "subject": "We're sorry",
        "text": "Sorry about your order. Your code: ABCD-EFGH-JKLM",
        "html": None,
        "idempotency_key": f"delivery-{uuid.uuid4()}",
        "metadata": {"delivery_id": 7, "issuance_id": 3},
    }
    return OutboundMessage(**{**fields, **overrides})


@dataclass
class RecordingHandler:
    """Accepts mail and keeps it, unless told to answer a recipient or DATA otherwise."""

    messages: list[email.message.EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)  # address -> e.g. "550 5.1.1 no such user"
    data_reply: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))
        return "250 2.0.0 queued"


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: RecordingHandler


def _start(controller: Controller) -> Controller:
    controller.start()
    return controller


@pytest.fixture
def smtp_server(settings) -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1, and Django's SMTP backend pointed at it."""
    handler = RecordingHandler()
    controller = _start(Controller(handler, hostname="127.0.0.1", port=free_port()))
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    settings.DEFAULT_FROM_EMAIL = "Appease <no-reply@appease.example>"
    try:
        yield SmtpServer("127.0.0.1", controller.port, handler)
    finally:
        controller.stop()


@pytest.fixture
def smtp_server_refusing_login(settings) -> Iterator[SmtpServer]:
    """An SMTP server that offers AUTH (without TLS, for the test) and refuses every login."""

    def refuse(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=False, handled=False)

    handler = RecordingHandler()
    controller = _start(
        Controller(
            handler,
            hostname="127.0.0.1",
            port=free_port(),
            authenticator=refuse,
            auth_require_tls=False,
        )
    )
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = "appease"
    settings.EMAIL_HOST_PASSWORD = "wrong"
    try:
        yield SmtpServer("127.0.0.1", controller.port, handler)
    finally:
        controller.stop()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel's backlog) but never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    # pytest-httpserver's default host is "localhost"; pin IPv4 so nothing depends on
    # how this machine resolves it.
    return ("127.0.0.1", 0)
