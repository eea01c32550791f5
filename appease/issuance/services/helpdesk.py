"""The helpdesk sidebar's two tokens (docs/integrations.md, "The helpdesk sidebar").

The launch token: a JWT (HS256) the helpdesk's side signs with the integration's shared
secret and the sidebar's frame opens with. It names the agent (`sub`), the ticket's
customer, language and opening time, is at most five minutes old and is good once
(`jti`). Accepting it gives the sidebar token: a short-lived value signed with our own
key, bound to the agent and the integration, that authenticates the sidebar's own
requests in place of a session cookie (a third-party frame may get none).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import get_supported_language_variant
from django.utils.translation import gettext as _

from appease.core.audit import audit_event_record
from appease.core.context import Actor
from appease.core.exceptions import ApplicationError
from appease.core.roles import CSR, SUPERVISOR, has_role
from appease.issuance.models import HelpdeskIntegration, HelpdeskLaunch
from appease.issuance.models.helpdesk import secret_generate
from appease.issuance.services.issuance import complaint_start_parse

ALGORITHM = "HS256"
# Longer than any honest launch token (a few hundred bytes): refused before parsing.
TOKEN_MAX_LENGTH = 4096
JTI = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
EXTERNAL_ID_MAX = 100
SIDEBAR_SALT = "appease.issuance.sidebar"


class LaunchRefused(ApplicationError):
    """A launch token we do not accept; `code` says why (for the log and the tests),
    `message` what the agent can do about it."""

    status = 401


@dataclass(frozen=True)
class TicketCustomer:
    email: str = ""
    phone: str = ""
    external_id: str = ""
    name: str = ""

    def __bool__(self) -> bool:
        return bool(self.email or self.phone or self.external_id)


@dataclass(frozen=True)
class Launch:
    integration: HelpdeskIntegration
    user: object
    customer: TicketCustomer
    language: str
    ticket_id: str
    opened_at: datetime | None


def _refused(code: str) -> LaunchRefused:
    messages = {
        "expired": _("This sidebar link has expired. Reopen the ticket to load the sidebar again."),
        "replayed": _("This sidebar link was already used. Reopen the ticket to load the sidebar again."),
        "unknown_user": _(
            "Your helpdesk account is not linked to an active member of staff here. Ask a supervisor to add you."
        ),
        "integration_inactive": _("This helpdesk integration is switched off. Ask a supervisor."),
    }
    message = messages.get(
        code,
        _(
            "The helpdesk sent a sidebar link we cannot accept. "
            "Reopen the ticket; if it happens again, tell a supervisor."
        ),
    )
    return LaunchRefused(code, message, status=403 if code in ("unknown_user", "integration_inactive") else 401)


def launch_integration_guess(token: str) -> HelpdeskIntegration | None:
    """The integration a token says it comes from (its `iss`, unverified): only to choose
    which helpdesk may frame the answer, never to trust anything in it."""
    try:
        issuer = jwt.decode(token[:TOKEN_MAX_LENGTH], options={"verify_signature": False}).get("iss")
    except (jwt.PyJWTError, AttributeError, TypeError, ValueError):
        return None
    if not isinstance(issuer, str) or len(issuer) > 50:
        return None
    return HelpdeskIntegration.objects.filter(key_id=issuer).first()


def _claims(token: str) -> tuple[HelpdeskIntegration, dict]:
    if not isinstance(token, str) or not token or len(token) > TOKEN_MAX_LENGTH:
        raise _refused("malformed")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise _refused("malformed") from None
    if header.get("alg") != ALGORITHM:
        raise _refused("algorithm")
    integration = launch_integration_guess(token)
    if integration is None:
        raise _refused("unknown_issuer")
    leeway = settings.SIDEBAR_LAUNCH_LEEWAY_SECONDS
    try:
        claims = jwt.decode(
            token,
            integration.secret,
            algorithms=[ALGORITHM],
            audience=settings.SIDEBAR_LAUNCH_AUDIENCE,
            issuer=integration.key_id,
            leeway=leeway,
            options={"require": ["iss", "sub", "aud", "iat", "exp", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise _refused("expired") from None
    except jwt.InvalidSignatureError:
        raise _refused("signature") from None
    except jwt.InvalidAudienceError:
        raise _refused("audience") from None
    except jwt.PyJWTError:
        raise _refused("invalid") from None
    if not integration.is_active:
        raise _refused("integration_inactive")
    issued, expires = claims["iat"], claims["exp"]
    if not isinstance(issued, int | float) or not isinstance(expires, int | float):
        raise _refused("invalid")
    now = timezone.now().timestamp()
    max_age = settings.SIDEBAR_LAUNCH_MAX_AGE_SECONDS
    # At most five minutes old, and no longer-lived than that whatever `exp` says.
    if issued < now - max_age - leeway or expires - issued > max_age:
        raise _refused("expired")
    return integration, claims


def _text(value, *, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise _refused("invalid")
    value = str(value).strip()
    if len(value) > limit or any(ord(ch) < 32 for ch in value):
        raise _refused("invalid")
    return value


def _ticket_customer(claim) -> TicketCustomer:
    if claim is None:
        return TicketCustomer()
    if not isinstance(claim, dict):
        raise _refused("invalid")
    email = _text(claim.get("email"), limit=254)
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise _refused("invalid") from None
    phone = _text(claim.get("phone"), limit=32)
    if phone and not re.fullmatch(r"\+?[0-9 ().-]{6,32}", phone):
        raise _refused("invalid")
    return TicketCustomer(
        email=email,
        phone=phone,
        external_id=_text(claim.get("external_id"), limit=EXTERNAL_ID_MAX),
        name=_text(claim.get("name"), limit=200),
    )


def _language(value) -> str:
    if not isinstance(value, str) or not value or len(value) > 20:
        return settings.LANGUAGE_CODE
    try:
        return get_supported_language_variant(value.replace("_", "-").lower())
    except LookupError:
        return settings.LANGUAGE_CODE


def _opened_at(value) -> datetime | None:
    """The ticket's opening time: epoch seconds or ISO 8601 with an offset; not after now."""
    if value is None or value == "":
        return None
    moment = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            moment = datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            moment = None
    elif isinstance(value, str) and len(value) <= 40:
        try:
            moment = complaint_start_parse(value)
        except ValidationError:
            moment = None
    if moment is None or moment > timezone.now() + timedelta(seconds=settings.SIDEBAR_LAUNCH_LEEWAY_SECONDS):
        raise _refused("invalid")
    return min(moment, timezone.now())


