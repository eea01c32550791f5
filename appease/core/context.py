"""Who is acting, from where: what services write into the audit log."""

from __future__ import annotations

from dataclasses import dataclass

from appease.core.api import client_ip


@dataclass(frozen=True)
class Actor:
    user: object | None = None  # a User, or None for the system
    ip: str | None = None
    request_id: str = ""

    @property
    def label(self) -> str:
        return f"user:{self.user.get_username()}" if self.user is not None else "system"

    @classmethod
    def from_request(cls, request) -> Actor:
        user = request.user if getattr(request, "user", None) and request.user.is_authenticated else None
        return cls(user=user, ip=client_ip(request) or None, request_id=getattr(request, "request_id", ""))


SYSTEM = Actor()
