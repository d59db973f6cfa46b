"""The vehicle API's requests take their own short middleware chain (dashboard/api_middleware.py)."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from dashboard.api_middleware import VehicleApiMiddleware


@pytest.mark.django_db
def test_api_answers_skip_the_dashboards_middleware_but_keep_the_security_headers(client):
    api = client.get("/v2.0/vehicles", HTTP_AUTHORIZATION="Bearer not-a-token")
    page = client.get("/accounts/login/")

    assert api.status_code == 401 and api.json()["type"] == "AUTHENTICATION"  # the Smartcar envelope, as before
    assert api["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware still runs
    assert "X-Frame-Options" not in api and "Content-Security-Policy" not in api  # page policies don't
    assert not api.cookies  # no session, no CSRF cookie
    assert page["X-Frame-Options"] == "DENY" and "Content-Security-Policy" in page


def test_the_api_chain_refuses_middleware_it_cannot_run(settings):
    settings.VEHICLE_API_MIDDLEWARE = ["django.middleware.csrf.CsrfViewMiddleware"]  # has process_view
    with pytest.raises(ImproperlyConfigured, match="request/response middleware only"):
        VehicleApiMiddleware(lambda request: None)
