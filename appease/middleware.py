import re
import uuid
import zoneinfo

from django.utils import timezone, translation

from appease import health
from appease.core.observability import request_id_var

_VALID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class HealthProbeMiddleware:
    """Answer the load balancer's probes (`/healthz`, `/readyz`) before anything else.

    First in MIDDLEWARE: a load balancer probes each web process over plain HTTP with
    the process's IP as the Host header. SecurityMiddleware would redirect it to HTTPS
    (SECURE_SSL_REDIRECT) and the first `request.get_host()` would refuse the IP (400,
    ALLOWED_HOSTS), so the probe would fail on a healthy process. The probes read no
    host and no cookie, answer nothing secret, and every other path still goes through
    the whole stack."""

    def __init__(self, get_response):

        self.get_response = get_response
        self.probes = {"/healthz": health.healthz, "/readyz": health.readyz}

    def __call__(self, request):
        probe = self.probes.get(request.path_info)
        if probe is not None:
            return probe(request)
        return self.get_response(request)


class RequestIdMiddleware:
    """Give every request an id (the caller's X-Request-ID if sane), echo it back, and
    let services write it into the audit log so one issuance can be followed."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if _VALID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request.request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request.request_id
        return response


class UserPreferencesMiddleware:
    """A signed-in user's own language and time zone (their staff profile), over the
    browser's language (LocaleMiddleware) and the server's time zone.

    Goes after AuthenticationMiddleware and LocaleMiddleware. Without a saved choice the
    browser's Accept-Language stands, as LocaleMiddleware chose it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        profile = getattr(request.user, "profile", None) if request.user.is_authenticated else None
        if profile is not None and profile.language:
            translation.activate(profile.language)
            request.LANGUAGE_CODE = translation.get_language()
        zone = _zone(profile.time_zone) if profile is not None and profile.time_zone else None
        if zone is not None:
            timezone.activate(zone)
        try:
            response = self.get_response(request)
        finally:
            timezone.deactivate()
        return response


def _zone(name: str):
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
