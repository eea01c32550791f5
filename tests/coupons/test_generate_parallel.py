"""The parallel COPY path of code generation (PostgreSQL, several processes)."""

import pytest

from coupons import codes
from coupons.models import Code, CodeBatch
from coupons.services import inventory
from tests.factories import gift_card_offer_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_parallel_generation_writes_valid_unique_codes(monkeypatch):
    # given: the parallel path from 1,000 codes on, in chunks that do not divide evenly
    monkeypatch.setattr(inventory, "PARALLEL_MIN_CODES", 1_000)
    monkeypatch.setattr(inventory, "PARALLEL_CHUNK", 300)
    monkeypatch.setattr(inventory.os, "sched_getaffinity", lambda pid: {0, 1})
    offer = gift_card_offer_create(code_prefix="GIFT")
    batch = inventory.code_batch_request(offer=offer, quantity=1_000)
    seen = []
    # when
    done = inventory.code_batch_generate(batch_id=batch.pk, progress=seen.append)
    # then
    assert done.status == CodeBatch.Status.DONE
    assert sum(seen) == 1_000
    stored = Code.objects.filter(batch=batch)
    assert stored.count() == 1_000
    assert stored.values("lookup_hash").distinct().count() == 1_000
    for code in stored.order_by("?")[:50]:
        plaintext = codes.decrypt(code.ciphertext)
        normalised = codes.normalise(plaintext)
        assert plaintext.startswith("GIFT-")
        assert bytes(code.lookup_hash) == codes.lookup_hash(normalised)
        assert code.last4 == normalised[-4:]
        assert code.balance_amount == offer.value_amount == code.initial_balance_amount
        assert code.status == Code.Status.AVAILABLE
