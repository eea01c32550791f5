"""A real Celery worker generates a batch: message through the configured broker, rows
through a second database connection.

The broker is whatever the settings say: the file-system transport under var/broker by
default (the SQLite run), Redis when REDIS_URL is set (the PostgreSQL run). The worker
runs in a thread of this process; on SQLite, Django's in-memory test database uses a
shared cache, so the worker thread's connection sees what the test committed.
"""

import threading
import time

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.core.management import call_command

from appease.celery import _make_broker_folders, app
from coupons.models import Code, CodeBatch
from coupons.services.inventory import code_batch_request
from tests.factories import gift_card_offer_create

GENERATE_TASK = "coupons.tasks.code_batch_generate_task"
TIMEOUT_SECONDS = 20


@pytest.fixture(scope="module")
def worker():
    """A solo-pool worker in a thread, on the project's app and broker; one per module
    (starting and stopping one takes seconds)."""
    saved = app.conf.worker_hijack_root_logger
    # Leave pytest's log capture alone.
    app.conf.worker_hijack_root_logger = False
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30) as running:
            yield running
    finally:
        app.conf.worker_hijack_root_logger = saved


@pytest.fixture
def finished_batches():
    """Ids of the batches a worker has finished a generation task for, as they finish."""
    finished: dict[int, threading.Event] = {}
    lock = threading.Lock()

    def event_for(batch_id: int) -> threading.Event:
        with lock:
            return finished.setdefault(batch_id, threading.Event())

    def on_postrun(sender=None, args=(), **kwargs):
        if sender is not None and sender.name == GENERATE_TASK and args:
            event_for(args[0]).set()

    task_postrun.connect(on_postrun, weak=False)
    yield event_for
    task_postrun.disconnect(on_postrun)


def wait_until_done(batch: CodeBatch, finished_batches) -> CodeBatch:
    """Wait for the worker's task to finish (bounded), then poll the row (bounded)."""
    assert finished_batches(batch.pk).wait(TIMEOUT_SECONDS), "the worker did not run the generation task"
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while True:
        batch.refresh_from_db()
        if batch.status not in (CodeBatch.Status.PENDING, CodeBatch.Status.RUNNING) or time.monotonic() > deadline:
            return batch
        time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
def test_a_worker_generates_a_requested_batch(worker, finished_batches):
    # given
    offer = gift_card_offer_create(code_prefix="GIFT")
    # when: the request commits, and only then enqueues the task
    batch = code_batch_request(offer=offer, quantity=50)
    # then
    batch = wait_until_done(batch, finished_batches)
    assert batch.status == CodeBatch.Status.DONE, batch.error
    assert Code.objects.filter(batch=batch, status=Code.Status.AVAILABLE).count() == 50


@pytest.mark.django_db(transaction=True)
def test_generate_codes_wait_returns_once_the_worker_is_done(worker, capsys):
    # given
    offer = gift_card_offer_create()
    # when
    call_command("generate_codes", "--offer", str(offer.pk), "--count", "20", "--wait", "--timeout", "20")
    # then
    batch = CodeBatch.objects.get()
    assert batch.status == CodeBatch.Status.DONE
    assert Code.objects.filter(batch=batch).count() == 20
    assert f"Generated 20 codes for “{offer.name}” as batch {batch.pk}." in capsys.readouterr().out


def test_the_app_makes_the_file_system_transport_folders(tmp_path):
    # given: a fresh app configured like the demo, whose folders do not exist yet
    demo = Celery("demo", set_as_current=False)
    demo.conf.broker_url = "filesystem://"
    demo.conf.broker_transport_options = {
        "data_folder_in": str(tmp_path / "broker" / "queue"),
        "data_folder_out": str(tmp_path / "broker" / "queue"),
        "control_folder": str(tmp_path / "broker" / "control"),
    }
    demo.on_after_configure.connect(_make_broker_folders)
    # when: Celery reads its configuration (as a web process or a worker does first)
    with demo.connection_for_write() as connection:
        connection.default_channel.queue_declare("celery")
    # then
    assert (tmp_path / "broker" / "queue").is_dir()
    assert (tmp_path / "broker" / "control").is_dir()


def test_the_app_makes_no_folders_for_another_broker(tmp_path):
    # given
    other = Celery("other", set_as_current=False)
    other.conf.broker_url = "redis://127.0.0.1:1/0"
    other.conf.broker_transport_options = {"data_folder_in": str(tmp_path / "queue")}
    # when
    _make_broker_folders(sender=other)
    # then
    assert not (tmp_path / "queue").exists()
