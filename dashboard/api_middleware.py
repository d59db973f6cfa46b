"""The vehicle API's requests skip the dashboard's middleware.

The API authenticates each request by its bearer token and answers JSON: it never reads a session, a logged-in
user, a CSRF token, messages or the current team, and needs no page policy (CSP, frame options). Yet the full
stack of MIDDLEWARE cost every API request more than Django's own request handling. So the first middleware
sends requests under VEHICLE_API_PREFIX down a chain of their own, VEHICLE_API_MIDDLEWARE (the security headers),
straight to the URL resolver (with the API's own URLconf, VEHICLE_API_URLCONF) and the view; every other request
goes on through MIDDLEWARE as before. Both
gunicorn (dashboard.wsgi) and Django's test client go through it, so every API test exercises the short chain.
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response
from django.urls import set_urlconf
from django.utils.module_loading import import_string


class _ApiHandler(BaseHandler):
    """Django's request handling with VEHICLE_API_MIDDLEWARE instead of MIDDLEWARE (synchronous only)."""

    def load_middleware(self, is_async=False):
        self._view_middleware, self._template_response_middleware, self._exception_middleware = [], [], []
        handler = convert_exception_to_response(self._get_response)
        for path in reversed(settings.VEHICLE_API_MIDDLEWARE):
            middleware = import_string(path)(handler)
            hooks = ("process_view", "process_template_response", "process_exception")
            if any(hasattr(middleware, hook) for hook in hooks):
                raise ImproperlyConfigured(f"{path}: the API's chain runs request/response middleware only")
            handler = convert_exception_to_response(middleware)
        self._middleware_chain = handler


class VehicleApiMiddleware:
    """First in MIDDLEWARE: API requests take the short chain, the rest go on."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.api = _ApiHandler()
        self.api.load_middleware()
        self.prefix = settings.VEHICLE_API_PREFIX
        self.urlconf = settings.VEHICLE_API_URLCONF

    def __call__(self, request):
        if request.path_info.startswith(self.prefix):
            # The chain, not get_response: the outer handler logs 4xx/5xx once. The resolver sets the thread's
            # URLconf from request.urlconf; put back the site's at once, whether or not request_finished is sent.
            request.urlconf = self.urlconf
            try:
                return self.api._middleware_chain(request)
            finally:
                set_urlconf(None)
        return self.get_response(request)
