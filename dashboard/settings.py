"""Ignition settings.

Every deploy knob is read from the environment and has a default that runs offline
(SQLite, an embedded Celery broker, localstripe). See docs/configuration.md.
"""

import hashlib
import hmac
import os
from pathlib import Path

import dj_database_url
import dj_email_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {value!r}")


def envint(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = envbool("DEBUG", True)

_DEV_SECRET_KEY = "dev-only-insecure-secret-key-do-not-use-in-production-0123456789"
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = _DEV_SECRET_KEY

# Keyed hash for application client secrets and management tokens. Separate from
# SECRET_KEY so that rotating the session key does not invalidate every credential.
CREDENTIAL_PEPPER = (
    os.environ.get("CREDENTIAL_PEPPER")
    or hmac.new(SECRET_KEY.encode(), b"ignition.credential-pepper", hashlib.sha256).hexdigest()
)

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")
SITE_ROOT = os.environ.get("SITE_ROOT", "http://127.0.0.1:8000").rstrip("/")
SITE_NAME = os.environ.get("SITE_NAME", "Ignition")

INSTALLED_APPS = [
    "dashboard.apps.IgnitionAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served by us: the docs page needs no CDN
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "django_celery_beat",
    "csp",
    "dashboard.apps.DashboardConfig",
    "accounts",
    "billing",
    "garage",
    "support",
    "sales",
    "vehicles",
    "requestlog",
    "notifications",
]

MIDDLEWARE = [
    "dashboard.api_middleware.VehicleApiMiddleware",  # the vehicle API's requests take VEHICLE_API_MIDDLEWARE instead
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "dashboard.csp.ContentSecurityPolicyMiddleware",  # after WhiteNoise: static files need no policy
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.CurrentTeamMiddleware",
]

# The vehicle API (bearer tokens, JSON) needs none of the dashboard's sessions, users, CSRF, messages or page
# policies: its requests go through this chain only (dashboard/api_middleware.py).
VEHICLE_API_PREFIX = "/v2.0/"
VEHICLE_API_URLCONF = "vehicles.api.urls_v2"  # requests under the prefix resolve against the API's routes alone
VEHICLE_API_MIDDLEWARE = ["django.middleware.security.SecurityMiddleware"]

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = "dashboard.wsgi.application"

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
                "dashboard.context_processors.site",
                "accounts.context_processors.current_team",
            ],
        },
    },
]

