"""Who is acting, from where: what services write into the audit log."""

from __future__ import annotations

from dataclasses import dataclass

from appease.core.api import client_ip


@dataclass(frozen=True)
class Actor:
    user: object | None = None  # a User, or None for the system
    ip: str | None = None
    request_id: str = ""
    # Where the user acted from when it is not our own pages (a helpdesk's sidebar): the
    # audit log's label says so, e.g. "user:ana via helpdesk:Zendesk".
    via: str = ""

    @property
    def label(self) -> str:
        label = f"user:{self.user.get_username()}" if self.user is not None else "system"
        return f"{label} via {self.via}" if self.via else label

    @classmethod
    def from_request(cls, request) -> Actor:
        user = request.user if getattr(request, "user", None) and request.user.is_authenticated else None
        return cls(
            user=user,
            ip=client_ip(request) or None,
            request_id=getattr(request, "request_id", ""),
            via=getattr(request, "actor_via", ""),
        )


SYSTEM = Actor()
