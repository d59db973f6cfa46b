"""Applications: credentials shown once and stored as peppered HMACs, rotation, redirect URIs, who may change what."""

import hashlib
import hmac
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils.html import escape

from accounts import applications, selectors
from accounts.exceptions import TeamRuleError
from accounts.models import Application, AuditEvent, ClientSecret, ManagementToken, Membership
from accounts.roles import Role
from accounts.validators import validate_redirect_uri
from tests.conftest import login_as
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
verify = selectors.verify_client_credentials


@pytest.fixture
def owner_membership(team, owner):
    return Membership.objects.get(team=team, user=owner)


@pytest.fixture
def app(owner_membership):
    """An application of Acme Mobility with its first credentials (plaintext kept for the test)."""
    application, credentials = applications.create_application(actor=owner_membership, name="Fleet Tracker")
    application.secret = credentials.client_secret
    application.token = credentials.management_token
    return application


def shown(response, element_id: str) -> str | None:
    match = re.search(rf'id="{element_id}">([^<]*)<', response.content.decode())
    return match.group(1) if match else None


def page(response) -> str:
    return response.content.decode()


def audit_actions(team) -> list[str]:
    return list(AuditEvent.objects.filter(team=team).order_by("id").values_list("action", flat=True))


def uris(application) -> list[tuple[str, bool]]:
    return list(application.redirect_uris.order_by("id").values_list("uri", "is_default"))


# Creating and showing credentials once -----------------------------------------------------------


def test_it_shows_the_credentials_once_when_an_application_is_created(client, owner_membership):
    login_as(client, owner_membership)

    response = client.post(reverse("application_create"), {"name": "  Fleet Tracker "})

    assert response.status_code == 200
    application = Application.objects.get(team=owner_membership.team)
    assert application.name == "Fleet Tracker"
    assert shown(response, "client-id") == str(application.client_id)
    secret, token = shown(response, "client-secret"), shown(response, "management-token")
    assert secret.startswith("sk_") and len(secret) > 40
    assert token.startswith("amt_") and len(token) > 40
    assert response["Cache-Control"] == "no-store"
    assert verify(client_id=application.client_id, client_secret=secret) == application
    assert selectors.application_for_management_token(token) == application
    for url in [reverse("application_detail", args=[application.client_id]), reverse("application_list")]:
        later = client.get(url)
        assert later.status_code == 200
        assert str(application.client_id) in page(later)
        assert secret not in page(later)
        assert token not in page(later)
    assert f"••••{secret[-4:]}" in page(client.get(reverse("application_detail", args=[application.client_id])))
    assert audit_actions(owner_membership.team) == ["application.created"]


def test_it_asks_for_a_name_inline(client, owner_membership):
    login_as(client, owner_membership)

    response = client.post(reverse("application_create"), {"name": "   "})

    assert response.status_code == 400
    assert 'id="id_name_error">Enter a name for the application.<' in page(response)
    assert not Application.objects.exists()


def test_it_stores_only_peppered_hmacs_of_the_credentials(owner_membership, settings):
    settings.CREDENTIAL_PEPPER = "pepper-for-this-test-only"

    application, new = applications.create_application(actor=owner_membership, name="Fleet Tracker")

    pepper = b"pepper-for-this-test-only"
    stored_secret = ClientSecret.objects.get(application=application)
    stored_token = ManagementToken.objects.get(application=application)
    assert stored_secret.secret_hash == hmac.new(pepper, new.client_secret.encode(), hashlib.sha256).hexdigest()
    assert stored_token.token_hash == hmac.new(pepper, new.management_token.encode(), hashlib.sha256).hexdigest()
    assert stored_secret.secret_hash != hashlib.sha256(new.client_secret.encode()).hexdigest()
    rows = repr(
        [
            *ClientSecret.objects.values(),
            *ManagementToken.objects.values(),
            *AuditEvent.objects.values(),
            *Application.objects.values(),
        ]
    )
    for plaintext in [new.client_secret, new.management_token]:
        assert plaintext not in rows
        assert plaintext[4:-4] not in rows
    # A different pepper (a stolen database without it) makes the stored hashes useless.
    settings.CREDENTIAL_PEPPER = "another-pepper"
    assert verify(client_id=application.client_id, client_secret=new.client_secret) is None


