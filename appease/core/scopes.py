"""API key scopes: what a merchant's or a staff API key may call.

Every API view under /api/v1/ declares the scope a key needs:

    required_scope = "read"                                # every method
    required_scopes = {"GET": "read", "POST": "issue"}     # per method
    required_scope = None                                  # open: no key is asked for one

A value may also be a tuple of alternatives, any one of which opens the method: a view
that merchant keys and staff keys both call names one scope of each vocabulary
(`("redemptions:read", "read")`). HEAD is governed by GET.

`ScopeRequired` (in REST_FRAMEWORK's DEFAULT_PERMISSION_CLASSES and on every view that
sets its own permission classes) applies the declaration to requests authenticated by an
API key only: a person signed in (session) is governed by their role alone. A key without
the scope is refused with 403 `insufficient_scope`, before the request body is read.
A view that declares nothing is refused to every key (fail closed); a test walks the URL
conf so that none is left undeclared (tests/core/test_scopes.py).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework.permissions import BasePermission

from appease.core.exceptions import ApplicationError

MERCHANT = "merchant"
STAFF = "staff"

# The vocabularies, in the order the admin shows them. The labels are what an
# administrator ticks when creating a key.
MERCHANT_SCOPES: dict[str, str] = {
    "validate": gettext_lazy("Validate codes at checkout"),
    "redeem": gettext_lazy("Redeem codes"),
    "reverse": gettext_lazy("Reverse redemptions"),
    "events": gettext_lazy("Send order and delivery events"),
    "redemptions:read": gettext_lazy("Read this merchant's redemptions"),
}
STAFF_SCOPES: dict[str, str] = {
    "issue": gettext_lazy("Give, approve, reject, void and resend appeasements"),
    "cases": gettext_lazy("Work the case queue"),
    "read": gettext_lazy("Read issuances, customers, offers and redemptions"),
    "webhooks": gettext_lazy("Manage webhook endpoints"),
}
VOCABULARIES: dict[str, dict[str, str]] = {MERCHANT: MERCHANT_SCOPES, STAFF: STAFF_SCOPES}

UNDECLARED = object()


def merchant_scopes_all() -> list[str]:
    """Every merchant scope: a new merchant key's default (untick what it does not need)."""
    return list(MERCHANT_SCOPES)


def staff_scopes_all() -> list[str]:
    """Every staff scope: a new staff key's default."""
    return list(STAFF_SCOPES)


def scope_choices(kind: str) -> list[tuple[str, str]]:
    return [(scope, f"{label} ({scope})") for scope, label in VOCABULARIES[kind].items()]


def _validator(kind: str):
    vocabulary = VOCABULARIES[kind]

    def validate(value) -> None:
        if not isinstance(value, list) or not all(isinstance(scope, str) for scope in value):
            raise ValidationError(_("Scopes are a list of names."), code="invalid")
        unknown = [scope for scope in value if scope not in vocabulary]
        if unknown:
            raise ValidationError(
                _("Unknown scope: %(scopes)s. Known: %(known)s.")
                % {"scopes": ", ".join(unknown[:5]), "known": ", ".join(vocabulary)},
                code="invalid",
            )
        if len(set(value)) != len(value):
            raise ValidationError(_("A scope is named twice."), code="invalid")

    validate.__name__ = validate.__qualname__ = f"validate_{kind}_scopes"
    return validate


validate_merchant_scopes = _validator(MERCHANT)
validate_staff_scopes = _validator(STAFF)


def declared_scopes(view_class) -> dict[str, object] | object | None:
    """The view's declaration: a {METHOD: scope(s)} dict, None (open), or UNDECLARED."""
    if hasattr(view_class, "required_scopes"):
        return {method.upper(): scope for method, scope in view_class.required_scopes.items()}
    if hasattr(view_class, "required_scope"):
        return None if view_class.required_scope is None else {"*": view_class.required_scope}
    return UNDECLARED


def scopes_for(view_class, method: str) -> tuple[str, ...] | object | None:
    """The scopes (any one of them) a key needs for `method`, None if none, UNDECLARED if
    the view does not say."""
    declaration = declared_scopes(view_class)
    if declaration is None or declaration is UNDECLARED:
        return declaration
    method = method.upper()
    if method == "HEAD" and "HEAD" not in declaration:
        method = "GET"
    scope = declaration.get(method, declaration.get("*", UNDECLARED))
    if scope is UNDECLARED or scope is None:
        return scope
    return (scope,) if isinstance(scope, str) else tuple(scope)


class InsufficientScope(ApplicationError):
    status = 403

    def __init__(self, scopes: tuple[str, ...]) -> None:
        named = " / ".join(scopes)
        super().__init__(
            "insufficient_scope",
            _("This API key does not have the scope “%(scope)s” this request needs.") % {"scope": named},
            extra={"required_scope": named},
        )


class EndpointClosedToKeys(ApplicationError):
    status = 403

    def __init__(self) -> None:
        super().__init__("insufficient_scope", _("No API key scope opens this request."))


class ScopeRequired(BasePermission):
    """Requests made with an API key need the scope the view declares for the method.

    An API key is a request.auth with a `scope_kind` (StaffAPIKey, MerchantAPIKey: the
    models import this module, so it does not import them)."""

    def has_permission(self, request, view) -> bool:
        key = request.auth
        if getattr(key, "scope_kind", None) not in VOCABULARIES:
            return True  # not an API key (a session, or nobody): roles and other permissions decide
        needed = scopes_for(type(view), request.method)
        if needed is None:
            return True
        if needed is UNDECLARED:
            if request.method == "OPTIONS" or not hasattr(view, request.method.lower()):
                return True  # metadata, or the view answers 405 anyway
            raise EndpointClosedToKeys()
        held = set(key.scopes or ())
        if held.intersection(needed):
            return True
        raise InsufficientScope(needed)
