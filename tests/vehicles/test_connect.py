"""Smartcar Connect: GET /oauth/authorize, brand choice, the owner's sign-in, consent, and the redirect back."""

import re
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.hashers import make_password
from django.test import Client

from accounts.models import RedirectURI
from tests.factories import ApplicationFactory
from tests.vehicles.api_helpers import make_owner, make_vehicle
from tests.vehicles.connect_helpers import (
    CALLBACK,
    OTHER_CALLBACK,
    OWNER_PASSWORD,
    authorize_url,
    basic,
    connect,
    consent,
    flow_id,
    redirect_params,
    sign_in,
)
from vehicles.models import AuthorizationCode, Connection, Engine, Mode
from vehicles.scopes import PERMISSIONS

# --- starting Connect ----------------------------------------------------------------------------------------------


def test_it_starts_with_the_brand_choice(client, application):
    response = client.get(authorize_url(application))
    assert response.status_code == 302
    assert urlsplit(response["Location"]).path == "/oauth/connect/brand"

    page = client.get(response["Location"])
    assert page.status_code == 200
    assert b'name="make" value="TESLA"' in page.content
    assert b"Charge Buddy" in page.content


def test_it_accepts_a_trailing_slash_without_redirecting_to_it(client, application):
    response = client.get(authorize_url(application).replace("/oauth/authorize?", "/oauth/authorize/?"))
    assert response.status_code == 302
    assert urlsplit(response["Location"]).path == "/oauth/connect/brand"


def test_choosing_a_brand_leads_to_its_sign_in_page(client, application):
    response = client.get(authorize_url(application))
    chosen = client.post(response["Location"], {"flow": flow_id(response), "make": "TESLA"})
    assert urlsplit(chosen["Location"]).path == "/oauth/connect/sign-in"
    page = client.get(chosen["Location"])
    assert b"Sign in to Tesla" in page.content
    assert b'name="email"' in page.content and b'name="password"' in page.content


def test_make_skips_the_brand_choice(client, application):
    response = client.get(authorize_url(application, make="tesla"))
    assert urlsplit(response["Location"]).path == "/oauth/connect/sign-in"


def test_an_unknown_make_shows_the_brand_choice(client, application):
    response = client.get(authorize_url(application, make="NOT_A_BRAND"))
    assert urlsplit(response["Location"]).path == "/oauth/connect/brand"


@pytest.mark.parametrize(
    "params",
    [
        {"client_id": "4b0c8e9e-0000-4000-8000-000000000000"},
        {"client_id": "not-a-uuid"},
        {"client_id": None},
        {"redirect_uri": "https://evil.example.com/steal"},
        {"redirect_uri": CALLBACK + "/"},
        {"response_type": "token", "redirect_uri": "https://evil.example.com/steal"},
        {"response_type": "token"},
        {"response_type": None},
        {"mode": "production"},
    ],
)
def test_untrusted_requests_get_an_error_page_and_never_a_redirect(client, application, params):
    response = client.get(authorize_url(application, **params))
    assert response.status_code == 400
    assert "Location" not in response
    assert "Connect can’t continue" in response.content.decode()


def test_an_application_without_redirect_uris_gets_an_error_page(client, team):
    application = ApplicationFactory(team=team)
    response = client.get(authorize_url(application))
    assert response.status_code == 400
    assert "Location" not in response


def test_an_unknown_permission_goes_back_as_invalid_scope(client, application):
    response = client.get(authorize_url(application, scope="read_odometer read_mind"))
    params = redirect_params(response)
    assert response["Location"].startswith(CALLBACK + "?")
    assert params == {
        "error": "invalid_scope",
        "error_description": "Unknown permission: read_mind.",
        "state": "xyz-123",
    }


def test_an_unknown_flow_id_gets_the_error_page(client, application):
    response = client.get("/oauth/connect/consent?flow=made-up")
    assert response.status_code == 400
    assert b"expired" in response.content


def test_a_flow_expires_after_30_minutes(client, application, driver, time_machine):
    time_machine.move_to("2025-01-01 12:00Z", tick=False)
    response = client.get(authorize_url(application, make="TESLA"))
    time_machine.shift(31 * 60)
    page = client.get(response["Location"])
    assert page.status_code == 400


# --- signing in ----------------------------------------------------------------------------------------------------


def test_a_wrong_password_stays_on_the_sign_in_page_with_an_error(client, application, driver):
    response = sign_in(client, application, password="wrong")
    assert response.status_code == 200
    assert b"The email or password is incorrect." in response.content
    assert b'name="email"' in response.content


def test_repeated_wrong_passwords_lock_the_brand_account_for_a_while(client, application, driver, time_machine):
    time_machine.move_to("2026-03-01T12:00:00Z", tick=False)
    for _ in range(5):
        assert b"The email or password is incorrect." in sign_in(client, application, password="guess").content

    throttled = sign_in(client, application)  # even the right password, for now

    assert throttled.status_code == 429
    assert b"Too many failed sign-in attempts" in throttled.content
    assert sign_in(client, application, email="someone-else@example.com", password="x").status_code == 200
    time_machine.shift(301)
    assert sign_in(client, application).status_code == 302  # to consent


