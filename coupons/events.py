"""Ledger writes. Each function appends one row, in the caller's transaction."""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser

from coupons.models import Code, CodeEvent, Merchant, Redemption


def _event(
    *,
    code: Code,
    kind: str,
    from_status: str,
    to_status: str,
    amount: Decimal | None = None,
    balance_after: Decimal | None = None,
    actor_user: AbstractBaseUser | None = None,
    actor_merchant: Merchant | None = None,
    redemption: Redemption | None = None,
    reason: str = "",
) -> CodeEvent:
    return CodeEvent.objects.create(
        code=code,
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        amount=amount,
        balance_after_amount=balance_after,
        currency=code.currency,
        actor_user=actor_user,
        actor_merchant=actor_merchant,
        redemption=redemption,
        reason=reason[:255],
    )


def code_issued_event(*, code: Code, actor_user=None, reason: str = "") -> CodeEvent:
    return _event(
        code=code,
        kind=CodeEvent.Kind.ISSUED,
        from_status=Code.Status.AVAILABLE,
        to_status=Code.Status.ISSUED,
        amount=code.balance_amount,
        balance_after=code.balance_amount,
        actor_user=actor_user,
        reason=reason,
    )


def code_redeemed_event(*, code: Code, redemption: Redemption, from_status: str, to_status: str) -> CodeEvent:
    return _event(
        code=code,
        kind=CodeEvent.Kind.REDEEMED,
        from_status=from_status,
        to_status=to_status,
        amount=-redemption.discount_amount if redemption.balance_after_amount is not None else None,
        balance_after=redemption.balance_after_amount,
        actor_merchant=redemption.merchant,
        redemption=redemption,
        reason=f"order {redemption.order_id}",
    )


def code_redemption_reversed_event(
    *, code: Code, redemption: Redemption, from_status: str, to_status: str, balance_after: Decimal | None, reason: str
) -> CodeEvent:
    return _event(
        code=code,
        kind=CodeEvent.Kind.REDEMPTION_REVERSED,
        from_status=from_status,
        to_status=to_status,
        amount=redemption.discount_amount if balance_after is not None else None,
        balance_after=balance_after,
        actor_merchant=redemption.merchant,
        redemption=redemption,
        reason=reason,
    )


def code_voided_event(*, code: Code, from_status: str, actor_user=None, reason: str) -> CodeEvent:
    return _event(
        code=code,
        kind=CodeEvent.Kind.VOIDED,
        from_status=from_status,
        to_status=Code.Status.VOIDED,
        balance_after=code.balance_amount,
        actor_user=actor_user,
        reason=reason,
    )


def code_expired_events(*, codes: list[Code]) -> None:
    CodeEvent.objects.bulk_create(
        CodeEvent(
            code=code,
            kind=CodeEvent.Kind.EXPIRED,
            from_status=Code.Status.ISSUED,
            to_status=Code.Status.EXPIRED,
            balance_after_amount=code.balance_amount,
            currency=code.currency,
            reason="validity ended",
        )
        for code in codes
    )