# Verifying client credentials --------------------------------------------------------------------


def test_it_accepts_the_right_client_secret(app):
    assert verify(client_id=app.client_id, client_secret=app.secret) == app
    assert verify(client_id=str(app.client_id), client_secret=app.secret) == app


@pytest.mark.parametrize(
    "make_attempt",
    [
        pytest.param(lambda app, other: (app.client_id, app.secret + "x"), id="wrong secret"),
        pytest.param(lambda app, other: (app.client_id, app.secret[:-1]), id="truncated secret"),
        pytest.param(lambda app, other: (app.client_id, ""), id="empty secret"),
        pytest.param(lambda app, other: (app.client_id, None), id="no secret"),
        pytest.param(lambda app, other: (app.client_id, other.secret), id="another app's secret"),
        pytest.param(lambda app, other: (other.client_id, app.secret), id="secret on another app's id"),
        pytest.param(lambda app, other: (app.client_id, app.token), id="management token as secret"),
        pytest.param(lambda app, other: (uuid.uuid4(), app.secret), id="unknown client id"),
        pytest.param(lambda app, other: ("not-a-uuid", app.secret), id="invalid client id"),
        pytest.param(lambda app, other: ("", app.secret), id="empty client id"),
        pytest.param(lambda app, other: (None, app.secret), id="no client id"),
    ],
)
def test_it_rejects_every_other_credential(app, owner_membership, make_attempt):
    other, new = applications.create_application(actor=owner_membership, name="Other App")
    other.secret = new.client_secret
    client_id, secret = make_attempt(app, other)

    assert verify(client_id=client_id, client_secret=secret) is None


# Rotating the client secret ----------------------------------------------------------------------


def test_it_ends_the_old_secret_at_once_when_rotated_without_grace(client, owner_membership, app):
    login_as(client, owner_membership)

    response = client.post(reverse("application_rotate_secret", args=[app.client_id]), {"grace_hours": "0"})

    assert response.status_code == 200
    new_secret = shown(response, "client-secret")
    assert new_secret and new_secret != app.secret
    assert shown(response, "management-token") is None
    assert verify(client_id=app.client_id, client_secret=app.secret) is None
    assert verify(client_id=app.client_id, client_secret=new_secret) == app
    assert new_secret not in page(client.get(reverse("application_detail", args=[app.client_id])))
    assert audit_actions(owner_membership.team)[-1] == "application.client_secret_rotated"
    assert AuditEvent.objects.filter(team=app.team).first().data == {"grace_hours": 0}


def test_it_keeps_the_old_secret_working_through_a_24_hour_grace_period(owner_membership, time_machine):
    time_machine.move_to(START, tick=False)
    application, first = applications.create_application(actor=owner_membership, name="Fleet Tracker")

    second = applications.rotate_client_secret(actor=owner_membership, application=application, grace_hours=24)

    for secret in [first.client_secret, second.client_secret]:
        assert verify(client_id=application.client_id, client_secret=secret) == application
    time_machine.shift(timedelta(hours=24) - timedelta(seconds=1))
    assert verify(client_id=application.client_id, client_secret=first.client_secret) == application
    time_machine.shift(timedelta(seconds=2))
    assert verify(client_id=application.client_id, client_secret=first.client_secret) is None
    assert verify(client_id=application.client_id, client_secret=second.client_secret) == application


def test_it_lists_the_old_secret_with_its_end_during_the_grace_period(client, owner_membership, app, time_machine):
    time_machine.move_to(START, tick=False)
    applications.rotate_client_secret(actor=owner_membership, application=app, grace_hours=24)
    login_as(client, owner_membership)

    html = page(client.get(reverse("application_detail", args=[app.client_id])))

    assert f"••••{app.secret[-4:]}" in html
    assert "stops working 2025-03-04 09:00 UTC" in html


