"""Personal access tokens: the settings page (create shown once, list, revoke) and Bearer authentication on /api/v1."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import personal_tokens
from accounts.credentials import hash_secret
from accounts.models import AuditEvent, Membership, PersonalAccessToken, User
from accounts.roles import Role
from accounts.views.tokens import TOKEN_PAGE_SIZE
from tests.conftest import login_as
from tests.factories import MembershipFactory, TeamFactory

pytestmark = pytest.mark.django_db

USAGE = "/api/v1/billing/usage"


@pytest.fixture
def owner_membership(team, owner):
    return Membership.objects.get(team=team, user=owner)


def new_token(membership, name="CI job", days=None) -> str:
    return personal_tokens.create_personal_token(actor=membership, name=name, expires_in_days=days)[1]


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def call(secret, url=USAGE):
    """An API call with the token only: a fresh client, whatever session `client` holds."""
    return Client().get(url, headers=bearer(secret))


def assert_401(response, detail: str):
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": detail}
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


# --- the settings page -------------------------------------------------------------------------------------------


def test_the_page_has_an_empty_state_and_is_linked_from_the_team_page(owner_client):
    html = owner_client.get(reverse("personal_tokens")).content.decode()
    assert "No tokens yet" in html
    assert f'href="{reverse("personal_tokens")}"' in owner_client.get(reverse("team")).content.decode()


def test_the_page_needs_a_signed_in_team_member(client):
    response = client.get(reverse("personal_tokens"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_created_token_is_shown_once_and_only_its_keyed_hash_is_stored(owner_client, owner, team):
    response = owner_client.post(reverse("personal_token_create"), {"name": "Finance sheet", "expires_in": "90"})

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    secret = re.search(r'<code id="personal-token">(igp_[\w-]+)</code>', response.content.decode()).group(1)
    assert len(secret) > 40
    token = PersonalAccessToken.objects.get()
    assert (token.user, token.team, token.name, token.hint) == (owner, team, "Finance sheet", secret[-4:])
    assert token.token_hash == hash_secret(secret)
    stored = PersonalAccessToken.objects.values_list().get()
    assert not any(secret in str(value) for value in stored)
    assert abs(token.expires_at - (timezone.now() + timedelta(days=90))) < timedelta(minutes=1)

    listing = owner_client.get(reverse("personal_tokens")).content.decode()
    assert secret not in listing
    assert "Finance sheet" in listing and f"igp_••••{token.hint}" in listing
    event = AuditEvent.objects.get(action="personal_token.created")
    assert (event.team, event.actor, event.target, event.data["hint"]) == (team, owner, "Finance sheet", token.hint)
    assert secret not in str(event.data)


@pytest.mark.parametrize(("choice", "days"), [("30", 30), ("365", 365), ("never", None)])
def test_each_offered_expiry_is_applied(owner_client, choice, days):
    owner_client.post(reverse("personal_token_create"), {"name": "t", "expires_in": choice})
    expires_at = PersonalAccessToken.objects.get().expires_at
    if days is None:
        assert expires_at is None
    else:
        assert abs(expires_at - (timezone.now() + timedelta(days=days))) < timedelta(minutes=1)


@pytest.mark.parametrize(("data", "error"), [
    ({"name": "  ", "expires_in": "90"}, "Enter a name for the token."),
    ({"name": "x", "expires_in": "7"}, "Select a valid choice."),
    ({"name": "x" * 101, "expires_in": "90"}, "at most 100 characters"),
])  # fmt: skip
def test_an_invalid_form_shows_its_error_and_creates_nothing(owner_client, data, error):
    response = owner_client.post(reverse("personal_token_create"), data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not PersonalAccessToken.objects.exists()


def test_the_list_shows_only_my_live_tokens_in_the_current_team(owner_client, owner_membership, make_member):
    new_token(owner_membership, name="Mine")
    revoked = personal_tokens.create_personal_token(actor=owner_membership, name="Old one", expires_in_days=None)[0]
    personal_tokens.revoke_personal_token(actor=owner_membership, token=revoked)
    new_token(make_member(Role.ADMIN), name="A colleague's")
    elsewhere = MembershipFactory(team=TeamFactory(name="Side project"), user=owner_membership.user)
    new_token(elsewhere, name="Other team's")

    html = owner_client.get(reverse("personal_tokens")).content.decode()

    assert "Mine" in html
    for hidden in ("Old one", "A colleague&#x27;s", "Other team&#x27;s"):
        assert hidden not in html


def test_an_expired_token_is_listed_as_expired(owner_client, owner_membership):
    new_token(owner_membership, name="Short", days=30)
    PersonalAccessToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    html = owner_client.get(reverse("personal_tokens")).content.decode()
    assert "Expired</span>" in html


def test_many_tokens_are_paged(owner_client, owner_membership):
    for n in range(TOKEN_PAGE_SIZE + 2):
        new_token(owner_membership, name=f"token-{n:03d}")
    first = owner_client.get(reverse("personal_tokens")).content.decode()
    assert "Page 1 of 2" in first
    assert f"token-{TOKEN_PAGE_SIZE + 1:03d}" in first and "token-000" not in first  # newest first
    assert "token-000" in owner_client.get(reverse("personal_tokens") + "?page=2").content.decode()


def test_revoking_asks_for_confirmation_then_the_token_stops_working_at_once(owner_client, owner_membership):
    secret = new_token(owner_membership, name="Deploy bot")
    token = PersonalAccessToken.objects.get()
    url = reverse("personal_token_revoke", args=[token.pk])
    assert call(secret).status_code == 200

    confirm = owner_client.get(url)
    assert confirm.status_code == 200 and "Revoke Deploy bot?" in confirm.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is None

    response = owner_client.post(url)

    assert response.status_code == 302 and response["Location"] == reverse("personal_tokens")
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(action="personal_token.revoked", target="Deploy bot").count() == 1
    assert "<td>Deploy bot</td>" not in owner_client.get(reverse("personal_tokens")).content.decode()
    assert_401(call(secret), "This token has been revoked.")
    assert owner_client.post(url).status_code == 404  # revoked: gone from the page, nothing to revoke twice


def test_nobody_else_can_revoke_my_token(client, owner_membership, make_member):
    secret = new_token(owner_membership)
    url = reverse("personal_token_revoke", args=[PersonalAccessToken.objects.get().pk])

    login_as(client, make_member(Role.OWNER))
    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404

    assert PersonalAccessToken.objects.get().revoked_at is None
    client.logout()
    assert call(secret).status_code == 200


# --- Bearer authentication ---------------------------------------------------------------------------------------


def test_a_token_acts_as_its_user_in_its_team_without_a_session(owner_membership):
    secret = new_token(owner_membership)
    response = call(secret)
    assert response.status_code == 200
    assert response.json()["plan"] == "free"
    assert "sessionid" not in response.cookies


def test_a_token_is_found_with_one_query_by_its_hash(owner_membership):
    secret = new_token(owner_membership)
    call(secret)  # sets last_used_at: the next call within a minute writes nothing

    with CaptureQueriesContext(connection) as queries:
        assert call(secret).status_code == 200

    token_queries = [q["sql"] for q in queries.captured_queries if "accounts_personalaccesstoken" in q["sql"]]
    assert len(token_queries) == 1
    assert "token_hash" in token_queries[0] and "UPDATE" not in token_queries[0]


def test_last_used_is_recorded_at_most_once_a_minute(owner_membership):
    secret = new_token(owner_membership)
    token = PersonalAccessToken.objects.get()
    assert token.last_used_at is None
    with time_machine.travel(timezone.now(), tick=False) as clock:
        first = timezone.now()
        call(secret)
        clock.shift(timedelta(seconds=30))
        call(secret)
        token.refresh_from_db()
        assert token.last_used_at == first

        clock.shift(timedelta(seconds=31))
        call(secret)
        token.refresh_from_db()
        assert token.last_used_at == first + timedelta(seconds=61)


def test_an_expired_token_is_refused(owner_membership):
    secret = new_token(owner_membership, days=30)
    with time_machine.travel(timezone.now() + timedelta(days=29, hours=23)):
        assert call(secret).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(days=30, minutes=1)):
        assert_401(call(secret), "This token has expired.")


@pytest.mark.parametrize(("header", "detail"), [
    ("Bearer igp_not-a-real-token", "Invalid token."),
    ("Bearer sk_looks-like-a-client-secret", "Invalid token."),
    ("Bearer", "Malformed Authorization header: expected `Bearer igp_...`."),
    ("Bearer two parts", "Malformed Authorization header: expected `Bearer igp_...`."),
])  # fmt: skip
def test_unknown_or_malformed_tokens_are_refused(client, owner_membership, header, detail):
    new_token(owner_membership)
    assert_401(client.get(USAGE, headers={"Authorization": header}), detail)


def test_a_bad_token_is_refused_even_with_a_valid_session(owner_client):
    assert_401(owner_client.get(USAGE, headers=bearer("igp_wrong")), "Invalid token.")


def test_no_credentials_at_all_is_a_401(client):
    assert_401(client.get(USAGE), "Authentication credentials were not provided.")


def test_a_token_follows_its_users_current_role(owner_membership, make_member):
    make_member(Role.OWNER)  # so the first Owner can be demoted
    secret = new_token(owner_membership)
    assert call(secret).status_code == 200

    Membership.objects.filter(pk=owner_membership.pk).update(role=Role.ADMIN)
    response = call(secret)
    assert response.status_code == 403
    assert response.json() == {"detail": "Only the team's Owners can see its billing (your role: Admin)."}

    Membership.objects.filter(pk=owner_membership.pk).update(role=Role.OWNER)
    assert call(secret).status_code == 200


def test_a_token_of_someone_who_left_the_team_stops_working(owner_membership):
    secret = new_token(owner_membership)
    owner_membership.delete()
    assert_401(call(secret), "This token's user is no longer a member of its team.")


def test_a_token_of_a_disabled_account_stops_working(owner_membership):
    secret = new_token(owner_membership)
    User.objects.filter(pk=owner_membership.user_id).update(is_active=False)
    assert_401(call(secret), "This token's user account is disabled.")


def test_a_token_is_bound_to_its_team_whatever_team_the_session_has_chosen(client, owner_membership):
    side = MembershipFactory(team=TeamFactory(name="Side project"), user=owner_membership.user, role=Role.VIEWER)
    login_as(client, side)  # the session's team: one where this user may not see billing
    assert client.get(USAGE).status_code == 403

    secret = new_token(owner_membership)  # a token for the team where they are an Owner
    assert call(secret).status_code == 200

    viewer_secret = new_token(side)
    assert call(viewer_secret).status_code == 403


def test_revoking_is_only_for_the_tokens_owner_in_its_team(owner_membership, make_member):
    personal_tokens.create_personal_token(actor=owner_membership, name="Mine", expires_in_days=None)
    token = PersonalAccessToken.objects.get()
    with pytest.raises(PermissionDenied, match="only your own tokens"):
        personal_tokens.revoke_personal_token(actor=make_member(Role.OWNER), token=token)
    token.refresh_from_db()
    assert token.revoked_at is None
