"""The code ledger's personal data (appease.core.privacy): the words people typed, a
supervisor's void reason, a merchant's reason for reversing a redemption, which may name
the customer. Coupons knows codes, not whose they are: a customer's export and erasure
of these words are the issuance app's (appease/issuance/privacy.py); retention, which
needs no customer, is here.

Registered in CouponsConfig.ready.
"""

from __future__ import annotations

from appease.core.privacy import DONE_WORDS, EXPIRED, PersonalData, in_batches, register, set_values
from coupons.models import CodeEvent, Redemption

# Ledger rows whose reason a person typed; the others' are the system's ("issuance 12",
# "order A-1", "validity ended") and keep the ledger readable.
TYPED = (CodeEvent.Kind.VOIDED, CodeEvent.Kind.REDEMPTION_REVERSED)


def expire(cutoff, *, size: int) -> dict:
    return {
        "code_events": in_batches(
            CodeEvent.objects.filter(created_at__lt=cutoff, kind__in=TYPED).exclude(reason__in=DONE_WORDS),
            set_values(CodeEvent, reason=EXPIRED),
            size=size,
        ),
        "reversals": in_batches(
            Redemption.objects.filter(reversed_at__lt=cutoff).exclude(reverse_reason__in=DONE_WORDS),
            set_values(Redemption, reverse_reason=EXPIRED),
            size=size,
        ),
    }


PERSONAL_DATA = PersonalData(app_label="coupons", expire=expire, words=frozenset({"reverse_reason"}))


def personal_data_register() -> None:
    register(PERSONAL_DATA)
