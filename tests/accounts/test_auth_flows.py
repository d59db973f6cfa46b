"""Signup, verification, login, password and email changes through allauth's real pages."""

import re
from urllib.parse import urlparse

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user
from django.core import mail
from django.core.cache import cache, caches
from django.core.cache.backends.db import DatabaseCache
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.models import Membership, User
from accounts.roles import Role
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "fresh-spark-plug-42"


def link_in(message, path_prefix: str) -> str:
    """The path of the first link in an email that starts with `path_prefix`."""
    urls = re.findall(r"https?://[^\s\"'<>]+", message.body)
    paths = [urlparse(url).path for url in urls]
    matching = [path for path in paths if path.startswith(path_prefix)]
    assert matching, f"no {path_prefix} link in:\n{message.body}"
    return matching[0]


def sign_up(client, email="newdev@example.com", password=NEW_PASSWORD):
    return client.post(reverse("account_signup"), {"email": email, "password1": password, "password2": password})


def log_in(client, email, password):
    return client.post(reverse("account_login"), {"login": email, "password": password})


def is_logged_in(client) -> bool:
    return get_user(client).is_authenticated


def form_errors(response) -> str:
    return " ".join(str(error) for error in response.context["form"].errors.values())


# Signup and verification ---------------------------------------------------------------


def test_it_signs_up_with_email_and_password_and_sends_a_verification_email(client, send_queued_emails):
    response = sign_up(client)
    send_queued_emails()

    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    user = User.objects.get(email="newdev@example.com")
    assert user.check_password(NEW_PASSWORD)
    assert EmailAddress.objects.get(user=user).verified is False
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["newdev@example.com"]
    link_in(mail.outbox[0], "/accounts/confirm-email/")


def test_it_keeps_an_unverified_user_out_of_the_dashboard(client):
    sign_up(client)

    response = client.get(reverse("overview"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))

    # Logging in with the right password only leads back to "verify your email".
    response = log_in(client, "newdev@example.com", NEW_PASSWORD)
    assert response["Location"] == reverse("account_email_verification_sent")
    assert not is_logged_in(client)


def test_it_verifies_the_email_and_logs_in_when_the_emailed_link_is_confirmed(client, send_queued_emails):
    sign_up(client)
    send_queued_emails()
    confirm_path = link_in(mail.outbox[0], "/accounts/confirm-email/")

    page = client.get(confirm_path)
    assert page.status_code == 200
    assert not is_logged_in(client), "a GET must not verify the address"
    assert EmailAddress.objects.get(email="newdev@example.com").verified is False

    response = client.post(confirm_path)

    assert response.status_code == 302
    assert EmailAddress.objects.get(email="newdev@example.com").verified is True
    assert is_logged_in(client)


def test_it_gives_every_new_account_a_personal_team_it_owns(client):
    sign_up(client, email="ada@example.com")

    membership = Membership.objects.select_related("team").get(user__email="ada@example.com")
    assert membership.role == Role.OWNER
    assert membership.team.name == "ada's team"
    assert membership.team.created_by.email == "ada@example.com"


def test_it_creates_no_second_account_for_an_address_already_registered_in_any_case(client, send_queued_emails):
    existing = UserFactory(email="taken@example.com")

    response = sign_up(client, email="Taken@Example.COM")
    send_queued_emails()

    # allauth prevents account enumeration (ACCOUNT_PREVENT_ENUMERATION defaults to True):
    # with mandatory verification the signup form shows no "email taken" error; the visitor
    # sees the usual "check your inbox" page and the owner of the address gets an
    # "account already exists" email instead of a verification link.
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert list(User.objects.filter(email__iexact="taken@example.com")) == [existing]
    assert Membership.objects.filter(user=existing).count() == 0
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["taken@example.com"]
    assert "Account Already Exists" in mail.outbox[0].subject
    assert "/accounts/confirm-email/" not in mail.outbox[0].body


