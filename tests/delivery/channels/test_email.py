"""EmailAdapter against a real SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import time

import pytest
from django.core import mail

from appease.delivery.channels.base import PermanentError, SendResult, TransientError, adapter_for
from appease.delivery.channels.email import EmailAdapter, message_id
from tests.delivery.channels.conftest import free_port, make_message

TEXT = "Sorry about your order. Your code: ABCD-EFGH-JKLM"
HTML = "<p>Sorry about your order.</p><p>Your code: <strong>ABCD-EFGH-JKLM</strong></p>"


def test_text_and_html_parts_arrive_with_the_stable_message_id(smtp_server):
    # given
    message = make_message(text=TEXT, html=HTML, subject="Lo sentimos mucho", idempotency_key="delivery-42")

    # when
    result = adapter_for("email").send(message)

    # then
    assert result == SendResult(provider_message_id="<delivery-42@appease>")
    [received] = smtp_server.handler.messages
    assert received["Message-ID"] == "<delivery-42@appease>"
    assert received["Subject"] == "Lo sentimos mucho"
    assert received["To"] == "maria@example.com"
    assert received["From"] == "Appease <no-reply@appease.example>"
    assert received.get_body(("plain",)).get_content().strip() == TEXT
    assert received.get_body(("html",)).get_content().strip() == HTML
    assert smtp_server.handler.envelopes == [("no-reply@appease.example", ["maria@example.com"])]


def test_a_resend_of_the_same_delivery_carries_the_same_message_id(smtp_server):
    # given
    message = make_message(idempotency_key="delivery-7c4e")
    adapter = adapter_for("email")

    # when
    first = adapter.send(message)
    second = adapter.send(message)

    # then the receiver gets two copies it can recognise as one
    assert first.provider_message_id == second.provider_message_id == message_id("delivery-7c4e")
    assert [m["Message-ID"] for m in smtp_server.handler.messages] == ["<delivery-7c4e@appease>"] * 2


def test_a_text_only_message_has_no_html_part(smtp_server):
    adapter_for("email").send(make_message(html=None))

    [received] = smtp_server.handler.messages
    assert not received.is_multipart()
    assert received.get_content().strip() == "Sorry about your order. Your code: ABCD-EFGH-JKLM"


def test_a_recipient_refused_with_550_is_a_permanent_invalid_address(smtp_server):
    # given
    smtp_server.handler.rcpt_replies["nobody@example.com"] = "550 5.1.1 <nobody@example.com>: no such user"

    # when
    with pytest.raises(PermanentError) as caught:
        adapter_for("email").send(make_message(to="nobody@example.com"))

    # then
    assert caught.value.reason == "invalid_address"
    assert caught.value.status_code == 550
    assert "nobody" not in caught.value.detail  # the server's reply echoes the address: not kept
    assert smtp_server.handler.messages == []


def test_a_recipient_refused_with_451_is_transient(smtp_server):
    smtp_server.handler.rcpt_replies["busy@example.com"] = "451 4.3.0 try again later"

    with pytest.raises(TransientError) as caught:
        adapter_for("email").send(make_message(to="busy@example.com"))

    assert caught.value.status_code == 451
    assert caught.value.retry_after is None


def test_a_message_refused_at_data_with_554_is_permanent_rejected(smtp_server):
    smtp_server.handler.data_reply = "554 5.7.1 message refused as spam"

    with pytest.raises(PermanentError) as caught:
        adapter_for("email").send(make_message())

    assert caught.value.reason == "rejected"
    assert caught.value.status_code == 554


def test_a_message_deferred_at_data_with_452_is_transient(smtp_server):
    smtp_server.handler.data_reply = "452 4.3.1 insufficient system storage"

    with pytest.raises(TransientError) as caught:
        adapter_for("email").send(make_message())

    assert caught.value.status_code == 452


def test_a_server_that_is_down_is_transient(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()  # nothing listens there

    with pytest.raises(TransientError) as caught:
        adapter_for("email").send(make_message())

    assert "ConnectionRefusedError" in caught.value.detail


def test_a_server_that_never_answers_times_out_as_transient(settings, silent_server):
    # given a server that accepts the connection and never sends its greeting
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = silent_server
    settings.EMAIL_TIMEOUT = 0.5

    # when
    started = time.monotonic()
    with pytest.raises(TransientError):
        adapter_for("email").send(make_message())

    # then the timeout from settings was used: without it the send waits for ever, and the
    # default EMAIL_TIMEOUT is 10 s (20 times the 0.5 s set here: room for a loaded machine)
    assert time.monotonic() - started < 10


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_refused_credentials_are_permanent_unauthorized(smtp_server_refusing_login):
    with pytest.raises(PermanentError) as caught:
        adapter_for("email").send(make_message())

    assert caught.value.reason == "unauthorized"
    assert caught.value.status_code == 535


def test_a_malformed_address_is_refused_before_connecting(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()  # would be a TransientError if it connected

    with pytest.raises(PermanentError) as caught:
        adapter_for("email").send(make_message(to="maria at example.com"))

    assert caught.value.reason == "invalid_address"
    assert "maria" not in caught.value.detail


def test_a_subject_with_a_newline_is_rejected_not_injected(smtp_server):
    with pytest.raises(PermanentError) as caught:
        adapter_for("email").send(make_message(subject="Hi\nBcc: everyone@example.com"))

    assert caught.value.reason == "rejected"
    assert smtp_server.handler.messages == []


def test_any_django_backend_works_here_the_locmem_one(settings):
    # given pytest-django's in-memory backend
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    # when
    result = EmailAdapter(from_email="shop@example.com").send(make_message(html=HTML, idempotency_key="delivery-1"))

    # then
    [sent] = mail.outbox
    assert sent.extra_headers["Message-ID"] == result.provider_message_id == "<delivery-1@appease>"
    assert sent.alternatives[0][0] == HTML
    assert sent.from_email == "shop@example.com"
