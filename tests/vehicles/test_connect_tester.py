"""The Connect tester (an application's page) and Ignition's own callback page (vehicles/connect/tester.py)."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from accounts import applications
from accounts.models import Membership
from accounts.roles import Role
from tests.conftest import login_as
from tests.factories import MembershipFactory
from tests.vehicles.api_helpers import make_owner, make_vehicle
from vehicles.connect import tester
from vehicles.tokens import create_authorization_code

pytestmark = pytest.mark.django_db


@pytest.fixture
def app(db):
    owner = MembershipFactory(role=Role.OWNER)
    application, _ = applications.create_application(actor=owner, name="Charge Buddy")
    return application, Membership.objects.get(pk=owner.pk)


def test_the_tester_builds_the_connect_url_for_the_choices(client, app):
    application, owner = app
    applications.add_redirect_uri(actor=owner, application=application, uri=tester.callback_uri())
    login_as(client, owner)
    choices = {"scopes": ["read_vehicle_info", "read_odometer"], "mode": "test", "make": "TESLA"}
    page = client.get(
        reverse("connect_tester", args=[application.client_id]), {"redirect_uri": tester.callback_uri(), **choices}
    )
    assert page.status_code == 200
    url = page.context["connect_url"]
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    assert parts.path == reverse("connect_authorize")
    assert query["client_id"] == str(application.client_id) and query["redirect_uri"] == tester.callback_uri()
    assert (query["scope"], query["mode"], query["make"], query["response_type"]) == (
        "read_vehicle_info read_odometer",
        "test",
        "TESLA",
        "code",
    )
    assert query["state"]
    # Connect itself accepts it: the brand is skipped, the sign-in page shows.
    assert Client().get(f"{parts.path}?{parts.query}").status_code == 302


def test_only_the_applications_registered_redirect_uris_can_be_chosen(client, app):
    application, owner = app
    applications.add_redirect_uri(actor=owner, application=application, uri="https://charge.example/cb")
    login_as(client, owner)
    page = client.get(
        reverse("connect_tester", args=[application.client_id]),
        {"redirect_uri": "https://attacker.example/cb", "scopes": ["read_vehicle_info"], "mode": "test"},
    )
    assert page.status_code == 400 and page.context["connect_url"] is None
    assert "redirect_uri" in page.context["form"].errors
    assert "Register Ignition" in page.content.decode()  # the built-in callback is not registered yet


def test_registering_the_callback_from_the_tester_comes_back_to_it(client, app):
    application, owner = app
    login_as(client, owner)
    response = client.post(
        reverse("redirect_uri_add", args=[application.client_id]),
        {"uri": tester.callback_uri(), "return_to": "connect_tester"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("connect_tester", args=[application.client_id])
    assert list(application.redirect_uris.values_list("uri", flat=True)) == [tester.callback_uri()]


def test_a_viewer_can_try_connect_but_not_register_the_callback(client, app):
    application, owner = app
    viewer = MembershipFactory(team=owner.team, role=Role.VIEWER)
    html = login_as(client, viewer).get(reverse("connect_tester", args=[application.client_id])).content.decode()
    assert "Register Ignition" not in html and "an Owner, an Admin or an editor" in html


def test_the_callback_shows_a_fresh_code_with_the_exchange_to_run(client, app):
    application, _ = app
    owner = make_owner()
    vehicles, scopes = [make_vehicle(owner)], ["read_odometer"]
    code = create_authorization_code(
        application=application, owner=owner, vehicles=vehicles, scopes=scopes, redirect_uri=tester.callback_uri()
    )
    page = client.get(reverse("connect_test_callback"), {"code": code, "state": "s1"})
    html = page.content.decode()
    assert page.status_code == 200 and page.context["status"].state == "ready"
    assert code in html and "s1" in html and "Charge Buddy" in html
    assert f"-u {application.client_id}:YOUR_CLIENT_SECRET" in html
    assert f"-d redirect_uri={tester.callback_uri()}" in html


def test_the_callback_says_when_a_code_is_unknown_or_an_error_came_back(client):
    unknown = client.get(reverse("connect_test_callback"), {"code": "nope"})
    assert unknown.context["status"].state == "unknown" and "YOUR_CLIENT_SECRET" not in unknown.content.decode()
    denied = client.get(
        reverse("connect_test_callback"), {"error": "access_denied", "error_description": "The user denied access."}
    )
    assert denied.status_code == 200 and "access_denied" in denied.content.decode()
    assert client.get(reverse("connect_test_callback")).status_code == 400  # nothing came back
