"""The API request's id follows an issuance into the worker that sends its delivery,
and still does when the outbox sweeper re-enqueues the delivery later (the message was
lost, or the send is retried): the worker's log lines carry it."""

from __future__ import annotations

import io
import logging
import threading
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.utils import timezone

from appease.celery import app
from appease.delivery.models import Delivery
from appease.delivery.services import deliveries_sweep
from tests.factories import customer_create, offer_create, policy_create, reason_create, staff_user

SEND_TASK = "appease.delivery.tasks.delivery_send_task"


@pytest.fixture
def worker_log():
    """What the configured console handler (RequestIdFilter, redaction, plain format)
    writes while the test runs."""
    root = logging.getLogger()
    handler = next(handler for handler in root.handlers if handler.get_name() == "console")
    stream = io.StringIO()
    previous, level = handler.setStream(stream), root.level
    # A worker started earlier in the session (start_worker's loglevel) leaves the root
    # logger at ERROR; the project's LOGGING has it at INFO.
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        handler.setStream(previous)
        root.setLevel(level)


def issue_through_the_api(client, request_id: str) -> Delivery:
    csr = staff_user(policy=policy_create(day_cost_amount=1000))
    client.force_login(csr)
    response = client.post(
        "/api/v1/issuances",
        {"customer_id": customer_create().pk, "offer_id": offer_create().pk, "reason_code": reason_create().code},
        content_type="application/json",
        HTTP_X_REQUEST_ID=request_id,
    )
    assert response.status_code == 201, response.content
    return Delivery.objects.get(issuance_id=response.json()["id"])


def sent_lines(log: str, delivery: Delivery) -> list[str]:
    return [line for line in log.splitlines() if f"delivery {delivery.pk} sent" in line]


@pytest.fixture
def real_worker():
    """A solo-pool worker in a thread on the project's broker; its log records go through
    the project's LOGGING (the worker does not take the root logger)."""
    saved = app.conf.worker_hijack_root_logger
    app.conf.worker_hijack_root_logger = False
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30) as running:
            yield running
    finally:
        app.conf.worker_hijack_root_logger = saved


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_logs_the_api_requests_id_when_it_sends_the_delivery(client, real_worker, worker_log):
    # given a real worker, and the ids of the deliveries its send tasks have run for
    # (a message another test left on the broker may run first)
    finished: set[str] = set()
    changed = threading.Condition()

    def on_postrun(sender=None, args=(), **kwargs):
        if sender is not None and sender.name == SEND_TASK and args:
            with changed:
                finished.add(str(args[0]))
                changed.notify_all()

    task_postrun.connect(on_postrun, weak=False)
    try:
        # when a CSR issues through the API with a request id (the task is published on commit)
        delivery = issue_through_the_api(client, "req-trace-worker-01")
        with changed:
            assert changed.wait_for(lambda: str(delivery.pk) in finished, 30), "the worker did not send it"
    finally:
        task_postrun.disconnect(on_postrun)

    # then the worker's log line of that send carries the request's id
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT
    lines = sent_lines(worker_log.getvalue(), delivery)
    assert lines and all("[req-trace-worker-01]" in line for line in lines), worker_log.getvalue()


@pytest.fixture
def tasks_run_inline():
    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


@pytest.mark.django_db
def test_the_sweeper_re_enqueues_a_lost_delivery_with_its_requests_id(
    client, django_capture_on_commit_callbacks, tasks_run_inline, worker_log
):
    # given a delivery queued by an API request whose message never reached the broker
    with django_capture_on_commit_callbacks(execute=False):  # the on-commit publish is lost
        delivery = issue_through_the_api(client, "req-trace-sweep-01")
    assert delivery.request_id == "req-trace-sweep-01"

    # when beat's sweeper (no request of its own) finds it due and re-enqueues it
    assert deliveries_sweep(now=timezone.now() + timedelta(minutes=1)) == 1

    # then the send runs with the original request's id in its log line
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT
    lines = sent_lines(worker_log.getvalue(), delivery)
    assert lines and all("[req-trace-sweep-01]" in line for line in lines), worker_log.getvalue()


@pytest.mark.django_db
def test_the_sweeper_puts_the_rows_request_id_in_the_message_headers(client, django_capture_on_commit_callbacks):
    # given a lost delivery of a request, and a publish hook reading the headers
    with django_capture_on_commit_callbacks(execute=False):
        delivery = issue_through_the_api(client, "req-trace-sweep-02")
    published = []

    from celery.signals import before_task_publish

    def capture(headers=None, body=None, **kwargs):
        published.append((headers or {}).get("request_id"))

    before_task_publish.connect(capture, weak=False)
    try:
        # when the sweeper re-enqueues it through the real broker
        deliveries_sweep(now=timezone.now() + timedelta(minutes=1))
    finally:
        before_task_publish.disconnect(capture)

    # then the message carries the row's request id
    assert delivery.request_id == "req-trace-sweep-02"
    assert published == ["req-trace-sweep-02"]
