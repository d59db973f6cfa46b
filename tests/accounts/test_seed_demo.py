"""`manage.py seed_demo`: a demo developer a newcomer can log in as at once, safe to run repeatedly."""

import json

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user
from django.urls import reverse

from accounts import demo
from accounts.applications import rotate_client_secret
from accounts.models import Application, ClientSecret, ManagementToken, Membership, RedirectURI, Team, User
from accounts.roles import Role
from accounts.selectors import application_for_management_token, verify_client_credentials
from tests.factories import run_seed_demo
from vehicles import demo as vehicles_demo
from vehicles import simulator

# `seeded_demo` (tests/conftest.py) seeds once for the module; a test that reseeds calls `seed`.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("seeded_demo")]


def seed(*args) -> str:
    return run_seed_demo(*args)


def seed_json() -> dict:
    return json.loads(seed("--json"))


def test_it_is_idempotent(client):
    seed()

    user = User.objects.get(email=demo.DEMO_EMAIL)
    assert user.email == demo.DEMO_EMAIL
    team = Team.objects.get(name=demo.DEMO_TEAM)  # the demo user also owns the Enterprise demo team
    assert list(Membership.objects.filter(team=team).values_list("team", "user", "role")) == [
        (team.pk, user.pk, Role.OWNER)
    ]
    application = Application.objects.get(team=team)
    assert (application.team, application.name) == (team, demo.DEMO_APPLICATION)
    assert list(RedirectURI.objects.values_list("uri", "is_default")) == [(demo.demo_redirect_uri(), True)]
    assert ClientSecret.objects.count() == 1
    assert ManagementToken.objects.count() == 1
    assert EmailAddress.objects.get(user=user).verified is True
    assert team.audit_events.filter(action="team.created").count() == 1


def test_it_prints_the_login_details_for_a_human(seeded_demo):
    output = seeded_demo.text

    assert "Demo ready." in output
    assert demo.DEMO_EMAIL in output
    assert demo.DEMO_PASSWORD in output
    assert demo.DEMO_CLIENT_ID in output


def test_its_json_output_carries_the_demo_credentials(seeded_demo):
    credentials = seeded_demo.json

    assert credentials["developer"]["email"] == demo.DEMO_EMAIL
    assert credentials["developer"]["password"] == demo.DEMO_PASSWORD
    assert credentials["application"]["client_id"] == str(Application.objects.get(team__name=demo.DEMO_TEAM).client_id)
    assert credentials["application"]["client_secret"]
    assert credentials["application"]["redirect_uri"] == demo.demo_redirect_uri()
    assert credentials["login_url"].endswith(reverse("account_login"))
    assert credentials["staff"] == {"email": demo.DEMO_STAFF_EMAIL, "password": demo.DEMO_STAFF_PASSWORD}
    assert credentials["owner"] == {
        "email": vehicles_demo.DEMO_OWNER_EMAIL,
        "password": vehicles_demo.DEMO_OWNER_PASSWORD,
        "make": "TESLA",
    }


def test_the_printed_client_secret_and_management_token_verify(seeded_demo):
    credentials = seeded_demo.json

    application = verify_client_credentials(
        client_id=credentials["application"]["client_id"], client_secret=credentials["application"]["client_secret"]
    )
    assert application == Application.objects.get(team__name=demo.DEMO_TEAM)
    assert (
        verify_client_credentials(client_id=credentials["application"]["client_id"], client_secret="sk_wrong") is None
    )
    assert application_for_management_token(credentials["application"]["management_token"]) == application


def test_the_demo_developer_logs_in_through_the_login_form_and_sees_the_demo_app(client, seeded_demo):
    credentials = seeded_demo.json

    response = client.post(
        reverse("account_login"),
        {"login": credentials["developer"]["email"], "password": credentials["developer"]["password"]},
    )

    assert response["Location"] == reverse("overview")
    assert get_user(client).email == demo.DEMO_EMAIL
    overview = client.get(reverse("overview"))
    assert overview.status_code == 200
    assert demo.DEMO_APPLICATION in overview.content.decode()


