"""`sc-unit-system: imperial`: miles, US gallons and psi, on the endpoints that carry units."""

import pytest
from django.test import RequestFactory

from tests.vehicles.api_helpers import request
from vehicles.api.units import IMPERIAL, METRIC, convert, unit_system


def test_convert_uses_exact_factors():
    fields = {"d": "distance", "v": "volume", "p": "pressure"}
    data = {"d": 100.0, "v": 10.0, "p": 250.0, "other": 0.5}
    assert convert(data, fields, IMPERIAL) == {"d": 62.14, "v": 2.64, "p": 36.26, "other": 0.5}
    assert convert(data, fields, METRIC) == data


def test_convert_leaves_missing_null_and_non_numeric_values_alone():
    fields = {"range": "distance", "amountRemaining": "volume", "flag": "distance"}
    assert convert({"range": None, "flag": True}, fields, IMPERIAL) == {"range": None, "flag": True}


def test_convert_does_not_mutate_the_providers_dict():
    data = {"distance": 1.609344}
    assert convert(data, {"distance": "distance"}, IMPERIAL) == {"distance": 1.0}
    assert data == {"distance": 1.609344}


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, METRIC), ("imperial", IMPERIAL), ("IMPERIAL", IMPERIAL), (" Imperial ", IMPERIAL), ("metric", METRIC),
     ("Metric", METRIC), ("furlongs", METRIC), ("", METRIC)],
)  # fmt: skip
def test_unit_system_header_is_case_insensitive_and_defaults_to_metric(header, expected):
    headers = {} if header is None else {"sc-unit-system": header}
    assert unit_system(RequestFactory().get("/v2.0/vehicles", headers=headers)) == expected


# FakeProvider's metric values: 100 km, 37.854 l and 160.934 km, 321.869 km, 35 psi in kPa.
@pytest.mark.parametrize(
    ("path", "imperial"),
    [
        ("/odometer", {"distance": 62.14}),
        ("/fuel", {"amountRemaining": 10.0, "percentRemaining": 0.5, "range": 100.0}),
        ("/battery", {"percentRemaining": 0.3, "range": 200.0}),
        ("/tires/pressure", {"frontLeft": 35.0, "frontRight": 35.0, "backLeft": 35.0, "backRight": 35.0}),
    ],
)
@pytest.mark.django_db
def test_imperial_converts_unit_bearing_endpoints(client, api, path, imperial):
    response = request(client, "GET", api.base + path, token=api.token, headers={"SC-Unit-System": "IMPERIAL"})
    assert response.json() == imperial
    assert response["SC-Unit-System"] == "imperial"


@pytest.mark.django_db
def test_unknown_unit_system_answers_metric(client, api):
    response = request(client, "GET", api.base + "/odometer", token=api.token, headers={"sc-unit-system": "nautical"})
    assert response.json() == {"distance": 100.0}
    assert response["SC-Unit-System"] == "metric"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/location", "/battery/capacity", "/charge/limit", "/engine/oil", "/"])
def test_endpoints_without_units_ignore_the_header(client, api, path):
    metric = request(client, "GET", api.base + path, token=api.token).json()
    response = request(client, "GET", api.base + path, token=api.token, headers={"sc-unit-system": "imperial"})
    assert response.json() == metric
    assert "SC-Unit-System" not in response
