"""POST /oauth/token: code exchange and refresh, as the Python and Node SDKs call it."""

import base64
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.test import Client

from accounts.applications import issue_client_secret
from accounts.credentials import hash_secret
from accounts.models import ClientSecret
from tests.factories import ApplicationFactory
from tests.vehicles.api_helpers import assert_envelope, make_owner, make_vehicle
from tests.vehicles.api_helpers import request as api_request
from tests.vehicles.connect_helpers import CALLBACK, OTHER_CALLBACK, basic
from vehicles.models import AccessToken, AuthorizationCode, Connection, Grant, RefreshToken
from vehicles.tokens import create_authorization_code

START = "2025-03-01 09:00Z"


@pytest.fixture
def code(application, driver):
    return create_authorization_code(
        application=application,
        owner=driver,
        vehicles=driver.test_vehicles,
        scopes=["read_odometer"],
        redirect_uri=CALLBACK,
    )


def post(client, data, *, application=None, secret=None, path="/oauth/token", **kwargs):
    headers = {"Authorization": basic(application, secret)} if application else {}
    return client.post(path, data, headers=headers, **kwargs)


def exchange(client, application, code, **extra):
    return post(client, {"grant_type": "authorization_code", "code": code, **extra}, application=application)


def refresh(client, application, refresh_token):
    return post(client, {"grant_type": "refresh_token", "refresh_token": refresh_token}, application=application)


def vehicles_seen_with(client, access_token):
    return api_request(client, "GET", "/v2.0/vehicles", token=access_token)


def assert_oauth_error(response, error, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error
    return body


# --- code exchange -------------------------------------------------------------------------------------------------


def test_it_exchanges_a_code_for_tokens(client, application, code, driver):
    response = exchange(client, application, code, redirect_uri=CALLBACK)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 7200
    assert len(body["access_token"]) == 36 and len(body["refresh_token"]) == 36
    assert Connection.objects.filter(application=application).count() == len(driver.test_vehicles)


def test_it_accepts_a_trailing_slash(client, application, code):
    data = {"grant_type": "authorization_code", "code": code}
    assert post(client, data, application=application, path="/oauth/token/").status_code == 200


@pytest.mark.parametrize("redirect_uri", ["undefined", None, ""])
def test_a_redirect_uri_left_out_is_accepted(client, application, code, redirect_uri):
    extra = {} if redirect_uri is None else {"redirect_uri": redirect_uri}
    assert exchange(client, application, code, **extra).status_code == 200


def test_a_different_redirect_uri_is_invalid_grant(client, application, code):
    body = assert_oauth_error(exchange(client, application, code, redirect_uri=OTHER_CALLBACK), "invalid_grant", 400)
    assert body["error_description"] == f"Unauthorized redirect_uri: {OTHER_CALLBACK}"


def test_a_code_works_once(client, application, code):
    assert exchange(client, application, code).status_code == 200
    body = assert_oauth_error(exchange(client, application, code), "invalid_grant", 400)
    assert body["error_description"] == f"Invalid code: {code}."


def test_a_code_used_twice_revokes_every_token_issued_from_it(client, application, code, driver):
    # RFC 6749 §4.1.2: a replayed code may be in someone else's hands, so what it issued is revoked.
    first = exchange(client, application, code).json()
    refreshed = refresh(client, application, first["refresh_token"]).json()
    for tokens in (first, refreshed):
        assert vehicles_seen_with(client, tokens["access_token"]).status_code == 200

    body = assert_oauth_error(exchange(client, application, code), "invalid_grant", 400)

    assert body["error_description"] == f"Invalid code: {code}."
    for tokens in (first, refreshed):
        assert_envelope(vehicles_seen_with(client, tokens["access_token"]), "AUTHENTICATION", None, 401)
        assert_oauth_error(refresh(client, application, tokens["refresh_token"]), "invalid_grant", 400)
    assert not Connection.objects.filter(application=application, revoked_at__isnull=True).exists()


def test_a_replayed_code_leaves_the_applications_other_grants_alone(client, application, code, driver):
    # Another driver's grant: one of the same vehicles would have been moved to the replayed code's grant
    # (one connection per vehicle and application, tests/vehicles/test_connect_again.py).
    other_driver = make_owner(make="TESLA")
    other_code = create_authorization_code(
        application=application,
        owner=other_driver,
        vehicles=[make_vehicle(other_driver), make_vehicle(other_driver)],
        scopes=["read_odometer"],
        redirect_uri=CALLBACK,
    )
    kept = exchange(client, application, other_code).json()
    exchange(client, application, code)

    assert_oauth_error(exchange(client, application, code), "invalid_grant", 400)

    assert vehicles_seen_with(client, kept["access_token"]).json()["paging"]["count"] == 2
    assert refresh(client, application, kept["refresh_token"]).status_code == 200


def test_a_code_presented_by_another_application_revokes_nothing(client, application, code, team):
    tokens = exchange(client, application, code).json()
    other = ApplicationFactory(team=team)
    other.secret = issue_client_secret(other)

    assert_oauth_error(exchange(client, other, code), "invalid_grant", 400)

    assert vehicles_seen_with(client, tokens["access_token"]).status_code == 200


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(5))
def test_two_exchanges_of_one_code_at_once_give_tokens_once_and_then_revoke_them(
    live_server, application, code, attempt
):
    start = threading.Barrier(2)

    def exchange_over_http(_):
        start.wait(timeout=30)
        data = {"grant_type": "authorization_code", "code": code}
        auth = (str(application.client_id), application.secret)
        return requests.post(f"{live_server.url}/oauth/token", data=data, auth=auth, timeout=60)

    with ThreadPoolExecutor(max_workers=2) as pool:
        responses = sorted(pool.map(exchange_over_http, range(2)), key=lambda response: response.status_code)

    assert [response.status_code for response in responses] == [200, 400]
    assert responses[1].json()["error"] == "invalid_grant"
    assert Grant.objects.count() == 1  # the code was redeemed once
    # The loser waited for the winner's row lock, saw the code used, and revoked what the winner got.
    winner = responses[0].json()["access_token"]
    seen = requests.get(f"{live_server.url}/v2.0/vehicles", headers={"Authorization": f"Bearer {winner}"}, timeout=60)
    assert seen.status_code == 401, seen.text
    assert seen.json()["type"] == "AUTHENTICATION"


