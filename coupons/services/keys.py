"""Retiring an old code-encryption key (docs/deploy.md, "Rotating keys"; ADR 0002).

`CODE_ENCRYPTION_KEYS` lists Fernet keys, the first encrypts and all decrypt. To retire
one: put a new key first, then re-encrypt every stored code under it with
`codes_reencrypt` (`manage.py codes_reencrypt`), then drop the old key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import transaction

from coupons import codes
from coupons.models import Code

logger = logging.getLogger(__name__)


@dataclass
class Reencryption:
    rewritten: int = 0  # now under the newest key
    current: int = 0  # already were
    unreadable: list[int] = field(default_factory=list)  # ids no key in CODE_ENCRYPTION_KEYS opens


def codes_reencrypt(*, batch_size: int = 1000) -> Reencryption:
    """Every code's ciphertext under the first of CODE_ENCRYPTION_KEYS, in batches of
    `batch_size` codes (each its own short transaction: a run stopped halfway keeps what
    it did). Idempotent: a code already under the newest key is left alone, so a second
    run rewrites nothing. Each row is rewritten only if its ciphertext is still the one
    read (a conditional update), so a concurrent write is never overwritten."""
    keys = tuple(settings.CODE_ENCRYPTION_KEYS)
    newest = Fernet(keys[0])
    every = codes._cipher(keys)
    result = Reencryption()
    after = 0
    while True:
        rows = list(Code.objects.filter(pk__gt=after).order_by("pk").values_list("pk", "ciphertext")[:batch_size])
        if not rows:
            break
        after = rows[-1][0]
        with transaction.atomic():
            for pk, ciphertext in rows:
                token = ciphertext.encode()
                try:
                    newest.decrypt(token)
                except InvalidToken:
                    pass
                else:
                    result.current += 1
                    continue
                try:
                    rotated = every.rotate(token).decode()  # keeps the token's original timestamp
                except InvalidToken:
                    result.unreadable.append(pk)
                    continue
                result.rewritten += Code.objects.filter(pk=pk, ciphertext=ciphertext).update(ciphertext=rotated)
        logger.info("codes_reencrypt: up to code %s, %s rewritten so far", after, result.rewritten)
    return result
