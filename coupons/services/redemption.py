"""Checkout redemption: validate, redeem exactly once, reverse.

Exactly once (docs/adr/0001-single-use-redemption.md):
- a coupon moves `issued → redeemed` in one conditional UPDATE; the row count says
  who won, and every loser reads the state only to explain its refusal;
- a gift card's debit needs the prior balance (it takes `min(balance, total)`), so
  its one row is locked with SELECT … FOR UPDATE for the length of the debit; the
  CHECK constraint `balance >= 0` is the backstop;
- a partial unique index allows one active redemption per coupon.

Apps above this one hear of every redemption and reversal in its transaction through
`redemption_listener_register` (feedback stamps the appeasement's outcome as redeemed):
a listener must be one lean statement, it runs on the checkout's hot path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from appease.core.exceptions import ApplicationError
from appease.core.idempotency import idempotency_key_complete, idempotency_key_settle
from appease.core.models import IdempotencyKey
from appease.core.money import quantize
from appease.webhooks.services import iso, money, webhook_event_emit
from coupons.events import code_redeemed_event, code_redemption_reversed_event
from coupons.models import Code, Merchant, Offer, Redemption
from coupons.selectors import code_get_by_plaintext

UNKNOWN = "unknown"
REDEEMED = "redeemed"
EXPIRED = "expired"
VOIDED = "voided"
CURRENCY_MISMATCH = "currency_mismatch"
BELOW_MIN_ORDER = "below_min_order"
ALREADY_REDEEMED = "already_redeemed"

REASON_MESSAGES = {
    UNKNOWN: lambda: _("This code does not exist."),
    REDEEMED: lambda: _("This code has already been used."),
    EXPIRED: lambda: _("This code has expired."),
    VOIDED: lambda: _("This code has been cancelled."),
    CURRENCY_MISMATCH: lambda: _("This code is in another currency."),
    BELOW_MIN_ORDER: lambda: _("The order is below this code's minimum."),
    ALREADY_REDEEMED: lambda: _("This code has already been used."),
}


_listeners: list[Callable[[Redemption], None]] = []


def redemption_listener_register(listener: Callable[[Redemption], None]) -> None:
    """Call `listener(redemption)` for every redemption made or reversed (its `status`
    says which), inside the redemption's transaction (an app above this one, from its
    `ready()`). A listener that raises rolls the redemption back, and it runs on the
    checkout's hot path: keep it to one statement."""
    if listener not in _listeners:
        _listeners.append(listener)


def _listeners_tell(redemption: Redemption) -> None:
    for listener in _listeners:
        listener(redemption)


class RedemptionRefused(ApplicationError):
    def __init__(self, reason: str, *, status: int = 422, extra=None) -> None:
        super().__init__(reason, REASON_MESSAGES[reason](), status=status, extra=extra)
        self.reason = reason


@dataclass(frozen=True)
class Quote:
    code: Code
    discount: Decimal
    currency: str
    expires_at: datetime | None
    balance: Decimal | None


def _discount(*, code: Code, offer: Offer, order_total: Decimal) -> Decimal:
    if offer.kind == Offer.Kind.PERCENT_OFF:
        discount = order_total * offer.percent / Decimal(100)
        if offer.max_discount_amount is not None:
            discount = min(discount, offer.max_discount_amount)
    elif offer.kind == Offer.Kind.GIFT_CARD:
        discount = min(code.balance_amount, order_total)
    else:
        discount = min(offer.value_amount, order_total)
    return quantize(discount, code.currency)


def _assess(*, code: Code | None, order_total: Decimal, currency: str, now: datetime) -> Quote:
    """Why this code cannot pay this order, or what it would take off. Reads only."""
    if code is None:
        raise RedemptionRefused(UNKNOWN)
    if code.status == Code.Status.VOIDED:
        raise RedemptionRefused(VOIDED)
    if code.status == Code.Status.REDEEMED:
        raise RedemptionRefused(REDEEMED)
    if code.status == Code.Status.EXPIRED or (code.expires_at is not None and code.expires_at <= now):
        raise RedemptionRefused(EXPIRED)
    if currency != code.currency:
        raise RedemptionRefused(CURRENCY_MISMATCH, extra={"currency": code.currency})
    offer = code.offer
    if order_total < offer.min_order_amount:
        raise RedemptionRefused(
            BELOW_MIN_ORDER, extra={"min_order": str(quantize(offer.min_order_amount, code.currency))}
        )
    discount = _discount(code=code, offer=offer, order_total=order_total)
    if discount <= 0:
        raise RedemptionRefused(BELOW_MIN_ORDER)
    return Quote(
        code=code,
        discount=discount,
        currency=code.currency,
        expires_at=code.expires_at,
        balance=code.balance_amount,
    )


def code_validate(*, raw_code: str, order_total: Decimal, currency: str) -> Quote:
    """What the code would take off this order. Changes nothing."""
    code = code_get_by_plaintext(raw_code=raw_code)
    return _assess(code=code, order_total=order_total, currency=currency, now=timezone.now())


def redemption_create(
    *,
    merchant: Merchant,
    raw_code: str,
    order_id: str,
    order_total: Decimal,
    currency: str,
    idempotency_key: IdempotencyKey | None = None,
) -> Redemption:
    """Redeem a code against an order, exactly once.

    With an idempotency key, the answer is stored in the same transaction as the
    redemption (or, for a refusal, on its own): a retry replays it. An unknown code is
    not stored: it had no effect, and every look-up of it counts as a guess.
    """
    try:
        with transaction.atomic(durable=True):
            redemption = _redeem(
                merchant=merchant, raw_code=raw_code, order_id=order_id, order_total=order_total, currency=currency
            )
            if idempotency_key is not None:
                idempotency_key_complete(
                    record=idempotency_key, response_status=201, result={"redemption_id": str(redemption.pk)}
                )
        return redemption
    except BaseException as error:
        # An unknown code is not stored: it had no effect, and each look-up is a guess.
        unknown = isinstance(error, RedemptionRefused) and error.reason == UNKNOWN
        idempotency_key_settle(record=idempotency_key, error=error, store=not unknown)
        raise


