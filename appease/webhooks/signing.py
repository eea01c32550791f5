"""The `Appease-Signature` header: how we sign a webhook and how a receiver checks it.

    Appease-Signature: t=1765108800,v1=5257a869...,v1=9c1f0e2d...

`t` is the Unix time of the attempt; each `v1` is the hex HMAC-SHA256 of
`"<t>.<body>"` (the exact bytes of the body) under one of the endpoint's secrets: one
entry normally, two while a rotated secret overlaps (the new one first). A receiver
accepts the request if any `v1` matches its secret and `t` is within the tolerance.
No Django here: docs/integrations.md shows the same function for receivers to copy.
"""

from __future__ import annotations

import hashlib
import hmac
import time

TOLERANCE_SECONDS = 300  # five minutes either way


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secrets: list[str], body: bytes, *, timestamp: int | None = None) -> str:
    """`t=<unix>,v1=<hex>[,v1=<hex>]`, one v1 per secret, in the order given."""
    t = int(time.time()) if timestamp is None else timestamp
    return ",".join([f"t={t}", *(f"v1={signature(secret, t, body)}" for secret in secrets)])


def verify(
    body: bytes, header: str, secret: str, *, tolerance: int = TOLERANCE_SECONDS, now: float | None = None
) -> bool:
    """Whether `header` signs `body` with `secret`, at a time within `tolerance` seconds
    of now (a captured request cannot be replayed later). Constant-time comparison."""
    timestamp, candidates = None, []
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            candidates.append(value)
    try:
        t = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = signature(secret, t, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
