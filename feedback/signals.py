"""CORS for the feedback widget: an origin may post when an active site allows it."""

from __future__ import annotations

from feedback.models import FeedbackSite


def cors_allow_site_origins(sender, request, **kwargs) -> bool:
    """django-cors-headers asks this for requests to CORS_URLS_REGEX (the intake).

    A site with no allowed origins accepts any; otherwise the request's Origin must be
    listed. The view checks the same for the site the key names (`site_allows_origin`).
    """
    origin = request.headers.get("Origin", "").rstrip("/")
    if not origin:
        return False
    sites = FeedbackSite.objects.filter(is_active=True).only("allowed_origins")
    return any(site_allows_origin(site, origin) for site in sites)


def site_allows_origin(site: FeedbackSite, origin: str | None) -> bool:
    return not origin or not site.origins or origin.rstrip("/") in site.origins