@pytest.mark.parametrize("grace_hours", [2, -1, 10_000])
def test_it_refuses_a_grace_period_it_does_not_offer(client, owner_membership, app, grace_hours):
    with pytest.raises(TeamRuleError, match="Choose one of the offered grace periods."):
        applications.rotate_client_secret(actor=owner_membership, application=app, grace_hours=grace_hours)
    login_as(client, owner_membership)

    response = client.post(
        reverse("application_rotate_secret", args=[app.client_id]), {"grace_hours": str(grace_hours)}, follow=True
    )

    assert "Choose how long the old secret stays valid." in page(response)
    assert list(ClientSecret.objects.values_list("expires_at", flat=True)) == [None]
    assert verify(client_id=app.client_id, client_secret=app.secret) == app
    assert audit_actions(owner_membership.team) == ["application.created"]


# Management token, rename, delete ----------------------------------------------------------------


def test_it_replaces_the_management_token_at_once(client, owner_membership, app):
    login_as(client, owner_membership)

    response = client.post(reverse("application_rotate_management_token", args=[app.client_id]))

    new_token = shown(response, "management-token")
    assert new_token and new_token != app.token
    assert shown(response, "client-secret") is None
    assert selectors.application_for_management_token(app.token) is None
    assert selectors.application_for_management_token(new_token) == app
    assert selectors.application_for_management_token("") is None
    assert verify(client_id=app.client_id, client_secret=app.secret) == app
    assert new_token not in page(client.get(reverse("application_detail", args=[app.client_id])))
    assert audit_actions(owner_membership.team)[-1] == "application.management_token_rotated"


def test_it_renames_an_application(client, owner_membership, app):
    login_as(client, owner_membership)

    blank = client.post(reverse("application_rename", args=[app.client_id]), {"name": " "})
    assert blank.status_code == 400
    assert 'id="id_name_error">Enter a name for the application.<' in page(blank)

    response = client.post(reverse("application_rename", args=[app.client_id]), {"name": "Fleet Pro"}, follow=True)

    assert "Application renamed." in page(response)
    app.refresh_from_db()
    assert app.name == "Fleet Pro"
    event = AuditEvent.objects.filter(team=app.team).first()
    assert (event.action, event.target, event.data) == ("application.renamed", "Fleet Pro", {"before": "Fleet Tracker"})


def test_it_deletes_an_application_only_when_its_name_is_typed(client, owner_membership, app):
    login_as(client, owner_membership)
    url = reverse("application_delete", args=[app.client_id])

    for wrong in ["", "fleet tracker", "Fleet"]:
        response = client.post(url, {"confirm_name": wrong}, follow=True)
        assert "Type the application&#x27;s name exactly to delete it." in page(response)
    assert Application.objects.filter(pk=app.pk).exists()

    response = client.post(url, {"confirm_name": "Fleet Tracker"}, follow=True)

    assert response.redirect_chain == [(reverse("application_list"), 302)]
    assert "Deleted Fleet Tracker. Its credentials no longer work." in page(response)
    assert not Application.objects.filter(pk=app.pk).exists()
    assert not ClientSecret.objects.exists() and not ManagementToken.objects.exists()
    assert verify(client_id=app.client_id, client_secret=app.secret) is None
    assert selectors.application_for_management_token(app.token) is None
    assert client.get(reverse("application_detail", args=[app.client_id])).status_code == 404
    assert audit_actions(owner_membership.team) == ["application.created", "application.deleted"]


# Redirect URIs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "https://example.com/callback",
        "https://example.com/callback?source=connect",
        "HTTPS://Example.com/cb",
        "http://localhost:8000/callback",
        "http://localhost/callback",
        "http://127.0.0.1:5000/callback",
        "http://[::1]:3000/callback",
        "sc{client_id}://callback",
        "sc{client_id}://exchange/code",
    ],
)
def test_it_accepts_a_redirect_uri(client, owner_membership, app, uri):
    uri = uri.format(client_id=app.client_id)
    login_as(client, owner_membership)

    response = client.post(reverse("redirect_uri_add", args=[app.client_id]), {"uri": f"  {uri} "}, follow=True)

    assert response.redirect_chain == [(reverse("application_detail", args=[app.client_id]), 302)]
    assert "Redirect URI added." in page(response)
    assert uris(app) == [(uri, True)]
    assert audit_actions(owner_membership.team)[-1] == "application.redirect_uri_added"


