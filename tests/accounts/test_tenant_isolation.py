"""Every dashboard URL that takes an id answers 404 for another team's object, and changes nothing of it.

The URLs are found by walking the resolver, not listed by hand, so a new URL is covered the day
it is added; one with an id this walk does not know how to fill fails the suite until it is added here.
"""

import itertools
import uuid

import pytest
from django.urls import URLResolver, get_resolver, reverse
from django.utils import timezone

from accounts import applications, personal_tokens, selectors, teams
from accounts.models import (
    Application,
    AuditEvent,
    ClientSecret,
    Invitation,
    ManagementToken,
    Membership,
    RedirectURI,
    Team,
)
from accounts.roles import Role
from billing import lifecycle
from billing.models import Invoice
from requestlog import services as requestlog
from support import services as support
from tests.conftest import login_as
from tests.factories import MembershipFactory, UserFactory
from vehicles.models import Connection, Grant, SimulatedOwner, SimulatedVehicle

pytestmark = pytest.mark.django_db

# Included URLconfs that are not team-scoped, with why.
SKIPPED_INCLUDES = {
    "admin": "the Django admin: staff only, behind its own permission and MFA checks",
    "allauth.urls": "allauth's account pages: about the signed-in user, no team ids",
    "vehicles.api.urls": "the vehicle API: scoped by bearer token to one grant (tests/vehicles/test_api_*)",
    "vehicles.connect.urls": "Connect: scoped by the application's client_id, for drivers, not team members",
}
# Named URLs whose parameters are not team-owned ids, with why.
NOT_ID_SCOPED = {
    "invitation": "its token is the credential from the emailed link, for someone not yet in the team",
}
# Every id-like URL parameter, and how to name the object of the same kind in team A and team B.
KNOWN_KWARGS = {
    "membership_id",
    "invitation_id",
    "client_id",
    "redirect_uri_id",
    "connection_id",
    "token_id",
    "invoice_id",  # the invoice's public UUID
    "ticket_id",
    "request_id",  # a logged API request's SC-Request-Id
}
# A sanity check on the walk itself: it must reach at least these.
EXPECTED_AMONG_WALKED = {
    "application_detail",
    "application_delete",
    "application_rotate_secret",
    "application_rotate_management_token",
    "application_editors",
    "redirect_uri_add",
    "redirect_uri_remove",
    "redirect_uri_default",
    "invitation_resend",
    "invitation_revoke",
    "member_role",
    "member_remove",
    "vehicle_disconnect",
    "personal_token_revoke",
    "billing_invoice",
    "billing_invoice_pdf",
    "support_ticket",
    "log_detail",
}
MISSING = {
    "membership_id": 987654,
    "invitation_id": 987654,
    "client_id": uuid.uuid4(),
    "redirect_uri_id": 987654,
    "connection_id": 987654,
    "token_id": 987654,
    "invoice_id": uuid.uuid4(),
    "ticket_id": 987654,
    "request_id": str(uuid.uuid4()),
}
# Everything any form might want, so that an unscoped view would act rather than stop at validation.
POST_DATA = {
    "name": "Hijacked",
    "confirm_name": "Rival Secret Project",
    "grace_hours": "0",
    "uri": "https://attacker.example/callback",
    "role": Role.VIEWER,
    "email": "attacker@example.com",
    "decision": "accept",
}


def _skipped(resolver: URLResolver) -> bool:
    module = getattr(resolver.urlconf_module, "__name__", "")
    return resolver.app_name in SKIPPED_INCLUDES or module in SKIPPED_INCLUDES