# Database: DATABASE_URL, default a SQLite file under var/.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'ignition.sqlite3'}",
        # Persistent connections in production: a new PostgreSQL connection per request cost the API more than
        # half its throughput (bench/README.md). Development keeps one per request.
        conn_max_age=envint("DB_CONN_MAX_AGE", 0 if DEBUG else 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # web, worker and beat share the file: wait for locks instead of failing, and take
    # the write lock at BEGIN so concurrent writers queue rather than deadlock.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not :memory:, so a Celery worker started by the tests can share it;
    # one per test process, so parallel runs don't trample each other.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-ignition-{os.getpid()}.sqlite3")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The vehicle API's hot statements are prepared on first use per connection (dashboard/prepared.py); Django's
    # own cursors bind on the client and never prepare. DB_PREPARED_STATEMENTS=0 for PgBouncer in transaction mode.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
        0 if envbool("DB_PREPARED_STATEMENTS", True) else None
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cache: allauth's rate limits need a shared cache. Database cache by default,
# Redis when CACHE_URL=redis://...
CACHE_URL = os.environ.get("CACHE_URL", "db://django_cache")
if CACHE_URL.startswith(("redis://", "rediss://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}
elif CACHE_URL.startswith("db://"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": CACHE_URL.removeprefix("db://") or "django_cache",
            # Django's default of 300 is soon reached: the Stripe rate limit keeps a row per turn for a few
            # seconds (up to a few hundred at 80 requests a second), and culling deletes live rows.
            "OPTIONS": {"MAX_ENTRIES": 10000},
        }
    }
elif CACHE_URL.startswith("locmem://"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    raise ImproperlyConfigured(f"CACHE_URL must start with db://, redis:// or locmem://, not {CACHE_URL!r}")

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "overview"

# django-allauth: email-only accounts, mandatory verification, TOTP MFA.
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = f"[{SITE_NAME}] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "http" if DEBUG else "https"
ACCOUNT_RATE_LIMITS_ENABLED = envbool("ACCOUNT_RATE_LIMITS_ENABLED", True)
# allauth's defaults, plus two of Connect's: failed sign-ins at a simulated brand (per IP, per brand account),
# and test-mode sign-ins that create a new test account and its vehicles (per IP, per application).
ACCOUNT_RATE_LIMITS = (
    {"connect_login_failed": "20/m/ip,5/300s/key", "connect_test_account": "60/h/ip,30/h/key"}
    if ACCOUNT_RATE_LIMITS_ENABLED
    else False
)
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = SITE_NAME

# Email: EMAIL_URL (smtp://user:pass@host:587/?tls=True, console://, file:///path).
EMAIL_URL = os.environ.get("EMAIL_URL", "console://")
_email = dj_email_url.parse(EMAIL_URL)
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email["EMAIL_HOST"] or "localhost"
EMAIL_PORT = _email["EMAIL_PORT"] or 25
EMAIL_HOST_USER = _email["EMAIL_HOST_USER"] or ""
EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"] or ""
EMAIL_USE_TLS = _email["EMAIL_USE_TLS"]
EMAIL_USE_SSL = _email["EMAIL_USE_SSL"]
EMAIL_TIMEOUT = _email["EMAIL_TIMEOUT"] or 10
# dj-email-url drops the leading slash of file:///abs/path; keep absolute paths absolute.
EMAIL_FILE_PATH = ("/" if EMAIL_URL.startswith("file:///") else "") + _email["EMAIL_FILE_PATH"]
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Ignition <noreply@ignition.localhost>")
SERVER_EMAIL = os.environ.get("SERVER_EMAIL", DEFAULT_FROM_EMAIL)
# The email outbox (docs/architecture.md#the-email-outbox): tries per email before it is marked failed, the delay
# before the first retry (doubling each time, at most 30 minutes), and how long sent emails are kept.
EMAIL_OUTBOX_MAX_ATTEMPTS = envint("EMAIL_OUTBOX_MAX_ATTEMPTS", 10)
EMAIL_OUTBOX_RETRY_SECONDS = envint("EMAIL_OUTBOX_RETRY_SECONDS", 30)
EMAIL_OUTBOX_KEEP_DAYS = envint("EMAIL_OUTBOX_KEEP_DAYS", 30)
ADMINS = [("Ops", addr) for addr in envlist("ADMINS", "")]
# Who is emailed when an invoice is refunded or disputed in Stripe (billing.refunds); ADMINS' addresses by default.
BILLING_STAFF_EMAILS = envlist("BILLING_STAFF_EMAILS", "") or [addr for _, addr in ADMINS]
SALES_EMAIL = os.environ.get("SALES_EMAIL", "sales@ignition.localhost")  # "Contact sales" for Enterprise
# Non-billable API requests (free endpoints, failures, test mode) are counted in memory and written every this
# many seconds by each process, and when it exits (billing/unbilled.py); 0 writes each count with its request.
UNBILLED_FLUSH_SECONDS = envint("UNBILLED_FLUSH_SECONDS", 1)
# The Logs tab's request log: rows are gathered in memory and written every this many seconds by each process, and
# when it exits (requestlog/buffer.py; 0 writes each with its request), and kept this many days (a beat task purges).
REQUEST_LOG_FLUSH_SECONDS = envint("REQUEST_LOG_FLUSH_SECONDS", 1)
REQUEST_LOG_RETENTION_DAYS = envint("REQUEST_LOG_RETENTION_DAYS", 30)
# A period closes (and is invoiced) this long after its end, so requests in flight at the boundary finish.
BILLING_CLOSE_GRACE_SECONDS = envint("BILLING_CLOSE_GRACE_SECONDS", 3600)
# Dunning: days after a failed charge on which it is retried; after the last failure the team is suspended.
BILLING_DUNNING_RETRY_DAYS = tuple(int(day) for day in envlist("BILLING_DUNNING_RETRY_DAYS", "1,3,5"))
# The smallest amount Stripe charges a card in USD ($0.50): an invoice below it is not charged but carried
# forward to the team's next invoice (docs/billing.md, "Amounts below Stripe's minimum charge").
BILLING_MINIMUM_CHARGE_CENTS = envint("BILLING_MINIMUM_CHARGE_CENTS", 50)
# The Garage program's grant: how long it lasts from acceptance, and its default allowances per period
# (staff can change the allowances of each grant).
GARAGE_GRANT_MONTHS = envint("GARAGE_GRANT_MONTHS", 3)
GARAGE_GRANT_REQUESTS = envint("GARAGE_GRANT_REQUESTS", 25_000)
GARAGE_GRANT_VEHICLES = envint("GARAGE_GRANT_VEHICLES", 20)
GARAGE_REAPPLY_AFTER_DAYS = envint("GARAGE_REAPPLY_AFTER_DAYS", 90)  # after a rejection
# Support (docs/support.md): the address teams write to (and that receives new tickets), and the
# phone number shown only to teams whose plan includes phone support.
SUPPORT_EMAIL = os.environ.get("SUPPORT_EMAIL", "support@ignition.localhost")
SUPPORT_PHONE = os.environ.get("SUPPORT_PHONE", "+1 555 0100")
# How to pay an invoice of an invoice-paid Enterprise contract (bank details), shown on the invoice and its emails.
INVOICE_PAYMENT_INSTRUCTIONS = os.environ.get(
    "INVOICE_PAYMENT_INSTRUCTIONS",
    "Pay by bank transfer to Ignition Inc., account 000123456789, routing 110000000, quoting the invoice number.",
)

# Teams
INVITATION_TTL_HOURS = envint("INVITATION_TTL_HOURS", 7 * 24)
CLIENT_SECRET_GRACE_CHOICES_HOURS = (0, 1, 24, 72, 168)

# Connect's test mode: `<n>-vehicles@…` gives at most this many vehicles, and a test-mode owner nobody
# signed in as, connected or used through the API for this many days is purged (a daily beat task).
CONNECT_TEST_MODE_MAX_VEHICLES = envint("CONNECT_TEST_MODE_MAX_VEHICLES", 50)
CONNECT_TEST_MODE_RETENTION_DAYS = envint("CONNECT_TEST_MODE_RETENTION_DAYS", 30)

# Vehicle API rate limits (SMARTCAR_COMPAT.md §4.4), as (burst, refill per minute) token buckets:
# one per application (429 RATE_LIMIT:SMARTCAR_API; Smartcar's documented 120 refilling 2/min) and
# one per vehicle across applications (429 RATE_LIMIT:VEHICLE), both answered with Retry-After.
VEHICLE_API_RATE_LIMITS_ENABLED = envbool("VEHICLE_API_RATE_LIMITS_ENABLED", True)
VEHICLE_API_RATE_LIMIT = {
    "application": (
        envint("API_RATE_LIMIT_APPLICATION_BURST", 120),
        envint("API_RATE_LIMIT_APPLICATION_PER_MINUTE", 2),
    ),
    "vehicle": (envint("API_RATE_LIMIT_VEHICLE_BURST", 60), envint("API_RATE_LIMIT_VEHICLE_PER_MINUTE", 10)),
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on every request if it is missing
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# HTTPS: on whenever DEBUG is off; each can be overridden (e.g. behind a TLS proxy).
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", not DEBUG)
if envbool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REFERRER_POLICY = "same-origin"
# Content-Security-Policy (django-csp; docs/configuration.md): our own files only, nothing inline, no eval.
# dashboard.csp adds Stripe.js's origins (from STRIPE_JS_URL) to script-src, frame-src and connect-src.
# No form-action: Connect's consent form ends in a redirect to the application's own redirect URI.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],  # allauth's TOTP QR code, Swagger UI's icons
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],  # as X_FRAME_OPTIONS
    },
    "EXCLUDE_URL_PREFIXES": ["/v2.0/"],  # the vehicle API answers JSON, never a page: keep its hot path lean
}
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# Celery: CELERY_BROKER_URL, default kombu's filesystem transport under var/ (no server).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT = "dashboard.celery_filesystem:Transport"  # kombu's, with atomic writes
    _celery_queue_dir = VAR_DIR / "celery" / "queue"
    _celery_queue_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_celery_queue_dir),
        "data_folder_out": str(_celery_queue_dir),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "store_processed": False,
        # kombu's default is ./control, in whatever folder the process started from.
        "control_folder": str(VAR_DIR / "celery" / "control"),
        # It polls the folder; kombu's 1 s, with late acks, takes about two messages a second, fewer than beat sends.
        "polling_interval": 0.1,
    }
