"""POST /billing/stripe/webhook: Stripe's events, verified on the raw body (billing/webhooks.py)."""

import logging

from django.http import HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing import webhooks

logger = logging.getLogger("billing.webhooks")


@csrf_exempt  # Stripe signs the body instead
@require_POST
def stripe_webhook(request):
    try:
        webhooks.receive(request.body, request.headers.get("Stripe-Signature"))
    except webhooks.ForgedEvent as forged:
        logger.warning("Rejected a Stripe webhook from %s: %s", request.META.get("REMOTE_ADDR"), forged)
        return HttpResponseBadRequest("Invalid signature.")
    return HttpResponse("ok")
