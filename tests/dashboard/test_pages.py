"""The dashboard shell: tabs, empty states, error pages, health check."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import RedirectURI
from accounts.roles import Role
from tests.conftest import login_as
from tests.factories import ApplicationFactory, UserFactory

TABS = ["Overview", "Applications", "Vehicles", "Billing", "Team", "Garage"]


@pytest.mark.parametrize(
    "url_name, heading",
    [
        ("overview", "Getting started"),
        ("application_list", "No applications yet"),
        ("vehicle_list", "No vehicles are connected to your applications yet"),
        ("billing", "No API usage yet this period"),
        ("team", "Members"),
        ("garage", "Free calls for early-stage startups"),
    ],
)
def test_every_tab_renders_for_an_owner_with_its_empty_state(owner_client, url_name, heading):
    response = owner_client.get(reverse(url_name))
    assert response.status_code == 200
    html = response.content.decode()
    assert heading in html
    for tab in TABS:
        assert f">{tab}</a>" in html
    assert 'aria-current="page"' in html


def test_the_billing_tab_is_for_owners_only(client, make_member):
    admin = make_member(Role.ADMIN)
    login_as(client, admin)
    assert client.get(reverse("billing")).status_code == 403
    assert ">Billing</a>" not in client.get(reverse("overview")).content.decode()


def test_anonymous_visitors_are_sent_to_the_login_page(client, db):
    for name in ["overview", "application_list", "vehicle_list", "billing", "team", "garage"]:
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))
    assert client.get("/")["Location"] == reverse("account_login")


def test_a_user_without_a_team_is_asked_to_create_one(client, db):
    user = UserFactory()
    client.force_login(user)
    response = client.get(reverse("overview"))
    assert response["Location"] == reverse("team_create")
    page = client.get(reverse("team_create"))
    assert "You are not a member of any team" in page.content.decode()
    response = client.post(reverse("team_create"), {"name": "  "})
    assert response.status_code == 400
    assert "Enter a team name." in response.content.decode()
    response = client.post(reverse("team_create"), {"name": "Solo Labs"})
    assert response["Location"] == reverse("overview")
    assert "Solo Labs" in client.get(reverse("overview")).content.decode()


def test_unknown_pages_get_the_styled_404(owner_client):
    response = owner_client.get("/no-such-page/")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


def test_server_errors_get_the_styled_500_page(db):
    client = Client(raise_request_exception=False)
    from django.urls import path

    from dashboard import urls

    def boom(request):
        raise RuntimeError("boom")

    urls.urlpatterns.append(path("__boom__/", boom))
    try:
        from django.urls import clear_url_caches

        clear_url_caches()
        response = client.get("/__boom__/")
    finally:
        urls.urlpatterns.pop()
        clear_url_caches()
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()


def test_health_check_reports_the_database_reachable(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_static_files_are_served_by_whitenoise_without_a_cdn(owner_client):
    html = owner_client.get(reverse("overview")).content.decode()
    assert "/static/css/app.css" in html
    assert "//cdn" not in html and "googleapis" not in html and "unpkg" not in html


def test_pages_send_security_headers(owner_client):
    response = owner_client.get(reverse("overview"))
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_the_checklist_sees_a_redirect_uri_on_any_application_not_just_the_first_five(owner_client, team):
    apps = [ApplicationFactory(team=team, name=f"App {n}") for n in range(6)]
    html = owner_client.get(reverse("overview")).content.decode()
    assert html.count('class="done"') == 1  # only "Register an application"
    RedirectURI.objects.create(application=apps[-1], uri="https://example.com/cb", is_default=True)
    html = owner_client.get(reverse("overview")).content.decode()
    assert html.count('class="done"') == 2


def test_the_checklist_ticks_the_first_api_call_and_the_first_plan_choice(owner_client, team, owner):
    from billing import services
    from billing.models import Plan
    from tests.vehicles.api_helpers import make_grant, make_owner, make_token, make_vehicle, request

    def done() -> list[str]:
        html = owner_client.get(reverse("overview")).content.decode()
        checklist = html[html.index('class="checklist"') : html.index("</ol>")]
        return [item.split("</li>")[0] for item in checklist.split('<li class="done">')[1:]]

    application = ApplicationFactory(team=team)
    driver = make_owner()
    vehicle = make_vehicle(driver)
    token = make_token(make_grant(application, driver, [vehicle]))
    assert not any("call the vehicle API" in item for item in done())  # connected, not called yet
    assert request(Client(), "GET", f"/v2.0/vehicles/{vehicle.public_id}/odometer", token=token).status_code == 200
    assert any("call the vehicle API" in item for item in done())
    assert not any("choose a plan" in item for item in done())
    Plan.objects.filter(code=Plan.PAY_AS_YOU_GO).update(requires_card=False)  # no card needed for this test
    membership = owner.memberships.get(team=team)
    services.switch_plan(actor=membership, plan_code=Plan.PAY_AS_YOU_GO)
    assert any("choose a plan" in item for item in done())
