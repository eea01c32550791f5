"""Race-safety rules, tested for real: threads released together by a barrier, each on
its own database connection, then the rows are counted (docs/adr/0001, 0003).

Row locks, SKIP LOCKED and the ledger trigger mean nothing on SQLite, so most of these
run on PostgreSQL only (`.ci/run`). The guessing guard's counter is atomic in any
shared cache, so its tests run everywhere.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
from django.db import DatabaseError, connection, transaction
from rest_framework.test import APIClient

from appease.core.exceptions import ApplicationError
from appease.core.ratelimit import FailureLimiter
from coupons.models import Code, CodeEvent, Redemption
from coupons.services.inventory import IssuedCode, code_batch_import, code_issue
from tests import factories
from tests.factories import gift_card_offer_create, merchant_with_key, offer_create

VALIDATE = "/api/v1/codes/validate"
REDEEM = "/api/v1/redemptions"

T = TypeVar("T")


# --- helpers -----------------------------------------------------------------------


def run_together(n: int, fn: Callable[[int], T], *, timeout: float = 60.0) -> list[T]:
    """Call fn(0) … fn(n - 1) in n threads released at once; their results in order.

    Each thread closes its own database connection when done. A thread still running
    after `timeout` fails the test (a deadlock or a lost wake-up); the first exception
    raised in a thread is re-raised here.
    """
    barrier = threading.Barrier(n, timeout=timeout)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            barrier.wait()
            results[index] = fn(index)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,), name=f"racer-{i}", daemon=True) for i in range(n)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, f"threads still running after {timeout}s: {stuck}"
    if errors:
        raise errors[0]
    return results


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict
    headers: dict[str, str]


def post(key: str, path: str, data: dict, *, ip: str = "127.0.0.1") -> Answer:
    """POST as a merchant from a new client (one per thread)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}", REMOTE_ADDR=ip)
    response = client.post(path, data, format="json")
    return Answer(status=response.status_code, body=response.json(), headers=dict(response.headers))


def redeem_body(code: str, **overrides) -> dict:
    return {"code": code, "order_id": "A-1", "order_total": "40.00", "currency": "USD", **overrides}


def validate_body(code: str) -> dict:
    return {"code": code, "order_total": "40.00", "currency": "USD"}


def reverse_url(redemption_id) -> str:
    return f"/api/v1/redemptions/{redemption_id}/reverse"


def issued_code(*args, **kwargs) -> IssuedCode:
    """`factories.issued_code` in its own transaction: `code_issue` runs inside the
    caller's, and these tests run in autocommit."""
    with transaction.atomic():
        return factories.issued_code(*args, **kwargs)


