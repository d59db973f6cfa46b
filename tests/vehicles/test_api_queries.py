"""The hot path's query budget, with a provider that does no queries of its own (the API layer alone).

Measured as production runs, outside any test transaction (autocommit). Every request starts with one query for
the token, its grant and, on /vehicles/{id}/..., the connection with its vehicle (vehicles/api/lookup.py).

- A billable read, once the period and its rollup row exist, on PostgreSQL: that query and one call of
  `ignition_reserve`, the reservation in one round trip (billing/metering.py). On SQLite, the reservation's full
  path: the period, then BEGIN, the conditional UPDATE of the period, the SELECT of its terms, the EXISTS of the
  active vehicle, the INSERT of the usage event and the rollup's upsert.
- A request that costs nothing: that query alone as production runs, the count gathered in the worker and written
  by its thread (billing/unbilled.py); with UNBILLED_FLUSH_SECONDS=0, as the test suite runs, one upsert of the
  daily rollup more (which finds the period itself).
- The connection's last_request_at stamp adds one UPDATE at most once a minute.
- The request log's row (the Logs tab) is gathered in the worker and written by its thread (requestlog/buffer.py):
  no statement on the request path. These tests gather it the same way (the request_log_gathered fixture).

The rate limits still run, on an in-memory cache (see the in_memory_cache fixture).
"""

import pytest
from django.db import connection

from billing import metering, unbilled
from billing.models import BillingPeriod
from tests.vehicles.api_helpers import request

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("in_memory_cache", "request_log_gathered"),
]
ALL_READS = ["/", "/vin", "/odometer", "/location", "/security", "/fuel", "/battery", "/battery/capacity", "/charge",
             "/charge/limit", "/tires/pressure", "/engine/oil"]  # fmt: skip
ON_POSTGRES = connection.vendor == "postgresql"
TRANSACTION = 2  # BEGIN, and its COMMIT or ROLLBACK
FAST_PATH = 1 if ON_POSTGRES else 0  # the call of ignition_reserve, even when it declines
# One function call, or the full path: the period, the transaction, and in it the conditional UPDATE of the
# period, the SELECT of its terms, the EXISTS of the active vehicle, the event's INSERT and the rollup's upsert.
RESERVATION = 1 if ON_POSTGRES else 1 + TRANSACTION + 5
BILLABLE = 1 + RESERVATION
FREE = 1  # the rollup's upsert


@pytest.mark.parametrize("path", ALL_READS)
def test_a_billable_read_takes_two_statements_on_postgresql_and_a_stamp_a_minute(
    client, api, path, django_assert_num_queries
):
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
    # the token with the connection, then per sub-request its reservation (each counts on its own)
    with django_assert_num_queries(1 + len(ALL_READS) * RESERVATION):
        assert request(client, "POST", api.base + "/batch", token=api.token, body=body).status_code == 200


def test_free_endpoints(client, api, django_assert_num_queries):
    for warm_up in ("/v2.0/user", "/v2.0/vehicles", api.base + "/permissions"):  # create the rollup rows
        request(client, "GET", warm_up, token=api.token)
    with django_assert_num_queries(1 + FREE):
        request(client, "GET", "/v2.0/user", token=api.token)
    with django_assert_num_queries(2 + FREE):  # the page says the count
        request(client, "GET", "/v2.0/vehicles", token=api.token)
    with django_assert_num_queries(3 + FREE):  # a full page needs the count
        request(client, "GET", "/v2.0/vehicles?limit=1", token=api.token)
    with django_assert_num_queries(1 + FREE):  # the connection comes with the token
        request(client, "GET", api.base + "/permissions", token=api.token)
    with django_assert_num_queries(2 + FREE):  # the connections' UPDATE
        request(client, "DELETE", api.base + "/application", token=api.token)


def test_with_counts_gathered_in_the_worker_a_free_request_is_its_lookup_alone(
    client, api, settings, monkeypatch, django_assert_num_queries
):
    settings.UNBILLED_FLUSH_SECONDS = 1  # as in production, into a buffer of the test's own (its thread waits)
    monkeypatch.setattr(metering, "_unbilled", unbilled.UnbilledBuffer(metering._write_gathered, lambda: 3600))
    with django_assert_num_queries(1):
        request(client, "GET", "/v2.0/user", token=api.token)
    with django_assert_num_queries(1):
        request(client, "GET", api.base + "/permissions", token=api.token)
    assert metering.flush_unbilled() == 2


KEY_CLAIM = 1 + TRANSACTION  # the key's INSERT, in a transaction of its own
KEY_STORED = 1  # the UPDATE keeping the answer for retries
KEY_REFUSED = 1 + TRANSACTION + 1  # the INSERT the stored key refuses, and the SELECT of the stored answer


def test_an_idempotency_key_costs_its_claim_and_a_replay_still_checks_the_connection(
    client, api, django_assert_num_queries
):
    url = api.base + "/vin"
    for key in ("warm-up", "warm-up"):  # opens the period and the rollup rows of a billable read and of a replay
        request(client, "GET", url, token=api.token, headers={"Idempotency-Key": key})
    keyed = {"Idempotency-Key": "once"}
    with django_assert_num_queries(BILLABLE + KEY_CLAIM + KEY_STORED):
        assert request(client, "GET", url, token=api.token, headers=keyed).status_code == 200
    with django_assert_num_queries(1 + KEY_REFUSED + FREE):  # token and connection first: who may see the answer
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


# The lookup and the fast path's try, then the full path: the period; a full one tries the conditional UPDATE (in a
# transaction) and checks its 100% alert, a closed one is refused from the row read; both check for a retry of a
# counted request (an EXISTS of its usage event); then the failure's rollup.
REFUSED_FULL = 1 + FAST_PATH + 1 + TRANSACTION + 1 + 1 + 1 + FREE
REFUSED_CLOSED_EARLY = 1 + FAST_PATH + 1 + 1 + FREE


@pytest.mark.parametrize(("why", "budget"), [("full", REFUSED_FULL), ("closed early", REFUSED_CLOSED_EARLY)])
def test_a_refusal_costs_a_few_statements_and_writes_only_its_rollup(
    client, api, why, budget, django_assert_num_queries
):
    request(client, "GET", api.base + "/odometer", token=api.token)  # opens the period and the rollup rows
    changes = {"status": "closed"} if why == "closed early" else {"requests_used": 100}
    BillingPeriod.objects.filter(team=api.team).update(**changes)
    request(client, "GET", api.base + "/odometer", token=api.token)  # raises the 100% alert once
    with django_assert_num_queries(budget):
        assert request(client, "GET", api.base + "/odometer", token=api.token).status_code == 430
