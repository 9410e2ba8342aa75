"""Backstop settings, read from the environment.

The defaults run the embedded demo: SQLite under ``var/`` and kombu's filesystem
broker, so a laptop needs no servers. ``DATABASE_URL`` and ``REDIS_URL`` (or
``CELERY_BROKER_URL``) switch to PostgreSQL and Redis.
"""

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("BACKSTOP_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()
if (BASE_DIR / ".env").exists():  # else read_env logs its absence in every process
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# The embedded demo and the test suite (BACKSTOP_DEMO=1: bin/demo and pytest set it) run
# on public keys and plain HTTP. Anything else must be given its secrets or will not
# start: a public key would sign sessions and the audit chain's seals.
DEMO = env.bool("BACKSTOP_DEMO", default=False)
_DEMO_KEY = "backstop-insecure-demo-key-change-me-in-production"


def _secret(name: str) -> str:
    value = env.str(name, default=_DEMO_KEY if DEMO else "")
    if not value:
        raise ImproperlyConfigured(
            f"Set {name} in the environment (a long random string, e.g. from "
            "'python -c \"import secrets; print(secrets.token_urlsafe(50))\"'), or "
            "BACKSTOP_DEMO=1 for a laptop demo on public keys.")
    return value


SECRET_KEY = _secret("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# HTTPS, on by default outside the demo: behind a proxy that terminates TLS, set
# SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO (the proxy must set that header itself).
HTTPS = env.bool("HTTPS", default=not DEMO)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=HTTPS)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Health probes (workflows/health.py) come from a load balancer or an orchestrator over
# plain HTTP inside the network: a redirect to https would fail them.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
if env.str("SECURE_PROXY_SSL_HEADER", default=""):
    SECURE_PROXY_SSL_HEADER = (env.str("SECURE_PROXY_SSL_HEADER"), "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "rest_framework_api_key",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "csp",
    "django_fsm",
    "workflows",
    "exceptions_app",
]

MIDDLEWARE = [
    # First, so that every answer (redirects and errors included) and every log line of
    # the request carry its id.
    "workflows.request_ids.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "workflows.middleware.BodySizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "workflows.middleware.SignInThrottleMiddleware",
    "workflows.middleware.AuditorChangesNothingMiddleware",
    "workflows.middleware.PersonTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "workflows.middleware.ContentSecurityPolicyMiddleware",  # django-csp's, built once
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "workflows.context_processors.notifications",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'backstop.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
# A persistent connection the server closed meanwhile is replaced before a request uses it.
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the demo's web server and worker share the file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Short OLTP queries only: PostgreSQL's JIT would compile plans whose *estimated* cost
    # is high (the permission and group joins) for 0.5-2 s each, where they run in 1 ms.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
    # Parameters bound by the server and a statement run twice on a connection prepared
    # there: PostgreSQL plans it once instead of at each run, and planning the reviewer's
    # statements (five joins and a scope) cost it more than running them. Off behind a
    # pooler that does not keep prepared statements (PgBouncer in transaction mode
    # before 1.21, or without max_prepared_statements).
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        DATABASES["default"]["OPTIONS"].update(server_side_binding=True, prepare_threshold=2)
    # Django's backend, with the health check above made without a round trip while the
    # server has said nothing (config/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "config.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    # Django's Redis cache, keeping its Redis client (workflows/cache.py).
    CACHES = {"default": {"BACKEND": "workflows.cache.ClientKeepingRedisCache",
                          "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Sessions in the database every web worker shares (a sign-out ends one for all), each
# read with its person in one statement (workflows/sessions.py).
SESSION_ENGINE = "workflows.sessions"

AUTH_USER_MODEL = "workflows.User"
# Django's model backend with a person's permissions read in one query (per request).
AUTHENTICATION_BACKENDS = ["workflows.permissions_backend.ModelBackendOneQuery"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
# Password guessing (workflows/sign_in_throttle.py): this many failed sign-ins within the
# window pause signing in for the person (however the name is spelt), or from the address
# (higher: people behind one office NAT share it), until the window has passed; the same
# for bad API tokens and keys per address (then 429 instead of 401).
SIGN_IN_FAILURE_WINDOW_SECONDS = env.int("SIGN_IN_FAILURE_WINDOW_SECONDS", default=15 * 60)
SIGN_IN_FAILURES_PER_PERSON = env.int("SIGN_IN_FAILURES_PER_PERSON", default=10)
SIGN_IN_FAILURES_PER_ADDRESS = env.int("SIGN_IN_FAILURES_PER_ADDRESS", default=100)
API_AUTH_FAILURES_PER_ADDRESS = env.int("API_AUTH_FAILURES_PER_ADDRESS", default=100)
SIGN_IN_THROTTLED_VIEWS = ("login", "admin:login")
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True  # serve straight from static/ until collectstatic has run


def _document_storage() -> dict:
    """Where decisions' source documents are kept (docs/DEPLOY.md, "Documents"): files
    under BACKSTOP_VAR_DIR/documents, or an S3-compatible bucket (django-storages) with
    DOCUMENT_STORAGE=s3. Either way they are served only through the case's access check,
    never by a public URL."""
    kind = env.str("DOCUMENT_STORAGE", default="filesystem")
    if kind == "filesystem":
        return {"BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": env.str("DOCUMENT_DIR",
                                                default=str(VAR_DIR / "documents")),
                            "base_url": None}}
    if kind == "s3":
        return {"BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {
                    "bucket_name": env.str("DOCUMENT_S3_BUCKET"),
                    "location": env.str("DOCUMENT_S3_PREFIX", default="documents"),
                    "endpoint_url": env.str("DOCUMENT_S3_ENDPOINT_URL", default=None),
                    "region_name": env.str("DOCUMENT_S3_REGION", default=None),
                    # Unset: boto3's own chain (environment, instance role, config file).
                    "access_key": env.str("DOCUMENT_S3_ACCESS_KEY_ID", default=None),
                    "secret_key": env.str("DOCUMENT_S3_SECRET_ACCESS_KEY", default=None),
                    "default_acl": None,  # the bucket's own: private
                    "file_overwrite": False,
                    "querystring_auth": True,  # no object is ever public
                }}
    raise ImproperlyConfigured(f"DOCUMENT_STORAGE is {kind!r}: it must be 'filesystem' or 's3'.")


STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    "documents": _document_storage(),
}

# Content-Security-Policy: the pages load only their own scripts, styles and images
# (static files are served locally; no inline scripts or styles). The Swagger UI page
# relaxes it for its styles (config/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# How long a client is told to wait (Retry-After) while the database is unreachable.
RETRY_AFTER_SECONDS = env.int("RETRY_AFTER_SECONDS", default=5)

# Largest request body the API accepts; larger ones answer 413 before they are read.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=5 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
# A decision's source document (PDF, PNG, JPEG or WebP), uploaded or fetched: larger ones
# answer 413 (or fail to fetch). A multipart body may be this plus its envelope.
DOCUMENT_MAX_BYTES = env.int("DOCUMENT_MAX_BYTES", default=20 * 1024 * 1024)
API_MAX_UPLOAD_BYTES = DOCUMENT_MAX_BYTES + 64 * 1024
# One document fetch from a URL, all told; past it the fetch fails (and is retried).
DOCUMENT_FETCH_TIMEOUT_SECONDS = env.float("DOCUMENT_FETCH_TIMEOUT_SECONDS", default=30.0)
BATCH_MAX_DECISIONS = 1000
# What an hour of a reviewer's time costs (in the currency the business counts in): the
# monitoring page turns reviewer minutes into a cost per decision with it.
REVIEWER_HOURLY_COST = env.float("REVIEWER_HOURLY_COST", default=40.0)
# How often each use case's recent decisions are compared with its drift reference.
DRIFT_CHECK_INTERVAL = timedelta(seconds=env.int("DRIFT_CHECK_SECONDS", default=60))
# How often guardrails look for a reason to demote a use case (QA errors, drift alerts).
GUARDRAIL_CHECK_INTERVAL = timedelta(seconds=env.int("GUARDRAIL_CHECK_SECONDS", default=60))
# Policy rules run in the request, and the CEL engine has no timeout: two nested list
# macros over n items take about n * n steps (over 50 invoice lines about 8 ms, over 400
# about 0.6 s). Where a policy's rules use list macros, a decision with a list (or object)
# they can reach of more than this many items, or more than its square of values in all,
# is not evaluated but sent to review (exceptions_app/policy.py judge).
MAX_RULE_LIST_ITEMS = env.int("MAX_RULE_LIST_ITEMS", default=50)
if not 1 <= MAX_RULE_LIST_ITEMS <= 10_000:
    raise ImproperlyConfigured(
        f"MAX_RULE_LIST_ITEMS ({MAX_RULE_LIST_ITEMS}) must be between 1 and 10000: two "
        "nested list macros over n items cost n * n steps, in the web request.")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "workflows.api.authentication.ThrottledTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "workflows.api.schema.AutoSchema",
    # DRF's JSON parser and renderer, through orjson: the same bytes, cheaper.
    "DEFAULT_PARSER_CLASSES": ["workflows.api.codec.JSONParser",
                               "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
    "DEFAULT_RENDERER_CLASSES": ["workflows.api.codec.JSONRenderer",
                                 "rest_framework.renderers.BrowsableAPIRenderer"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "workflows.api.errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "ai_system": env.str("AI_SYSTEM_THROTTLE_RATE", default="6000/min"),
    },
}
API_KEY_CUSTOM_HEADER = "HTTP_AUTHORIZATION"

SPECTACULAR_SETTINGS = {
    "TITLE": "Backstop API",
    "DESCRIPTION": "Human-in-the-loop exception handling for production AI.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # The schema maps every endpoint: for signed-in people unless API_DOCS_PUBLIC.
    "SERVE_PERMISSIONS": ["config.api_docs.MayReadApiDocs"],
    # Choice sets that several fields share, or whose field names collide, named once.
    "ENUM_NAME_OVERRIDES": {
        "RuleActionEnum": "exceptions_app.models.RuleAction",
        "ShadowStatusEnum": "exceptions_app.models.ShadowStatus",
    },
}
# The API docs (/api/v1/schema/, /docs/) for anyone; else signed-in people only.
API_DOCS_PUBLIC = env.bool("API_DOCS_PUBLIC", default=DEMO)

# Celery: Redis when configured, else kombu's filesystem transport (single host, demo only).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # Tasks carry ETAs no longer than this (I6), so a lost worker's task comes back in time.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    if CELERY_BROKER_URL.startswith("redis://"):
        # kombu's Redis transport, publishing through one client per channel (config/broker.py).
        CELERY_BROKER_TRANSPORT = "config.broker:Transport"
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Webhooks go to customers' endpoints, which can be slow or hostile: they have a queue
# and workers of their own. E-mail and in-app notices come in storms (an escalation
# wave tells every Informed person twice): they have theirs too. So the periodic jobs
# (audit sealing, SLA sweeps, lease expiry) never wait behind either. Start workers
# with ``-Q celery``, ``-Q notices`` and ``-Q webhooks`` (or all three on one host).
WEBHOOK_QUEUE = "webhooks"
NOTICE_QUEUE = "notices"
CELERY_TASK_ROUTES = {
    "workflows.tasks.deliver_webhook": {"queue": WEBHOOK_QUEUE},
    "workflows.tasks.deliver_webhooks": {"queue": WEBHOOK_QUEUE},
    "workflows.tasks.relay_webhooks": {"queue": WEBHOOK_QUEUE},
    "workflows.tasks.deliver_outbox_message": {"queue": NOTICE_QUEUE},
    "workflows.tasks.deliver_outbox_messages": {"queue": NOTICE_QUEUE},
    "workflows.tasks.relay_outbox": {"queue": NOTICE_QUEUE},
    # Fetching a source document reaches an AI system's host, as slow as a webhook's.
    "exceptions_app.tasks.fetch_document": {"queue": WEBHOOK_QUEUE},
}

# One webhook attempt, all told (connect, send, headers and body): past this deadline
# it is cut off and counted as failed (timed out); the receiver's answer is read up to
# WEBHOOK_RESPONSE_LIMIT_BYTES, never more.
# After a signing secret is rotated, the old one still signs for this long.
WEBHOOK_SECRET_OVERLAP_HOURS = env.float("WEBHOOK_SECRET_OVERLAP_HOURS", default=24.0)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
WEBHOOK_RESPONSE_LIMIT_BYTES = env.int("WEBHOOK_RESPONSE_LIMIT_BYTES", default=64 * 1024)
# While a worker delivers a message it holds it this long; no other worker sends it
# meanwhile. It must outlive the attempt's deadline with room to record the outcome,
# or a slow receiver gets the same message again while the first attempt runs.
# Where webhooks may go (workflows/webhook_addresses.py): https to public addresses only,
# checked when a callback URL is saved and again at each connection. Plain http is for
# development; private addresses (this host, the LAN, cloud metadata) only for a local
# test receiver: never in production.
ALLOW_HTTP_CALLBACKS = env.bool("ALLOW_HTTP_CALLBACKS", default=DEMO)
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env.bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", default=False)
OUTBOX_DELIVERY_LEASE_MARGIN = timedelta(seconds=30)
OUTBOX_DELIVERY_LEASE = timedelta(seconds=env.float(
    "OUTBOX_DELIVERY_LEASE_SECONDS",
    default=max(120.0, 2 * WEBHOOK_TIMEOUT_SECONDS + OUTBOX_DELIVERY_LEASE_MARGIN.seconds)))
if WEBHOOK_TIMEOUT_SECONDS <= 0 or WEBHOOK_RESPONSE_LIMIT_BYTES <= 0:
    raise ImproperlyConfigured("WEBHOOK_TIMEOUT_SECONDS and WEBHOOK_RESPONSE_LIMIT_BYTES "
                               "must be positive.")
_shortest_lease = timedelta(seconds=WEBHOOK_TIMEOUT_SECONDS) + OUTBOX_DELIVERY_LEASE_MARGIN
if _shortest_lease > OUTBOX_DELIVERY_LEASE:
    raise ImproperlyConfigured(
        f"OUTBOX_DELIVERY_LEASE_SECONDS ({OUTBOX_DELIVERY_LEASE.total_seconds():g}) must "
        f"exceed WEBHOOK_TIMEOUT_SECONDS ({WEBHOOK_TIMEOUT_SECONDS:g}) by at least "
        f"{OUTBOX_DELIVERY_LEASE_MARGIN.seconds} s, or a slow receiver gets the same "
        "message twice at once; raise it, or leave it unset to derive it.")

# Audit events are sealed into the hash chain by a periodic job; this key signs each seal.
AUDIT_SIGNING_KEY = _secret("AUDIT_SIGNING_KEY")
# Keys retired by a rotation: rows and checkpoints they signed still verify.
AUDIT_SIGNING_KEY_FALLBACKS = env.list("AUDIT_SIGNING_KEY_FALLBACKS", default=[])
AUDIT_SEAL_INTERVAL = timedelta(seconds=env.int("AUDIT_SEAL_INTERVAL_SECONDS", default=5))

# SLA clocks (I6): how often the sweep looks for warnings and breaches come due, and how
# far ahead a check gets a short-ETA nudge. Capped at half the broker's visibility
# timeout: a worker holds an ETA task unacknowledged until it runs, and Redis hands it
# to another worker once that timeout passes.
SLA_SWEEP_INTERVAL = timedelta(seconds=env.float("SLA_SWEEP_INTERVAL_SECONDS", default=15.0))
SLA_NUDGE_HORIZON = timedelta(seconds=env.int("SLA_NUDGE_HORIZON_SECONDS", default=300))
SLA_NUDGES_ENABLED = env.bool("SLA_NUDGES_ENABLED", default=True)

# Prometheus scrape at /metrics: set, scrapers send "Authorization: Bearer <token>";
# empty, nobody may read it, unless METRICS_ALLOW_LOOPBACK lets this host (loopback) in:
# only where no reverse proxy runs on the host, since through one every request is local
# (docs/PERFORMANCE.md, Dashboard). The demo allows it.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOW_LOOPBACK = env.bool("METRICS_ALLOW_LOOPBACK", default=DEMO)

# The outbox's e-mail channel: EMAIL_URL (smtp+tls://user:password@host:587, smtps://...,
# consolemail://) or the separate EMAIL_* variables. With neither, no mail server is
# assumed: the demo writes each message as a file under var/mail/, and production prints
# it on standard output (the console backend) and logs a warning as each process starts
# (workflows/apps.py), where Django's SMTP default would fail every notice on localhost:25.
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))
EMAIL_CONFIGURED = bool(env.str("EMAIL_URL", default="") or env.str("EMAIL_BACKEND", default="")
                        or env.str("EMAIL_HOST", default=""))
