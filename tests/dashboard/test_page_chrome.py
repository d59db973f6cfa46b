"""What surrounds a page: the tab it belongs to, its breadcrumb, what a refusal says, where a reload lands."""

import re

import pytest
from django.urls import reverse

from accounts.roles import Role
from tests.conftest import login_as
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def current_tab(html: str) -> list[str]:
    tabs = html[html.index('aria-label="Dashboard"') : html.index("</nav>", html.index('aria-label="Dashboard"'))]
    return re.findall(r'aria-current="page">([^<]+)</a>', tabs)


@pytest.mark.parametrize(
    ("url", "tab"),
    [
        ("/billing/switch/?plan=payg", "Billing"),
        ("/billing/details/", "Billing"),
        ("/billing/contact-sales/", "Billing"),
        ("/accounts/reauthenticate/?next=/billing/card/", "Billing"),
        ("/team/audit/", "Team"),
        ("/logs/", "Logs"),
        ("/applications/", "Applications"),
    ],
)
def test_every_page_lights_the_tab_it_belongs_to(client, team, url, tab):
    owner = MembershipFactory(team=team, role=Role.OWNER)
    response = login_as(client, owner).get(url)
    assert response.status_code == 200, url
    assert current_tab(response.content.decode()) == [tab]


@pytest.mark.parametrize(
    "url", ["/billing/switch/?plan=payg", "/billing/details/", "/billing/contact-sales/", "/team/audit/"]
)
def test_a_breadcrumb_ends_with_the_page_not_a_dangling_slash(client, team, url):
    owner = MembershipFactory(team=team, role=Role.OWNER)
    html = login_as(client, owner).get(url).content.decode()
    (breadcrumb,) = re.findall(r'<p class="breadcrumb">(.*?)</p>', html, re.S)
    assert not breadcrumb.rstrip().endswith("/")
    assert 'aria-current="page"' in breadcrumb


def test_an_admin_refused_an_owners_page_is_told_to_ask_an_owner(client, team):
    admin = MembershipFactory(team=team, role=Role.ADMIN)
    response = login_as(client, admin).get(reverse("billing"))
    assert response.status_code == 403
    html = response.content.decode()
    assert "Ask an Owner of the team" in html and "Owner or Admin" not in html
    viewer = MembershipFactory(team=team, role=Role.VIEWER)
    assert "Ask an Owner or Admin" in login_as(client, viewer).get(reverse("billing")).content.decode()


def test_reloading_the_new_application_address_lands_on_the_list(client, team):
    owner = MembershipFactory(team=team, role=Role.OWNER)
    response = login_as(client, owner).get(reverse("application_create"))
    assert (response.status_code, response["Location"]) == (302, reverse("application_list"))


def test_the_only_owner_is_not_offered_to_leave(client, team):
    owner = MembershipFactory(team=team, role=Role.OWNER)
    html = login_as(client, owner).get(reverse("team")).content.decode()
    assert "Leave team" not in html and "You are the only Owner" in html
    MembershipFactory(team=team, role=Role.OWNER)
    html = client.get(reverse("team")).content.decode()
    assert "Leave team" in html


def test_destructive_forms_ask_before_they_are_sent(client, team):
    """static/js/confirm.js asks with the form's data-confirm (tests/e2e/test_confirmations_in_a_browser.py)."""
    from accounts.models import RedirectURI
    from tests.factories import ApplicationFactory
    from tests.vehicles.api_helpers import make_grant, make_owner, make_vehicle

    owner = MembershipFactory(team=team, role=Role.OWNER)
    MembershipFactory(team=team, role=Role.OWNER)  # so that leaving is offered
    MembershipFactory(team=team, role=Role.VIEWER)
    application = ApplicationFactory(team=team)
    RedirectURI.objects.create(application=application, uri="https://a.example/cb", is_default=True)
    driver = make_owner()
    make_grant(application, driver, [make_vehicle(driver)])
    login_as(client, owner)

    def confirmed_actions(url) -> set[str]:
        html = client.get(url).content.decode()
        return set(re.findall(r'<form method="post" action="([^"]+)"[^>]*data-confirm="[^"]+"', html))

    detail = confirmed_actions(reverse("application_detail", args=[application.client_id]))
    assert {"client-secret", "management-token", "redirect-uris"} <= {part for a in detail for part in a.split("/")}
    assert len(confirmed_actions(reverse("vehicle_list"))) == 1  # disconnect
    assert len(confirmed_actions(reverse("team"))) == 3  # leave, and remove each of the two others