def test_an_owner_without_vehicles_goes_back_as_no_vehicles(client, application):
    make_owner(make="TESLA", email="empty@example.com", password=make_password(OWNER_PASSWORD))
    response = sign_in(client, application, email="empty@example.com")
    params = redirect_params(response)
    assert params["error"] == "no_vehicles"
    assert params["state"] == "xyz-123"


def test_test_mode_signs_in_any_email_and_password(client, application):
    params = connect(client, application, mode=Mode.TEST, email="3-vehicles@example.com", password="anything")
    assert "code" in params
    authorization = AuthorizationCode.objects.get()
    assert authorization.vehicles.count() == 3
    assert authorization.owner.mode == Mode.TEST


# --- consent -------------------------------------------------------------------------------------------------------


def test_the_consent_page_names_the_app_and_lists_permissions_in_words(client, application, driver):
    response = sign_in(client, application, scope="required:read_odometer read_location")
    page = client.get(response["Location"])
    content = page.content.decode()
    assert "Charge Buddy" in content
    assert PERMISSIONS["read_odometer"] in content
    assert PERMISSIONS["read_location"] in content
    assert PERMISSIONS["control_security"] not in content
    for vehicle in driver.test_vehicles:
        assert f'type="checkbox" name="vehicle" value="{vehicle.public_id}"' in content
    assert 'name="decision" value="allow"' in content and 'name="decision" value="deny"' in content


def test_allow_redirects_with_a_code_and_the_state(client, application, driver):
    params = connect(client, application, scope="read_odometer required:read_vin")
    assert set(params) == {"code", "state"}
    assert params["state"] == "xyz-123"
    authorization = AuthorizationCode.objects.get()
    assert authorization.redirect_uri == CALLBACK  # the default, since none was sent
    assert authorization.scopes == ["read_odometer", "read_vin"]
    assert authorization.code_hash != params["code"]


def test_the_redirect_keeps_the_redirect_uris_own_query(client, application, driver):
    params = connect(client, application, redirect_uri=OTHER_CALLBACK)
    assert params["source"] == "connect"
    assert params["state"] == "xyz-123"


def test_a_custom_scheme_redirect_uri_works(client, application, driver):
    uri = f"sc{application.client_id}://exchange"
    RedirectURI.objects.create(application=application, uri=uri)
    response = consent(client, sign_in(client, application, redirect_uri=uri))
    assert response["Location"].startswith(uri + "?code=")


def test_without_scope_the_default_permission_is_asked(client, application, driver):
    connect(client, application)
    assert AuthorizationCode.objects.get().scopes == ["read_vehicle_info"]


def test_only_the_checked_vehicles_are_shared(client, application, driver):
    first = driver.test_vehicles[0]
    response = consent(client, sign_in(client, application), vehicles=[str(first.public_id)])
    assert "code" in redirect_params(response)
    assert list(AuthorizationCode.objects.get().vehicles.all()) == [first]


def test_allow_without_a_vehicle_asks_for_one(client, application, driver):
    response = consent(client, sign_in(client, application), vehicles=[])
    assert response.status_code == 200
    assert b"Choose at least one vehicle" in response.content
    assert not AuthorizationCode.objects.exists()


def test_a_vehicle_of_someone_else_cannot_be_slipped_in(client, application, driver):
    stranger = make_vehicle(make_owner(make="TESLA"))
    response = consent(client, sign_in(client, application), vehicles=[str(stranger.public_id)])
    assert response.status_code == 200
    assert not AuthorizationCode.objects.exists()


def test_required_permissions_a_vehicle_cannot_give_make_it_unselectable(client, application, driver):
    electric, combustion = driver.test_vehicles[0], make_vehicle(driver, model="Model T", engine=Engine.ICE)
    response = sign_in(client, application, scope="read_odometer required:read_battery")
    content = client.get(response["Location"]).content.decode()

    assert f'name="vehicle" value="{electric.public_id}"' in content
    assert f'name="vehicle" value="{combustion.public_id}"' not in content
    assert f"VIN {combustion.vin}" in content and "cannot: read the ev battery" in content
    slipped_in = consent(client, response, vehicles=[str(combustion.public_id)])
    assert slipped_in.status_code == 200
    assert not AuthorizationCode.objects.exists()


def test_optional_permissions_never_make_a_vehicle_incompatible(client, application, driver):
    combustion = make_vehicle(driver, model="Model T", engine=Engine.ICE)
    connect(client, application, scope="read_odometer read_battery")
    assert combustion in AuthorizationCode.objects.get().vehicles.all()


def test_an_account_with_only_incompatible_vehicles_goes_back_as_vehicle_incompatible(client, application):
    owner = make_owner(make="TESLA", email="petrol@example.com", password=make_password(OWNER_PASSWORD))
    car = make_vehicle(owner, model="Roadster", year=2019, engine=Engine.ICE)

    params = redirect_params(
        sign_in(client, application, email="petrol@example.com", scope="required:read_charge read_vin")
    )

    assert params["error"] == "vehicle_incompatible"
    assert "read_charge" in params["error_description"]
    assert (params["vin"], params["make"], params["model"], params["year"]) == (car.vin, "TESLA", "Roadster", "2019")
    assert params["state"] == "xyz-123"
    assert not AuthorizationCode.objects.exists()


