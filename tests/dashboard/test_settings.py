"""Settings come from the environment, each with a default that runs offline."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json
from django.conf import settings
db = settings.DATABASES["default"]
print(json.dumps({
    "engine": db["ENGINE"], "name": str(db["NAME"]), "host": db.get("HOST"), "port": db.get("PORT"),
    "broker": settings.CELERY_BROKER_URL, "broker_options": settings.CELERY_BROKER_TRANSPORT_OPTIONS,
    "debug": settings.DEBUG, "secret_key": settings.SECRET_KEY, "allowed_hosts": settings.ALLOWED_HOSTS,
    "email_backend": settings.EMAIL_BACKEND, "email_host": settings.EMAIL_HOST, "email_port": settings.EMAIL_PORT,
    "email_tls": settings.EMAIL_USE_TLS, "email_file_path": settings.EMAIL_FILE_PATH,
    "stripe_api_base": settings.STRIPE_API_BASE, "stripe_js": settings.STRIPE_JS_URL,
    "stripe_secret": settings.STRIPE_SECRET_KEY, "stripe_publishable": settings.STRIPE_PUBLISHABLE_KEY,
    "stripe_webhook_secret": settings.STRIPE_WEBHOOK_SECRET,
    "cache": settings.CACHES["default"]["BACKEND"], "use_tz": settings.USE_TZ, "tz": settings.TIME_ZONE,
    "ssl_redirect": settings.SECURE_SSL_REDIRECT, "session_secure": settings.SESSION_COOKIE_SECURE,
    "hsts": settings.SECURE_HSTS_SECONDS,
}))
"""

SERVICE_VARS = [
    "DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "EMAIL_URL", "CACHE_URL",
    "STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_API_BASE", "STRIPE_WEBHOOK_SECRET", "STRIPE_JS_URL",
    "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "LOCALSTRIPE_PORT",
]  # fmt: skip