def test_reseeding_restores_a_changed_demo_password(client):
    user = User.objects.get(email=demo.DEMO_EMAIL)
    user.set_password("someone-changed-it-1")
    user.save()

    credentials = seed_json()

    response = client.post(
        reverse("account_login"),
        {"login": credentials["developer"]["email"], "password": credentials["developer"]["password"]},
    )
    assert response["Location"] == reverse("overview")


def test_reseeding_after_a_secret_rotation_prints_a_client_secret_that_verifies():
    owner = Membership.objects.get(team__name=demo.DEMO_TEAM)
    rotate_client_secret(actor=owner, application=Application.objects.get(team=owner.team), grace_hours=0)

    credentials = seed_json()

    assert verify_client_credentials(
        client_id=credentials["application"]["client_id"], client_secret=credentials["application"]["client_secret"]
    )


def test_the_demo_driver_signs_in_at_the_brand_and_has_vehicles():  # seeded twice: plain, then --json
    owner = simulator.authenticate_owner(
        make="TESLA", email=vehicles_demo.DEMO_OWNER_EMAIL, password=vehicles_demo.DEMO_OWNER_PASSWORD, mode="live"
    )
    assert owner is not None
    assert owner.team.name == demo.DEMO_TEAM
    assert sorted(owner.vehicles.values_list("model", flat=True)) == ["Model 3", "Model Y"]


def test_the_demo_staff_user_is_staff_with_a_verified_email():
    staff = User.objects.get(email=demo.DEMO_STAFF_EMAIL)
    assert staff.is_staff and staff.is_superuser
    assert EmailAddress.objects.get(user=staff).verified is True


def test_the_demo_team_has_three_weeks_of_real_usage_and_connected_vehicles_once():
    from billing.lifecycle import current_period
    from billing.models import UsageDaily, UsageEvent
    from vehicles.models import Connection

    team = Team.objects.get(name=demo.DEMO_TEAM, memberships__user__email=demo.DEMO_EMAIL)
    period = current_period(team.pk)
    first = (period.requests_used, UsageDaily.objects.filter(period=period).count())

    seed()

    period.refresh_from_db()
    assert (period.requests_used, UsageDaily.objects.filter(period=period).count()) == first
    assert 0 < period.requests_used < 80  # some history, below Free's 80% alert
    assert period.requests_used == UsageEvent.objects.filter(period=period).count()
    assert (period.end - period.start).days >= 28 and UsageDaily.objects.filter(period=period).dates("day", "day")
    assert UsageDaily.objects.filter(period=period).values("day").distinct().count() >= 15
    assert Connection.objects.filter(application__client_id=demo.DEMO_CLIENT_ID, revoked_at__isnull=True).count() == 2


def test_the_demo_teams_logs_tab_shows_its_requests_with_two_refusals_once(client):
    from django.db.models import Sum

    from billing.models import UsageDaily, UsageEvent
    from requestlog.models import ApiRequest

    team = Team.objects.get(name=demo.DEMO_TEAM, memberships__user__email=demo.DEMO_EMAIL)
    log = ApiRequest.objects.filter(team=team)
    billable = UsageEvent.objects.filter(period__team=team).count()
    free = UsageDaily.objects.filter(period__team=team).aggregate(n=Sum("non_billable"))["n"]
    assert log.filter(billable=True, status=200).count() == billable > 0
    assert log.filter(billable=False, status=200).count() == free > 0
    assert sorted(log.filter(status__gte=400).values_list("status", "error_code")) == [(403, ""), (429, "VEHICLE")]
    seed()
    assert log.count() == billable + free + 2  # reseeding adds nothing
    owner = Membership.objects.get(team=team, user__email=demo.DEMO_EMAIL)
    client.force_login(owner.user)
    session = client.session
    session["current_team_id"] = team.pk
    session.save()
    page = client.get(reverse("log_list"))
    assert page.status_code == 200 and len(page.context["rows"]) == 50  # a full first page