else:
    # Longer than any task's hard time limit, so a slow task is not redelivered mid-run.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# The queue beat and the app send to and the worker consumes: separate deployments (or a system test)
# sharing one broker each name their own.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "celery")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# The hard limit of a task that states none; each task's soft limit follows from its hard one
# (dashboard.celery.IgnitionTask), so the two can never disagree. All stay below the visibility timeout.
CELERY_TASK_TIME_LIMIT = 600
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Beat's schedule, declared once, here. Beat (django-celery-beat's database scheduler) writes these entries to its
# rows when it starts, under these names, so the admin lists them; an interval changed in the admin lasts until
# beat restarts. Every task is safe to run twice or concurrently. docs/operations.md says what each one does.
CELERY_BEAT_SCHEDULE = {
    name: {"task": task, "schedule": float(seconds)}
    for name, task, seconds in (
        ("expire-invitations", "accounts.tasks.expire_invitations", 3600),
        ("billing: open billing periods", "billing.tasks.open_billing_periods", 15 * 60),
        ("billing: close billing periods", "billing.tasks.close_billing_periods", 5 * 60),
        ("billing: charge due invoices", "billing.tasks.charge_due_invoices", 5 * 60),
        ("billing: dunning", "billing.tasks.run_dunning", 3600),
        ("billing: reconcile payments", "billing.tasks.reconcile_payments", 24 * 3600),
        ("billing: send pending usage alerts", "billing.tasks.send_pending_usage_alerts", 5 * 60),
        ("billing: grant reminders", "billing.tasks.send_grant_reminders", 3600),
        ("billing: start and end Enterprise contracts", "billing.tasks.switch_due_contracts", 60),
        ("billing: overdue invoice-paid invoices", "billing.tasks.mark_overdue_invoices", 3600),
        ("billing: detach replaced cards", "billing.tasks.detach_replaced_cards", 3600),
        ("garage: end due grants", "garage.tasks.end_due_grants", 5 * 60),
        ("vehicles: purge idempotency keys", "vehicles.tasks.purge_idempotency_keys", 3600),
        ("vehicles: purge unused test-mode owners", "vehicles.tasks.purge_unused_test_owners", 24 * 3600),
        ("notifications: sweep the email outbox", "notifications.tasks.sweep_outbox", 60),
        ("requestlog: purge expired requests", "requestlog.tasks.purge_expired_requests", 3600),
    )
}

