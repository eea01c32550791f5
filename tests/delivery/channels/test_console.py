"""The demo LogAdapter: messages land in var/outbox/<channel>.log and on stdout."""

from __future__ import annotations

import json

from appease.delivery.channels.base import adapter_for
from appease.delivery.channels.console import LogAdapter
from tests.delivery.channels.conftest import make_message


def test_the_message_is_appended_to_the_channel_log_and_printed(settings, tmp_path, capsys):
    # given
    settings.DELIVERY_LOG_DIR = tmp_path / "outbox"
    settings.DELIVERY_ADAPTERS = {**settings.DELIVERY_ADAPTERS, "sms": "appease.delivery.channels.console.LogAdapter"}
    adapter = adapter_for("sms")
    first = make_message(channel="sms", to="+5511987654321", subject="", text="Seu código: ABCD-EFGH")
    second = make_message(channel="sms", to="+34600111222", subject="", text="Tu código: WXYZ-2345")

    # when
    one = adapter.send(first)
    two = adapter.send(second)

    # then
    assert isinstance(adapter, LogAdapter)
    assert one.provider_message_id != two.provider_message_id
    assert one.provider_message_id.startswith("log-")
    log = (tmp_path / "outbox" / "sms.log").read_text()
    entries = [entry.strip() for entry in log.split("-" * 72) if entry.strip()]
    assert len(entries) == 2
    header, text = entries[0].split("\n", 1)
    assert json.loads(header) | {"at": None} == {
        "at": None,
        "id": one.provider_message_id,
        "channel": "sms",
        "to": "+5511987654321",
        "idempotency_key": first.idempotency_key,
        "metadata": {"delivery_id": 7, "issuance_id": 3},
    }
    assert text == "Seu código: ABCD-EFGH"
    assert "Tu código: WXYZ-2345" in entries[1]
    assert capsys.readouterr().out == log


def test_each_channel_has_its_own_file(settings, tmp_path, capsys):
    settings.DELIVERY_LOG_DIR = tmp_path
    settings.DELIVERY_ADAPTERS = {
        **settings.DELIVERY_ADAPTERS,
        "chat": "appease.delivery.channels.console.LogAdapter",
        "social": "appease.delivery.channels.console.LogAdapter",
    }

    adapter_for("chat").send(make_message(channel="chat", to="whatsapp:+34600111222", text="chat text"))
    adapter_for("social").send(make_message(channel="social", to="@maria_g", text="social text"))

    assert "chat text" in (tmp_path / "chat.log").read_text()
    assert "social text" in (tmp_path / "social.log").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chat.log", "social.log"]