def run_with_env(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    clean.update(env, DJANGO_SETTINGS_MODULE="dashboard.settings", PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup()\n{code}"],
        cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def settings_with_env(**env: str) -> dict:
    result = run_with_env(PROBE, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_it_runs_with_no_configuration_at_all():
    s = settings_with_env()
    assert s["engine"] == "django.db.backends.sqlite3"
    assert s["name"].endswith("var/ignition.sqlite3")
    assert s["broker"] == "filesystem://"
    assert s["broker_options"]["data_folder_in"].endswith("var/celery/queue")
    assert s["debug"] is True
    assert s["email_backend"] == "django.core.mail.backends.console.EmailBackend"
    assert s["stripe_api_base"] == "http://127.0.0.1:8420"
    assert s["stripe_js"] == "http://127.0.0.1:8420/js.stripe.com/v3/"
    assert s["cache"] == "django.core.cache.backends.db.DatabaseCache"
    assert s["use_tz"] is True and s["tz"] == "UTC"


def test_it_reads_services_from_the_environment():
    s = settings_with_env(
        DATABASE_URL="postgres://ignition:pw@db.internal:6543/ignition_prod",
        CELERY_BROKER_URL="amqp://guest:guest@mq.internal:5672//",
        EMAIL_URL="smtp://mailer:pw@smtp.internal:587/?tls=True",
        CACHE_URL="redis://cache.internal:6379/1",
        STRIPE_SECRET_KEY="sk_live_abc",
        STRIPE_PUBLISHABLE_KEY="pk_live_abc",
        STRIPE_API_BASE="https://api.stripe.com",
        STRIPE_JS_URL="https://js.stripe.com/v3/",
        STRIPE_WEBHOOK_SECRET="whsec_abc",
    )
    assert s["engine"] == "django.db.backends.postgresql"
    assert (s["name"], s["host"], s["port"]) == ("ignition_prod", "db.internal", 6543)
    assert s["broker"] == "amqp://guest:guest@mq.internal:5672//"
    assert s["broker_options"] == {"visibility_timeout": 3600}
    assert s["email_backend"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (s["email_host"], s["email_port"], s["email_tls"]) == ("smtp.internal", 587, True)
    assert s["cache"] == "django.core.cache.backends.redis.RedisCache"
    assert s["stripe_api_base"] == "https://api.stripe.com"
    assert s["stripe_js"] == "https://js.stripe.com/v3/"
    assert (s["stripe_secret"], s["stripe_publishable"], s["stripe_webhook_secret"]) == (
        "sk_live_abc",
        "pk_live_abc",
        "whsec_abc",
    )


def test_it_keeps_an_absolute_file_email_path_absolute():
    s = settings_with_env(EMAIL_URL="file:///tmp/ignition-mail")
    assert s["email_backend"] == "django.core.mail.backends.filebased.EmailBackend"
    assert s["email_file_path"] == "/tmp/ignition-mail"


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off():
    result = run_with_env(PROBE, DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_it_turns_https_protections_on_when_debug_is_off():
    s = settings_with_env(DEBUG="0", SECRET_KEY="x" * 60, ALLOWED_HOSTS="ignition.example.com")
    assert s["debug"] is False
    assert s["ssl_redirect"] is True and s["session_secure"] is True
    assert s["hsts"] == 31536000
    assert s["allowed_hosts"] == ["ignition.example.com"]


def test_it_rejects_a_malformed_boolean():
    result = run_with_env(PROBE, DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


def manage_py_check(*args: str, **env: str) -> subprocess.CompletedProcess:
    """`manage.py check ARGS` as an operator runs it: a fresh process whose environment is the deploy's."""
    clean = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    return subprocess.run(
        [sys.executable, "manage.py", "check", *args],
        cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def production(**env: str) -> dict:
    return {"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "ignition.example.com", **env}


REAL_STRIPE = {"STRIPE_SECRET_KEY": "sk_live_abc", "STRIPE_PUBLISHABLE_KEY": "pk_live_abc"}


@pytest.mark.parametrize(
    "env",
    [production(), production(DEBUG="false"), production(**REAL_STRIPE, STRIPE_WEBHOOK_SECRET="whsec_abc")],
    ids=["DEBUG=0", "DEBUG=false", "real Stripe"],
)
def test_check_deploy_passes_with_production_settings(env):
    result = manage_py_check("--deploy", "--fail-level", "WARNING", **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_fails_when_https_is_switched_off():
    result = manage_py_check("--deploy", "--fail-level", "WARNING", **production(SECURE_SSL_REDIRECT="0"))
    assert result.returncode != 0
    assert "security.W008" in result.stdout + result.stderr


@pytest.mark.parametrize("extra", [{}, {"DEBUG": "1"}], ids=["production", "debug"])
def test_checks_refuse_real_stripe_without_a_webhook_secret(extra):
    """localstripe's public signing secret is no fallback for real Stripe: check (and so migrate and
    runserver) and check --deploy stop with ignition.E001 and say what to set."""
    for args in (["--deploy"], []):
        result = manage_py_check(*args, **production(**REAL_STRIPE, **extra))
        output = result.stdout + result.stderr
        assert result.returncode != 0, output
        assert "ignition.E001" in output
        assert "STRIPE_WEBHOOK_SECRET is not set" in output
        assert "HINT: Set STRIPE_WEBHOOK_SECRET to the signing secret" in output


def test_the_zero_config_default_passes_the_checks_with_localstripe():
    result = manage_py_check()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    assert settings_with_env()["stripe_webhook_secret"] == "whsec_localstripe"


def test_a_real_stripe_key_alone_points_the_sdk_at_stripe():
    s = settings_with_env(STRIPE_SECRET_KEY="sk_live_only", STRIPE_PUBLISHABLE_KEY="pk_live_only")
    assert s["stripe_api_base"] == "https://api.stripe.com"
    assert s["stripe_js"] == "https://js.stripe.com/v3/"
    assert s["stripe_webhook_secret"] == ""  # not localstripe's public one: see ignition.E001


STRIPE_KEY_ERRORS = {
    "only the secret key": (
        {"STRIPE_SECRET_KEY": "sk_live_abc", "STRIPE_WEBHOOK_SECRET": "whsec_abc"},
        "ignition.E003",
        "STRIPE_PUBLISHABLE_KEY is localstripe's",
    ),
    "a publishable key that is not one": (
        {**REAL_STRIPE, "STRIPE_PUBLISHABLE_KEY": "sk_live_abc", "STRIPE_WEBHOOK_SECRET": "whsec_abc"},
        "ignition.E003",
        "STRIPE_PUBLISHABLE_KEY is not a Stripe publishable key",
    ),
    "a live secret key with a test publishable key": (
        {**REAL_STRIPE, "STRIPE_PUBLISHABLE_KEY": "pk_test_abc", "STRIPE_WEBHOOK_SECRET": "whsec_abc"},
        "ignition.E004",
        "STRIPE_SECRET_KEY is a live key but STRIPE_PUBLISHABLE_KEY is a test key",
    ),
    "a test secret key with a live publishable key": (
        {
            "STRIPE_SECRET_KEY": "sk_test_abc",
            "STRIPE_PUBLISHABLE_KEY": "pk_live_abc",
            "STRIPE_WEBHOOK_SECRET": "whsec_a",
        },
        "ignition.E004",
        "STRIPE_SECRET_KEY is a test key but STRIPE_PUBLISHABLE_KEY is a live key",
    ),
    "localstripe's webhook secret": (
        {**REAL_STRIPE, "STRIPE_WEBHOOK_SECRET": "whsec_localstripe"},
        "ignition.E005",
        "STRIPE_WEBHOOK_SECRET is localstripe's published secret",
    ),
    "Stripe's API with no secret key": (
        {
            "STRIPE_API_BASE": "https://api.stripe.com",
            "STRIPE_PUBLISHABLE_KEY": "pk_live_abc",
            "STRIPE_WEBHOOK_SECRET": "whsec_abc",
        },
        "ignition.E002",
        "STRIPE_SECRET_KEY is not set",
    ),
    "a live key sent to localstripe": (
        {"STRIPE_SECRET_KEY": "sk_live_abc", "STRIPE_API_BASE": "http://127.0.0.1:8420"},
        "ignition.E003",
        "STRIPE_PUBLISHABLE_KEY is localstripe's",
    ),
}


@pytest.mark.parametrize("env, check_id, message", STRIPE_KEY_ERRORS.values(), ids=STRIPE_KEY_ERRORS.keys())
def test_checks_refuse_real_stripe_with_mismatched_or_localstripe_keys(env, check_id, message):
    """Setting only some of the Stripe settings leaves localstripe's public values in the others: check and
    check --deploy stop with the check's id, what is wrong, and a hint naming what to set."""
    for args in (["--deploy"], []):
        result = manage_py_check(*args, **production(**env))
        output = result.stdout + result.stderr
        assert result.returncode != 0, output
        assert f"({check_id}) {message}" in output
        assert "HINT: " in output.split(check_id, 1)[1]


def test_a_test_key_against_localstripe_is_not_real_stripe():
    """A test secret key sent to localstripe (as the tests' processes run) may keep localstripe's other values."""
    result = manage_py_check(
        STRIPE_SECRET_KEY="sk_test_ignition_tests",
        STRIPE_API_BASE="http://127.0.0.1:8420",
        STRIPE_WEBHOOK_SECRET="whsec_localstripe",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_restricted_test_key_with_its_publishable_key_passes_the_deploy_checks():
    env = production(
        STRIPE_SECRET_KEY="rk_test_abc", STRIPE_PUBLISHABLE_KEY="pk_test_abc", STRIPE_WEBHOOK_SECRET="whsec_x"
    )
    result = manage_py_check("--deploy", "--fail-level", "WARNING", **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