# Stripe: the real SDK everywhere. With no key set, everything points at the embedded
# localstripe (started by `make run` and by the tests); with a real key, at Stripe.
LOCALSTRIPE_PORT = envint("LOCALSTRIPE_PORT", 8420)
_USING_REAL_STRIPE = bool(os.environ.get("STRIPE_SECRET_KEY"))
STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY") or "sk_test_localstripe"
STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY") or "pk_test_localstripe"
STRIPE_API_BASE = (
    os.environ.get("STRIPE_API_BASE")
    or ("https://api.stripe.com" if _USING_REAL_STRIPE else f"http://127.0.0.1:{LOCALSTRIPE_PORT}")
).rstrip("/")
_REAL_STRIPE_JS = "https://js.stripe.com/v3/"
STRIPE_JS_URL = os.environ.get("STRIPE_JS_URL") or (
    _REAL_STRIPE_JS if STRIPE_API_BASE == "https://api.stripe.com" else f"{STRIPE_API_BASE}/js.stripe.com/v3/"
)
# localstripe's signing secret is public: it is the default only while localstripe is in use. With a real key
# and no secret this is empty, which the webhook refuses and system check ignition.E001 reports (billing/checks.py).
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET") or ("" if _USING_REAL_STRIPE else "whsec_localstripe")
# Stripe answers 429 above 100 requests a second in live mode and 25 in test mode (localstripe counts as test);
# billing.stripe_limits keeps every process together below this, with room for Stripe's lower per-endpoint limits.
# 0 turns the limit off.
STRIPE_MAX_REQUESTS_PER_SECOND = envint(
    "STRIPE_MAX_REQUESTS_PER_SECOND", 80 if STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_")) else 20
)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# The v2.0 API's OpenAPI schema (vehicles/api/openapi.py): /v2.0/openapi.json and the docs page /docs/api/.
SPECTACULAR_SETTINGS = {
    "TITLE": "Ignition vehicle API",
    "VERSION": "2.0",
    "DESCRIPTION": "Smartcar v2.0 wire-compatible: point the Smartcar SDKs' SMARTCAR_API_ORIGIN and "
    "SMARTCAR_MANAGEMENT_API_ORIGIN at this server. Errors use Smartcar's envelope; every response carries "
    "SC-Request-Id.",
    "SERVE_INCLUDE_SCHEMA": False,
    # The vehicle API's views are plain Django views, documented by explicit patterns, not the urlconf.
    "DEFAULT_GENERATOR_CLASS": "vehicles.api.schema.VehicleApiSchemaGenerator",
    "SCHEMA_PATH_PREFIX": r"/v2\.0",
    # Two `status` enums share a field name; name them rather than let drf-spectacular hash them.
    "ENUM_NAME_OVERRIDES": {
        "ClosureStatusEnum": "vehicles.api.schema.CLOSURE_STATUSES",
        "SuccessEnum": "vehicles.api.schema.SUCCESS",
    },
    "ENUM_GENERATE_CHOICE_DESCRIPTION": False,  # the values are the wire strings; "* `LOCK` - LOCK" adds nothing
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
