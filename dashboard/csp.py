"""The Content-Security-Policy header: django-csp's middleware, plus the origins Stripe.js needs.

The fixed part of the policy is CONTENT_SECURITY_POLICY in settings. Stripe's origins follow from
STRIPE_JS_URL, read on each response, so the one setting that says where Stripe.js comes from also
says what the policy allows (real Stripe, or localstripe on whatever port it runs). See docs/configuration.md.
"""

from functools import cache
from urllib.parse import urlsplit

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings

REAL_STRIPE_JS_ORIGIN = "https://js.stripe.com"


@cache
def stripe_sources(js_url: str) -> dict[str, tuple[str, ...]]:
    """The sources Stripe.js, loaded from js_url, needs: scripts, frames and the API calls it makes."""
    parts = urlsplit(js_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if origin == REAL_STRIPE_JS_ORIGIN:
        # Stripe's CSP guide for Stripe.js and Elements; 3-D Secure challenges are framed from hooks.stripe.com.
        return {
            "script-src": (origin, "https://*.js.stripe.com"),
            "frame-src": (origin, "https://*.js.stripe.com", "https://hooks.stripe.com"),
            "connect-src": ("https://api.stripe.com",),
        }
    # localstripe serves its Stripe.js and answers that script's API calls from one origin.
    return {"script-src": (origin,), "frame-src": (origin,), "connect-src": (origin,)}


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    def process_response(self, request, response):
        # django-csp builds the policy (~0.15 ms) before it looks at EXCLUDE_URL_PREFIXES; the metered vehicle
        # API's JSON needs none, so skip the work there rather than only the header.
        if request.path_info.startswith(tuple(settings.CONTENT_SECURITY_POLICY.get("EXCLUDE_URL_PREFIXES", ()))):
            return response
        return super().process_response(request, response)

    def get_policy_parts(self, request, response, report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        update = dict(parts.update or {})  # a view's own @csp_update, if any, is kept
        for directive, sources in stripe_sources(settings.STRIPE_JS_URL).items():
            existing = update.get(directive) or ()
            update[directive] = (*((existing,) if isinstance(existing, str) else existing), *sources)
        parts.update = update
        return parts