PLAIN_HTTP = "Plain http:// is only allowed for localhost; use https://."
WRONG_SCHEME = "Use https://, http://localhost for testing, or this app's custom scheme sc{client_id}://."


@pytest.mark.parametrize(
    "uri, error",
    [
        ("http://example.com/callback", PLAIN_HTTP),
        ("http://localhost.example.com/callback", PLAIN_HTTP),
        ("http://127.0.0.1@example.com/callback", PLAIN_HTTP),
        ("http://192.168.1.20/callback", PLAIN_HTTP),
        ("myapp://callback", WRONG_SCHEME),
        ("sc00000000-0000-0000-0000-000000000000://callback", WRONG_SCHEME),
        ("javascript:alert(1)", WRONG_SCHEME),
        ("example.com/callback", WRONG_SCHEME),
        ("https://example.com/callback#done", "Redirect URIs cannot contain a fragment (#...)."),
        ("https://example.com/callback#", "Redirect URIs cannot contain a fragment (#...)."),
        ("sc{client_id}://callback#x", "Redirect URIs cannot contain a fragment (#...)."),
        ("https:///callback", "Enter a full https:// URL with a host name."),
        ("https://exa mple.com/", "Redirect URIs cannot contain spaces."),
    ],
)
def test_it_refuses_a_redirect_uri_with_an_inline_error(client, owner_membership, app, uri, error):
    uri, error = uri.format(client_id=app.client_id), error.format(client_id=app.client_id)
    login_as(client, owner_membership)

    response = client.post(reverse("redirect_uri_add", args=[app.client_id]), {"uri": uri})

    assert response.status_code == 400
    assert f'id="id_uri_error">{escape(error)}<' in page(response)
    assert uris(app) == []
    with pytest.raises(ValidationError):
        applications.add_redirect_uri(actor=owner_membership, application=app, uri=uri)
    assert audit_actions(owner_membership.team) == ["application.created"]


def test_it_refuses_a_custom_scheme_of_another_application(owner_membership, app, other_team):
    other = Application.objects.create(team=other_team, name="Rival App")

    with pytest.raises(ValidationError):
        validate_redirect_uri(f"sc{other.client_id}://callback", client_id=app.client_id)
    assert validate_redirect_uri(f"sc{app.client_id}://callback", client_id=app.client_id)


def test_it_refuses_a_duplicate_redirect_uri_with_an_inline_error(client, owner_membership, app):
    applications.add_redirect_uri(actor=owner_membership, application=app, uri="https://example.com/cb")
    login_as(client, owner_membership)

    response = client.post(reverse("redirect_uri_add", args=[app.client_id]), {"uri": " https://example.com/cb"})

    assert response.status_code == 400
    assert 'id="id_uri_error">This redirect URI is already registered.<' in page(response)
    assert uris(app) == [("https://example.com/cb", True)]


def test_it_makes_the_first_redirect_uri_the_default(owner_membership, app):
    applications.add_redirect_uri(actor=owner_membership, application=app, uri="https://example.com/one")
    applications.add_redirect_uri(actor=owner_membership, application=app, uri="https://example.com/two")

    assert uris(app) == [("https://example.com/one", True), ("https://example.com/two", False)]


def test_it_moves_the_default_to_the_chosen_redirect_uri(client, owner_membership, app):
    applications.add_redirect_uri(actor=owner_membership, application=app, uri="https://example.com/one")
    two = applications.add_redirect_uri(actor=owner_membership, application=app, uri="https://example.com/two")
    login_as(client, owner_membership)

    response = client.post(reverse("redirect_uri_default", args=[app.client_id, two.pk]), follow=True)

    assert "Default redirect URI changed." in page(response)
    assert uris(app) == [("https://example.com/one", False), ("https://example.com/two", True)]
    assert audit_actions(owner_membership.team)[-1] == "application.redirect_uri_default"


