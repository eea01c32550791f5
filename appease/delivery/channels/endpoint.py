"""The `webhook` channel: one JSON POST to an endpoint a supervisor registered.

The message comes composed and signed by its kind's owner (appease/webhooks): `to` is the
endpoint's URL, `text` the exact JSON body, `metadata["headers"]` the headers that go
with it (the signature, the event id). This adapter only gets it there safely:

- **No server-side request forgery.** The host is resolved here and every address it
  resolves to is checked: loopback, private, link-local (cloud metadata at
  169.254.169.254), shared, multicast, reserved and unspecified addresses are refused
  (`PermanentError`, reason `blocked_address`) unless `WEBHOOKS_ALLOW_PRIVATE_NETWORKS`
  is on. The request then goes to the address that was checked (the URL's host becomes
  the `Host` header, and the TLS server name, so the certificate is still checked for the
  name): a DNS answer that changes between the check and the connection (rebinding)
  cannot redirect it.
- **No redirect is followed**: a 3xx is a failed attempt (retried, like a 5xx).
- 2xx is sent; 408, 429, 5xx, timeouts and network errors are transient (the outbox
  retries them with its backoff); any other 4xx is permanent.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings

from appease.delivery.channels import _http
from appease.delivery.channels.base import (
    REJECTED,
    OutboundMessage,
    PermanentError,
    SendResult,
    TransientError,
)

BLOCKED_ADDRESS = "blocked_address"  # PermanentError.reason: the endpoint resolves to a private network

# One client per process, as _http's, but keeping no connection alive: connections are
# opened to an address, and a pooled one made (and verified) for one endpoint's host name
# must not carry another endpoint's request to the same address.
_clients: dict[int, httpx.Client] = {}
_clients_lock = threading.Lock()


def _client() -> httpx.Client:
    pid = os.getpid()
    client = _clients.get(pid)
    if client is None:
        with _clients_lock:
            client = _clients.get(pid)
            if client is None:
                client = _clients[pid] = httpx.Client(
                    follow_redirects=False, limits=httpx.Limits(max_keepalive_connections=0)
                )
    return client


def address_blocked(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether a webhook may not be posted to `address` (unless private networks are
    allowed): anything but a global unicast address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global  # 100.64.0.0/10 (shared), documentation ranges, ...
    )


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, in the resolver's order; TransientError if it
    does not resolve (DNS may be down for a moment)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TransientError(f"webhook endpoint: the host does not resolve ({type(exc).__name__})") from exc
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone
        if address not in addresses:
            addresses.append(address)
    return addresses


def checked_address(url: str, *, allow_private: bool) -> tuple[str, str, int]:
    """(host, address to connect to, port) for `url`, every resolved address checked."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PermanentError(REJECTED, "webhook endpoint: not an http(s) URL")
    host = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise PermanentError(REJECTED, "webhook endpoint: the port is not a number") from None
    addresses = resolve(host, port)
    if not addresses:
        raise TransientError("webhook endpoint: the host resolves to no address")
    if not allow_private:
        for address in addresses:
            if address_blocked(ipaddress.ip_address(address)):
                raise PermanentError(
                    BLOCKED_ADDRESS, "webhook endpoint: resolves to a loopback, private or reserved address"
                )
    return host, addresses[0], port


class EndpointAdapter:
    """POST the composed body to the endpoint, with the composer's headers."""

    provider = "webhook endpoint"

    def __init__(self, *, timeout: float = 5.0, allow_private: bool = False, client: httpx.Client | None = None):
        self.timeout = timeout
        self.allow_private = allow_private
        self.client = client

    @classmethod
    def from_settings(cls, channel: str = "webhook") -> EndpointAdapter:
        return cls(timeout=settings.WEBHOOKS_TIMEOUT, allow_private=settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS)

    def send(self, message: OutboundMessage) -> SendResult:
        host, address, port = checked_address(message.to, allow_private=self.allow_private)
        parts = urlsplit(message.to)
        literal = f"[{address}]" if ":" in address else address
        pinned = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
        default_port = (parts.scheme == "https" and port == 443) or (parts.scheme == "http" and port == 80)
        host_header = host if default_port else f"{host}:{port}"
        if ":" in host and not host.startswith("["):
            host_header = f"[{host}]" if default_port else f"[{host}]:{port}"
        headers = {
            "Content-Type": "application/json",
            "Host": host_header,
            "Idempotency-Key": message.idempotency_key,
            **message.metadata.get("headers", {}),
        }
        response = _http.post(
            pinned,
            provider=self.provider,
            timeout=self.timeout,
            client=self.client or _client(),
            content=message.text.encode(),
            headers=headers,
            # TLS: the server name (SNI, and the name the certificate is checked for) is
            # the endpoint's host, not the address we connect to.
            extensions={"sni_hostname": host} if parts.scheme == "https" else {},
        )
        if response.is_success:
            return SendResult(provider_message_id=message.idempotency_key, status_code=response.status_code)
        raise _http.error_for(response, provider=self.provider, reason=REJECTED)
