"""Appease settings: every value comes from the environment through `appease.core.env`.

The defaults run the demo on one machine with nothing else installed (SQLite under
`var/`, a file-system Celery transport, an in-process cache). With DEBUG off, every
secret must be given explicitly: a missing one is an ImproperlyConfigured error at
start-up, never a silent default. See docs/configuration.md for the full list.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from babel.numbers import list_currencies
from celery.schedules import crontab
from cryptography.fernet import Fernet
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from appease.core.env import (
    DEMO_CODE_ENCRYPTION_KEY,
    DEMO_CODE_HASH_KEY,
    DEMO_SECRET_KEY,
    env_bool,
    env_decimal,
    env_float,
    env_int,
    env_list,
    env_secret,
    env_str,
)
from appease.core.observability import JSON_FORMATTER

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("APPEASE_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", True)

# Demo-only values. They are public (they are in this file), so they are refused
# whenever DEBUG is off.

SECRET_KEY = env_secret("SECRET_KEY", debug=DEBUG, demo_default=DEMO_SECRET_KEY)
# Rotation: the new key in SECRET_KEY, the old one here (comma-separated) until the
# sessions, password-reset links and signed values it made have expired (docs/deploy.md).
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", [])
# HMAC-SHA256 key for looking codes up by hash. Changing it makes every stored code
# unfindable, so it is never rotated in place (see docs/adr/0002-codes-at-rest.md).
CODE_HASH_KEY = env_secret("CODE_HASH_KEY", debug=DEBUG, demo_default=DEMO_CODE_HASH_KEY)
# Fernet keys for the encrypted plaintext needed at delivery; comma-separated, the
# first encrypts, all decrypt (rotation with MultiFernet).
CODE_ENCRYPTION_KEYS = env_list(
    "CODE_ENCRYPTION_KEYS",
    [DEMO_CODE_ENCRYPTION_KEY] if DEBUG else [],
)
if not CODE_ENCRYPTION_KEYS:
    raise ImproperlyConfigured("CODE_ENCRYPTION_KEYS must be set when DEBUG is off.")
for _key in CODE_ENCRYPTION_KEYS:
    try:
        Fernet(_key)
    except ValueError as exc:
        raise ImproperlyConfigured(
            "CODE_ENCRYPTION_KEYS must hold Fernet keys (32 url-safe base64-encoded bytes); "
            "make one with `python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`."
        ) from exc
if not DEBUG and (
    SECRET_KEY == DEMO_SECRET_KEY
    or DEMO_SECRET_KEY in SECRET_KEY_FALLBACKS
    or CODE_HASH_KEY == DEMO_CODE_HASH_KEY
    or DEMO_CODE_ENCRYPTION_KEY in CODE_ENCRYPTION_KEYS
):
    raise ImproperlyConfigured("The demo keys cannot be used with DEBUG off.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # modeltranslation must come before the admin to patch it.
    "modeltranslation",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "phonenumber_field",
    "django_htmx",
    "corsheaders",
    "django_prometheus",
    "csp",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "appease.core",
    "appease.delivery",
    "appease.webhooks",
    "coupons",
    "appease.issuance",
    "appease.accounts",
    "feedback",
    "reporting",
    "appease.demo",
]

MIDDLEWARE = [
    # Load-balancer probes over plain HTTP with an IP Host: before the HTTPS redirect
    # and ALLOWED_HOSTS (appease/middleware.py).
    "appease.middleware.HealthProbeMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files from the application in production (docs/deploy.md, "Static files").
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "appease.middleware.RequestIdMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "appease.middleware.UserPreferencesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",
    # RateLimit-* on every /api/v1 answer (appease/core/quota.py): after the language
    # and the user are known.
    "appease.core.quota.RateLimitHeadersMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "appease.urls"
WSGI_APPLICATION = "appease.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "csp.context_processors.nonce",
            ],
            "builtins": ["appease.issuance.templatetags.money"],
        },
    },
]

# --- Database ---------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'appease.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The demo runs a web server, a worker and beat on one file: WAL lets readers
    # and a writer coexist, IMMEDIATE takes the write lock up front so two writers
    # queue instead of failing with "database is locked" on lock upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
# Transactions are opened by services, where the logic is (docs/architecture.md).
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (rate-limit counters live here) -----------------------------------------
REDIS_URL = env_str("REDIS_URL")
# Redis down or hung must not take requests down with it (appease/core/cache.py, ADR 0008):
# every call gives up after CACHE_TIMEOUT_SECONDS (Redis on the LAN answers in a
# millisecond), and after a failure this process leaves Redis alone for
# CACHE_RETRY_SECONDS (rate limits count in the database meanwhile).
CACHE_TIMEOUT_SECONDS = env_float("CACHE_TIMEOUT_SECONDS", 0.5)
CACHE_RETRY_SECONDS = env_float("CACHE_RETRY_SECONDS", 5)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "appease.core.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "socket_connect_timeout": CACHE_TIMEOUT_SECONDS,
                "socket_timeout": CACHE_TIMEOUT_SECONDS,
                # No retry inside redis-py: one timeout per call, and the breaker decides.
                "retry_on_timeout": False,
                "retry_on_error": [],
                # The pool must not wait for a free connection when Redis hangs.
                "health_check_interval": 0,
            },
        }
    }
else:
    # Per process: fine for the demo's single web process, not for several
    # (check appease.W001 says so).
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth ---------------------------------------------------------------------------
# django-axes first: it refuses a locked-out user before the password is even checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # Passwords; with OIDC on and SSO_LOCAL_LOGIN_SUPERUSERS_ONLY, administrators only.
    "appease.accounts.backends.LocalBackend",
    # Single sign-on (OpenID Connect): answers only the provider's callback.
    "appease.accounts.backends.OIDCBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "csr:home"
LOGOUT_REDIRECT_URL = "login"

# Single sign-on for staff (OpenID Connect, mozilla-django-oidc; docs/integrations.md,
# "Single sign-on for staff"). Off unless OIDC_ENABLED; the endpoints are the identity
# provider's (its /.well-known/openid-configuration lists them).
OIDC_ENABLED = env_bool("OIDC_ENABLED", False)
OIDC_PROVIDER_NAME = env_str("OIDC_PROVIDER_NAME", "your organisation")
OIDC_OP_ISSUER = env_str("OIDC_OP_ISSUER", "")
OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("OIDC_OP_AUTHORIZATION_ENDPOINT", "")
OIDC_OP_TOKEN_ENDPOINT = env_str("OIDC_OP_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = env_str("OIDC_OP_USER_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = env_str("OIDC_OP_JWKS_ENDPOINT", "")
OIDC_OP_LOGOUT_ENDPOINT = env_str("OIDC_OP_LOGOUT_ENDPOINT", "")
OIDC_RP_CLIENT_ID = env_str("OIDC_RP_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = env_secret("OIDC_RP_CLIENT_SECRET", debug=DEBUG, demo_default="") if OIDC_ENABLED else ""
OIDC_RP_SIGN_ALGO = env_str("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = env_str("OIDC_RP_SCOPES", "openid email profile groups")
# The claim that lists the person's groups (Keycloak, Okta: `groups`; Azure AD: `groups`
# or `roles`); mapped to roles and teams by the admin's "Group mappings".
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")
# Providers that do not send `email_verified` (Azure AD) vouch for the address otherwise:
# off, a missing claim counts as verified; a claim that says false is always refused.
OIDC_REQUIRE_EMAIL_VERIFIED = env_bool("OIDC_REQUIRE_EMAIL_VERIFIED", True)
# `amr` values that mean the provider checked a second factor: such a login counts as
# two-factor for the admin (APPEASE_SUPERVISOR_2FA).
OIDC_MFA_AMR = env_list("OIDC_MFA_AMR", ["mfa", "otp", "hwk"])
OIDC_USE_PKCE = True
OIDC_TIMEOUT = env_int("OIDC_TIMEOUT_SECONDS", 10)
OIDC_VERIFY_SSL = env_bool("OIDC_VERIFY_SSL", True)
OIDC_CREATE_USER = True
LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/"
OIDC_AUTHENTICATION_CALLBACK_URL = "oidc_authentication_callback"
# With OIDC on, passwords are for break-glass administrators only (superusers).
SSO_LOCAL_LOGIN_SUPERUSERS_ONLY = env_bool("SSO_LOCAL_LOGIN_SUPERUSERS_ONLY", True)
if OIDC_ENABLED and not all(
    (OIDC_OP_AUTHORIZATION_ENDPOINT, OIDC_OP_TOKEN_ENDPOINT, OIDC_OP_USER_ENDPOINT, OIDC_RP_CLIENT_ID)
):
    raise ImproperlyConfigured(
        "OIDC_ENABLED needs OIDC_OP_AUTHORIZATION_ENDPOINT, OIDC_OP_TOKEN_ENDPOINT, "
        "OIDC_OP_USER_ENDPOINT and OIDC_RP_CLIENT_ID."
    )
if OIDC_ENABLED and OIDC_RP_SIGN_ALGO.startswith(("RS", "ES")) and not OIDC_OP_JWKS_ENDPOINT:
    raise ImproperlyConfigured(f"OIDC_RP_SIGN_ALGO {OIDC_RP_SIGN_ALGO} needs OIDC_OP_JWKS_ENDPOINT.")

# Password reset by email (local accounts only): links last PASSWORD_RESET_TIMEOUT
# seconds; each address may ask PASSWORD_RESET_PER_HOUR times an hour, each client
# address PASSWORD_RESET_PER_IP_PER_HOUR times.
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT_SECONDS", 3 * 24 * 3600)
PASSWORD_RESET_PER_HOUR = env_int("PASSWORD_RESET_PER_HOUR", 3)
PASSWORD_RESET_PER_IP_PER_HOUR = env_int("PASSWORD_RESET_PER_IP_PER_HOUR", 20)

# --- Internationalisation ---------------------------------------------------------
LANGUAGE_CODE = env_str("LANGUAGE_CODE", "en")
LANGUAGES = [
    ("en", _("English")),
    ("es", _("Spanish")),
    ("pt-br", _("Brazilian Portuguese")),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
MODELTRANSLATION_DEFAULT_LANGUAGE = "en"
MODELTRANSLATION_FALLBACK_LANGUAGES = ("en",)

# --- Money --------------------------------------------------------------------------
DEFAULT_CURRENCY = env_str("DEFAULT_CURRENCY", "USD").upper()
if DEFAULT_CURRENCY not in list_currencies():
    raise ImproperlyConfigured(f"DEFAULT_CURRENCY {DEFAULT_CURRENCY!r} is not an ISO 4217 code.")

# --- Static files -------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "reporting.staticfiles.PlotlyFinder",  # vendor/plotly.min.js from the pinned plotly package
]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
# Production serves STATIC_ROOT itself (WhiteNoise): `collectstatic` (the release step,
# the Docker build) writes each file under a content-hashed name, gzipped too, and those
# are cached for good (immutable); the unhashed names (the widget's embed snippet uses
# one) for STATIC_MAX_AGE seconds. The demo serves the source folders as they are.
STATIC_MANIFEST = env_bool("STATIC_MANIFEST", not DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "appease.staticfiles.ManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_MAX_AGE = env_int("STATIC_MAX_AGE", 0 if DEBUG else 3600)

# --- REST framework -----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    # The API key scope check first (appease/core/scopes.py), then the role.
    "DEFAULT_PERMISSION_CLASSES": ["appease.core.scopes.ScopeRequired", "rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # Bounded before parsing (body size, JSON nesting) and checked after it (NUL, lone
    # surrogates, numbers beyond a double): docs/adr/0009-request-body-limits.md.
    "DEFAULT_PARSER_CLASSES": ["appease.core.parsers.BoundedJSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # The per-caller request quota (appease/core/quota.py; API_RATE_LIMIT_* below).
    "DEFAULT_THROTTLE_CLASSES": ["appease.core.quota.ApiQuotaThrottle"],
    "DEFAULT_SCHEMA_CLASS": "appease.core.openapi.ScopedAutoSchema",
    "EXCEPTION_HANDLER": "appease.core.api.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    # Number of reverse proxies in front of the web processes: the client IP used for
    # rate limits is read from X-Forwarded-For only that far back. 0 (no proxy): the
    # header is ignored. (None would make DRF trust the whole header, which any client
    # can write: a rotating header would walk past every per-IP limit.)
    "NUM_PROXIES": env_int("NUM_PROXIES", 0),
}
# Request bodies: at most this many bytes (Django's forms and the API's parsers; 413
# past it), and JSON nested at most this deep (400 past it). The largest real request
# (a merchant event naming 1,000 customers) is about 100 KiB.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 1024 * 1024)
API_JSON_MAX_DEPTH = env_int("API_JSON_MAX_DEPTH", 32)
SPECTACULAR_SETTINGS = {
    "TITLE": "Appease API",
    "DESCRIPTION": "Customer appeasement and service recovery: checkout redemption API.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI is served from our static files, not a CDN: it works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ChannelEnum": "appease.delivery.models.Channel",
        "WebhookEventTypeEnum": "appease.webhooks.models.EventType",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "appease.core.api.schema_no_nul_characters",
        "appease.core.api.schema_body_limits",
    ],
}

# --- The API's request quota (appease/core/quota.py, docs/integrations.md) ----------
# Requests per caller per window: per API key (merchant or staff), per signed-in user,
# per client IP for anonymous callers. Past it: 429 with Retry-After. 0: no quota. The
# quota fails open while the cache (Redis) is unreachable.
API_RATE_LIMIT_PER_KEY = env_int("API_RATE_LIMIT_PER_KEY", 6000)
API_RATE_LIMIT_PER_USER = env_int("API_RATE_LIMIT_PER_USER", 1200)
API_RATE_LIMIT_PER_IP = env_int("API_RATE_LIMIT_PER_IP", 600)
API_RATE_LIMIT_WINDOW_SECONDS = max(1, env_int("API_RATE_LIMIT_WINDOW_SECONDS", 60))

# --- Redemption API -----------------------------------------------------------------
# Failed code look-ups (unknown codes) allowed per API key and per client IP in one
# window; past it the caller gets 429 with Retry-After.
FAILED_LOOKUP_LIMIT = env_int("FAILED_LOOKUP_LIMIT", 10)
FAILED_LOOKUP_WINDOW_SECONDS = env_int("FAILED_LOOKUP_WINDOW_SECONDS", 60)
# Idempotency keys are kept at least this long (the purge task removes older ones).
IDEMPOTENCY_KEY_TTL = timedelta(hours=max(24, env_int("IDEMPOTENCY_KEY_TTL_HOURS", 24)))
# A request that holds a key longer than this is presumed dead (its process crashed)
# and the key may be taken over by a retry.
IDEMPOTENCY_LOCK_TIMEOUT = timedelta(seconds=env_int("IDEMPOTENCY_LOCK_TIMEOUT_SECONDS", 30))
# A request whose key is still held by another waits this long for the first answer (and
# replays it) before it is told 409 idempotency_key_in_use; it looks every POLL seconds.
IDEMPOTENCY_WAIT = timedelta(seconds=env_int("IDEMPOTENCY_WAIT_SECONDS", 5))
IDEMPOTENCY_POLL_SECONDS = 0.02

# --- Issuance -------------------------------------------------------------------------
# Pending approvals older than this are escalated to every supervisor by email.
APPROVAL_ESCALATE_AFTER = timedelta(minutes=env_int("APPROVAL_ESCALATE_AFTER_MINUTES", 15))
PHONENUMBER_DEFAULT_REGION = None  # phone numbers must be given in international (E.164) form

# --- Delivery (the outbox) --------------------------------------------------------------
# Transient errors are retried with exponential backoff (base × 2^(n−1), each step capped
# at DELIVERY_BACKOFF_MAX_SECONDS, jittered over its upper half) for DELIVERY_RETRY_HORIZON
# after the first attempt: long enough to outlive an ordinary provider outage. Then the
# row is `dead` (docs/delivery.md, "Backoff and retries"). DELIVERY_MAX_ATTEMPTS bounds
# the attempts whatever the horizon (a delivery that kills its worker every time).
DELIVERY_BACKOFF_BASE_SECONDS = env_float("DELIVERY_BACKOFF_BASE_SECONDS", 2)
DELIVERY_BACKOFF_MAX_SECONDS = env_float("DELIVERY_BACKOFF_MAX_SECONDS", 300)
DELIVERY_RETRY_HORIZON = timedelta(seconds=env_float("DELIVERY_RETRY_HORIZON_SECONDS", 30 * 60))
DELIVERY_MAX_ATTEMPTS = env_int("DELIVERY_MAX_ATTEMPTS", 25)
# A worker holds a row it sends under a lease, renewed every quarter lease while the send
# runs (a heartbeat), for at most DELIVERY_SEND_DEADLINE (the send task's time limit). A
# lease not renewed (the worker was killed) expires and the sweeper, every half lease,
# makes the row sendable again: a killed worker's delivery goes out again within about
# 1.5 leases. The lease only has to outlast a missed heartbeat, not the longest send.
DELIVERY_LEASE = timedelta(seconds=max(2.0, env_float("DELIVERY_LEASE_SECONDS", 20)))
DELIVERY_LEASE_RENEW_EVERY = DELIVERY_LEASE / 4
DELIVERY_SWEEP_EVERY = DELIVERY_LEASE / 2
DELIVERY_SEND_DEADLINE = timedelta(seconds=90)
SHOP_NAME = env_str("SHOP_NAME", "Appease Demo Shop")
# The shop's clock: dates and times in customer messages (a code's "valid until", a
# survey link's expiry) are the shop's, in the customer's language.
SHOP_TIME_ZONE = env_str("SHOP_TIME_ZONE", TIME_ZONE)
# The pretend shop page that shows the feedback widget (/demo/shop/): the demo's only.
DEMO_SHOP = env_bool("DEMO_SHOP", DEBUG)
SHOP_URL = env_str("SHOP_URL", "https://shop.example.com")

# --- Feedback, cases and follow-ups (docs/feedback.md) ---------------------------------
# Where customers reach this server: survey links in follow-ups and the widget's embed
# snippet (admin, Feedback sites) start with it.
PUBLIC_URL = env_str("PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
# Business hours for the SLA clocks of priority levels that count business hours only:
# weekdays (0 = Monday) and opening hours in FEEDBACK_TIME_ZONE.
FEEDBACK_TIME_ZONE = env_str("FEEDBACK_TIME_ZONE", TIME_ZONE)
FEEDBACK_BUSINESS_DAYS = [int(day) for day in env_list("FEEDBACK_BUSINESS_DAYS", ["0", "1", "2", "3", "4"])]
FEEDBACK_BUSINESS_HOURS = (env_str("FEEDBACK_OPENS_AT", "09:00"), env_str("FEEDBACK_CLOSES_AT", "18:00"))
# A resolved case gets its follow-up (thanks + "was it solved?") this long after.
FOLLOW_UP_DELAY = timedelta(minutes=env_int("FOLLOW_UP_DELAY_MINUTES", 60))
# The survey link works this long; no answer by then closes the case as unconfirmed.
SURVEY_LINK_VALIDITY = timedelta(days=env_int("SURVEY_LINK_VALIDITY_DAYS", 7))
# A customer is surveyed at most once in this period (about different cases: a reopened
# case is asked again when it is resolved again).
SURVEY_QUIET_PERIOD = timedelta(days=env_int("SURVEY_QUIET_PERIOD_DAYS", 14))
# An offer's (or the apology's) estimate ranks the recommendations once the incident
# type has this many answered appeasements of it; below, the rules rank.
RECOMMENDATION_MIN_SAMPLE = env_int("RECOMMENDATION_MIN_SAMPLE", 30)
# Every appeasement's segment: lifetime value bands (in the customer's currency), low
# below the first, high from the second; a customer's incidents and earlier
# appeasements counted over RECOVERY_HISTORY_DAYS.
RECOVERY_VALUE_BANDS = (
    env_decimal("RECOVERY_VALUE_MID_FROM", "200"),
    env_decimal("RECOVERY_VALUE_HIGH_FROM", "1000"),
)
if not (0 <= RECOVERY_VALUE_BANDS[0] <= RECOVERY_VALUE_BANDS[1]):
    raise ImproperlyConfigured("RECOVERY_VALUE_MID_FROM must be between 0 and RECOVERY_VALUE_HIGH_FROM.")
RECOVERY_HISTORY_DAYS = env_int("RECOVERY_HISTORY_DAYS", 90)
# What keeping a customer is worth to the recommendations (docs/feedback.md): the larger
# of their tier's floor and RECOVERY_VALUE_SHARE of their lifetime value, in the
# customer's currency. Floors may not fall as the tier rises (a platinum customer is
# never worth less than a gold one with the same lifetime value).
RECOVERY_VALUE_FLOORS = {
    "standard": env_decimal("RECOVERY_VALUE_FLOOR_STANDARD", "25"),
    "silver": env_decimal("RECOVERY_VALUE_FLOOR_SILVER", "50"),
    "gold": env_decimal("RECOVERY_VALUE_FLOOR_GOLD", "100"),
    "platinum": env_decimal("RECOVERY_VALUE_FLOOR_PLATINUM", "200"),
}
_floors = list(RECOVERY_VALUE_FLOORS.values())
if _floors[0] < 0 or _floors != sorted(_floors):
    raise ImproperlyConfigured("RECOVERY_VALUE_FLOOR_* must be 0 or more and may not fall as the tier rises.")
RECOVERY_VALUE_SHARE = env_decimal("RECOVERY_VALUE_SHARE", "0.25")
if not (0 <= RECOVERY_VALUE_SHARE <= 1):
    raise ImproperlyConfigured("RECOVERY_VALUE_SHARE must be between 0 and 1.")
# An appeasement's customer "ordered again" when an order arrives within this window.
REPURCHASE_WINDOW = timedelta(days=env_int("REPURCHASE_WINDOW_DAYS", 60))
# Experiments (docs/feedback.md, "Experiments"): how long an assignment shown to a rep
# stays valid until the give; an arm is stopped once it has this many answers and is
# worse than the best with at least this probability; the guardrail runs this often.
EXPERIMENT_TOKEN_MAX_AGE = env_int("EXPERIMENT_TOKEN_MAX_AGE_SECONDS", 4 * 3600)
EXPERIMENT_GUARDRAIL_MIN_ANSWERS = env_int("EXPERIMENT_GUARDRAIL_MIN_ANSWERS", 30)
EXPERIMENT_GUARDRAIL_PROBABILITY = env_float("EXPERIMENT_GUARDRAIL_PROBABILITY", 0.99)
if not (0.5 < EXPERIMENT_GUARDRAIL_PROBABILITY < 1):
    raise ImproperlyConfigured("EXPERIMENT_GUARDRAIL_PROBABILITY must be above 0.5 and below 1.")
EXPERIMENT_REVIEW_MINUTES = env_int("EXPERIMENT_REVIEW_MINUTES", 5)
# Praise is thanked, not queued: a rating or an NPS this high, no incident type (given or
# inferred from the text) and anger below the ceiling.
FEEDBACK_PRAISE_RATING = env_int("FEEDBACK_PRAISE_RATING", 4)
FEEDBACK_PRAISE_NPS = env_int("FEEDBACK_PRAISE_NPS", 9)
FEEDBACK_PRAISE_MAX_ANGER = env_float("FEEDBACK_PRAISE_MAX_ANGER", 0.3)
if not (1 <= FEEDBACK_PRAISE_RATING <= 5 and 0 <= FEEDBACK_PRAISE_NPS <= 10 and 0 <= FEEDBACK_PRAISE_MAX_ANGER <= 1):
    raise ImproperlyConfigured(
        "FEEDBACK_PRAISE_RATING must be 1-5, FEEDBACK_PRAISE_NPS 0-10 and FEEDBACK_PRAISE_MAX_ANGER 0-1."
    )
# A customer whose lifetime value reaches this earns the full customer-value points.
FEEDBACK_HIGH_VALUE_LTV = env_decimal("FEEDBACK_HIGH_VALUE_LTV", "1000")
# Only the feedback intake answers other origins (the widget on the shop's pages); which
# origins is each FeedbackSite's business (feedback.apis.intake_cors_enabled).
CORS_URLS_REGEX = r"^/api/v1/feedback$"
CORS_ALLOW_METHODS = ["OPTIONS", "POST"]
CORS_PREFLIGHT_MAX_AGE = 3600
# Feedback intake per public key and per IP: requests per minute.
FEEDBACK_RATE_PER_KEY = env_int("FEEDBACK_RATE_PER_KEY", 120)
FEEDBACK_RATE_PER_IP = env_int("FEEDBACK_RATE_PER_IP", 10)

# --- Reporting (docs/reporting.md) -----------------------------------------------------
# Report days are the shop's days, whoever reads them (docs/i18n.md).
REPORTING_TIME_ZONE = env_str("REPORTING_TIME_ZONE", TIME_ZONE)
# The rollups: beat rewrites the last RECENT_DAYS days (and older days something
# changed) every REFRESH_SECONDS, and every day of the last RESTATE_DAYS nightly.
REPORTING_REFRESH_SECONDS = env_int("REPORTING_REFRESH_SECONDS", 60)
REPORTING_RECENT_DAYS = env_int("REPORTING_RECENT_DAYS", 2)
REPORTING_RESTATE_DAYS = env_int("REPORTING_RESTATE_DAYS", 400)
# Anomaly flags of these windows (the last N days) are computed by beat every
# ANOMALY_SCAN_MINUTES and read from there by the anomalies page (docs/reporting-anomalies.md).
REPORTING_ANOMALY_WINDOWS = [int(days) for days in env_list("REPORTING_ANOMALY_WINDOWS", ["7", "30", "90", "365"])]
REPORTING_ANOMALY_SCAN_MINUTES = env_int("REPORTING_ANOMALY_SCAN_MINUTES", 15)

# --- Code inventory -----------------------------------------------------------------
CODE_ENTROPY_BITS = env_int("CODE_ENTROPY_BITS", 80)

# --- Celery ---------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL or "filesystem://"
if CELERY_BROKER_URL == "filesystem://":
    # A broker that needs no server: a real worker process reads the messages the
    # web process writes into this folder.
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Above the longest task's time limit, so a task acked late is not handed to
        # a second worker while the first still runs it.
        "visibility_timeout": 3600,
        # A broker that is down or hangs must not hold a web request: without a socket
        # timeout a publish to a Redis that accepts but never answers waits forever.
        # The row is committed before the publish; the sweeper enqueues what failed.
        # (The worker's BRPOP is read only when readable: this does not cut it short.)
        "socket_connect_timeout": 1,
        "socket_timeout": 1,
    }
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# One retry (a stale pooled connection after a Redis restart), then give up: a publish
# fails in ~0.2 s when refused and ~2.2 s when the broker hangs (tests/delivery/test_faults.py).
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0.2, "interval_step": 0.5}
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 600
CELERY_TASK_SOFT_TIME_LIMIT = 540
CELERY_TIMEZONE = TIME_ZONE
# The worker logs through Django's LOGGING (JSON, redacted, with request ids).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Beat is safe as a singleton (appease/beat.py, docs/deploy.md "Beat"): with Redis,
# RedBeat (the schedule in Redis, one beat at a time under a lock); without (the demo),
# Celery's default scheduler. Either writes a heartbeat every tick, at least every
# CELERY_BEAT_MAX_LOOP_INTERVAL seconds; /readyz calls it stale after BEAT_STALE_SECONDS.
_BEAT_REDIS_URL = REDIS_URL or (CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "")
CELERY_BEAT_SCHEDULER = "appease.beat:RedBeatScheduler" if _BEAT_REDIS_URL else "appease.beat:PersistentScheduler"
CELERY_BEAT_MAX_LOOP_INTERVAL = env_int("BEAT_MAX_INTERVAL_SECONDS", 30)
CELERY_REDBEAT_REDIS_URL = _BEAT_REDIS_URL or None
CELERY_REDBEAT_REDIS_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5}
CELERY_REDBEAT_KEY_PREFIX = env_str("BEAT_KEY_PREFIX", "redbeat:")
BEAT_STALE_SECONDS = env_int("BEAT_STALE_SECONDS", 4 * CELERY_BEAT_MAX_LOOP_INTERVAL)
# Every periodic task, in one place.
CELERY_BEAT_SCHEDULE = {
    "idempotency-keys-purge": {
        "task": "appease.core.tasks.idempotency_keys_purge_task",
        "schedule": timedelta(hours=1),
    },
    "failure-counters-purge": {
        "task": "appease.core.tasks.failure_counters_purge_task",
        "schedule": timedelta(hours=1),
    },
    "codes-expire": {
        "task": "coupons.tasks.codes_expire_task",
        "schedule": timedelta(minutes=5),
    },
    "approvals-escalate": {
        "task": "appease.issuance.tasks.approvals_escalate_task",
        "schedule": timedelta(minutes=1),
    },
    "deliveries-sweep": {
        "task": "appease.delivery.tasks.deliveries_sweep_task",
        "schedule": DELIVERY_SWEEP_EVERY,  # follows the lease (half of it)
    },
    "code-batches-sweep": {
        "task": "coupons.tasks.code_batches_sweep_task",
        "schedule": timedelta(minutes=1),
    },
    "events-sweep": {"task": "feedback.tasks.events_sweep_task", "schedule": timedelta(seconds=30)},
    "sla-breaches-escalate": {"task": "feedback.tasks.sla_breaches_escalate_task", "schedule": timedelta(seconds=30)},
    "cases-age": {"task": "feedback.tasks.cases_age_task", "schedule": timedelta(minutes=5)},
    "experiments-review": {
        "task": "feedback.tasks.experiments_review_task",
        "schedule": timedelta(minutes=EXPERIMENT_REVIEW_MINUTES),
    },
    "follow-ups-send": {"task": "feedback.tasks.follow_ups_send_task", "schedule": timedelta(minutes=1)},
    "follow-ups-expire": {"task": "feedback.tasks.follow_ups_expire_task", "schedule": timedelta(minutes=15)},
    "personal-data-expire": {
        "task": "appease.core.tasks.personal_data_expire_task",
        "schedule": crontab(hour=3, minute=15),
    },
    "rollups-refresh": {
        "task": "reporting.tasks.rollups_refresh_task",
        "schedule": timedelta(seconds=REPORTING_REFRESH_SECONDS),
    },
    "anomalies-scan": {
        "task": "reporting.tasks.anomaly_scans_run_task",
        "schedule": timedelta(minutes=REPORTING_ANOMALY_SCAN_MINUTES),
    },
    "rollups-restate": {
        "task": "reporting.tasks.rollups_restate_task",
        "schedule": crontab(hour=2, minute=40),
    },
    "supervisor-digest-send": {
        "task": "reporting.tasks.supervisor_digest_send_task",
        "schedule": crontab(hour=7, minute=30, day_of_week="mon"),
    },
    "team-digests-send": {
        "task": "feedback.tasks.team_digests_send_task",
        "schedule": crontab(hour=7, minute=0, day_of_week="mon"),
    },
    "sessions-clear": {"task": "appease.core.tasks.sessions_clear_task", "schedule": crontab(hour=3, minute=45)},
}

# --- Email ----------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Appease <no-reply@localhost>")
# The SMTP backend's server (Django's defaults otherwise).
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)

# --- Delivery channels ----------------------------------------------------------------
# Adapters in appease/delivery/channels/ (docs/delivery.md, "Channels"). A channel with no provider
# configured goes to the demo log adapter (var/outbox/<channel>.log) with DEBUG on and is
# disabled with DEBUG off: the log holds codes in plaintext (ADR 0002).
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
SMS_BASE_URL = (env_str("SMS_BASE_URL", "") or "").rstrip("/")
SMS_ACCOUNT_SID = env_str("SMS_ACCOUNT_SID", "")
SMS_AUTH_TOKEN = env_secret("SMS_AUTH_TOKEN", debug=DEBUG, demo_default="demo-sms-token") if SMS_BASE_URL else ""
SMS_FROM = env_str("SMS_FROM", "")
if SMS_BASE_URL and not (SMS_ACCOUNT_SID and SMS_FROM):
    raise ImproperlyConfigured("SMS_BASE_URL is set: SMS_ACCOUNT_SID and SMS_FROM must be set too.")
SMS_TIMEOUT = env_int("SMS_TIMEOUT", 5)
SMS_MAX_SEGMENTS = env_int("SMS_MAX_SEGMENTS", 3)
CHAT_WEBHOOK_URL = env_str("CHAT_WEBHOOK_URL", "")
SOCIAL_WEBHOOK_URL = env_str("SOCIAL_WEBHOOK_URL", "")
WEBHOOK_SECRET = (
    env_secret("WEBHOOK_SECRET", debug=DEBUG, demo_default="demo-webhook-secret")
    if CHAT_WEBHOOK_URL or SOCIAL_WEBHOOK_URL
    else ""
)
WEBHOOK_TIMEOUT = env_int("WEBHOOK_TIMEOUT", 5)
DELIVERY_LOG_DIR = VAR_DIR / "outbox"
_UNCONFIGURED = (
    "appease.delivery.channels.console.LogAdapter" if DEBUG else "appease.delivery.channels.base.DisabledAdapter"
)
DELIVERY_ADAPTERS = {
    "email": "appease.delivery.channels.email.EmailAdapter",
    "sms": "appease.delivery.channels.sms.TwilioSmsAdapter" if SMS_BASE_URL else _UNCONFIGURED,
    "chat": "appease.delivery.channels.webhook.WebhookAdapter" if CHAT_WEBHOOK_URL else _UNCONFIGURED,
    "social": "appease.delivery.channels.webhook.WebhookAdapter" if SOCIAL_WEBHOOK_URL else _UNCONFIGURED,
    "webhook": "appease.delivery.channels.endpoint.EndpointAdapter",
}
# Outbound webhooks to the endpoints supervisors register (docs/integrations.md). An
# endpoint that resolves to a loopback, private, link-local or reserved address is
# refused (server-side request forgery) unless this is on: a test rig or a deployment
# whose receivers live on the private network.
WEBHOOKS_ALLOW_PRIVATE_NETWORKS = env_bool("WEBHOOKS_ALLOW_PRIVATE_NETWORKS", False)
WEBHOOKS_TIMEOUT = env_float("WEBHOOKS_TIMEOUT", 10)
# After a secret is rotated, the old one still signs (a second v1= entry) this long.
WEBHOOKS_ROTATION_OVERLAP = timedelta(hours=env_float("WEBHOOKS_ROTATION_OVERLAP_HOURS", 24))

# --- Logging --------------------------------------------------------------------------
# JSON lines in production (one object per line: time, level, logger, message,
# request_id, any `extra` fields), plain text for people in the demo. Every record is
# redacted (message and arguments, exception, extra fields), and the finished line again:
# codes, email addresses and phone numbers never reach a log line whole
# (appease/core/observability.py).
LOG_FORMAT = env_str("LOG_FORMAT", "plain" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "appease.core.observability.RequestIdFilter"},
        "redact": {"()": "appease.core.observability.RedactFilter"},
    },
    "formatters": {
        "plain": {
            "()": "appease.core.observability.RedactingFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        },
        "json": dict(JSON_FORMATTER),
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id", "redact"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# Personal data older than this many months is pseudonymised by the daily beat task
# (feedback text, case timelines and notes, closed cases' words, issuance notes and
# apologies, delivery addresses, merchant events, idle customers). 0 turns it off.
RETENTION_MONTHS = env_int("RETENTION_MONTHS", 24)
# Rows per transaction of that task (bounded memory and lock time).
RETENTION_BATCH_SIZE = max(1, env_int("RETENTION_BATCH_SIZE", 500))

# Bearer token for /metrics; without one, only the local machine may scrape.
METRICS_TOKEN = env_str("METRICS_TOKEN", "") or ""

# --- Security (production) ------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if not DEBUG else None
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
# Preloading commits every subdomain to HTTPS for good: the operator's call (docs/deploy.md).
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Flash messages live in the session, server-side: a few carry a secret shown once (a new
# API key, a webhook endpoint's signing secret), which the default storage would put in a
# signed but readable cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
# The language cookie (set_language, the user's choice) like the session cookie: HTTPS
# only in production, never read by scripts (nothing of ours needs to), same-site.
LANGUAGE_COOKIE_SECURE = not DEBUG
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp): our own scripts only, inline ones with the
# request's nonce (the reports' plotly figures); no frames, no plugins, no other origin.
# Styles may be inline (templates carry small <style> blocks; the widget injects one).
# Swagger UI (/api/docs/) ships inline scripts without nonces and is left out.
CONTENT_SECURITY_POLICY = {
    "EXCLUDE_URL_PREFIXES": ["/api/docs/"],
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# Login throttling (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one user
# from one address, that pair is locked out for AXES_COOLOFF_MINUTES.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The client address as the rest of the app takes it (NUM_PROXIES, appease.core.api.client_ip):
# behind the proxy REMOTE_ADDR is the proxy's, and one stranger could lock everyone out.
AXES_CLIENT_IP_CALLABLE = "appease.core.api.login_client_ip"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False  # no start-up banner in every process
# Single sign-on's callback is not a password guess (appease/accounts/backends.py).
AXES_WHITELIST_CALLABLE = "appease.accounts.backends.axes_exempt"

# Two-factor authentication (django-otp, TOTP) for the admin: on, every admin user
# (supervisors, administrators) needs a verified authenticator app to get in
# (appease/core/admin_site.py). ADMIN_REQUIRE_2FA is the setting's former name.
APPEASE_SUPERVISOR_2FA = env_bool("APPEASE_SUPERVISOR_2FA", env_bool("ADMIN_REQUIRE_2FA", False))
# Nobody sees another user's TOTP secret or QR code in the admin; each user enrols their
# own device at /accounts/two-factor/.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# --- The helpdesk sidebar (docs/integrations.md) -----------------------------------------
# The launch token's `aud`: the helpdesk's signer puts this exact value in.
SIDEBAR_LAUNCH_AUDIENCE = env_str("SIDEBAR_LAUNCH_AUDIENCE", "appease-sidebar")
# A launch token is refused once older than this (by `iat`), or if it claims to live longer.
SIDEBAR_LAUNCH_MAX_AGE_SECONDS = env_int("SIDEBAR_LAUNCH_MAX_AGE_SECONDS", 300)
# Clock skew allowed between the helpdesk's signer and us, on `iat`, `exp` and the ticket's time.
SIDEBAR_LAUNCH_LEEWAY_SECONDS = env_int("SIDEBAR_LAUNCH_LEEWAY_SECONDS", 30)
# How long the sidebar, once open, may give and poll without the ticket being reopened.
SIDEBAR_SESSION_SECONDS = env_int("SIDEBAR_SESSION_SECONDS", 1800)
