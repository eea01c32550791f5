"""The one error vocabulary of the services (besides Django's ValidationError)."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """A business rule refused the request.

    `code` is machine-readable (API clients branch on it), `message` is for people,
    `status` is the HTTP status the API answers with, `extra` is added to the body.
    """

    status = 422

    def __init__(
        self,
        code: str,
        message: str = "",
        *,
        status: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message or code)
        self.code = code
        self.message = message or code
        if status is not None:
            self.status = status
        self.extra = extra or {}
