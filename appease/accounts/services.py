"""Staff accounts: who signs in through the identity provider and with which role and
team, password-reset invitations, and the staff CSV import. Every change to a person's
roles or team is audited in the transaction that makes it."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.models import Group
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext

from appease.accounts.models import GroupMapping
from appease.core.audit import roles_changed_event, user_roles_snapshot
from appease.core.context import SYSTEM, Actor
from appease.core.roles import CSR, SUPERVISOR
from appease.issuance.models import StaffProfile, Team

ROLES = (CSR, SUPERVISOR)


class SignInRefused(Exception):
    """Single sign-on refused; `message` is for the person, in their language."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def staff_snapshot(user) -> dict:
    """Roles plus what the staff profile says about the person (for the audit log)."""
    profile = StaffProfile.objects.filter(user=user).select_related("team").first()
    return {
        **user_roles_snapshot(user),
        "email": user.email,
        "team": profile.team.name if profile and profile.team else None,
        "languages": list(profile.languages) if profile else [],
    }


def _role_apply(user, role: str) -> None:
    """`role` becomes the person's only Appease role; groups outside the roles are kept."""
    for name in ROLES:
        if name != role:
            user.groups.remove(*Group.objects.filter(name=name))
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    # Supervisors work in the admin; an administrator keeps access whatever the role.
    user.is_staff = role == SUPERVISOR or user.is_superuser


def _claim_true(value) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _groups_claim(claims: dict) -> list[str]:
    groups = claims.get(settings.OIDC_GROUPS_CLAIM) or []
    if isinstance(groups, str):
        groups = [groups]
    if not isinstance(groups, list):
        return []
    return [str(group) for group in groups if isinstance(group, str | int)]


def sso_mfa_asserted(claims: dict) -> bool:
    """The provider says it checked a second factor (`amr`, RFC 8176)."""
    amr = claims.get("amr") or []
    if isinstance(amr, str):
        amr = [amr]
    if not isinstance(amr, list):
        return False
    return any(str(method).lower() in settings.OIDC_MFA_AMR for method in amr if isinstance(method, str))


def sso_roles_for(groups: list[str]) -> tuple[str | None, Team | None]:
    """The role and team the provider's groups map to: Supervisor if any group maps to
    it, else CSR if any does; the team of the first mapping (by group name) naming one."""
    mappings = list(GroupMapping.objects.filter(idp_group__in=groups).select_related("team").order_by("idp_group"))
    roles = {mapping.role for mapping in mappings}
    role = SUPERVISOR if SUPERVISOR in roles else CSR if CSR in roles else None
    team = next((mapping.team for mapping in mappings if mapping.team_id), None)
    return role, team


@transaction.atomic
def staff_sso_sign_in(*, claims: dict, actor: Actor = SYSTEM):
    """The account for a person the identity provider vouched for, created on their first
    login, with the role and team their groups map to now (changed at every login).

    Raises SignInRefused (nothing written) when the email is missing or unverified, when
    no group maps to a role, or when the matching account is deactivated or ambiguous."""
    email = claims.get("email")
    email = email.strip() if isinstance(email, str) else ""
    try:
        validate_email(email)
    except ValidationError:
        email = ""
    if not email:
        raise SignInRefused(gettext("Your identity provider did not send an email address, so you cannot sign in."))
    verified = claims.get("email_verified")
    if (verified is not None and not _claim_true(verified)) or (
        verified is None and settings.OIDC_REQUIRE_EMAIL_VERIFIED
    ):
        raise SignInRefused(
            gettext("Your identity provider has not verified your email address, so you cannot sign in.")
        )
    role, team = sso_roles_for(_groups_claim(claims))
    if role is None:
        raise SignInRefused(
            gettext(
                "Your account is in no group that gives a role in Appease. "
                "Ask your administrator to add you to the CSR or Supervisor group."
            )
        )
    User = get_user_model()
    users = list(User.objects.filter(email__iexact=email)[:2])
    if len(users) > 1:
        raise SignInRefused(gettext("Several accounts share this email address: ask your administrator."))
    if users:
        user = users[0]
        if not user.is_active:
            raise SignInRefused(gettext("This account is deactivated: ask your administrator."))
        before = staff_snapshot(user)
        action = "user.sso_change"
    else:
        username = email.lower()[:150]
        if User.objects.filter(username=username).exists():
            raise SignInRefused(
                gettext("Another account already uses this email as its username: ask your administrator.")
            )
        user = User(username=username, email=email)
        user.set_unusable_password()  # SSO only: no password to guess, none to reset
        before = None
        action = "user.sso_create"
    user.first_name = str(claims.get("given_name") or user.first_name)[:150]
    user.last_name = str(claims.get("family_name") or user.last_name)[:150]
    user.save()
    _role_apply(user, role)
    user.save(update_fields=["is_staff"])
    profile, _created = StaffProfile.objects.get_or_create(user=user)
    if profile.team_id != (team.pk if team else None):
        profile.team = team
        profile.save(update_fields=["team"])
    after = staff_snapshot(user)
    if after != before:
        roles_changed_event(
            actor=actor if actor.user else Actor(user=user, ip=actor.ip, request_id=actor.request_id),
            obj=user,
            action=action,
            before=before,
            after=after,
        )
    return user


