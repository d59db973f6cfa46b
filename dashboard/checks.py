"""Ignition's own system checks (`manage.py check`; also run by `migrate`, `runserver` and `check --deploy`)."""

from django.conf import settings
from django.core.checks import Error, register


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
            hint="Set STRIPE_WEBHOOK_SECRET to the signing secret (whsec_...) of the endpoint "
            "/billing/stripe/webhook in Stripe's dashboard (Developers > Webhooks).",
            id="ignition.E001",
        )
    ]