@pytest.fixture
def frozen_ratelimit_clock(monkeypatch):
    """Pin the limiter's clock mid-window, so a window boundary cannot fall inside a
    test and reset the counts (the windows are fixed, aligned on the epoch)."""
    window = 60
    now = (time.time() // window) * window + window / 2
    monkeypatch.setattr("appease.core.ratelimit.time", SimpleNamespace(time=lambda: now))
    return window


# --- single-use coupons ------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_fifty_simultaneous_redemptions_of_a_coupon_redeem_it_once(merchant_key):
    # given
    issued = issued_code()
    key = merchant_key[1]
    # when
    answers = run_together(
        50, lambda i: post(key, REDEEM, redeem_body(issued.plaintext, order_id=f"A-{i}", order_total="40.00"))
    )
    # then
    assert Counter(answer.status for answer in answers) == {201: 1, 409: 49}
    assert all(answer.body["error"] == "already_redeemed" for answer in answers if answer.status == 409)
    winner = next(answer for answer in answers if answer.status == 201)
    redemption = Redemption.objects.get()
    assert str(redemption.pk) == winner.body["id"]
    assert redemption.code_id == issued.code.pk
    assert redemption.status == Redemption.Status.ACTIVE
    issued.code.refresh_from_db()
    assert issued.code.status == Code.Status.REDEEMED
    events = CodeEvent.objects.filter(code=issued.code, kind=CodeEvent.Kind.REDEEMED)
    assert list(events.values_list("redemption_id", flat=True)) == [redemption.pk]


# --- gift cards ----------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_partial_redemptions_never_take_more_than_the_balance(merchant_key):
    # given: a 50.00 card and 30 orders of 7.00 at once
    issued = issued_code(gift_card_offer_create(value_amount=Decimal("50.00")))
    key = merchant_key[1]
    # when
    answers = run_together(
        30, lambda i: post(key, REDEEM, redeem_body(issued.plaintext, order_id=f"G-{i}", order_total="7.00"))
    )
    # then: seven orders of 7.00 and one of 1.00 empty the card; the rest are refused
    assert Counter(answer.status for answer in answers) == {201: 8, 409: 22}
    assert all(answer.body["error"] == "already_redeemed" for answer in answers if answer.status == 409)
    code = Code.objects.get(pk=issued.code.pk)
    assert code.balance_amount == Decimal("0")
    assert code.status == Code.Status.REDEEMED
    redemptions = list(Redemption.objects.filter(code=code))
    assert len(redemptions) == 8
    assert sum(r.discount_amount for r in redemptions) == Decimal("50.00")
    assert sorted(r.discount_amount for r in redemptions) == [Decimal("1.00")] + [Decimal("7.00")] * 7
    # Each debit saw the balance the previous one left: 43, 36, …, 1, 0.
    assert sorted((r.balance_after_amount for r in redemptions), reverse=True) == [
        Decimal(n) for n in (43, 36, 29, 22, 15, 8, 1, 0)
    ]
    assert all(r.balance_after_amount >= 0 for r in redemptions)
    ledger = CodeEvent.objects.filter(code=code)
    redeemed = ledger.filter(kind=CodeEvent.Kind.REDEEMED)
    assert redeemed.count() == len(redemptions)
    assert set(redeemed.values_list("redemption_id", flat=True)) == {r.pk for r in redemptions}
    assert ledger.get(kind=CodeEvent.Kind.ISSUED).amount == Decimal("50.00")
    assert sum(ledger.values_list("amount", flat=True)) == code.balance_amount
    assert all(balance >= 0 for balance in ledger.values_list("balance_after_amount", flat=True))


# --- reversal racing redemption ----------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_reversal_racing_redemptions_leaves_the_coupon_consistent(merchant_key):
    # given
    key = merchant_key[1]
    rounds, redeemers = 20, 8
    outcomes = Counter()
    for round_ in range(rounds):
        issued = issued_code()
        first = post(key, REDEEM, redeem_body(issued.plaintext, order_id=f"R{round_}-first"))
        assert first.status == 201

        def race(i: int, issued=issued, first=first, round_=round_) -> Answer:
            if i == 0:
                return post(key, reverse_url(first.body["id"]), {"reason": "order cancelled"})
            return post(key, REDEEM, redeem_body(issued.plaintext, order_id=f"R{round_}-{i}"))

        # when: one thread reverses the first redemption while others redeem again
        reverse, *redeems = run_together(1 + redeemers, race)
        # then
        assert reverse.status == 200
        assert reverse.body["status"] == "reversed"
        statuses = Counter(answer.status for answer in redeems)
        assert set(statuses) <= {201, 409}
        assert statuses[201] <= 1
        assert all(answer.body["error"] == "already_redeemed" for answer in redeems if answer.status == 409)
        outcomes[statuses[201]] += 1

        code = Code.objects.get(pk=issued.code.pk)
        active = Redemption.objects.filter(code=code, status=Redemption.Status.ACTIVE)
        assert active.count() == statuses[201]
        assert Redemption.objects.get(pk=first.body["id"]).status == Redemption.Status.REVERSED
        expected_status = Code.Status.REDEEMED if active.exists() else Code.Status.ISSUED
        assert code.status == expected_status
        ledger = CodeEvent.objects.filter(code=code)
        redeemed = ledger.filter(kind=CodeEvent.Kind.REDEEMED).count()
        reversed_ = ledger.filter(kind=CodeEvent.Kind.REDEMPTION_REVERSED).count()
        assert (redeemed, reversed_) == (1 + statuses[201], 1)
        assert redeemed - reversed_ == active.count()
        # The ledger's transitions chain: each entry starts where the previous ended.
        chain = list(ledger.order_by("id").values_list("from_status", "to_status"))
        assert all(prev[1] == nxt[0] for prev, nxt in itertools.pairwise(chain))
        assert chain[-1][1] == code.status
    # Not an assertion on timing, only a record: both orders happen in practice.
    print(f"rounds where the coupon was redeemed again: {outcomes[1]} of {rounds}")


# --- guessing guard ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_guessing_guard_lets_exactly_the_limit_through_under_concurrency(
    settings, merchant_key, frozen_ratelimit_clock
):
    # given
    settings.FAILED_LOOKUP_LIMIT = 10
    settings.FAILED_LOOKUP_WINDOW_SECONDS = frozen_ratelimit_clock
    key = merchant_key[1]
    # when: 30 wrong codes at once, from one key and one IP
    answers = run_together(30, lambda i: post(key, VALIDATE, validate_body(f"WRONGCODE{i:04d}")))
    # then
    assert Counter(answer.status for answer in answers) == {200: 10, 429: 20}
    assert all(answer.body == {"valid": False, "reason": "unknown"} for answer in answers if answer.status == 200)
    for answer in answers:
        if answer.status == 429:
            assert answer.body["error"] == "too_many_failed_lookups"
            assert int(answer.headers["Retry-After"]) > 0