def test_it_promotes_the_oldest_remaining_uri_when_the_default_is_removed(client, owner_membership, app, time_machine):
    time_machine.move_to(START, tick=False)
    created = []
    for name in ["one", "two", "three", "four"]:
        created.append(
            applications.add_redirect_uri(actor=owner_membership, application=app, uri=f"https://example.com/{name}")
        )
        time_machine.shift(timedelta(minutes=5))
    applications.set_default_redirect_uri(actor=owner_membership, application=app, redirect_uri_id=created[2].pk)
    applications.remove_redirect_uri(actor=owner_membership, application=app, redirect_uri_id=created[0].pk)
    login_as(client, owner_membership)

    response = client.post(reverse("redirect_uri_remove", args=[app.client_id, created[2].pk]), follow=True)

    assert "Redirect URI removed." in page(response)
    assert uris(app) == [("https://example.com/two", True), ("https://example.com/four", False)]
    assert audit_actions(owner_membership.team)[-1] == "application.redirect_uri_removed"


def test_it_keeps_the_default_when_another_uri_is_removed(owner_membership, app):
    applications.add_redirect_uri(actor=owner_membership, application=app, uri="https://example.com/one")
    two = applications.add_redirect_uri(actor=owner_membership, application=app, uri="https://example.com/two")

    applications.remove_redirect_uri(actor=owner_membership, application=app, redirect_uri_id=two.pk)

    assert uris(app) == [("https://example.com/one", True)]


def test_it_answers_404_for_a_redirect_uri_of_another_application_of_the_team(client, owner_membership, app):
    sibling, _ = applications.create_application(actor=owner_membership, name="Sibling")
    theirs = applications.add_redirect_uri(actor=owner_membership, application=sibling, uri="https://example.com/s")
    login_as(client, owner_membership)

    assert client.post(reverse("redirect_uri_remove", args=[app.client_id, theirs.pk])).status_code == 404
    assert client.post(reverse("redirect_uri_default", args=[app.client_id, theirs.pk])).status_code == 404
    assert uris(sibling) == [("https://example.com/s", True)]


# Who may do what ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_it_lets_owners_and_admins_create_and_delete_applications(client, make_member, role):
    member = make_member(role)
    login_as(client, member)

    client.post(reverse("application_create"), {"name": "Their App"})
    application = Application.objects.get(team=member.team)
    client.post(reverse("application_delete", args=[application.client_id]), {"confirm_name": "Their App"})

    assert not Application.objects.exists()
    assert audit_actions(member.team) == ["application.created", "application.deleted"]


def test_it_forbids_an_editor_to_create_or_delete_applications(client, owner_membership, app, make_member):
    editor = make_member(Role.EDITOR)
    applications.set_application_editors(actor=owner_membership, application=app, user_ids=[editor.user_id])
    login_as(client, editor)

    create = client.post(reverse("application_create"), {"name": "Sneaky"})
    delete = client.post(reverse("application_delete", args=[app.client_id]), {"confirm_name": "Fleet Tracker"})

    assert (create.status_code, delete.status_code) == (403, 403)
    assert list(Application.objects.values_list("name", flat=True)) == ["Fleet Tracker"]
    with pytest.raises(PermissionDenied):
        applications.create_application(actor=editor, name="Sneaky")
    with pytest.raises(PermissionDenied):
        applications.delete_application(actor=editor, application=app)
    assert Application.objects.filter(pk=app.pk).exists()