def _agent(subject) -> object:
    """The member of staff `sub` names: their username, else their email (one active user)."""
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 254:
        raise _refused("unknown_user")
    users = get_user_model().objects.filter(is_active=True)
    user = users.filter(username=subject).first()
    if user is None:
        by_email = list(users.filter(email__iexact=subject.strip())[:2])
        user = by_email[0] if len(by_email) == 1 else None
    if user is None or not has_role(user, CSR, SUPERVISOR):
        raise _refused("unknown_user")
    return user


def sidebar_launch_accept(*, token: str) -> Launch:
    """Verify a launch token and spend its `jti`; LaunchRefused with the reason if it is
    not good (bad signature, wrong audience, older than the maximum age, replayed, an
    agent who is not active staff, claims of the wrong shape)."""
    integration, claims = _claims(token)
    jti = claims["jti"]
    if not isinstance(jti, str) or not JTI.match(jti):
        raise _refused("invalid")
    user = _agent(claims["sub"])
    ticket = claims.get("ticket") or {}
    if not isinstance(ticket, dict):
        raise _refused("invalid")
    launch = Launch(
        integration=integration,
        user=user,
        customer=_ticket_customer(claims.get("customer")),
        language=_language(ticket.get("language")),
        ticket_id=_text(ticket.get("id"), limit=100),
        opened_at=_opened_at(ticket.get("opened_at")),
    )
    _jti_spend(integration=integration, jti=jti, expires=claims["exp"])
    return launch


def _jti_spend(*, integration: HelpdeskIntegration, jti: str, expires: float) -> None:
    """Kept in the database, not the cache: a cache that is down or evicts would let a
    replay through. The unique constraint refuses the second insert, whoever races."""
    now = timezone.now()
    keep_until = datetime.fromtimestamp(expires, tz=UTC) + timedelta(seconds=settings.SIDEBAR_LAUNCH_LEEWAY_SECONDS)
    try:
        with transaction.atomic():
            HelpdeskLaunch.objects.create(integration=integration, jti=jti, expires_at=keep_until)
    except IntegrityError:
        raise _refused("replayed") from None
    # What has expired can no longer be replayed: forget it (an index on expires_at).
    HelpdeskLaunch.objects.filter(expires_at__lt=now).delete()


# --- The sidebar token ---------------------------------------------------------------


def _secret_fingerprint(integration: HelpdeskIntegration) -> str:
    # Rotating the integration's secret ends the sidebars it had opened.
    return hashlib.sha256(integration.secret.encode()).hexdigest()[:16]


def sidebar_token_make(*, user, integration: HelpdeskIntegration, language: str) -> str:
    return signing.dumps(
        {"u": user.pk, "i": integration.pk, "f": _secret_fingerprint(integration), "l": language},
        salt=SIDEBAR_SALT,
        compress=True,
    )


@dataclass(frozen=True)
class SidebarSession:
    user: object
    integration: HelpdeskIntegration
    language: str
    token: str


def sidebar_token_check(token: str) -> SidebarSession | None:
    """The agent and integration a sidebar token was made for, if it is ours, at most
    SIDEBAR_SESSION_SECONDS old, and both are still active (the agent still staff)."""
    if not isinstance(token, str) or not token or len(token) > 1024:
        return None
    try:
        data = signing.loads(token, salt=SIDEBAR_SALT, max_age=settings.SIDEBAR_SESSION_SECONDS)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not isinstance(data, dict):
        return None
    integration = HelpdeskIntegration.objects.filter(pk=data.get("i"), is_active=True).first()
    if integration is None or _secret_fingerprint(integration) != data.get("f"):
        return None
    user = get_user_model().objects.filter(pk=data.get("u"), is_active=True).first()
    if user is None or not has_role(user, CSR, SUPERVISOR):
        return None
    return SidebarSession(user=user, integration=integration, language=_language(data.get("l")), token=token)


# --- Integrations (the admin) ----------------------------------------------------------


@transaction.atomic
def helpdesk_integration_secret_rotate(*, actor: Actor, integration_id: int) -> str:
    """A new shared secret, returned once to be shown once; the old one stops verifying
    at once, and the sidebars it opened end. Audited without the secret."""
    integration = HelpdeskIntegration.objects.select_for_update().get(pk=integration_id)
    integration.secret = secret_generate()
    integration.secret_rotated_at = timezone.now()
    integration.save(update_fields=["secret", "secret_rotated_at"])
    audit_event_record(
        actor=actor,
        action="helpdeskintegration.secret_rotate",
        obj=integration,
        after={"secret_rotated_at": integration.secret_rotated_at.isoformat()},
    )
    return integration.secret