# --- Password reset invitations ------------------------------------------------------------


def local_login_allowed(user) -> bool:
    """Whether this person may sign in with a password (break-glass administrators only
    while single sign-on is on and SSO_LOCAL_LOGIN_SUPERUSERS_ONLY)."""
    if settings.OIDC_ENABLED and settings.SSO_LOCAL_LOGIN_SUPERUSERS_ONLY:
        return user.is_superuser
    return True


def staff_invite_send(*, user) -> None:
    """Mail `user` a link to choose their password (the password-reset link, which
    works for an account without a password yet), in their language."""
    public = urlsplit(settings.PUBLIC_URL)
    profile = StaffProfile.objects.filter(user=user).first()
    language = (profile.language if profile and profile.language else None) or settings.LANGUAGE_CODE
    context = {
        "email": user.email,
        "domain": public.netloc,
        "site_name": "Appease",
        "uid": urlsafe_base64_encode(force_bytes(user.pk)),
        "user": user,
        "token": default_token_generator.make_token(user),
        "protocol": public.scheme or "https",
    }
    with translation.override(language):
        PasswordResetForm().send_mail(
            "registration/staff_invite_subject.txt",
            "registration/staff_invite_email.txt",
            context,
            settings.DEFAULT_FROM_EMAIL,
            user.email,
        )


# --- Staff CSV import ---------------------------------------------------------------------

IMPORT_COLUMNS = ("name", "email", "role", "team", "languages")


@dataclass
class ImportProblem:
    line: int  # the line in the file (the header is line 1)
    field: str
    message: str


class StaffImportInvalid(Exception):
    def __init__(self, problems: list[ImportProblem]):
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


@dataclass
class StaffRow:
    line: int
    first_name: str
    last_name: str
    email: str
    role: str
    team: Team | None
    languages: list[str]


@dataclass
class StaffImportResult:
    created: list = field(default_factory=list)
    updated: list = field(default_factory=list)
    unchanged: list = field(default_factory=list)
    invited: list = field(default_factory=list)


