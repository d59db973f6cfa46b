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


@pytest.mark.django_db
def test_api_requests_resolve_against_the_apis_own_urlconf_and_pages_against_the_sites(client, monkeypatch):
    from django.urls import resolvers

    resolved_with = []
    real = resolvers.get_resolver

    def spy(urlconf=None):
        resolved_with.append(urlconf)
        return real(urlconf)

    monkeypatch.setattr("django.core.handlers.base.get_resolver", spy)
    assert client.get("/v2.0/nowhere").json()["code"] == "PATH"  # the API's own 404 envelope
    assert client.get("/v2.0/vehicles", HTTP_AUTHORIZATION="Bearer x").status_code == 401
    assert client.get("/accounts/login/").status_code == 200

    assert resolved_with == ["vehicles.api.urls_v2", "vehicles.api.urls_v2", None]  # None: ROOT_URLCONF


@pytest.mark.django_db
def test_an_api_request_leaves_the_sites_urlconf_in_place_even_without_request_finished(rf):
    from django.urls import get_urlconf, reverse

    middleware = VehicleApiMiddleware(lambda request: None)
    response = middleware(rf.get("/v2.0/vehicles", HTTP_AUTHORIZATION="Bearer not-a-token"))

    assert response.status_code == 401
    assert get_urlconf() is None  # reverse() sees the whole site again, not the API's routes
    assert reverse("billing") == "/billing/"
