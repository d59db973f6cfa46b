"""Point localstripe's webhooks at this app (development: `make run` does it). Real Stripe is configured in
Stripe's dashboard instead, with STRIPE_WEBHOOK_SECRET set to the endpoint's signing secret."""

import time
import urllib.error
import urllib.parse
import urllib.request

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

WEBHOOK_NAME = "ignition"


def register(url: str, *, events: list[str] | None = None, name: str = WEBHOOK_NAME) -> None:
    """POST localstripe's /_config/webhooks/<name> (its own admin route; it keeps webhooks in memory only)."""
    fields = [("url", url), ("secret", settings.STRIPE_WEBHOOK_SECRET)]
    fields += [("events[]", event) for event in events or []]
    request = urllib.request.Request(  # noqa: S310 (the configured localstripe, http)
        f"{settings.STRIPE_API_BASE}/_config/webhooks/{name}", data=urllib.parse.urlencode(fields).encode()
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (the configured localstripe)
        if response.status != 200:
            raise CommandError(f"localstripe answered {response.status}")


class Command(BaseCommand):
    help = "Register this app's /billing/stripe/webhook with localstripe (waits for it with --wait)."

    def add_arguments(self, parser):
        parser.add_argument("--url", default=f"{settings.SITE_ROOT}/billing/stripe/webhook")
        parser.add_argument("--wait", type=int, default=0, help="Seconds to wait for localstripe to answer.")

    def handle(self, *args, **options):
        if "api.stripe.com" in settings.STRIPE_API_BASE:
            raise CommandError("This is for localstripe; configure real Stripe's webhooks in its dashboard.")
        deadline = time.monotonic() + options["wait"]
        while True:
            try:
                register(options["url"])
                break
            except (urllib.error.URLError, ConnectionError) as exc:
                if time.monotonic() >= deadline:
                    raise CommandError(f"localstripe at {settings.STRIPE_API_BASE} did not answer: {exc}") from exc
                time.sleep(0.5)
        self.stdout.write(f"localstripe sends its webhooks to {options['url']}")
