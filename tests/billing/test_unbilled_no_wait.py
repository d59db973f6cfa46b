"""Non-billable counts commit without waiting for the disk; nothing else does.

On PostgreSQL `metering.record_unbilled`, run as its own transaction (as the API runs it, in autocommit), turns
`synchronous_commit` off for that one transaction: a team's requests no longer queue behind one another's WAL
flushes on the rollup row's lock (docs/performance.md has what it gains and what a crash can lose). These tests
hold the two rules that keep money safe: the setting never outlives that transaction, on a connection the next
billable reservation reuses, and it is never taken inside a caller's transaction, whose own writes must commit
durably. Run outside a test transaction, as behind gunicorn.
"""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing import metering
from tests.billing.usage import ODOMETER, non_billable_requests
from tests.factories import ApplicationFactory, TeamFactory
from tests.vehicles.api_helpers import make_owner, make_vehicle

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


@pytest.fixture
def durable() -> str:
    """The server's own setting, what every other transaction commits with ("on" unless a DBA chose otherwise)."""
    setting = synchronous_commit()
    assert setting != "off", "these tests need a server that commits durably by default"
    return setting


@pytest.fixture
def team_with_vehicle():
    team = TeamFactory()
    application = ApplicationFactory(team=team)
    vehicle = make_vehicle(make_owner())
    # The first count opens the period (a durable path of its own); the tests look at the ones after it.
    metering.record_unbilled(team_id=team.pk, application_id=application.pk, vehicle_id=vehicle.pk, endpoint=ODOMETER)
    return team, application, vehicle


def count_unbilled(team, application, vehicle):
    metering.record_unbilled(team_id=team.pk, application_id=application.pk, vehicle_id=vehicle.pk, endpoint=ODOMETER)


def test_in_autocommit_the_count_lands_without_waiting_and_the_setting_ends_with_it(team_with_vehicle, durable):
    team, application, vehicle = team_with_vehicle
    with CaptureQueriesContext(connection) as queries:
        count_unbilled(team, application, vehicle)
        count_unbilled(team, application, vehicle)
    assert non_billable_requests(team) == 3
    assert len(queries) == 2  # one statement a count
    assert all("set_config('synchronous_commit', 'off', true)" in query["sql"] for query in queries)
    # The same persistent connection serves the next request, which may be billable: it commits durably.
    assert synchronous_commit() == durable


def test_a_billable_reservation_after_an_unbilled_count_commits_durably(team_with_vehicle, durable):
    team, application, vehicle = team_with_vehicle
    count_unbilled(team, application, vehicle)
    with transaction.atomic():
        reservation = metering.reserve(
            request_id="after-an-unbilled-count",
            team_id=team.pk,
            application_id=application.pk,
            vehicle_id=vehicle.pk,
            endpoint=ODOMETER,
        )
        assert synchronous_commit() == durable  # what this transaction's commit will obey
    assert reservation.counted


def test_inside_a_callers_transaction_the_count_commits_with_it_durably(team_with_vehicle, durable):
    team, application, vehicle = team_with_vehicle
    with transaction.atomic():
        count_unbilled(team, application, vehicle)
        # set_config(..., true) would last to the end of this transaction and cover the caller's writes too.
        assert synchronous_commit() == durable
    assert non_billable_requests(team) == 2


def test_the_no_wait_statement_turns_the_wait_off_for_its_transaction(team_with_vehicle, durable):
    """What makes the autocommit test above mean something: the statement does switch the setting (seen here
    from inside a transaction, which the code itself never runs it in)."""
    team, application, vehicle = team_with_vehicle
    now = timezone.now()
    at, day = connection.ops.adapt_datetimefield_value(now), now.date()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                metering._UPSERT_UNBILLED_NO_WAIT, [day, application.pk, vehicle.pk, ODOMETER, 1, team.pk, at, at]
            )
            assert cursor.rowcount == 1
        assert synchronous_commit() == "off"
        transaction.set_rollback(True)
    assert synchronous_commit() == durable
    assert non_billable_requests(team) == 1