@pytest.mark.parametrize(
    "password, reason",
    [("short9", "too short"), ("password123", "too common"), ("8461937250", "entirely numeric")],
)
def test_it_refuses_a_weak_password_at_signup(client, password, reason, send_queued_emails):
    response = sign_up(client, password=password)
    send_queued_emails()

    assert response.status_code == 200
    assert reason in form_errors(response)
    assert not User.objects.filter(email="newdev@example.com").exists()
    assert mail.outbox == []


def test_it_refuses_mismatched_passwords_at_signup(client):
    response = client.post(
        reverse("account_signup"),
        {"email": "newdev@example.com", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD + "x"},
    )

    assert response.status_code == 200
    assert "same password" in form_errors(response)
    assert not User.objects.exists()


# Login and logout ------------------------------------------------------------------------


def test_it_refuses_a_wrong_password_with_a_form_error(client):
    UserFactory(email="dev@example.com")

    response = log_in(client, "dev@example.com", "not-the-password")

    assert response.status_code == 200
    assert "not correct" in form_errors(response)
    assert not is_logged_in(client)


def test_it_logs_in_with_the_right_password_in_any_letter_case(client):
    UserFactory(email="dev@example.com")

    response = log_in(client, "Dev@Example.com", PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == reverse("overview")
    assert is_logged_in(client)


def test_it_logs_out_on_post(client):
    UserFactory(email="dev@example.com")
    log_in(client, "dev@example.com", PASSWORD)

    response = client.post(reverse("account_logout"))

    assert response.status_code == 302
    assert client.get(reverse("overview"))["Location"].startswith(reverse("account_login"))


# Passwords -------------------------------------------------------------------------------


def test_it_resets_a_forgotten_password_through_the_emailed_link(client, send_queued_emails):
    UserFactory(email="dev@example.com")

    response = client.post(reverse("account_reset_password"), {"email": "dev@example.com"})
    send_queued_emails()
    assert response["Location"] == reverse("account_reset_password_done")
    assert len(mail.outbox) == 1
    reset_path = link_in(mail.outbox[0], "/accounts/password/reset/key/")

    # The emailed link stores the key in the session and redirects to a key-free URL.
    form_page = client.get(reset_path, follow=True)
    assert form_page.status_code == 200
    set_password_path = form_page.redirect_chain[-1][0]
    assert set_password_path.endswith("-set-password/")
    response = client.post(set_password_path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302

    assert log_in(Client(), "dev@example.com", PASSWORD).status_code == 200
    fresh = Client()
    assert log_in(fresh, "dev@example.com", NEW_PASSWORD)["Location"] == reverse("overview")
    assert is_logged_in(fresh)


def test_it_refuses_a_used_password_reset_link(client, send_queued_emails):
    UserFactory(email="dev@example.com")
    client.post(reverse("account_reset_password"), {"email": "dev@example.com"})
    send_queued_emails()
    reset_path = link_in(mail.outbox[0], "/accounts/password/reset/key/")
    form_page = client.get(reset_path, follow=True)
    client.post(form_page.redirect_chain[-1][0], {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    attacker = Client()
    again = attacker.get(reset_path, follow=True)
    assert again.context["token_fail"] is True
    attacker.post(reset_path, {"password1": "hijacked-pass-77", "password2": "hijacked-pass-77"})

    assert User.objects.get(email="dev@example.com").check_password(NEW_PASSWORD)


def test_it_changes_the_password_when_the_current_one_is_given(client):
    user = UserFactory(email="dev@example.com")
    log_in(client, "dev@example.com", PASSWORD)

    wrong = client.post(
        reverse("account_change_password"),
        {"oldpassword": "not-it-at-all", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert wrong.status_code == 200
    assert "current password" in form_errors(wrong).lower()

    response = client.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert is_logged_in(client), "ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE is off"
    assert log_in(Client(), "dev@example.com", PASSWORD).status_code == 200


# Changing the email address --------------------------------------------------------------


def test_it_changes_the_email_address_once_the_new_one_is_verified(client, send_queued_emails):
    user = UserFactory(email="old@example.com")
    log_in(client, "old@example.com", PASSWORD)

    response = client.post(reverse("account_email"), {"action_add": "", "email": "new@example.com"})
    send_queued_emails()

    assert response.status_code == 302
    # Until it is verified, the old address stays the login and the primary one.
    user.refresh_from_db()
    assert user.email == "old@example.com"
    assert EmailAddress.objects.get(email="new@example.com").verified is False
    assert mail.outbox[-1].to == ["new@example.com"]
    confirm_path = link_in(mail.outbox[-1], "/accounts/confirm-email/")

    client.post(confirm_path)

    # ACCOUNT_CHANGE_EMAIL=True: the new address replaces the old one (not added beside it).
    user.refresh_from_db()
    assert user.email == "new@example.com"
    assert list(EmailAddress.objects.filter(user=user).values_list("email", "verified", "primary")) == [
        ("new@example.com", True, True)
    ]
    assert is_logged_in(client)
    client.post(reverse("account_logout"))
    assert log_in(client, "old@example.com", PASSWORD).status_code == 200
    assert log_in(client, "new@example.com", PASSWORD)["Location"] == reverse("overview")


# Rate limits -----------------------------------------------------------------------------


def test_it_locks_an_account_after_five_failed_logins_using_the_shared_cache(client):
    UserFactory(email="dev@example.com")

    for _ in range(5):
        response = log_in(client, "dev@example.com", "wrong-guess-123")
        assert "not correct" in form_errors(response)

    # allauth's default login_failed limit is 5 per 300 s per account: now even the right
    # password is refused, from any client.
    locked = log_in(Client(), "dev@example.com", PASSWORD)
    assert locked.status_code == 200
    assert "Too many failed login attempts" in form_errors(locked)

    # The counter lives in Django's cache (the database cache by default), not in the process.
    cache.clear()
    assert log_in(Client(), "dev@example.com", PASSWORD)["Location"] == reverse("overview")


def test_it_keeps_failed_login_counts_in_the_database_cache_shared_by_every_web_process(client, settings):
    backend = caches["default"]
    if not isinstance(backend, DatabaseCache):
        pytest.skip(f"CACHE_URL points at {type(backend).__name__}, not the default database cache")
    table = settings.CACHES["default"]["LOCATION"]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")
        before = cursor.fetchone()[0]
    UserFactory(email="dev@example.com")

    log_in(client, "dev@example.com", "wrong-guess-123")

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")
        assert cursor.fetchone()[0] > before


def test_it_answers_429_after_too_many_login_posts_from_one_ip(client):
    # allauth's default "login" limit is 30 posts a minute per IP.
    for i in range(30):
        response = log_in(client, f"nobody{i}@example.com", "whatever-123")
        assert response.status_code == 200

    response = log_in(client, "nobody@example.com", "whatever-123")

    assert response.status_code == 429


def test_allauths_emails_name_the_product_and_link_to_the_site_root(client, send_queued_emails, settings):
    """Not "Hello from testserver!" (or 127.0.0.1:8000): SITE_NAME, and links on SITE_ROOT whatever host was asked."""
    settings.SITE_ROOT = "https://ignition.example"
    sign_up(client)
    send_queued_emails()
    (message,) = mail.outbox
    assert "Hello from Ignition!" in message.body and "testserver" not in message.body
    links = re.findall(r"https?://[^\s\"'<>]+", message.body)
    assert any(link.startswith("https://ignition.example/accounts/confirm-email/") for link in links), message.body


def test_a_new_sign_up_invited_before_is_told_on_the_overview(client, send_queued_emails):
    from accounts import teams
    from tests.factories import MembershipFactory

    inviter = MembershipFactory(role=Role.OWNER)
    teams.invite_member(actor=inviter, email="NewDev@example.com", role=Role.EDITOR)
    sign_up(client)
    send_queued_emails()
    confirm = link_in([m for m in mail.outbox if m.to == ["newdev@example.com"]][-1], "/accounts/confirm-email/")
    client.post(confirm)
    log_in(client, "newdev@example.com", NEW_PASSWORD)
    html = client.get(reverse("overview")).content.decode()
    assert f"invited you to join {inviter.team.name}" in html and "as Editor" in html
