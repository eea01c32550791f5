"""The same delivery task run twice at once sends once (PostgreSQL, real threads)."""

import pytest

from appease.delivery.models import Delivery
from appease.delivery.services import delivery_send
from tests.delivery.test_outbox import issue
from tests.issuance.test_concurrency import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_the_same_task_twice_at_once_sends_once(smtp_server):
    # given
    delivery = issue().deliveries.get()
    # when: ten workers got the same message
    results = run_together(10, lambda i: delivery_send(delivery_id=delivery.pk))
    # then
    assert sorted(results, key=str) == ["not_due"] * 9 + ["sent"]
    assert len(smtp_server.handler.messages) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.SENT, 1)
