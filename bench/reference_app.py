"""The second yardstick for bench_http.py: the least a metered request can cost here, with Django and PostgreSQL.

A one-file Django app like bare_app.py (no middleware, one view, the same JSON), on Ignition's bench database with a
persistent connection. Its one view does, in **one SQL statement** committed durably, the least a metered request
must: find the bearer token's live grant and its live connection to the path's vehicle, count the request in the
team's open period only while the period's allowance has room (a conditional UPDATE, which also serialises the
team's requests on the period row), and insert the usage event. It leaves out what Ignition's reservation does
beyond that (the vehicle allowance, the daily rollup, suspensions and alerts), the scope check, the provider read,
the Smartcar error envelope, and everything a real answer needs when something is refused: it is a floor, not an
alternative. Its req/s against the bare view, in the same run, says how close to the bare view a metered request
can come on this machine at all; Ignition's metered figure is reported against both.

Run by bench_http.py as `gunicorn bench.reference_app:application`, with Ignition's environment (DATABASE_URL,
SECRET_KEY) so that it reads the same tokens.
"""

import hashlib
import hmac
import os
import uuid
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.db import connection
from django.http import JsonResponse
from django.urls import path
from django.utils import timezone

_url = urlsplit(os.environ["DATABASE_URL"])
settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-only",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    USE_TZ=True,
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _url.path.lstrip("/"),
            "USER": unquote(_url.username or ""),
            "PASSWORD": unquote(_url.password or ""),
            "HOST": _url.hostname or "",
            "PORT": _url.port or "",
            "CONN_MAX_AGE": 600,
            "OPTIONS": {"server_side_binding": True, "prepare_threshold": 0},  # prepared, as Ignition's hot path
        }
    },
)
# Ignition's token hashing (accounts/credentials.py), with its default pepper derived from SECRET_KEY.
_PEPPER = (
    os.environ.get("CREDENTIAL_PEPPER")
    or hmac.new(os.environ["SECRET_KEY"].encode(), b"ignition.credential-pepper", hashlib.sha256).hexdigest()
)

# Parameters: token hash, now, vehicle public id, request id, endpoint, now.
_LOOKUP_AND_COUNT = """
WITH caller AS (
    SELECT g.application_id, a.team_id, c.vehicle_id
      FROM vehicles_accesstoken t
      JOIN vehicles_grant g ON g.id = t.grant_id AND g.revoked_at IS NULL
      JOIN accounts_application a ON a.id = g.application_id
      JOIN vehicles_simulatedvehicle v ON v.public_id = %s
      JOIN vehicles_connection c ON c.grant_id = g.id AND c.vehicle_id = v.id AND c.revoked_at IS NULL
     WHERE t.token_hash = %s AND t.expires_at > %s
), counted AS (
    UPDATE billing_billingperiod p
       SET requests_used = p.requests_used + 1, accrued_cents = p.accrued_cents + p.unit_price_cents
      FROM caller
     WHERE p.team_id = caller.team_id AND p.start <= %s AND p."end" > %s AND p.status = 'open'
       AND (p.request_allowance IS NULL OR p.requests_used < p.request_allowance)
    RETURNING p.id, p.unit_price_cents, caller.application_id, caller.vehicle_id
)
INSERT INTO billing_usageevent (request_id, period_id, application_id, vehicle_id, endpoint, unit_price_cents,
                                occurred_at)
SELECT %s, counted.id, counted.application_id, counted.vehicle_id, %s, counted.unit_price_cents, %s FROM counted
RETURNING id
"""


def odometer(request, vehicle_id):
    token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")[2]
    token_hash = hmac.new(_PEPPER.encode(), token.encode(), hashlib.sha256).hexdigest()
    now = timezone.now()
    params = [uuid.UUID(vehicle_id), token_hash, now, now, now, str(uuid.uuid4()), "/vehicles/{id}/odometer", now]
    with connection.cursor() as cursor:
        cursor.execute(_LOOKUP_AND_COUNT, params)
        counted = cursor.fetchone()
    if counted is None:
        return JsonResponse({"type": "AUTHENTICATION"}, status=401)
    return JsonResponse({"distance": 104_271.3}, headers={"SC-Data-Age": "2026-12-07T12:00:00.000Z"})


urlpatterns = [path("v2.0/vehicles/<str:vehicle_id>/odometer", odometer)]

application = get_wsgi_application()
