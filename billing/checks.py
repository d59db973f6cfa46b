"""System checks of the Stripe settings (`manage.py check`; also run by `migrate`, `runserver` and `check --deploy`).

dashboard/settings.py defaults every Stripe setting to localstripe's public values and switches the API origin to
Stripe once STRIPE_SECRET_KEY is set, but it leaves the other settings alone: a deploy that sets only the secret key
would serve localstripe's publishable key to Stripe.js (no card form works) and verify webhooks with localstripe's
published secret. These checks stop such a deploy with what to set.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, register

STRIPE_HOST = "api.stripe.com"
LOCALSTRIPE_SECRET_KEY = "sk_test_localstripe"
LOCALSTRIPE_PUBLISHABLE_KEY = "pk_test_localstripe"
LOCALSTRIPE_WEBHOOK_SECRET = "whsec_localstripe"
SECRET_PREFIXES = {"sk_live_": "live", "rk_live_": "live", "sk_test_": "test", "rk_test_": "test"}
PUBLISHABLE_PREFIXES = {"pk_live_": "live", "pk_test_": "test"}
WHERE_KEYS_ARE = "Stripe's dashboard, Developers > API keys"
WEBHOOK_SECRET_HINT = (
    "Set STRIPE_WEBHOOK_SECRET to the signing secret (whsec_...) of the endpoint /billing/stripe/webhook in Stripe's "
    "dashboard (Developers > Webhooks)."
)


def uses_real_stripe() -> bool:
    """Requests go to Stripe itself, or a live key is configured wherever they go (a live key is real money even
    if STRIPE_API_BASE points elsewhere). A test key sent to localstripe (`make run`, the tests) is not real Stripe."""
    return (
        urlsplit(settings.STRIPE_API_BASE).hostname == STRIPE_HOST
        or _mode(settings.STRIPE_SECRET_KEY, SECRET_PREFIXES) == "live"
    )


def _mode(key: str, prefixes: dict) -> str | None:
    """ "live" or "test" by the key's prefix; None for a key of no known kind (or none)."""
    return next((mode for prefix, mode in prefixes.items() if (key or "").startswith(prefix)), None)


@register()
def stripe_webhook_secret_check(app_configs, **kwargs):
    """A real Stripe key without the webhook endpoint's signing secret: every real event would be rejected, and
    falling back to localstripe's published secret would let anyone sign one. Settings leave it empty then."""
    if settings.STRIPE_WEBHOOK_SECRET:
        return []
    return [
        Error(
            "STRIPE_WEBHOOK_SECRET is not set, but STRIPE_SECRET_KEY points Ignition at real Stripe: "
            "Stripe's webhook events cannot be verified, so every one would be rejected.",
            hint=WEBHOOK_SECRET_HINT,
            id="ignition.E001",
        )
    ]


@register()
def stripe_keys_check(app_configs, **kwargs):
    if not uses_real_stripe():
        return []
    secret, publishable = settings.STRIPE_SECRET_KEY or "", settings.STRIPE_PUBLISHABLE_KEY or ""
    secret_mode, publishable_mode = _mode(secret, SECRET_PREFIXES), _mode(publishable, PUBLISHABLE_PREFIXES)
    errors = []
    if secret == LOCALSTRIPE_SECRET_KEY or secret_mode is None:
        errors.append(
            Error(
                f"STRIPE_SECRET_KEY is {'not set' if secret == LOCALSTRIPE_SECRET_KEY else 'not a Stripe secret key'}, "
                f"but STRIPE_API_BASE points Ignition at real Stripe ({settings.STRIPE_API_BASE}): "
                "every call to Stripe would be refused.",
                hint=f"Set STRIPE_SECRET_KEY to the account's secret key (sk_live_... or sk_test_..., or a restricted "
                f"rk_... key) from {WHERE_KEYS_ARE}; or unset STRIPE_API_BASE to use localstripe.",
                id="ignition.E002",
            )
        )
    if publishable == LOCALSTRIPE_PUBLISHABLE_KEY or publishable_mode is None:
        what = "localstripe's" if publishable == LOCALSTRIPE_PUBLISHABLE_KEY else "not a Stripe publishable key"
        errors.append(
            Error(
                f"STRIPE_PUBLISHABLE_KEY is {what}, but Ignition uses real Stripe: Stripe.js would refuse it, "
                "so no card could be added or paid with.",
                hint=f"Set STRIPE_PUBLISHABLE_KEY to the publishable key (pk_...) paired with STRIPE_SECRET_KEY, from "
                f"{WHERE_KEYS_ARE}.",
                id="ignition.E003",
            )
        )
    elif secret_mode is not None and secret_mode != publishable_mode:
        errors.append(
            Error(
                f"STRIPE_SECRET_KEY is a {secret_mode} key but STRIPE_PUBLISHABLE_KEY is a {publishable_mode} key: "
                "cards collected by Stripe.js in one mode do not exist for the server in the other.",
                hint=f"Use both keys of the same mode (sk_live_/pk_live_ or sk_test_/pk_test_) from {WHERE_KEYS_ARE}.",
                id="ignition.E004",
            )
        )
    if settings.STRIPE_WEBHOOK_SECRET == LOCALSTRIPE_WEBHOOK_SECRET:
        errors.append(
            Error(
                "STRIPE_WEBHOOK_SECRET is localstripe's published secret, but Ignition uses real Stripe: anyone could "
                "sign webhook events with it, and Stripe's own events would all be rejected.",
                hint=WEBHOOK_SECRET_HINT,
                id="ignition.E005",
            )
        )
    return errors