def walk(patterns=None, prefix="", namespace="", kwargs=frozenset()):
    """(route, url name, parameter names) of every URL pattern outside the skipped includes."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(entry.pattern)
        names = kwargs | set(entry.pattern.regex.groupindex)
        if isinstance(entry, URLResolver):
            if not _skipped(entry):
                ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
                yield from walk(entry.url_patterns, route, ns, frozenset(names))
        else:
            yield route, f"{namespace}{entry.name}" if entry.name else None, frozenset(names)


def id_scoped_urls():
    return [(route, name, kwargs) for route, name, kwargs in walk() if kwargs and name not in NOT_ID_SCOPED]


@pytest.fixture
def team_b(other_team):
    """Rival Motors with one of everything a dashboard URL can point at."""
    owner = Membership.objects.get(team=other_team, role=Role.OWNER)
    viewer = MembershipFactory(team=other_team, role=Role.VIEWER, user=UserFactory(email="rival-viewer@example.com"))
    editor = MembershipFactory(team=other_team, role=Role.EDITOR, user=UserFactory(email="rival-editor@example.com"))
    application, credentials = applications.create_application(actor=owner, name="Rival Secret Project")
    one = applications.add_redirect_uri(actor=owner, application=application, uri="https://rival.example/one")
    two = applications.add_redirect_uri(actor=owner, application=application, uri="https://rival.example/two")
    applications.set_application_editors(actor=owner, application=application, user_ids=[editor.user_id])
    invitation, _ = teams.invite_member(actor=owner, email="rival-invitee@example.com", role=Role.ADMIN)
    connection = connect_a_vehicle(application, "RIVAL")
    token, _ = personal_tokens.create_personal_token(actor=owner, name="Rival token", expires_in_days=None)
    return {
        "team": other_team,
        "application": application,
        "credentials": credentials,
        "emails": ["rival-viewer@example.com", "rival-editor@example.com", "rival-invitee@example.com"],
        "ids": {
            "membership_id": viewer.pk,
            "invitation_id": invitation.pk,
            "client_id": application.client_id,
            # The default one: removing it would also move the default, so any leak shows twice.
            "redirect_uri_id": one.pk,
            "connection_id": connection.pk,
            "token_id": token.pk,
            "invoice_id": issue_an_invoice(other_team).public_id,
            "ticket_id": support.open_ticket(owner, "email", "Rival's secret", "Our roadmap").pk,
            "request_id": log_a_request(other_team, application, connection),
        },
        "other_redirect_uri": two,
    }


@pytest.fixture
def team_a(team, owner, make_member):
    """Acme Mobility, its Owner, and an object of each kind (for URLs that mix two ids)."""
    owner_membership = Membership.objects.get(team=team, user=owner)
    viewer = make_member(Role.VIEWER)
    application, _ = applications.create_application(actor=owner_membership, name="Acme Own App")
    redirect_uri = applications.add_redirect_uri(
        actor=owner_membership, application=application, uri="https://a.example/cb"
    )
    invitation, _ = teams.invite_member(actor=owner_membership, email="acme-invitee@example.com", role=Role.VIEWER)
    connection = connect_a_vehicle(application, "ACME")
    token, _ = personal_tokens.create_personal_token(actor=owner_membership, name="Acme token", expires_in_days=None)
    return {
        "owner": owner_membership,
        "ids": {
            "membership_id": viewer.pk,
            "invitation_id": invitation.pk,
            "client_id": application.client_id,
            "redirect_uri_id": redirect_uri.pk,
            "connection_id": connection.pk,
            "token_id": token.pk,
            "invoice_id": issue_an_invoice(team).public_id,
            "ticket_id": support.open_ticket(owner_membership, "email", "Acme question", "Hello").pk,
            "request_id": log_a_request(team, application, connection),
        },
    }


def log_a_request(team, application: Application, connection: Connection) -> str:
    """A request of the team's in its request log (the Logs tab's detail page is /logs/<its SC-Request-Id>/)."""
    request_id = str(uuid.uuid4())
    requestlog.record(
        team_id=team.pk,
        occurred_at=timezone.now(),
        request_id=request_id,
        application_id=application.pk,
        vehicle_id=connection.vehicle_id,
        method="GET",
        endpoint="/vehicles/{id}/odometer",
        path=f"/v2.0/vehicles/{connection.vehicle.public_id}/odometer",
        status=200,
        price_cents=15,
    )
    return request_id


def connect_a_vehicle(application: Application, label: str) -> Connection:
    owner = SimulatedOwner.objects.create(make="FORD", email=f"{label.lower()}@ford.example", password="!")
    vehicle = SimulatedVehicle.objects.create(
        owner=owner, make="FORD", model="Mustang Mach-E", year=2023, vin=f"{label:0<9}12345678"[:17],
        engine="BEV", seed=7, created_at=timezone.now(),
    )  # fmt: skip
    grant = Grant.objects.create(application=application, owner=owner, scopes=["read_odometer"])
    return Connection.objects.create(grant=grant, application=application, vehicle=vehicle)


def issue_an_invoice(team: Team) -> Invoice:
    """A $0 invoice for the team's current period (its rows only: closing is tested in tests/billing)."""
    period = lifecycle.current_period(team.pk)
    return Invoice.objects.create(
        team=team,
        period=period,
        number=f"INV-TEST-{team.pk:06d}",
        subtotal_cents=0,
        total_cents=0,
        issued_at=timezone.now(),
        status=Invoice.Status.PAID,
        paid_at=timezone.now(),
    )


def snapshot(team: Team) -> dict:
    """Everything of a team that a leaking view could change."""
    apps = Application.objects.filter(team=team)
    return {
        "team": list(Team.objects.filter(pk=team.pk).values_list("name", "created_by")),
        "memberships": list(Membership.objects.filter(team=team).order_by("id").values_list("id", "user", "role")),
        "invitations": list(
            Invitation.objects.filter(team=team)
            .order_by("id")
            .values_list("id", "email", "role", "status", "token_hash", "expires_at", "responded_at")
        ),
        "applications": list(apps.order_by("id").values_list("id", "name", "client_id")),
        "editors": list(Application.editors.through.objects.filter(application__in=apps).values_list("user_id")),
        "redirect_uris": list(
            RedirectURI.objects.filter(application__in=apps).order_by("id").values_list("id", "uri", "is_default")
        ),
        "client_secrets": list(
            ClientSecret.objects.filter(application__in=apps).order_by("id").values_list("secret_hash", "expires_at")
        ),
        "management_tokens": list(ManagementToken.objects.filter(application__in=apps).values_list("token_hash")),
        "audit_events": list(AuditEvent.objects.filter(team=team).order_by("id").values_list("id", "action")),
        "connections": list(
            Connection.objects.filter(application__in=apps).order_by("id").values_list("id", "revoked_at")
        ),
    }