def test_deny_goes_back_as_access_denied(client, application, driver):
    response = consent(client, sign_in(client, application), decision="deny")
    assert redirect_params(response) == {
        "error": "access_denied",
        "error_description": "User denied access to application.",
        "state": "xyz-123",
    }
    assert "error_description=User+denied+access+to+application." in response["Location"]
    assert not AuthorizationCode.objects.exists()


def test_a_finished_flow_cannot_be_answered_again(client, application, driver):
    signed_in = sign_in(client, application)
    consent(client, signed_in)
    again = client.post(signed_in["Location"], {"flow": flow_id(signed_in), "decision": "allow"})
    assert again.status_code == 400
    assert AuthorizationCode.objects.count() == 1


def test_a_redirect_uri_removed_mid_flow_gets_no_code(client, application, driver):
    signed_in = sign_in(client, application)
    RedirectURI.objects.filter(application=application, uri=CALLBACK).delete()
    response = client.post(signed_in["Location"], {"flow": flow_id(signed_in), "decision": "allow"})
    assert response.status_code == 400
    assert not AuthorizationCode.objects.exists()


def test_single_select_offers_one_vehicle_as_a_radio(client, application, driver):
    signed_in = sign_in(client, application, single_select="true")
    page = client.get(signed_in["Location"]).content.decode()
    assert page.count('type="radio" name="vehicle"') == 2
    second = driver.test_vehicles[1]
    response = consent(client, signed_in, vehicles=str(second.public_id))
    assert "code" in redirect_params(response)
    assert list(AuthorizationCode.objects.get().vehicles.all()) == [second]


def test_single_select_vin_offers_only_that_vehicle(client, application, driver):
    wanted = driver.test_vehicles[1]
    signed_in = sign_in(client, application, single_select_vin=wanted.vin.lower())
    page = client.get(signed_in["Location"]).content.decode()
    assert page.count('type="radio" name="vehicle"') == 1
    assert str(wanted.public_id) in page


def test_single_select_vin_not_on_the_account_goes_back_as_no_vehicles(client, application, driver):
    response = sign_in(client, application, single_select_vin="1HGCM82633A004352")
    assert redirect_params(response)["error"] == "no_vehicles"


def test_two_tabs_run_two_flows(client, application, driver):
    one = client.get(authorize_url(application, make="TESLA", state="one"))
    two = client.get(authorize_url(application, make="TESLA", state="two", redirect_uri=OTHER_CALLBACK))
    signed_in_two = client.post(
        two["Location"], {"flow": flow_id(two), "email": driver.email, "password": OWNER_PASSWORD}
    )
    signed_in_one = client.post(
        one["Location"], {"flow": flow_id(one), "email": driver.email, "password": OWNER_PASSWORD}
    )
    first = redirect_params(consent(client, signed_in_one))
    second = redirect_params(consent(client, signed_in_two))
    assert first["state"] == "one" and "source" not in first
    assert second["state"] == "two" and second["source"] == "connect"


# --- CSRF and the whole round trip ---------------------------------------------------------------------------------


def test_connect_forms_are_csrf_protected(application, driver):
    browser = Client(enforce_csrf_checks=True)
    response = browser.get(authorize_url(application, make="TESLA"))
    form = {"flow": flow_id(response), "email": driver.email, "password": OWNER_PASSWORD}
    assert browser.post(response["Location"], form).status_code == 403

    page = browser.get(response["Location"])
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]
    signed_in = browser.post(response["Location"], {**form, "csrfmiddlewaretoken": token})
    assert signed_in.status_code == 302
    deny = {"flow": flow_id(signed_in), "decision": "deny"}
    assert browser.post(signed_in["Location"], deny).status_code == 403
    assert browser.post(signed_in["Location"], {**deny, "csrfmiddlewaretoken": token}).status_code == 302


def test_the_whole_flow_connects_the_vehicles(client, application, driver):
    params = connect(client, application, scope="read_odometer")
    response = client.post(
        "/oauth/token",
        {"grant_type": "authorization_code", "code": params["code"], "redirect_uri": CALLBACK},
        headers={"Authorization": basic(application)},
    )
    assert response.status_code == 200
    assert set(response.json()) == {"access_token", "token_type", "expires_in", "refresh_token"}
    connected = Connection.objects.filter(application=application).values_list("vehicle_id", flat=True)
    assert sorted(connected) == sorted(v.pk for v in driver.test_vehicles)

    refreshed = client.post(
        "/oauth/token",
        {"grant_type": "refresh_token", "refresh_token": response.json()["refresh_token"]},
        headers={"Authorization": basic(application)},
    )
    assert refreshed.status_code == 200
    assert refreshed.json()["access_token"] != response.json()["access_token"]