@pytest.mark.django_db(transaction=True)
def test_one_keys_guessing_does_not_block_another_key_from_another_ip(settings, merchant_key, frozen_ratelimit_clock):
    # given
    settings.FAILED_LOOKUP_LIMIT = 10
    settings.FAILED_LOOKUP_WINDOW_SECONDS = frozen_ratelimit_clock
    guesser_key = merchant_key[1]
    _other_merchant, honest_key = merchant_with_key()
    issued = issued_code()

    def race(i: int) -> Answer:
        if i % 3 == 0:
            return post(honest_key, VALIDATE, validate_body(issued.plaintext), ip="10.0.0.2")
        return post(guesser_key, VALIDATE, validate_body(f"WRONGCODE{i:04d}"), ip="10.0.0.1")

    # when: key A guesses 20 times from one IP while key B checks a real code from another
    answers = run_together(30, race)
    # then
    honest = [answer for i, answer in enumerate(answers) if i % 3 == 0]
    guesses = [answer for i, answer in enumerate(answers) if i % 3 != 0]
    assert len(honest) == 10
    assert all(answer.status == 200 and answer.body["valid"] is True for answer in honest)
    assert Counter(answer.status for answer in guesses) == {200: 10, 429: 10}
    # and afterwards key B still gets through, key A does not
    assert post(honest_key, VALIDATE, validate_body(issued.plaintext), ip="10.0.0.2").body["valid"] is True
    assert post(guesser_key, VALIDATE, validate_body(issued.plaintext), ip="10.0.0.1").status == 429


def test_failure_limiter_counts_exactly_under_concurrency(frozen_ratelimit_clock):
    # given: one caller counted under two identities (its API key and its IP)
    limiter = FailureLimiter(scope="test-race", limit=10, window_seconds=frozen_ratelimit_clock)
    idents = ["key:1", "ip:192.0.2.1"]
    # when
    waits = run_together(30, lambda i: limiter.record_failure(idents))
    # then
    assert waits.count(None) == 10
    assert all(isinstance(wait, int) and wait > 0 for wait in waits if wait is not None)
    assert limiter.blocked(idents)


# --- inventory -----------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_issues_claim_distinct_codes_until_the_inventory_is_empty():
    # given: 20 imported codes and no generation on demand
    offer = offer_create(generate_on_demand=False)
    plaintexts = {f"CODE{n:04d}" for n in range(1, 21)}
    code_batch_import(offer=offer, text="\n".join(sorted(plaintexts)))

    holding = Counter()
    count_lock = threading.Lock()

    def issue(_i: int) -> tuple[int, str]:
        with transaction.atomic():
            issued = code_issue(offer=offer)
            with count_lock:
                holding["now"] += 1
                holding["most"] = max(holding["most"], holding["now"])
            # Hold the row lock as a longer issuance would, so the claims overlap.
            time.sleep(0.1)
            with count_lock:
                holding["now"] -= 1
        return issued.code.pk, issued.plaintext

    # when
    claims = run_together(20, issue)
    # then: a claim skips the rows others hold instead of queueing behind them
    assert holding["most"] > 1
    assert len({pk for pk, _plaintext in claims}) == 20
    assert {plaintext for _pk, plaintext in claims} == plaintexts
    assert not Code.objects.filter(offer=offer, status=Code.Status.AVAILABLE).exists()
    assert Code.objects.filter(offer=offer, status=Code.Status.ISSUED).count() == 20
    issued_events = CodeEvent.objects.filter(code__offer=offer, kind=CodeEvent.Kind.ISSUED)
    assert sorted(issued_events.values_list("code_id", flat=True)) == sorted(pk for pk, _plaintext in claims)
    with pytest.raises(ApplicationError) as refused, transaction.atomic():
        code_issue(offer=offer)
    assert refused.value.code == "inventory_empty"


# --- the ledger ------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_ledger_refuses_update_and_delete():
    # given
    issued = issued_code()
    event = CodeEvent.objects.get(code=issued.code)
    before = CodeEvent.objects.filter(pk=event.pk).values().get()
    # when / then
    with pytest.raises(DatabaseError, match="append-only"):
        CodeEvent.objects.filter(pk=event.pk).update(reason="x")
    with pytest.raises(DatabaseError, match="append-only"):
        CodeEvent.objects.filter(pk=event.pk).delete()
    assert CodeEvent.objects.filter(pk=event.pk).values().get() == before


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_redemptions_sharing_an_idempotency_key_redeem_once_and_answer_alike(merchant_key):
    # given: a gift card, and ten retries of one partial redemption fired at once
    issued = issued_code(gift_card_offer_create(value_amount=Decimal("25.00")))
    key = merchant_key[1]
    body = redeem_body(issued.plaintext, order_total="10.00")

    def redeem(_i):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
        response = client.post(REDEEM, body, format="json", HTTP_IDEMPOTENCY_KEY="order-A-1")
        return response.status_code, response.json().get("id")

    # when
    answers = run_together(10, redeem)

    # then: one redemption of 10.00, and every caller was told about that one
    redemption = Redemption.objects.get()
    assert set(answers) == {(201, str(redemption.pk))}
    assert redemption.discount_amount == Decimal("10.00")
    issued.code.refresh_from_db()
    assert issued.code.balance_amount == Decimal("15.00")