def staff_csv_read(data: bytes | str) -> list[dict[str, str]]:
    """The file's rows as dicts keyed by the lower-cased header, each with its `line`.
    UTF-8 (a spreadsheet's byte-order mark allowed); comma or semicolon separated."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise StaffImportInvalid([ImportProblem(0, "file", gettext("The file is not UTF-8 text."))]) from exc
    first = data.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(data), delimiter=delimiter)
    try:
        header = [cell.strip().lower() for cell in next(reader)]
    except (StopIteration, csv.Error):
        header = []
    missing = [column for column in ("name", "email", "role") if column not in header]
    if missing:
        raise StaffImportInvalid(
            [
                ImportProblem(
                    1,
                    "file",
                    gettext("The first line must name the columns: %(columns)s (missing: %(missing)s).")
                    % {"columns": ", ".join(IMPORT_COLUMNS), "missing": ", ".join(missing)},
                )
            ]
        )
    rows = []
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            row = {name: (cells[index].strip() if index < len(cells) else "") for index, name in enumerate(header)}
            row["line"] = reader.line_num
            rows.append(row)
    except csv.Error as exc:
        raise StaffImportInvalid(
            [ImportProblem(reader.line_num, "file", gettext("This line is not valid CSV: %(error)s") % {"error": exc})]
        ) from exc
    if not rows:
        raise StaffImportInvalid([ImportProblem(1, "file", gettext("The file has no staff rows."))])
    return rows


def _language_codes(text: str) -> tuple[list[str], list[str]]:
    known = {code.lower(): code for code, _name in settings.LANGUAGES}
    codes, unknown = [], []
    for part in text.replace(";", " ").replace(",", " ").replace("|", " ").split():
        code = known.get(part.lower().replace("_", "-"))
        if code is None:
            unknown.append(part)
        elif code not in codes:
            codes.append(code)
    return codes, unknown


def _row_validate(row: dict, *, actor: Actor, teams: dict[str, Team], seen: dict[str, int]) -> tuple:
    line = row["line"]
    problems: list[ImportProblem] = []
    name = row.get("name", "")
    if not name:
        problems.append(ImportProblem(line, "name", gettext("A name is required.")))
    elif len(name) > 300:
        problems.append(ImportProblem(line, "name", gettext("The name is too long (300 characters at most).")))
    elif name[0] in "=+-@" or any(ord(char) < 32 for char in name):
        # A formula or control characters: a spreadsheet opening a later export would run it.
        problems.append(
            ImportProblem(line, "name", gettext("A name cannot start with = + - @ or hold control characters."))
        )
    email = row.get("email", "")
    try:
        validate_email(email)
    except ValidationError:
        problems.append(ImportProblem(line, "email", gettext("Enter a valid email address.")))
    else:
        if email.lower() in seen:
            problems.append(
                ImportProblem(
                    line, "email", gettext("This email is already on line %(line)s.") % {"line": seen[email.lower()]}
                )
            )
        seen.setdefault(email.lower(), line)
    role = {name.lower(): name for name in ROLES}.get(row.get("role", "").lower())
    if role is None:
        problems.append(
            ImportProblem(line, "role", gettext("The role must be one of: %(roles)s.") % {"roles": ", ".join(ROLES)})
        )
    elif role == SUPERVISOR and not (actor.user is None or actor.user.is_superuser):
        problems.append(ImportProblem(line, "role", gettext("Only an administrator may grant the Supervisor role.")))
    team = None
    if row.get("team"):
        team = teams.get(row["team"].lower())
        if team is None:
            problems.append(
                ImportProblem(line, "team", gettext("There is no team named “%(team)s”.") % {"team": row["team"]})
            )
    languages, unknown = _language_codes(row.get("languages", ""))
    if unknown:
        problems.append(
            ImportProblem(
                line,
                "languages",
                gettext("Unknown language(s): %(unknown)s. Use: %(known)s.")
                % {"unknown": ", ".join(unknown), "known": ", ".join(code for code, _name in settings.LANGUAGES)},
            )
        )
    first, _space, last = name.partition(" ")
    return problems, StaffRow(line, first[:150], last[:150], email, role or "", team, languages)


@transaction.atomic
def staff_import(*, rows: list[dict], actor: Actor, invite: bool = False) -> StaffImportResult:
    """Create or update one account per row (matched by email). Every row is checked
    first: with any problem nothing is written and StaffImportInvalid lists them all,
    line by line and field by field. New accounts get no password; with `invite`, local
    accounts are mailed a link to choose one (after the transaction commits)."""
    User = get_user_model()
    teams = {team.name.lower(): team for team in Team.objects.all()}
    seen: dict[str, int] = {}
    problems: list[ImportProblem] = []
    staff: list[tuple[StaffRow, object]] = []
    for row in rows:
        row_problems, parsed = _row_validate(row, actor=actor, teams=teams, seen=seen)
        existing = list(User.objects.filter(email__iexact=parsed.email)[:2]) if parsed.email else []
        if len(existing) > 1:
            row_problems.append(
                ImportProblem(parsed.line, "email", gettext("Several accounts share this email address."))
            )
        user = existing[0] if len(existing) == 1 else None
        if user is None and parsed.email and User.objects.filter(username=parsed.email.lower()[:150]).exists():
            row_problems.append(
                ImportProblem(parsed.line, "email", gettext("Another account already uses this email as its username."))
            )
        if user is not None and user.is_superuser and not (actor.user is None or actor.user.is_superuser):
            row_problems.append(
                ImportProblem(
                    parsed.line, "email", gettext("Only an administrator may change an administrator's account.")
                )
            )
        problems.extend(row_problems)
        staff.append((parsed, user))
    if problems:
        raise StaffImportInvalid(problems)

    result = StaffImportResult()
    for parsed, user in staff:
        if user is None:
            user = User(username=parsed.email.lower()[:150], email=parsed.email)
            user.set_unusable_password()
            before = None
        else:
            before = staff_snapshot(user)
        user.first_name, user.last_name, user.email = parsed.first_name, parsed.last_name, parsed.email
        user.save()
        _role_apply(user, parsed.role)
        user.save(update_fields=["is_staff"])
        profile, _created = StaffProfile.objects.get_or_create(user=user)
        profile.team = parsed.team
        profile.languages = parsed.languages
        profile.save(update_fields=["team", "languages"])
        after = staff_snapshot(user)
        if before is None:
            result.created.append(user)
            roles_changed_event(actor=actor, obj=user, action="user.import_create", before=None, after=after)
        elif before != after:
            result.updated.append(user)
            roles_changed_event(actor=actor, obj=user, action="user.import_change", before=before, after=after)
        else:
            result.unchanged.append(user)
        if invite and before is None and local_login_allowed(user):
            result.invited.append(user)
    for user in result.invited:
        transaction.on_commit(lambda user=user: staff_invite_send(user=user))
    return result