def as_team_a_owner(client, team_a, team_b, scenario):
    if scenario == "also an Owner of team B":
        MembershipFactory(team=team_b["team"], user=team_a["owner"].user, role=Role.OWNER)
    login_as(client, team_a["owner"])
    return client


SCENARIOS = ["not in team B", "also an Owner of team B"]


def test_every_id_in_a_dashboard_url_is_one_the_walk_knows(db):
    urls = id_scoped_urls()

    unnamed = sorted(route for route, name, _ in walk() if name is None)
    unknown = sorted(
        f"{route} ({', '.join(sorted(kwargs - KNOWN_KWARGS))})" for route, _, kwargs in urls if kwargs - KNOWN_KWARGS
    )
    assert not unnamed, f"give these URLs a name so the isolation walk can reverse them: {unnamed}"
    assert not unknown, (
        "these URLs take ids this test does not know; add them to KNOWN_KWARGS and to the team_a/team_b "
        f"fixtures (or, if not team-owned, to NOT_ID_SCOPED with why): {unknown}"
    )
    assert {name for _, name, _ in urls} >= EXPECTED_AMONG_WALKED
    assert set(NOT_ID_SCOPED) <= {name for _, name, _ in walk()}, "a NOT_ID_SCOPED entry no longer exists"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_dashboard_url_answers_404_for_another_teams_ids(client, team_a, team_b, scenario):
    as_team_a_owner(client, team_a, team_b, scenario)
    before = snapshot(team_b["team"])
    urls = [(route, name, kwargs) for route, name, kwargs in id_scoped_urls() if kwargs <= KNOWN_KWARGS]
    leaks = []

    for route, name, kwargs in urls:
        missing_url = reverse(name, kwargs={k: MISSING[k] for k in kwargs})
        not_found_get = client.get(missing_url).status_code
        # Every mix of team B's ids with team A's own: at least one of them belongs to team B.
        for size in range(1, len(kwargs) + 1):
            for foreign in itertools.combinations(sorted(kwargs), size):
                values = {k: (team_b if k in foreign else team_a)["ids"][k] for k in kwargs}
                url = reverse(name, kwargs=values)
                got_get, got_post = client.get(url).status_code, client.post(url, POST_DATA).status_code
                # A POST-only view may answer a GET with 405, but then exactly as for an id that does not exist.
                if got_get not in (404, 405) or got_get != not_found_get or got_post != 404:
                    leaks.append(f"{route} with team B's {foreign}: GET {got_get}, POST {got_post}")

    assert not leaks, "\n".join(leaks)
    assert snapshot(team_b["team"]) == before
    application = team_b["application"]
    credentials = team_b["credentials"]
    assert selectors.verify_client_credentials(client_id=application.client_id, client_secret=credentials.client_secret)
    assert selectors.application_for_management_token(credentials.management_token) == application
    assert client.session["current_team_id"] == team_a["owner"].team_id


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("url_name", ["overview", "application_list", "team"])
def test_team_pages_never_show_another_teams_objects(client, team_a, team_b, scenario, url_name):
    as_team_a_owner(client, team_a, team_b, scenario)

    response = client.get(reverse(url_name))

    assert response.status_code == 200
    html = response.content.decode()
    application = team_b["application"]
    own_markers = {"overview": "Acme Own App", "application_list": "Acme Own App", "team": "acme-invitee@example.com"}
    assert own_markers[url_name] in html
    for secret_of_b in [
        application.name,
        str(application.client_id),
        "https://rival.example/",
        *team_b["emails"],
    ]:
        assert secret_of_b not in html
    team_b_members = set(Membership.objects.filter(team=team_b["team"]).values_list("user__email", flat=True))
    if scenario == "not in team B":
        assert "Rival Motors" not in html
        for email in team_b_members:
            assert email not in html


def test_team_a_selectors_never_return_team_b_rows(team_a, team_b):
    team = team_a["owner"].team

    assert {a.team_id for a in selectors.team_applications(team)} == {team.pk}
    assert {m.team_id for m in selectors.team_members(team)} == {team.pk}
    assert {i.team_id for i in selectors.pending_invitations(team)} == {team.pk}
    assert {e.team_id for e in selectors.recent_audit_events(team)} == {team.pk}
