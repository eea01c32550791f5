"""What the HTTP adapters share: one POST with explicit timeouts, and the status rules.

Status rules (docs/delivery.md, "Error mapping"): 2xx is the adapter's to read; 401/403
mean our credentials were refused (permanent, reason `unauthorized`); 408, 429 and 5xx
are transient with Retry-After honoured; any other 4xx is permanent; anything else
(a redirect, which is never followed) is transient, as are timeouts and connection
errors.
"""

from __future__ import annotations

from typing import Any

import httpx

from appease.channels.base import UNAUTHORIZED, DeliveryError, PermanentError, TransientError, retry_after_seconds

USER_AGENT = "appease-delivery/1.0"


def post(
    url: str, *, provider: str, timeout: float, client: httpx.Client | None = None, **kwargs: Any
) -> httpx.Response:
    """POST and read the whole answer; network failures become TransientError."""
    limits = httpx.Timeout(timeout, connect=timeout)  # connect, read, write and pool, each
    headers = {"User-Agent": USER_AGENT, **kwargs.pop("headers", {})}
    try:
        if client is not None:
            return client.post(url, timeout=limits, headers=headers, **kwargs)
        with httpx.Client(timeout=limits, follow_redirects=False) as own:
            return own.post(url, headers=headers, **kwargs)
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