def test_a_code_expires_after_10_minutes(client, application, driver, time_machine):
    time_machine.move_to(START, tick=False)
    fresh = create_authorization_code(
        application=application, owner=driver, vehicles=[], scopes=[], redirect_uri=CALLBACK
    )
    stale = create_authorization_code(
        application=application, owner=driver, vehicles=[], scopes=[], redirect_uri=CALLBACK
    )
    time_machine.shift(timedelta(minutes=10) - timedelta(seconds=1))
    assert exchange(client, application, fresh).status_code == 200
    time_machine.shift(timedelta(seconds=1))
    assert_oauth_error(exchange(client, application, stale), "invalid_grant", 400)


def test_another_applications_code_is_invalid_grant(client, application, code, team):
    other = ApplicationFactory(team=team)
    other.secret = issue_client_secret(other)
    assert_oauth_error(exchange(client, other, code), "invalid_grant", 400)


# --- refresh -------------------------------------------------------------------------------------------------------


def test_refresh_rotates_and_the_old_token_lives_one_more_minute(client, application, code, time_machine):
    time_machine.move_to(START, tick=False)
    first = exchange(client, application, code).json()

    second = refresh(client, application, first["refresh_token"])
    assert second.status_code == 200
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert refresh(client, application, second["refresh_token"]).status_code == 200  # the rotated one works

    time_machine.shift(timedelta(seconds=59))
    assert refresh(client, application, first["refresh_token"]).status_code == 200  # a retry in flight
    time_machine.shift(timedelta(seconds=1))
    assert_oauth_error(refresh(client, application, first["refresh_token"]), "invalid_grant", 400)


def test_an_unknown_refresh_token_is_invalid_grant(client, application):
    body = assert_oauth_error(refresh(client, application, "THIS_SHOULD_NOT_WORK"), "invalid_grant", 400)
    assert body["error_description"] == "Invalid refresh_token: THIS_SHOULD_NOT_WORK."


def test_tokens_are_stored_only_as_hashes(client, application, code):
    tokens = exchange(client, application, code).json()
    tokens |= {"second": refresh(client, application, tokens["refresh_token"]).json()["refresh_token"]}
    assert AccessToken.objects.filter(token_hash=hash_secret(tokens["access_token"])).exists()
    assert RefreshToken.objects.filter(token_hash=hash_secret(tokens["refresh_token"])).exists()
    assert AuthorizationCode.objects.filter(code_hash=hash_secret(code)).exists()
    with connection.cursor() as cursor:
        for table in ("vehicles_accesstoken", "vehicles_refreshtoken", "vehicles_authorizationcode"):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 (fixed table names)
            dump = repr(cursor.fetchall())
            for secret in (code, tokens["access_token"], tokens["refresh_token"], tokens["second"]):
                assert secret not in dump


# --- client authentication -----------------------------------------------------------------------------------------


def test_a_wrong_secret_is_invalid_client_with_a_basic_challenge(client, application, code):
    response = post(client, {"grant_type": "authorization_code", "code": code}, application=application, secret="nope")
    assert_oauth_error(response, "invalid_client", 401)
    assert response["WWW-Authenticate"].startswith("Basic")
    assert exchange(client, application, code).status_code == 200  # the code was not spent


def test_credentials_in_the_form_body_work(client, application, code):
    data = {"grant_type": "authorization_code", "code": code}
    data |= {"client_id": str(application.client_id), "client_secret": application.secret}
    assert post(client, data).status_code == 200


