"""The yardstick for bench_http.py: a one-file Django app, no middleware, one view returning the same JSON.

Served by the same gunicorn, with the same workers, as Ignition: its req/s is what Django itself costs here, and
every Ignition figure is reported as a ratio to it. Run by bench_http.py as `gunicorn bench.bare_app:application`.
"""

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import JsonResponse
from django.urls import path

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-only",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    DATABASES={},
)


def odometer(request, vehicle_id):
    """The odometer answer's shape (the simulated vehicle's numbers), as Ignition returns it."""
    return JsonResponse({"distance": 104_271.3}, headers={"SC-Data-Age": "2026-12-07T12:00:00.000Z"})


urlpatterns = [path("v2.0/vehicles/<str:vehicle_id>/odometer", odometer)]

application = get_wsgi_application()
