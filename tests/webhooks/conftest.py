"""A real local HTTP server as the receiver (pytest-httpserver), endpoints made through
the services, and private networks allowed so the receiver on 127.0.0.1 is reachable
(tests of the guard turn it off)."""

from __future__ import annotations

import pytest

from appease.core.context import Actor
from appease.webhooks.services import webhook_endpoint_create
from tests.delivery.channels.conftest import httpserver_listen_address  # noqa: F401
from tests.factories import staff_user


@pytest.fixture
def private_allowed(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    settings.WEBHOOKS_TIMEOUT = 1
    return settings


@pytest.fixture
def supervisor(db):
    return staff_user("Supervisor")


@pytest.fixture
def make_endpoint(supervisor, private_allowed):
    def make(url: str, events: list[str]):
        return webhook_endpoint_create(actor=Actor(user=supervisor), url=url, events=events)

    return make
