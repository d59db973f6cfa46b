"""Builders and fixtures for the Connect and token endpoint tests: an application, a driver, and the flow's steps."""

import base64
import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.contrib.auth.hashers import make_password

from accounts.applications import issue_client_secret
from accounts.models import RedirectURI
from tests.factories import ApplicationFactory
from tests.vehicles.api_helpers import make_owner, make_vehicle

CALLBACK = "https://app.example.com/callback"
OTHER_CALLBACK = "https://app.example.com/other?source=connect"
OWNER_PASSWORD = "owner-pass-1"


@pytest.fixture
def application(team):
    application = ApplicationFactory(team=team, name="Charge Buddy")
    RedirectURI.objects.create(application=application, uri=CALLBACK, is_default=True)
    RedirectURI.objects.create(application=application, uri=OTHER_CALLBACK)
    application.secret = issue_client_secret(application)
    return application


@pytest.fixture
def driver(db):
    """A live-mode owner at Tesla with two vehicles, as the dashboard Simulator creates them."""
    owner = make_owner(make="TESLA", email="ada@example.com", password=make_password(OWNER_PASSWORD))
    owner.test_vehicles = [make_vehicle(owner, model="Model 3"), make_vehicle(owner, model="Model Y")]
    return owner


def authorize_url(application, **params) -> str:
    query = {"response_type": "code", "client_id": str(application.client_id), "state": "xyz-123", **params}
    return "/oauth/authorize?" + urlencode({k: v for k, v in query.items() if v is not None})


def flow_id(response) -> str:
    return parse_qs(urlsplit(response["Location"]).query)["flow"][0]


def sign_in(client, application, *, email="ada@example.com", password=OWNER_PASSWORD, **params):
    """Authorize with make=TESLA and sign in; returns the response to the sign-in POST."""
    response = client.get(authorize_url(application, make="TESLA", **params))
    assert response.status_code == 302, response.content
    flow = flow_id(response)
    return client.post(response["Location"], {"flow": flow, "email": email, "password": password})


def consent(client, response, *, decision="allow", vehicles=None):
    """Follow a sign-in redirect to the consent page and answer it (all vehicles unless `vehicles`)."""
    assert response.status_code == 302, response.content
    page = client.get(response["Location"])
    assert page.status_code == 200
    if vehicles is None:
        vehicles = re.findall(r'name="vehicle" value="([0-9a-f-]{36})"', page.content.decode())
    return client.post(response["Location"], {"flow": flow_id(response), "decision": decision, "vehicle": vehicles})


def connect(client, application, **params) -> dict:
    """Run the whole flow and return the redirect's query parameters (code, state…)."""
    response = consent(client, sign_in(client, application, **params))
    assert response.status_code == 302
    return {k: v[0] for k, v in parse_qs(urlsplit(response["Location"]).query).items()}


def redirect_params(response) -> dict:
    assert response.status_code == 302, response.content
    return {k: v[0] for k, v in parse_qs(urlsplit(response["Location"]).query, keep_blank_values=True).items()}


def basic(application, secret=None) -> str:
    raw = f"{application.client_id}:{secret or application.secret}".encode()
    return "Basic " + base64.b64encode(raw).decode()
