"""A code's life: generated or imported, issued, voided or expired; and the housekeeping."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from appease.celery import app
from appease.core.exceptions import ApplicationError
from appease.core.idempotency import idempotency_key_begin, idempotency_keys_purge
from appease.core.models import IdempotencyKey
from coupons import codes
from coupons.models import Code, CodeBatch, CodeEvent, Offer
from coupons.services.inventory import (
    code_batch_generate,
    code_batch_import,
    code_batch_request,
    code_batches_sweep,
    code_issue,
    code_void,
    codes_expire,
)
from coupons.services.redemption import redemption_create
from tests.factories import gift_card_offer_create, issued_code, merchant_with_key, offer_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager_celery():
    """Tasks run in-process when enqueued, and their errors propagate."""
    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


def inventory_offer(**fields) -> Offer:
    return offer_create(generate_on_demand=False, **fields)


# --- issue -----------------------------------------------------------------------------


def test_issue_claims_the_oldest_available_code_and_sets_its_expiry():
    # given
    offer = inventory_offer(validity_days=30)
    code_batch_import(offer=offer, text="AAAA-BBBB-CCCC\nDDDD-EEEE-FFFF\n")
    first, second = Code.objects.order_by("pk")
    # when
    issued = code_issue(offer=offer, reason="late delivery")
    # then
    assert issued.code.pk == first.pk
    assert issued.plaintext == "AAAA-BBBB-CCCC"
    issued.code.refresh_from_db()
    assert issued.code.status == Code.Status.ISSUED
    assert issued.code.expires_at == issued.code.issued_at + timedelta(days=30)
    assert timezone.now() - issued.code.issued_at < timedelta(minutes=1)
    second.refresh_from_db()
    assert second.status == Code.Status.AVAILABLE
    event = CodeEvent.objects.get(code=issued.code)
    assert (event.kind, event.from_status, event.to_status) == ("issued", "available", "issued")
    assert event.reason == "late delivery"
    # and the next issue takes the next code
    assert code_issue(offer=offer).code.pk == second.pk


def test_issuing_a_gift_card_records_its_balance_in_the_ledger():
    # given
    offer = gift_card_offer_create(generate_on_demand=False)
    code_batch_import(offer=offer, text="AAAA-BBBB,30\n")
    # when
    issued = code_issue(offer=offer)
    # then
    event = CodeEvent.objects.get(code=issued.code)
    assert event.kind == CodeEvent.Kind.ISSUED
    assert event.amount == Decimal("30.00")
    assert event.balance_after_amount == Decimal("30.00")
    assert event.currency == "USD"


def test_issue_from_an_empty_inventory_is_refused():
    # given
    offer = inventory_offer()
    code_batch_import(offer=offer, text="AAAA-BBBB\n")
    code_issue(offer=offer)
    # when
    with pytest.raises(ApplicationError) as caught:
        code_issue(offer=offer)
    # then
    assert caught.value.code == "inventory_empty"
    assert caught.value.status == 409
    assert Code.objects.filter(status=Code.Status.ISSUED).count() == 1


def test_issue_on_demand_makes_a_new_code():
    # given
    offer = offer_create(generate_on_demand=True, code_prefix="SORRY")
    # when
    issued = code_issue(offer=offer)
    # then
    assert Code.objects.count() == 1
    assert issued.code.batch is None
    assert issued.code.status == Code.Status.ISSUED
    assert issued.plaintext.startswith("SORRY-")
    assert bytes(Code.objects.get().lookup_hash) == codes.lookup_hash(codes.normalise(issued.plaintext))


def test_issue_on_demand_still_uses_the_inventory_first():
    # given
    offer = offer_create(generate_on_demand=True)
    code_batch_import(offer=offer, text="AAAA-BBBB\n")
    # when
    issued = code_issue(offer=offer)
    # then
    assert issued.plaintext == "AAAA-BBBB"
    assert Code.objects.count() == 1


def test_a_soft_offer_issues_no_code():
    # given
    apology = offer_create(kind=Offer.Kind.APOLOGY, value_amount=Decimal("0"), cost_amount=Decimal("0"))
    # when / then
    with pytest.raises(ValidationError):
        code_issue(offer=apology)
    assert Code.objects.count() == 0


# --- expire ----------------------------------------------------------------------------


def test_expiry_moves_only_codes_past_their_end_with_one_ledger_row_each():
    # given
    offer = offer_create(validity_days=10)
    past = [issued_code(offer).code for _ in range(3)]
    current = issued_code(offer).code
    Code.objects.filter(pk__in=[code.pk for code in past]).update(expires_at=timezone.now() - timedelta(seconds=1))
    # when
    expired = codes_expire(chunk=2)  # two chunks
    # then
    assert expired == 3
    for code in past:
        code.refresh_from_db()
        assert code.status == Code.Status.EXPIRED
        event = CodeEvent.objects.get(code=code, kind=CodeEvent.Kind.EXPIRED)
        assert (event.from_status, event.to_status) == ("issued", "expired")
    current.refresh_from_db()
    assert current.status == Code.Status.ISSUED
    assert not CodeEvent.objects.filter(code=current, kind=CodeEvent.Kind.EXPIRED).exists()
    # and a second run has nothing left to do
    assert codes_expire() == 0
    assert CodeEvent.objects.filter(kind=CodeEvent.Kind.EXPIRED).count() == 3


def test_expiry_leaves_available_and_redeemed_codes_alone():
    # given
    offer = offer_create(validity_days=1)
    code_batch_import(offer=offer, text="AAAA-BBBB\nCCCC-DDDD\n")
    redeemed = issued_code(offer)
    merchant, _key = merchant_with_key()
    redemption_create(
        merchant=merchant, raw_code=redeemed.plaintext, order_id="A-1", order_total=Decimal("40"), currency="USD"
    )
    # when: long after every validity
    expired = codes_expire(now=timezone.now() + timedelta(days=365))
    # then
    assert expired == 0
    assert sorted(Code.objects.values_list("status", flat=True)) == ["available", "redeemed"]


def test_the_expiry_ledger_row_keeps_a_gift_cards_balance():
    # given
    issued = issued_code(gift_card_offer_create())
    # when
    codes_expire(now=timezone.now() + timedelta(days=365))
    # then
    event = CodeEvent.objects.get(code=issued.code, kind=CodeEvent.Kind.EXPIRED)
    assert event.balance_after_amount == Decimal("50.00")


# --- void ------------------------------------------------------------------------------


def test_void_records_who_why_and_the_state_it_left(admin_user):
    # given
    issued = issued_code()
    # when
    voided = code_void(code=issued.code, actor=admin_user, reason="customer abused it")
    # then
    assert voided.status == Code.Status.VOIDED
    assert voided.voided_at is not None
    event = CodeEvent.objects.get(code=issued.code, kind=CodeEvent.Kind.VOIDED)
    assert (event.from_status, event.to_status) == ("issued", "voided")
    assert event.actor_user == admin_user
    assert event.reason == "customer abused it"


def test_a_code_still_in_the_inventory_can_be_voided():
    # given
    offer = inventory_offer()
    code_batch_import(offer=offer, text="AAAA-BBBB\n")
    code = Code.objects.get()
    # when
    code_void(code=code, actor=None, reason="leaked by the provider")
    # then
    event = CodeEvent.objects.get(code=code)
    assert event.from_status == Code.Status.AVAILABLE
    # and it is never issued
    with pytest.raises(ApplicationError, match="No codes are left"):
        code_issue(offer=offer)


def test_a_redeemed_code_cannot_be_voided():
    # given
    issued = issued_code()
    merchant, _key = merchant_with_key()
    redemption_create(
        merchant=merchant, raw_code=issued.plaintext, order_id="A-1", order_total=Decimal("40"), currency="USD"
    )
    # when
    with pytest.raises(ApplicationError) as caught:
        code_void(code=issued.code, actor=None, reason="too late")
    # then
    assert caught.value.code == "not_voidable"
    assert caught.value.status == 409
    issued.code.refresh_from_db()
    assert issued.code.status == Code.Status.REDEEMED
    assert not CodeEvent.objects.filter(kind=CodeEvent.Kind.VOIDED).exists()


@pytest.mark.parametrize("status", [Code.Status.EXPIRED, Code.Status.VOIDED])
def test_an_expired_or_voided_code_cannot_be_voided(status):
    # given
    issued = issued_code()
    Code.objects.filter(pk=issued.code.pk).update(status=status)
    # when / then
    with pytest.raises(ApplicationError) as caught:
        code_void(code=issued.code, actor=None, reason="again")
    assert caught.value.code == "not_voidable"


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_void_needs_a_reason(reason):
    # given
    issued = issued_code()
    # when
    with pytest.raises(ValidationError) as caught:
        code_void(code=issued.code, actor=None, reason=reason)
    # then
    assert "reason" in caught.value.message_dict
    issued.code.refresh_from_db()
    assert issued.code.status == Code.Status.ISSUED


# --- idempotency keys ------------------------------------------------------------------


def test_idempotency_keys_are_purged_after_24_hours():
    # given
    old = idempotency_key_begin(scope="redemptions.create", owner="merchant:1", key="old", fingerprint="f")
    recent = idempotency_key_begin(scope="redemptions.create", owner="merchant:1", key="recent", fingerprint="f")
    now = timezone.now()
    IdempotencyKey.objects.filter(pk=old.pk).update(created_at=now - timedelta(hours=24, minutes=1))
    IdempotencyKey.objects.filter(pk=recent.pk).update(created_at=now - timedelta(hours=23, minutes=59))
    # when
    deleted = idempotency_keys_purge(now=now)
    # then
    assert deleted == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["recent"]


# --- generation batches ----------------------------------------------------------------


def test_generating_a_batch_makes_its_codes_in_one_go():
    # given
    offer = gift_card_offer_create(code_prefix="GIFT")
    batch = code_batch_request(offer=offer, quantity=25)
    assert batch.status == CodeBatch.Status.PENDING
    # when
    done = code_batch_generate(batch_id=batch.pk)
    # then
    assert done.status == CodeBatch.Status.DONE
    assert done.started_at is not None and done.finished_at >= done.started_at
    stored = Code.objects.filter(batch=batch)
    assert stored.count() == 25
    assert set(stored.values_list("status", flat=True)) == {Code.Status.AVAILABLE}
    assert set(stored.values_list("balance_amount", flat=True)) == {Decimal("50.00")}
    assert len(set(stored.values_list("lookup_hash", flat=True))) == 25
    plaintext = codes.decrypt(stored.first().ciphertext)
    assert plaintext.startswith("GIFT-") and len(codes.normalise(plaintext)) == 4 + 17


def test_generating_a_batch_twice_makes_its_codes_once():
    # given
    batch = code_batch_request(offer=offer_create(), quantity=10)
    code_batch_generate(batch_id=batch.pk)
    # when
    again = code_batch_generate(batch_id=batch.pk)
    # then
    assert again is None
    assert Code.objects.filter(batch=batch).count() == 10
    batch.refresh_from_db()
    assert batch.status == CodeBatch.Status.DONE


def test_generation_reports_its_progress():
    # given
    batch = code_batch_request(offer=offer_create(), quantity=7)
    reported = []
    # when
    code_batch_generate(batch_id=batch.pk, progress=reported.append)
    # then
    assert sum(reported) == 7


def test_a_worker_whose_claim_was_taken_over_keeps_none_of_its_codes():
    # given: a batch claimed by this worker...
    batch = code_batch_request(offer=offer_create(), quantity=3)
    taken_over_at = timezone.now() + timedelta(minutes=20)

    def sweeper_and_second_worker_step_in(count: int) -> None:
        # ...that the sweeper declares dead mid-run and another worker claims again
        CodeBatch.objects.filter(pk=batch.pk).update(status=CodeBatch.Status.RUNNING, started_at=taken_over_at)

    # when
    result = code_batch_generate(batch_id=batch.pk, progress=sweeper_and_second_worker_step_in)
    # then: this worker's codes are rolled back and it marks the batch neither done nor
    # failed (here the take-over rolls back too: it shared this worker's connection; see
    # the PostgreSQL test below for two real connections)
    assert result is None
    assert Code.objects.filter(batch=batch).count() == 0
    batch.refresh_from_db()
    assert batch.status == CodeBatch.Status.RUNNING


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_whose_claim_was_taken_over_by_another_connection_keeps_none_of_its_codes():
    # given: a batch claimed by this worker...
    batch = code_batch_request(offer=offer_create(), quantity=3)
    taken_over_at = timezone.now() + timedelta(minutes=20)

    def take_over() -> None:
        try:
            CodeBatch.objects.filter(pk=batch.pk).update(status=CodeBatch.Status.RUNNING, started_at=taken_over_at)
        finally:
            connection.close()

    def sweeper_and_second_worker_step_in(count: int) -> None:
        # ...that the sweeper declares dead mid-run and another worker claims again,
        # each in its own connection, committed
        other = threading.Thread(target=take_over)
        other.start()
        other.join(timeout=10)

    # when
    result = code_batch_generate(batch_id=batch.pk, progress=sweeper_and_second_worker_step_in)
    # then: this worker's codes are rolled back and the batch is left to its new owner
    assert result is None
    assert Code.objects.filter(batch=batch).count() == 0
    batch.refresh_from_db()
    assert batch.status == CodeBatch.Status.RUNNING
    assert batch.started_at == taken_over_at


def test_a_failed_generation_marks_the_batch_failed_and_keeps_no_codes():
    # given
    batch = code_batch_request(offer=offer_create(), quantity=3)

    def crash(count: int) -> None:
        raise RuntimeError("disk full")

    # when
    with pytest.raises(RuntimeError):
        code_batch_generate(batch_id=batch.pk, progress=crash)
    # then
    batch.refresh_from_db()
    assert batch.status == CodeBatch.Status.FAILED
    assert batch.error == "RuntimeError"
    assert Code.objects.filter(batch=batch).count() == 0
    # and a failed batch is not retried by a second run
    assert code_batch_generate(batch_id=batch.pk) is None


def test_a_request_is_refused_for_a_soft_offer_or_a_bad_quantity():
    # given
    callback = offer_create(kind=Offer.Kind.CALLBACK, value_amount=Decimal("0"), cost_amount=Decimal("0"))
    offer = offer_create()
    # when / then
    with pytest.raises(ValidationError) as soft:
        code_batch_request(offer=callback, quantity=10)
    with pytest.raises(ValidationError) as zero:
        code_batch_request(offer=offer, quantity=0)
    with pytest.raises(ValidationError):
        code_batch_request(offer=offer, quantity=10_000_001)
    assert "offer" in soft.value.message_dict
    assert "quantity" in zero.value.message_dict
    assert CodeBatch.objects.count() == 0


def test_the_request_enqueues_generation_once_committed(django_capture_on_commit_callbacks, eager_celery):
    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        batch = code_batch_request(offer=offer_create(), quantity=4)
    # then: the (eager) task ran on commit and generated the batch
    assert len(callbacks) == 1
    batch.refresh_from_db()
    assert batch.status == CodeBatch.Status.DONE
    assert Code.objects.filter(batch=batch).count() == 4


# --- the sweeper -----------------------------------------------------------------------


def test_the_sweeper_requeues_a_batch_left_running_past_its_lease(eager_celery):
    # given: a worker claimed the batch 20 minutes ago and died
    batch = code_batch_request(offer=offer_create(), quantity=5)
    long_ago = timezone.now() - timedelta(minutes=20)
    CodeBatch.objects.filter(pk=batch.pk).update(
        status=CodeBatch.Status.RUNNING, started_at=long_ago, created_at=long_ago
    )
    # when
    requeued = code_batches_sweep(lease=timedelta(minutes=15))
    # then: requeued, and the (eager) task generated it
    assert requeued == [batch.pk]
    batch.refresh_from_db()
    assert batch.status == CodeBatch.Status.DONE
    assert Code.objects.filter(batch=batch).count() == 5


def test_the_sweeper_leaves_live_fresh_done_and_failed_batches_alone(eager_celery):
    # given
    offer = offer_create()
    running = code_batch_request(offer=offer, quantity=1)
    CodeBatch.objects.filter(pk=running.pk).update(
        status=CodeBatch.Status.RUNNING,
        started_at=timezone.now() - timedelta(minutes=5),
        created_at=timezone.now() - timedelta(minutes=5),
    )
    fresh = code_batch_request(offer=offer, quantity=1)  # pending, just created
    failed = code_batch_request(offer=offer, quantity=1)
    CodeBatch.objects.filter(pk=failed.pk).update(
        status=CodeBatch.Status.FAILED, created_at=timezone.now() - timedelta(hours=1)
    )
    code_batch_import(offer=offer, text="AAAA-BBBB\n")
    # when
    requeued = code_batches_sweep(lease=timedelta(minutes=15))
    # then
    assert requeued == []
    statuses = dict(CodeBatch.objects.values_list("pk", "status"))
    assert statuses[running.pk] == CodeBatch.Status.RUNNING
    assert statuses[fresh.pk] == CodeBatch.Status.PENDING
    assert statuses[failed.pk] == CodeBatch.Status.FAILED


def test_the_sweeper_requeues_a_pending_batch_whose_message_was_lost(eager_celery):
    # given: the batch row committed but its message never reached a worker
    batch = code_batch_request(offer=offer_create(), quantity=2)
    CodeBatch.objects.filter(pk=batch.pk).update(created_at=timezone.now() - timedelta(minutes=1))
    # when
    requeued = code_batches_sweep()
    # then
    assert requeued == [batch.pk]
    assert Code.objects.filter(batch=batch).count() == 2


# --- the generate_codes command --------------------------------------------------------


def test_the_command_queues_a_batch_for_a_worker(capsys):
    # given
    offer = offer_create()
    # when
    call_command("generate_codes", "--offer", offer.name, "--count", "12")
    # then
    batch = CodeBatch.objects.get()
    assert (batch.offer, batch.quantity, batch.status) == (offer, 12, CodeBatch.Status.PENDING)
    assert Code.objects.count() == 0
    assert f"Batch {batch.pk} of 12 codes is queued" in capsys.readouterr().out


def test_the_command_generates_now_in_process(capsys):
    # given
    offer = offer_create()
    # when
    call_command("generate_codes", "--offer", str(offer.pk), "--count", "12", "--now")
    # then
    batch = CodeBatch.objects.get()
    assert batch.status == CodeBatch.Status.DONE
    assert Code.objects.filter(batch=batch).count() == 12
    assert f"Generated 12 codes for “{offer.name}” as batch {batch.pk}." in capsys.readouterr().out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--offer", "999999", "--count", "5"], "No offer has the id or name"),
        (["--offer", "{offer}", "--count", "0"], "Ask for 1 to 10,000,000 codes."),
        (["--offer", "{soft}", "--count", "5"], "Soft offers"),
    ],
)
def test_the_command_refuses_bad_requests(arguments, message):
    # given
    offer = offer_create()
    soft = offer_create(kind=Offer.Kind.APOLOGY, value_amount=Decimal("0"), cost_amount=Decimal("0"))
    arguments = [argument.format(offer=offer.pk, soft=soft.pk) for argument in arguments]
    # when / then
    with pytest.raises(CommandError, match=message):
        call_command("generate_codes", *arguments)
    assert CodeBatch.objects.count() == 0