def test_other_query_parameters_are_ignored(client, application, code):
    response = post(
        client,
        {"grant_type": "authorization_code", "code": code},
        application=application,
        path="/oauth/token?flags=country:DE",
    )
    assert response.status_code == 200


@pytest.mark.parametrize("with_basic", [False, True])
def test_a_client_secret_in_the_query_is_refused_and_spends_nothing(client, application, code, with_basic):
    # RFC 6749 §2.3.1: the secret belongs in the body or an Authorization header; a URL ends up in access logs.
    query = f"client_id={application.client_id}&client_secret={application.secret}"
    response = post(
        client,
        {"grant_type": "authorization_code", "code": code},
        path=f"/oauth/token?{query}",
        application=application if with_basic else None,
    )
    body = assert_oauth_error(response, "invalid_request", 400)
    assert "client_secret" in body["error_description"] and "query" in body["error_description"]
    assert not Connection.objects.exists()
    assert exchange(client, application, code).status_code == 200  # the code was not spent


def test_a_client_id_in_the_query_is_not_a_credential(client, application, code):
    data = {"grant_type": "authorization_code", "code": code, "client_secret": application.secret}
    response = post(client, data, path=f"/oauth/token?client_id={application.client_id}")
    assert_oauth_error(response, "invalid_client", 401)


def test_no_credentials_is_invalid_client_without_a_challenge(client, code):
    response = post(client, {"grant_type": "authorization_code", "code": code})
    assert_oauth_error(response, "invalid_client", 401)
    assert "WWW-Authenticate" not in response


def test_a_secret_in_its_rotation_grace_period_works_until_it_ends(client, application, code, time_machine):
    time_machine.move_to(START, tick=False)
    old = application.secret
    ClientSecret.objects.filter(application=application).update(expires_at="2025-03-01 10:00Z")
    application.secret = issue_client_secret(application)
    assert (
        post(
            client, {"grant_type": "authorization_code", "code": code}, application=application, secret=old
        ).status_code
        == 200
    )
    time_machine.shift(timedelta(hours=1))
    response = post(client, {"grant_type": "refresh_token", "refresh_token": "x"}, application=application, secret=old)
    assert_oauth_error(response, "invalid_client", 401)
    response = post(client, {"grant_type": "refresh_token", "refresh_token": "x"}, application=application)
    assert_oauth_error(response, "invalid_grant", 400)  # the new secret authenticates


# --- malformed requests --------------------------------------------------------------------------------------------


def test_it_is_csrf_exempt(application, code):
    browser = Client(enforce_csrf_checks=True)
    assert exchange(browser, application, code).status_code == 200


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
def test_other_methods_get_a_json_405(client, method):
    response = getattr(client, method)("/oauth/token")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json()["error"] == "invalid_request"


def test_an_unsupported_grant_type(client, application):
    response = post(client, {"grant_type": "password"}, application=application)
    assert_oauth_error(response, "unsupported_grant_type", 400)


@pytest.mark.parametrize(
    "data",
    [{}, {"grant_type": "authorization_code"}, {"grant_type": "refresh_token"}, {"grant_type": ""}],
)
def test_missing_parameters_are_invalid_request(client, application, data):
    assert_oauth_error(post(client, data, application=application), "invalid_request", 400)


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\x00").decode(),
        "Basic " + base64.b64encode(b"not-a-uuid:secret").decode(),
        "Basic " + base64.b64encode(b":").decode(),
        "Bearer abc",
        "basic " + base64.b64encode(b"00000000-0000-0000-0000-000000000000:x").decode(),
    ],
)
def test_garbage_client_auth_is_invalid_client(db, client, authorization):
    response = client.post(
        "/oauth/token", {"grant_type": "refresh_token", "refresh_token": "x"}, headers={"Authorization": authorization}
    )
    assert_oauth_error(response, "invalid_client", 401)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("grant_type=authorization_code&code=%00%ff&redirect_uri=%00", "application/x-www-form-urlencoded"),
        ("grant_type=refresh_token&refresh_token=" + "a" * 10000, "application/x-www-form-urlencoded"),
        ("{not json", "application/json"),
        ('["a list"]', "application/json"),
        ('{"grant_type": "refresh_token", "refresh_token": 5}', "application/json"),
        ("--boundary\r\ngarbage", "multipart/form-data; boundary=boundary"),
        ("\x00\x01binary", "application/octet-stream"),
    ],
)
def test_malformed_bodies_never_raise(client, application, body, content_type):
    response = client.post(
        "/oauth/token", body, content_type=content_type, headers={"Authorization": basic(application)}
    )
    assert response.status_code in (400, 401)
    assert response.json()["error"] in {"invalid_request", "invalid_grant", "invalid_client"}


def test_a_json_body_is_accepted_too(client, application, code):
    response = client.post(
        "/oauth/token",
        {"grant_type": "authorization_code", "code": code},
        content_type="application/json",
        headers={"Authorization": basic(application)},
    )
    assert response.status_code == 200
