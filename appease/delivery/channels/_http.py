"""What the HTTP adapters share: one POST with explicit timeouts, and the status rules.

Status rules (docs/delivery.md, "Error mapping"): 2xx is the adapter's to read; 401/403
mean our credentials were refused (permanent, reason `unauthorized`); 408, 429 and 5xx
are transient with Retry-After honoured; any other 4xx is permanent; anything else
(a redirect, which is never followed) is transient, as are timeouts and connection
errors.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import httpx

from appease.delivery.channels.base import (
    UNAUTHORIZED,
    DeliveryError,
    PermanentError,
    TransientError,
    retry_after_seconds,
)

USER_AGENT = "appease-delivery/1.0"

# One client per process: building an httpx.Client sets up an SSL context, which cost
# ~45 ms a send (over half a worker's CPU, bench/deliver). It is shared by the threads of
# a process and made anew after a fork (a Celery prefork child must not reuse the
# parent's sockets). Per-request timeouts are passed on each call.
_shared: dict[int, httpx.Client] = {}
_shared_lock = threading.Lock()


def shared_client() -> httpx.Client:
    pid = os.getpid()
    client = _shared.get(pid)
    if client is None:
        with _shared_lock:
            client = _shared.get(pid)
            if client is None:
                client = _shared[pid] = httpx.Client(follow_redirects=False)
    return client


def post(
    url: str, *, provider: str, timeout: float, client: httpx.Client | None = None, **kwargs: Any
) -> httpx.Response:
    """POST and read the whole answer; network failures become TransientError."""
    limits = httpx.Timeout(timeout, connect=timeout)  # connect, read, write and pool, each
    headers = {"User-Agent": USER_AGENT, **kwargs.pop("headers", {})}
    try:
        return (client or shared_client()).post(url, timeout=limits, headers=headers, **kwargs)
    except httpx.TimeoutException as exc:
        # After a read timeout the provider may have sent the message: the resend carries
        # the same idempotency key, so a provider that honours it sends only once.
        raise TransientError(f"{provider}: timed out ({type(exc).__name__}) after {timeout:g}s") from exc
    except httpx.TransportError as exc:
        raise TransientError(f"{provider}: {type(exc).__name__}") from exc


def error_for(response: httpx.Response, *, provider: str, reason: str, code: str = "") -> DeliveryError:
    """The error for a non-2xx answer; `reason` is the permanent reason the adapter read
    from the body, `code` the provider's error code (logged, never its message text)."""
    status = response.status_code
    suffix = f" (provider code {code})" if code else ""
    if status in (401, 403):
        return PermanentError(UNAUTHORIZED, f"{provider} refused our credentials: {status}{suffix}", status_code=status)
    if 400 <= status < 500 and status not in (408, 429):
        return PermanentError(reason, f"{provider} refused the message: {status}{suffix}", status_code=status)
    return TransientError(
        f"{provider} answered {status}{suffix}",
        status_code=status,
        retry_after=retry_after_seconds(response.headers.get("Retry-After")),
    )


def json_or_empty(response: httpx.Response) -> dict:
    """The answer's JSON object, or {} when it is not one."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
