"""Non-billable counts gathered in memory and written about once a second (billing/unbilled.py).

Each test turns the buffer on in this process (the suite writes counts at once, tests/conftest.py) and writes
with `metering.flush_unbilled()`, as the process's thread does every UNBILLED_FLUSH_SECONDS. The same over HTTP,
gunicorn's own thread and its exit included: test_unbilled_buffer_over_http.py.
"""

import logging
import os
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from billing import lifecycle, metering, unbilled
from billing.models import BillingPeriod, UsageDaily
from tests.billing.usage import ODOMETER
from tests.factories import ApplicationFactory, TeamFactory
from tests.vehicles.api_helpers import make_owner, make_vehicle

pytestmark = pytest.mark.django_db(transaction=True)  # the writes are the buffer's own transactions

USER = "/user"


@pytest.fixture
def buffered(settings, monkeypatch):
    """Counts gathered as in production, in a buffer of the test's own whose thread waits an hour: the test writes."""
    settings.UNBILLED_FLUSH_SECONDS = 1
    monkeypatch.setattr(metering, "_unbilled", unbilled.UnbilledBuffer(metering._write_gathered, lambda: 3600))


@pytest.fixture
def fleet():
    team = TeamFactory()
    return team, ApplicationFactory(team=team), make_vehicle(make_owner())


def rollups(team) -> dict:
    rows = (
        UsageDaily.objects.filter(period__team=team)
        .values_list("endpoint", "vehicle_key")
        .annotate(n=Sum("non_billable"))
    )
    return {(endpoint, vehicle): n for endpoint, vehicle, n in rows}


def count(team, application, vehicle, endpoint=ODOMETER, now=None):
    vehicle_id = vehicle.pk if vehicle else None
    metering.record_unbilled(
        team_id=team.pk, application_id=application.pk, vehicle_id=vehicle_id, endpoint=endpoint, now=now
    )


def test_counts_wait_in_memory_and_are_written_once_per_row(buffered, fleet):
    team, application, vehicle = fleet
    for _ in range(3):
        count(team, application, vehicle)
    count(team, application, None, USER)
    assert rollups(team) == {}  # not written yet: not even the period is opened on the request path
    assert metering.flush_unbilled() == 4
    assert rollups(team) == {(ODOMETER, vehicle.pk): 3, (USER, 0): 1}
    assert metering.flush_unbilled() == 0  # written once: a second write adds nothing
    count(team, application, vehicle)
    metering.flush_unbilled()
    assert rollups(team) == {(ODOMETER, vehicle.pk): 4, (USER, 0): 1}


def test_counts_are_written_to_the_period_holding_their_streams_first_moment(buffered):
    with time_machine.travel(datetime(2026, 3, 10, 12, 0, tzinfo=UTC), tick=False):
        team = TeamFactory()
        application = ApplicationFactory(team=team)
        first = lifecycle.current_period(team.pk)
    owner = make_owner()
    early, late = make_vehicle(owner), make_vehicle(owner)
    count(team, application, early, now=first.end - timedelta(seconds=1))
    count(team, application, early, now=first.end - timedelta(milliseconds=500))
    count(team, application, late, now=first.end + timedelta(seconds=1))  # the next period's (and UTC day's)
    with time_machine.travel(first.end + timedelta(minutes=5)):  # the thread writes after the end
        assert metering.flush_unbilled() == 3
    second = BillingPeriod.objects.get(team=team, start=first.end)
    assert UsageDaily.objects.get(period=first, vehicle_key=early.pk).non_billable == 2
    assert UsageDaily.objects.get(period=second, vehicle_key=late.pk).non_billable == 1
    assert not UsageDaily.objects.filter(period=first, vehicle_key=late.pk).exists()


def test_a_stream_that_cannot_be_written_is_dropped_and_the_others_are_written(buffered, fleet, caplog):
    team, application, vehicle = fleet
    gone = TeamFactory()
    gone_id = gone.pk
    gone.delete()  # between its requests and the write
    metering.record_unbilled(team_id=gone_id, application_id=None, vehicle_id=None, endpoint=USER)
    count(team, application, vehicle)
    with caplog.at_level(logging.ERROR, logger="billing.metering"):
        assert metering.flush_unbilled() == 2
    assert f"Could not write 1 non-billable request counts of team {gone_id}" in caplog.text
    assert rollups(team) == {(ODOMETER, vehicle.pk): 1}


def test_inside_a_callers_transaction_the_count_is_written_with_it(buffered, fleet):
    team, application, vehicle = fleet
    with transaction.atomic():
        count(team, application, vehicle)
        assert rollups(team) == {(ODOMETER, vehicle.pk): 1}
    assert metering.flush_unbilled() == 0


def test_at_zero_seconds_each_count_is_written_with_its_request(settings, fleet):
    settings.UNBILLED_FLUSH_SECONDS = 0
    team, application, vehicle = fleet
    count(team, application, vehicle)
    assert rollups(team) == {(ODOMETER, vehicle.pk): 1}


def test_a_failed_write_is_logged_and_never_counted_twice(caplog):
    written = []

    def write(gathered):
        if not written:
            written.append("failed")
            raise ConnectionError("the database is down")
        written.append(gathered)

    buffer = unbilled.UnbilledBuffer(write, interval=lambda: 3600)
    stream = unbilled.Stream(1, 2, 3, ODOMETER, timezone.now().date())
    buffer.add(stream, timezone.now())
    buffer.add(stream, timezone.now())
    with caplog.at_level(logging.ERROR, logger="dashboard.buffers"):
        assert buffer.flush() == 2
    assert "Could not write 2 non-billable request counts" in caplog.text
    assert buffer.pending() == 0
    buffer.add(stream, timezone.now())
    buffer.flush()
    assert [gathered[stream].count for gathered in written[1:]] == [1]  # the dropped two are not written again


def test_a_forked_process_drops_its_copy_of_its_parents_counts():
    """gunicorn and Celery fork their workers: a child writing its parent's counts would count them twice."""
    buffer = unbilled.UnbilledBuffer(lambda gathered: None, interval=lambda: 3600)
    stream = unbilled.Stream(1, 2, 3, ODOMETER, timezone.now().date())
    buffer.add(stream, timezone.now())
    buffer.add(stream, timezone.now())
    child = os.fork()
    if child == 0:  # the child: one request of its own
        buffer.add(stream, timezone.now())
        os._exit(buffer.pending())
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 1
    assert buffer.pending() == 2  # the parent's, still its own to write
