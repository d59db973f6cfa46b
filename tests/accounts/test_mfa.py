"""TOTP two-factor authentication through allauth's real pages: activation, login, recovery codes."""

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY
from django.contrib.auth import get_user
from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD, UserFactory, totp_code

pytestmark = pytest.mark.django_db


def log_in(client, email, password=PASSWORD):
    return client.post(reverse("account_login"), {"login": email, "password": password})


def is_logged_in(client) -> bool:
    return get_user(client).is_authenticated


@pytest.fixture
def user():
    return UserFactory(email="dev@example.com")


def reauthenticate(client, password=PASSWORD):
    return client.post(reverse("account_reauthenticate"), {"password": password})


def activate_totp(client, user) -> str:
    """Log in and turn on TOTP as the user would (allauth asks for the password again); returns the secret."""
    assert log_in(client, user.email)["Location"] == reverse("overview")
    reauthenticate(client)
    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200
    secret = page.context["form"].secret
    assert secret == client.session[SECRET_SESSION_KEY]
    response = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})
    assert response.status_code == 302, response.context["form"].errors
    return secret


def recovery_codes(client) -> list[str]:
    page = client.get(reverse("mfa_view_recovery_codes"))
    assert page.status_code == 200
    return list(page.context["unused_codes"])


def test_it_activates_totp_with_a_code_from_the_shown_secret_and_issues_recovery_codes(client, user):
    activate_totp(client, user)

    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
    codes = recovery_codes(client)
    assert len(codes) == 10
    assert all(len(code) == 8 and code.isdigit() for code in codes)


def test_it_refuses_to_activate_totp_with_a_wrong_code(client, user):
    log_in(client, user.email)
    reauthenticate(client)
    secret = client.get(reverse("mfa_activate_totp")).context["form"].secret
    wrong = f"{(int(totp_code(secret)) + 1) % 10**6:06}"

    response = client.post(reverse("mfa_activate_totp"), {"code": wrong})

    assert response.status_code == 200
    assert "Incorrect code" in str(response.context["form"].errors)
    assert not Authenticator.objects.filter(user=user).exists()


def test_it_asks_for_the_password_again_before_activating_totp(client, user):
    log_in(client, user.email)

    response = client.get(reverse("mfa_activate_totp"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))

    wrong = reauthenticate(client, "not-my-password")
    assert wrong.status_code == 200
    assert client.get(reverse("mfa_activate_totp")).status_code == 302

    assert reauthenticate(client).status_code == 302
    assert client.get(reverse("mfa_activate_totp")).status_code == 200


def test_it_asks_for_a_code_after_the_password_once_totp_is_on(client, user):
    activate_totp(client, user)
    client.post(reverse("account_logout"))

    response = log_in(client, user.email)

    assert response["Location"] == reverse("mfa_authenticate")
    assert not is_logged_in(client), "the password alone must not log in"
    assert client.get(reverse("overview"))["Location"].startswith(reverse("account_login"))


def test_it_refuses_a_wrong_code_and_logs_in_with_the_right_one(client, user):
    secret = activate_totp(client, user)
    client.post(reverse("account_logout"))
    log_in(client, user.email)
    right = totp_code(secret)
    wrong = f"{(int(right) + 1) % 10**6:06}"

    response = client.post(reverse("mfa_authenticate"), {"code": wrong})
    assert response.status_code == 200
    assert "Incorrect code" in str(response.context["form"].errors)
    assert not is_logged_in(client)

    response = client.post(reverse("mfa_authenticate"), {"code": right})
    assert response.status_code == 302
    assert response["Location"] == reverse("overview")
    assert get_user(client) == user


def test_it_refuses_a_totp_code_that_was_already_used(client, user):
    secret = activate_totp(client, user)
    client.post(reverse("account_logout"))
    code = totp_code(secret)
    log_in(client, user.email)
    client.post(reverse("mfa_authenticate"), {"code": code})
    assert is_logged_in(client)

    # Someone who watched the code being typed tries it again within the same 30 s window.
    replay = Client()
    log_in(replay, user.email)
    response = replay.post(reverse("mfa_authenticate"), {"code": code})

    assert response.status_code == 200
    assert not is_logged_in(replay)


def test_it_logs_in_with_a_recovery_code_once_and_not_twice(client, user):
    activate_totp(client, user)
    code = recovery_codes(client)[0]
    client.post(reverse("account_logout"))

    log_in(client, user.email)
    response = client.post(reverse("mfa_authenticate"), {"code": code})
    assert response["Location"] == reverse("overview")
    assert get_user(client) == user
    unused = Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES).wrap().get_unused_codes()
    assert code not in unused
    assert len(unused) == 9
    client.post(reverse("account_logout"))

    log_in(client, user.email)
    response = client.post(reverse("mfa_authenticate"), {"code": code})
    assert response.status_code == 200
    assert "Incorrect code" in str(response.context["form"].errors)
    assert not is_logged_in(client)


def test_staff_who_set_up_totp_for_the_back_office_are_shown_the_way_back(client):
    """The back office sends staff without two-factor authentication to set it up; they land on their recovery
    codes, which now lead back to /admin/ (and the back office then opens)."""
    staff = UserFactory(email="ops@example.com", is_staff=True, is_superuser=True)
    assert client.force_login(staff) is None and client.get("/admin/").status_code == 302  # 2FA first
    client.logout()
    activate_totp(client, staff)
    page = client.get(reverse("mfa_view_recovery_codes")).content.decode()
    assert 'id="back-to-admin" href="/admin/"' in page
    assert client.get("/admin/").status_code == 200


def test_a_developer_is_not_offered_the_back_office(client, user):
    activate_totp(client, user)
    assert "back-to-admin" not in client.get(reverse("mfa_view_recovery_codes")).content.decode()
