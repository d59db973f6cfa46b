"""The hot path's query budget, with a provider that does no queries of its own (the API layer alone).

token lookup (1) + connection with its vehicle (1) + last_request_at stamp (1, at most once a minute).
The rate limits still run, on an in-memory cache (see the in_memory_cache fixture).
"""

import pytest

from tests.vehicles.api_helpers import request

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_memory_cache")]
ALL_READS = ["/", "/vin", "/odometer", "/location", "/security", "/fuel", "/battery", "/battery/capacity", "/charge",
             "/charge/limit", "/tires/pressure", "/engine/oil"]  # fmt: skip


@pytest.mark.parametrize("path", ALL_READS)
def test_a_read_takes_three_queries_then_two(client, api, path, django_assert_num_queries):
    with django_assert_num_queries(3):
        assert request(client, "GET", api.base + path, token=api.token).status_code == 200
    with django_assert_num_queries(2):
        assert request(client, "GET", api.base + path, token=api.token).status_code == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/security", {"action": "LOCK"}),
        ("/charge", {"action": "START"}),
        ("/charge/limit", {"limit": "0.8"}),
        ("/navigation/destination", {"latitude": 1, "longitude": 2}),
    ],
)
def test_an_action_takes_three_queries(client, api, path, body, django_assert_num_queries):
    with django_assert_num_queries(3):
        assert request(client, "POST", api.base + path, token=api.token, body=body).status_code == 200


def test_a_batch_takes_three_queries_however_long(client, api, django_assert_num_queries):
    body = {"requests": [{"path": path} for path in ALL_READS * 4]}
    with django_assert_num_queries(3):
        assert request(client, "POST", api.base + "/batch", token=api.token, body=body).status_code == 200


def test_free_endpoints(client, api, django_assert_num_queries):
    with django_assert_num_queries(1):
        request(client, "GET", "/v2.0/user", token=api.token)
    with django_assert_num_queries(2):  # the page says the count
        request(client, "GET", "/v2.0/vehicles", token=api.token)
    with django_assert_num_queries(3):  # a full page needs the count
        request(client, "GET", "/v2.0/vehicles?limit=1", token=api.token)
    with django_assert_num_queries(2):
        request(client, "GET", api.base + "/permissions", token=api.token)
    with django_assert_num_queries(3):
        request(client, "DELETE", api.base + "/application", token=api.token)


def test_failures_stop_early(client, api, django_assert_num_queries):
    with django_assert_num_queries(0):
        request(client, "GET", api.base + "/vin")
        request(client, "GET", "/v2.0/nope", token=api.token)
    with django_assert_num_queries(1):
        request(client, "GET", api.base + "/vin", token="unknown")
    with django_assert_num_queries(1):
        request(client, "GET", "/v2.0/vehicles/bad/vin", token=api.token)


def test_management_endpoints(client, api, management, django_assert_num_queries):
    with django_assert_num_queries(2):
        request(client, "GET", "/v2.0/management/connections", headers=management)
    # auth, select, update, and the savepoint pair of the transaction inside the test's own
    with django_assert_num_queries(5):
        request(client, "DELETE", f"/v2.0/management/connections?user_id={api.owner.public_id}", headers=management)