def _assess_for_redeem(*, code: Code | None, order_total: Decimal, currency: str, now: datetime) -> Quote:
    """As `_assess`, but a redeemed code is a conflict (409 `already_redeemed`)."""
    try:
        return _assess(code=code, order_total=order_total, currency=currency, now=now)
    except RedemptionRefused as refusal:
        if refusal.reason == REDEEMED:
            raise RedemptionRefused(ALREADY_REDEEMED, status=409) from None
        raise


def _redeem(*, merchant: Merchant, raw_code: str, order_id: str, order_total: Decimal, currency: str) -> Redemption:
    now = timezone.now()
    found = code_get_by_plaintext(raw_code=raw_code)
    if found is not None and found.offer.has_balance:
        # Lock the card's one row: the debit depends on the balance we read.
        found = Code.objects.select_for_update().select_related("offer").get(pk=found.pk)
    quote = _assess_for_redeem(code=found, order_total=order_total, currency=currency, now=now)
    code = quote.code

    if code.offer.has_balance:
        balance_after = code.balance_amount - quote.discount
        to_status = Code.Status.REDEEMED if balance_after == 0 else Code.Status.ISSUED
        Code.objects.filter(pk=code.pk).update(
            balance_amount=F("balance_amount") - quote.discount,
            status=to_status,
            redeemed_at=now if to_status == Code.Status.REDEEMED else None,
        )
    else:
        balance_after = None
        to_status = Code.Status.REDEEMED
        won = Code.objects.filter(pk=code.pk, status=Code.Status.ISSUED, expires_at__gt=now).update(
            status=Code.Status.REDEEMED, redeemed_at=now
        )
        if not won:
            # Another request changed it between our read and our update: say what.
            code.refresh_from_db(fields=["status", "expires_at"])
            _assess_for_redeem(code=code, order_total=order_total, currency=currency, now=now)
            raise RedemptionRefused(ALREADY_REDEEMED, status=409)

    redemption = Redemption.objects.create(
        code=code,
        merchant=merchant,
        order_id=order_id,
        order_total_amount=order_total,
        discount_amount=quote.discount,
        currency=code.currency,
        balance_after_amount=balance_after,
        single_use=not code.offer.has_balance,
        redeemed_at=now,
    )
    code_redeemed_event(code=code, redemption=redemption, from_status=Code.Status.ISSUED, to_status=to_status)
    _webhook_emit(type="redemption.created", redemption=redemption, code=code)
    _listeners_tell(redemption)
    return redemption


def _webhook_emit(*, type: str, redemption: Redemption, code: Code) -> None:
    """The redemption's webhook event, in the caller's transaction: the code's last four
    only, amounts as strings with the currency (appease/webhooks)."""
    webhook_event_emit(
        type=type,
        data={
            "redemption_id": str(redemption.pk),
            "status": redemption.status,
            "merchant_id": redemption.merchant_id,
            "order_id": redemption.order_id,
            "offer_id": code.offer_id,
            "code_last4": code.last4,
            "order_total": money(redemption.order_total_amount, redemption.currency),
            "discount": money(redemption.discount_amount, redemption.currency),
            "balance_after": money(redemption.balance_after_amount, redemption.currency),
            "redeemed_at": iso(redemption.redeemed_at),
            "reversed_at": iso(redemption.reversed_at),
        },
    )


@transaction.atomic(durable=True)
def redemption_reverse(*, merchant: Merchant, redemption_id, reason: str) -> Redemption:
    """Undo a redemption (the order was cancelled). Reversing twice changes nothing.

    A coupon becomes redeemable again; a gift card gets the amount back.
    """
    redemption = Redemption.objects.select_related("code__offer").get(pk=redemption_id, merchant=merchant)
    now = timezone.now()
    flipped = Redemption.objects.filter(pk=redemption.pk, status=Redemption.Status.ACTIVE).update(
        status=Redemption.Status.REVERSED, reversed_at=now, reverse_reason=reason[:255]
    )
    if not flipped:
        redemption.refresh_from_db()
        return redemption

    code = redemption.code
    if redemption.single_use:
        restored = Code.objects.filter(pk=code.pk, status=Code.Status.REDEEMED).update(
            status=Code.Status.ISSUED, redeemed_at=None
        )
        if restored:
            from_status, to_status = Code.Status.REDEEMED, Code.Status.ISSUED
        else:
            # Cannot happen while the active redemption existed; record the state as found.
            code.refresh_from_db(fields=["status"])
            from_status = to_status = code.status
        balance_after = None
    else:
        # Same lock as a debit takes, so the ledger's from/to states are exact.
        code = Code.objects.select_for_update().get(pk=code.pk)
        from_status = code.status
        to_status = Code.Status.ISSUED if code.status == Code.Status.REDEEMED else code.status
        balance_after = code.balance_amount + redemption.discount_amount
        Code.objects.filter(pk=code.pk).update(
            balance_amount=F("balance_amount") + redemption.discount_amount,
            status=to_status,
            redeemed_at=None,
        )
    code_redemption_reversed_event(
        code=code,
        redemption=redemption,
        from_status=from_status,
        to_status=to_status,
        balance_after=balance_after,
        reason=reason,
    )
    redemption.refresh_from_db()
    _webhook_emit(type="redemption.reversed", redemption=redemption, code=code)
    _listeners_tell(redemption)
    return redemption
