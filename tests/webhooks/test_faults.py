"""No webhook is lost when the worker dies mid-post: a real `celery worker` SIGKILLed
while the receiver holds the request, its lease runs out, the sweeper hands the row to a
live worker, and the receiver, deduplicating on the event id, acts once.

Real processes as in tests/delivery/test_faults.py (its broker and worker fixtures): a
private redis-server, worker subprocesses on the pytest database, the receiver an HTTP
server in a thread. PostgreSQL and Redis only.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.db import transaction

from appease.core.context import Actor
from appease.delivery.models import Delivery
from appease.webhooks.services import webhook_endpoint_create, webhook_event_emit
from appease.webhooks.signing import verify
from tests.delivery.test_faults import (  # noqa: F401  (broker and workers are fixtures)
    TIMEOUT,
    broker,
    serving,
    sweep_until,
    workers,
)
from tests.delivery.test_faults import pytestmark as fault_marks
from tests.factories import staff_user

pytestmark = fault_marks


@dataclass
class Received:
    event_id: str
    body: bytes
    signature: str


class Receiver(ThreadingHTTPServer):
    """A merchant's endpoint: keeps every request, acts once per event id (`processed`),
    and holds its answer to the first request until `release` (or `hold_first` s)."""

    daemon_threads = True

    def __init__(self, *, hold_first: float) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hold_first = hold_first
        self.requests: list[Received] = []
        self.processed: list[str] = []
        self.first_received = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def handle_error(self, request, client_address) -> None:
        pass  # the held answer to a killed worker goes nowhere: expected


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        receiver = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        event_id = self.headers.get("Appease-Event-Id", "")
        with receiver.lock:
            receiver.requests.append(Received(event_id, body, self.headers.get("Appease-Signature", "")))
            first = len(receiver.requests) == 1
            if event_id not in receiver.processed:  # dedup on the event id
                receiver.processed.append(event_id)
        if first:
            receiver.first_received.set()
            receiver.release.wait(receiver.hold_first)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format, *args) -> None:
        pass


def test_a_worker_killed_mid_post_loses_no_event_and_the_receiver_acts_once(broker, workers, settings):  # noqa: F811
    # The sweeper (this process) and the workers use a 2 s lease: the same path as the
    # production 20 s one (tests/delivery/test_faults.py waits that out), faster.
    settings.DELIVERY_LEASE = timedelta(seconds=2)
    settings.DELIVERY_SWEEP_EVERY = settings.DELIVERY_LEASE / 2
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    env = {"WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "1", "DELIVERY_LEASE_SECONDS": "2", "WEBHOOKS_TIMEOUT": "30"}
    with serving(Receiver(hold_first=15)) as receiver:
        # given: an endpoint, a worker, and an event it picks up
        _endpoint, secret = webhook_endpoint_create(
            actor=Actor(user=staff_user("Supervisor")), url=receiver.url, events=["redemption.created"]
        )
        broker.start()
        worker = workers.start(**env)
        with transaction.atomic():
            event = webhook_event_emit(type="redemption.created", data={"redemption_id": "r-1"})
        delivery = Delivery.objects.get(webhook__event=event)
        # when: the receiver has the request and the worker is SIGKILLed before the answer
        assert receiver.first_received.wait(TIMEOUT), f"the receiver got nothing\n{workers.logs()}"
        worker.kill()
        receiver.release.set()
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == (Delivery.Status.SENDING, 1)
        # when: a worker is back and beat's sweeper runs
        workers.start(**env)

        def sent() -> bool:
            delivery.refresh_from_db()
            return delivery.status == Delivery.Status.SENT

        sweep_until(sent, what="the webhook to be sent again", workers=workers, timeout=90)
        # then: two requests with one event id and the same body, both signed; one action
        assert [request.event_id for request in receiver.requests] == [str(event.pk)] * 2
        assert receiver.requests[0].body == receiver.requests[1].body
        assert all(verify(request.body, request.signature, secret) for request in receiver.requests)
        assert json.loads(receiver.requests[1].body)["id"] == str(event.pk)
        assert receiver.processed == [str(event.pk)]
        assert delivery.attempts == 2
        assert list(delivery.attempt_log.values_list("number", "outcome", "status_code")) == [(2, "sent", 204)]