def test_it_lets_an_editor_change_only_the_applications_assigned_to_them(client, owner_membership, app, make_member):
    editor = make_member(Role.EDITOR)
    other_app, _ = applications.create_application(actor=owner_membership, name="Not Yours")
    login_as(client, owner_membership)
    response = client.post(reverse("application_editors", args=[app.client_id]), {"editors": [editor.user_id]})
    assert response.status_code == 302
    assert list(app.editors.all()) == [editor.user]
    assert audit_actions(owner_membership.team)[-1] == "application.editors_set"
    login_as(client, editor)

    rename_mine = client.post(reverse("application_rename", args=[app.client_id]), {"name": "Mine"})
    add_uri = client.post(reverse("redirect_uri_add", args=[app.client_id]), {"uri": "https://example.com/cb"})
    rename_other = client.post(reverse("application_rename", args=[other_app.client_id]), {"name": "Taken"})
    uri_other = client.post(reverse("redirect_uri_add", args=[other_app.client_id]), {"uri": "https://example.com/x"})
    rotate_other = client.post(reverse("application_rotate_secret", args=[other_app.client_id]), {"grace_hours": "0"})

    assert (rename_mine.status_code, add_uri.status_code) == (302, 302)
    assert (rename_other.status_code, uri_other.status_code, rotate_other.status_code) == (403, 403, 403)
    assert set(Application.objects.values_list("name", flat=True)) == {"Mine", "Not Yours"}
    assert uris(app) == [("https://example.com/cb", True)]
    assert uris(other_app) == []
    assert other_app.client_secrets.get().expires_at is None
    # An Editor cannot hand themselves more applications.
    assign = client.post(reverse("application_editors", args=[other_app.client_id]), {"editors": [editor.user_id]})
    assert assign.status_code == 403
    assert not other_app.editors.exists()


def test_it_takes_away_an_editors_access_when_unassigned(client, owner_membership, app, make_member):
    editor = make_member(Role.EDITOR)
    applications.set_application_editors(actor=owner_membership, application=app, user_ids=[editor.user_id])
    applications.set_application_editors(actor=owner_membership, application=app, user_ids=[])
    login_as(client, editor)

    assert client.post(reverse("application_rename", args=[app.client_id]), {"name": "Mine"}).status_code == 403


def test_it_assigns_only_editors_of_the_team(owner_membership, app, make_member, other_team):
    viewer = make_member(Role.VIEWER)
    outsider = MembershipFactory(team=other_team, role=Role.EDITOR)

    for user_ids in [[viewer.user_id], [outsider.user_id], [owner_membership.user_id]]:
        with pytest.raises(TeamRuleError, match="Only Editors of this team"):
            applications.set_application_editors(actor=owner_membership, application=app, user_ids=user_ids)
    assert not app.editors.exists()


def test_it_lets_a_viewer_see_applications_but_change_nothing(client, owner_membership, app, make_member):
    editor = make_member(Role.EDITOR)
    uri = applications.add_redirect_uri(actor=owner_membership, application=app, uri="https://example.com/one")
    two = applications.add_redirect_uri(actor=owner_membership, application=app, uri="https://example.com/two")
    before = audit_actions(owner_membership.team)
    login_as(client, make_member(Role.VIEWER))

    listing = client.get(reverse("application_list"))
    detail = client.get(reverse("application_detail", args=[app.client_id]))
    assert (listing.status_code, detail.status_code) == (200, 200)
    assert "Fleet Tracker" in page(listing) and "https://example.com/one" in page(detail)
    assert "Create application" not in page(listing)
    assert "Rotate client secret" not in page(detail) and "Delete application" not in page(detail)
    args = [app.client_id]
    attempts = [
        (reverse("application_create"), {"name": "Sneaky"}),
        (reverse("application_rename", args=args), {"name": "Renamed"}),
        (reverse("application_delete", args=args), {"confirm_name": "Fleet Tracker"}),
        (reverse("application_rotate_secret", args=args), {"grace_hours": "0"}),
        (reverse("application_rotate_management_token", args=args), {}),
        (reverse("application_editors", args=args), {"editors": [editor.user_id]}),
        (reverse("redirect_uri_add", args=args), {"uri": "https://example.com/three"}),
        (reverse("redirect_uri_remove", args=[app.client_id, uri.pk]), {}),
        (reverse("redirect_uri_default", args=[app.client_id, two.pk]), {}),
    ]
    for url, data in attempts:
        assert client.post(url, data).status_code == 403, url

    assert list(Application.objects.values_list("name", flat=True)) == ["Fleet Tracker"]
    assert uris(app) == [("https://example.com/one", True), ("https://example.com/two", False)]
    assert verify(client_id=app.client_id, client_secret=app.secret) == app
    assert list(app.client_secrets.values_list("expires_at", flat=True)) == [None]
    assert selectors.application_for_management_token(app.token) == app
    assert not app.editors.exists()
    assert audit_actions(owner_membership.team) == before