if env.str("EMAIL_URL", default=""):
    vars().update({key: value for key, value in env.email_url("EMAIL_URL").items()
                   if value not in (None, "")})
else:
    EMAIL_BACKEND = env.str("EMAIL_BACKEND", default=(
        "django.core.mail.backends.smtp.EmailBackend" if env.str("EMAIL_HOST", default="")
        else "django.core.mail.backends.filebased.EmailBackend" if DEMO
        else "django.core.mail.backends.console.EmailBackend"))
    EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
    EMAIL_PORT = env.int("EMAIL_PORT", default=25)
    EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
    EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
    EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
    EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)  # a hung mail server holds a worker
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="backstop@localhost")
# The address people open Backstop at, for the absolute links of e-mails (a mail has no
# request to take its host from). Outside the demo, left unset, each process warns.
SITE_BASE_URL_CONFIGURED = bool(env.str("SITE_BASE_URL", default=""))
SITE_BASE_URL = env.str("SITE_BASE_URL", default="http://localhost:8000").rstrip("/")
SERVER_EMAIL = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)

CELERY_BEAT_SCHEDULE = {
    "seal-audit-chain": {
        "task": "workflows.tasks.seal_audit_chain",
        "schedule": AUDIT_SEAL_INTERVAL.total_seconds(),
    },
    "expire-claim-leases": {
        "task": "workflows.tasks.expire_claim_leases",
        "schedule": 30.0,
    },
    "clear-expired-sessions": {
        "task": "workflows.tasks.clear_expired_sessions",
        "schedule": 3600.0,
        "options": {"expires": 3600.0},
    },
    # The outbox relay (I5): messages a lost nudge or a failed attempt left due, on the
    # notices queue; the webhooks' own relay runs on theirs. A run nobody took in time
    # expires.
    "relay-outbox": {
        "task": "workflows.tasks.relay_outbox",
        "schedule": 10.0,
        "options": {"expires": 10.0},
    },
    "relay-webhooks": {
        "task": "workflows.tasks.relay_webhooks",
        "schedule": 10.0,
        "options": {"expires": 10.0},
    },
    # SLA clocks (I6): what lost nudges missed. A run a stopped worker never took
    # expires instead of piling up; the next one does the same work.
    "sweep-sla-clocks": {
        "task": "workflows.tasks.sweep_sla_clocks",
        "schedule": SLA_SWEEP_INTERVAL.total_seconds(),
        "options": {"expires": SLA_SWEEP_INTERVAL.total_seconds()},
    },
    # Drift of each use case's recent decisions (exceptions_app/services/drift.py): at
    # the tempo of the system, since AI fails silently.
    "check-drift": {
        "task": "exceptions_app.tasks.check_drift",
        "schedule": DRIFT_CHECK_INTERVAL.total_seconds(),
        "options": {"expires": DRIFT_CHECK_INTERVAL.total_seconds()},
    },
    # Guardrails that demote a use case on their own (exceptions_app/services/guardrails.py).
    "enforce-guardrails": {
        "task": "exceptions_app.tasks.enforce_guardrails",
        "schedule": GUARDRAIL_CHECK_INTERVAL.total_seconds(),
        "options": {"expires": GUARDRAIL_CHECK_INTERVAL.total_seconds()},
    },
    # Proposed policy versions in shadow route the decisions received since the last pass.
    "advance-shadows": {
        "task": "exceptions_app.tasks.advance_shadows",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    # Backtests whose hand-over to a worker was lost (a broker blip) are handed over again.
    "enqueue-waiting-backtests": {
        "task": "exceptions_app.tasks.enqueue_waiting_backtests",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    # Checks of the audit trail whose hand-over to a worker (or whose worker) was lost.
    "enqueue-waiting-audit-verifications": {
        "task": "workflows.tasks.enqueue_waiting_audit_verifications",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
}
if REDIS_URL:
    # Only a shared cache lets the web workers read what the worker summarised.
    CELERY_BEAT_SCHEDULE["warm-dashboard"] = {
        "task": "workflows.tasks.warm_dashboard",
        "schedule": 600.0,
        "options": {"expires": 600.0},
    }
    # The desk's open cases counted off the web workers, fresher than the page's 10 s.
    CELERY_BEAT_SCHEDULE["count-open-cases"] = {
        "task": "workflows.tasks.count_open_cases",
        "schedule": 8.0,
        "options": {"expires": 8.0},
    }

# Logs on standard error: plain text (the default, for a person at a terminal) or, with
# LOG_FORMAT=json (production: docs/DEPLOY.md), one JSON object per line for a collector.
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT is '{LOG_FORMAT}': set it to text or json.")
# Every record carries the id of the request it belongs to (workflows/request_ids.py).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "workflows.request_ids.RequestIdFilter"},
                "refusal_without_traceback": {"()": "workflows.errors.RefusalWithoutTraceback"}},
    "formatters": {"json": {"()": "config.json_logs.JsonFormatter"},
                   "text": {"()": "workflows.request_ids.TextFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["request_id"],
                             "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"},
                "django.request": {"filters": ["refusal_without_traceback"]}},
}
# Celery replaces the root logger's handlers with its own text format unless told not to.
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT != "json"
