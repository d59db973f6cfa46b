"""POST /billing/stripe/webhook: Stripe's events, verified on the raw body (billing/webhooks.py)."""

import logging

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing import webhooks

logger = logging.getLogger("billing.webhooks")


@csrf_exempt  # Stripe signs the body instead
@require_POST
def stripe_webhook(request):
    # Plain text: what Stripe's dashboard shows of the response for each delivery attempt.
    try:
        webhooks.receive(request.body, request.headers.get("Stripe-Signature"))
    except webhooks.ForgedEvent as forged:
        logger.warning("Rejected a Stripe webhook from %s: %s", request.META.get("REMOTE_ADDR"), forged)
        return plain_text("Invalid signature.", status=400)
    except webhooks.MalformedEvent as malformed:
        logger.warning("Rejected a signed Stripe webhook that is not an event: %s", malformed)
        return plain_text(f"Not a Stripe event: {malformed}.", status=400)
    return plain_text("ok")


def plain_text(message: str, *, status: int = 200) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
