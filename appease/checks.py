from django.conf import settings
from django.core.checks import Warning, register


@register(deploy=True)
def shared_cache_check(app_configs, **kwargs):
    """Rate-limit counters must be shared by every web process."""
    backend = settings.CACHES["default"]["BACKEND"]
    if backend.endswith("LocMemCache"):
        return [
            Warning(
                "The cache is per process (REDIS_URL is not set): failed-look-up limits "
                "are counted separately in each web process.",
                hint="Set REDIS_URL so every web process shares one counter.",
                id="appease.W001",
            )
        ]
    return []
