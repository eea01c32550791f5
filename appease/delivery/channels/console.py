"""Demo delivery for SMS, chat and social: the message goes to var/outbox/<channel>.log
and to stdout, so `make demo` shows what a customer would get with no provider at all.

It writes the full text, code included, so settings only use it with DEBUG on (with
DEBUG off an unconfigured channel is disabled: ADR 0002 keeps codes out of logs). Email
needs nothing here: Django's console or file EMAIL_BACKEND does the same.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import TextIO

from django.conf import settings
from django.utils import timezone

from appease.delivery.channels.base import OutboundMessage, SendResult


class LogAdapter:
    def __init__(self, *, channel: str, directory: Path | str, stream: TextIO | None = None) -> None:
        self.channel = channel
        self.directory = Path(directory)
        self.stream = stream

    @classmethod
    def from_settings(cls, channel: str) -> LogAdapter:
        return cls(channel=channel, directory=settings.DELIVERY_LOG_DIR)

    @property
    def path(self) -> Path:
        return self.directory / f"{self.channel}.log"

    def send(self, message: OutboundMessage) -> SendResult:
        provider_id = f"log-{uuid.uuid4()}"
        header = {
            "at": timezone.now().isoformat(timespec="seconds"),
            "id": provider_id,
            "channel": message.channel,
            "to": message.to,
            "idempotency_key": message.idempotency_key,
            "metadata": message.metadata,
        }
        entry = f"{json.dumps(header, default=str, ensure_ascii=False)}\n{message.text}\n{'-' * 72}\n"
        self.directory.mkdir(parents=True, exist_ok=True)
        # One O_APPEND write per entry (a regular file takes it whole), so entries from the
        # web process and the worker do not interleave.
        data = entry.encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            while data:
                data = data[os.write(fd, data) :]
        finally:
            os.close(fd)
        stream = self.stream or sys.stdout
        stream.write(entry)
        stream.flush()
        return SendResult(provider_message_id=provider_id)
