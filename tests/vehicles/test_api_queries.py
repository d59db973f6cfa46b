"""The hot path's query budget, with a provider that does no queries of its own (the API layer alone).

A billable read, once the period and its rollup row exist: token (1), connection with its vehicle (1),
the billing period (1), then the reservation: conditional UPDATE of the period, SELECT of its terms,
EXISTS of the active vehicle, INSERT of the usage event, UPDATE of the daily rollup (5), inside a
transaction (a savepoint pair here, BEGIN/COMMIT in production): 10 statements. The connection's
last_request_at stamp adds one at most once a minute. A free request: token, period, rollup UPDATE.
The rate limits still run, on an in-memory cache (see the in_memory_cache fixture).
"""

import pytest

from billing.models import BillingPeriod
from tests.vehicles.api_helpers import request

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_memory_cache")]
ALL_READS = ["/", "/vin", "/odometer", "/location", "/security", "/fuel", "/battery", "/battery/capacity", "/charge",
             "/charge/limit", "/tires/pressure", "/engine/oil"]  # fmt: skip
BILLABLE = 10
STAMP = 1


@pytest.mark.parametrize("path", ALL_READS)
def test_a_billable_read_takes_ten_statements_and_a_stamp_a_minute(client, api, path, django_assert_num_queries):
    request(client, "GET", api.base + path, token=api.token)  # opens the period and the rollup row, stamps
    with django_assert_num_queries(BILLABLE):
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
def test_an_action_costs_what_a_read_does(client, api, path, body, django_assert_num_queries):
    request(client, "POST", api.base + path, token=api.token, body=body)
    with django_assert_num_queries(BILLABLE):
        assert request(client, "POST", api.base + path, token=api.token, body=body).status_code == 200


def test_a_batch_costs_one_reservation_per_sub_request(client, api, django_assert_num_queries):
    body = {"requests": [{"path": path} for path in ALL_READS]}
    request(client, "POST", api.base + "/batch", token=api.token, body=body)
    # token + connection, then per sub-request the period and its reservation (each counts on its own)
    with django_assert_num_queries(2 + len(ALL_READS) * (BILLABLE - 2)):
        assert request(client, "POST", api.base + "/batch", token=api.token, body=body).status_code == 200


FREE = 2  # the period, and the UPDATE of the request's daily rollup row
FIRST_OF_THE_DAY = 3  # a new rollup row: INSERT in its own savepoint


def test_free_endpoints(client, api, django_assert_num_queries):
    for warm_up in ("/v2.0/user", "/v2.0/vehicles", api.base + "/permissions"):  # create the rollup rows
        request(client, "GET", warm_up, token=api.token)
    with django_assert_num_queries(1 + FREE):
        request(client, "GET", "/v2.0/user", token=api.token)
    with django_assert_num_queries(2 + FREE):  # the page says the count
        request(client, "GET", "/v2.0/vehicles", token=api.token)
    with django_assert_num_queries(3 + FREE):  # a full page needs the count
        request(client, "GET", "/v2.0/vehicles?limit=1", token=api.token)
    with django_assert_num_queries(2 + FREE):
        request(client, "GET", api.base + "/permissions", token=api.token)
    with django_assert_num_queries(3 + FREE + FIRST_OF_THE_DAY):
        request(client, "DELETE", api.base + "/application", token=api.token)


KEY_CLAIM = 3  # the key's INSERT, in a savepoint of its own
KEY_STORED = 1  # the UPDATE keeping the answer for retries
KEY_REFUSED = 5  # the INSERT the stored key refuses (with its savepoint) and the SELECT of the stored answer


def test_an_idempotency_key_costs_its_claim_and_a_replay_still_checks_the_connection(
    client, api, django_assert_num_queries
):
    url = api.base + "/vin"
    for key in ("warm-up", "warm-up"):  # opens the period and the rollup rows of a billable read and of a replay
        request(client, "GET", url, token=api.token, headers={"Idempotency-Key": key})
    keyed = {"Idempotency-Key": "once"}
    with django_assert_num_queries(BILLABLE + KEY_CLAIM + KEY_STORED):
        assert request(client, "GET", url, token=api.token, headers=keyed).status_code == 200
    with django_assert_num_queries(2 + KEY_REFUSED + FREE):  # token and connection first: who may see the answer
        assert request(client, "GET", url, token=api.token, headers=keyed)["Idempotent-Replayed"] == "true"


def test_failures_stop_early(client, api, django_assert_num_queries):
    with django_assert_num_queries(0):  # no team to count them for
        request(client, "GET", api.base + "/vin")
        request(client, "GET", "/v2.0/nope", token=api.token)
    with django_assert_num_queries(1):
        request(client, "GET", api.base + "/vin", token="unknown")
    request(client, "GET", "/v2.0/vehicles/bad/vin", token=api.token)
    with django_assert_num_queries(1 + FREE):
        request(client, "GET", "/v2.0/vehicles/bad/vin", token=api.token)


def test_management_endpoints(client, api, management, django_assert_num_queries):
    request(client, "GET", "/v2.0/management/connections", headers=management)
    with django_assert_num_queries(2 + FREE):
        request(client, "GET", "/v2.0/management/connections", headers=management)
    # auth, select, update, and the savepoint pair of the transaction inside the test's own
    with django_assert_num_queries(5 + FREE):
        request(client, "DELETE", f"/v2.0/management/connections?user_id={api.owner.public_id}", headers=management)


# token, connection, period, then the failure's rollup (period, UPDATE); and, before the retry check (an EXISTS of
# the request's usage event), a full period tries the conditional UPDATE in a savepoint (4) and checks its 100% alert
REFUSED_FULL = 3 + 4 + 1 + 1 + 2
REFUSED_CLOSED_EARLY = 3 + 1 + 2  # decided from the period row already read: its status


@pytest.mark.parametrize(("why", "budget"), [("full", REFUSED_FULL), ("closed early", REFUSED_CLOSED_EARLY)])
def test_a_refusal_costs_fewer_statements_than_a_billable_read(client, api, why, budget, django_assert_num_queries):
    """A period closed early (time travel) is refused from the row the hot path reads anyway: no extra query."""
    request(client, "GET", api.base + "/odometer", token=api.token)  # opens the period and the rollup rows
    changes = {"status": "closed"} if why == "closed early" else {"requests_used": 100}
    BillingPeriod.objects.filter(team=api.team).update(**changes)
    request(client, "GET", api.base + "/odometer", token=api.token)  # the failure's rollup row
    with django_assert_num_queries(budget):
        assert request(client, "GET", api.base + "/odometer", token=api.token).status_code == 430
