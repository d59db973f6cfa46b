"""The request log's rows gathered in a process and written in one go (requestlog/buffer.py, on dashboard/buffers.py).

The thread, the write at exit and the fork are dashboard/buffers.py's, shared with the non-billable counts (whose
tests, tests/billing/test_unbilled_buffer.py, cover the fork). Here: what is gathered waits, is written once, on
PostgreSQL through COPY, and a failed write drops its rows with a log line rather than writing them twice.
"""

import logging
import uuid

import pytest
from django.utils import timezone

from requestlog import buffer, services
from requestlog.models import ApiRequest
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db(transaction=True)  # the writes are the buffer's own transactions


def log_one(team, **fields) -> str:
    request_id = str(uuid.uuid4())
    values = {"method": "GET", "endpoint": "/user", "path": "/v2.0/user", "status": 200} | fields
    services.record(
        team_id=team.pk,
        occurred_at=timezone.now(),
        request_id=request_id,
        application_id=None,
        vehicle_id=None,
        **values,
    )
    return request_id


def test_rows_wait_in_memory_and_are_written_once(request_log_gathered):
    team = TeamFactory()
    ids = [log_one(team) for _ in range(3)]
    assert not ApiRequest.objects.exists()  # nothing on the request path
    assert services.flush() == 3
    assert services.flush() == 0
    row = ApiRequest.objects.get(request_id=ids[0])
    assert (row.team_id, row.status, row.billable, row.application_key, row.vehicle_key) == (team.pk, 200, False, 0, 0)
    assert set(ApiRequest.objects.values_list("request_id", flat=True)) == set(ids)


def test_values_survive_the_copy_exactly(request_log_gathered):
    """COPY on PostgreSQL, a bulk insert elsewhere: the same row either way."""
    team = TeamFactory()
    moment = timezone.now()
    request_id = str(uuid.uuid4())
    services.record(
        team_id=team.pk,
        occurred_at=moment,
        request_id=request_id,
        application_id=7,
        vehicle_id=9,
        method="POST",
        endpoint="/vehicles/{id}/security",
        path="/v2.0/vehicles/é\t\\n/security",  # what COPY's text format must escape
        status=409,
        error_type="VEHICLE_STATE",
        error_code="ASLEEP",
        price_cents=None,
        duration_ms=12,
        batch_request_id="b" * 36,
    )
    services.flush()
    row = ApiRequest.objects.get(request_id=request_id)
    assert (row.occurred_at, row.path, row.error_type, row.error_code) == (
        moment,
        "/v2.0/vehicles/é\t\\n/security",
        "VEHICLE_STATE",
        "ASLEEP",
    )
    assert (row.application_key, row.vehicle_key, row.duration_ms, row.batch_request_id) == (7, 9, 12, "b" * 36)


def test_a_failed_write_is_logged_and_its_rows_are_not_written_again(caplog):
    written = []

    def write(rows):
        if not written:
            written.append("failed")
            raise ConnectionError("the database is down")
        written.append(list(rows))

    gathered = buffer.RequestLogBuffer(write, interval=lambda: 3600)
    gathered.add(("a",))
    gathered.add(("b",))
    with caplog.at_level(logging.ERROR, logger="dashboard.buffers"):
        assert gathered.flush() == 2
    assert "Could not write 2 request log rows" in caplog.text
    gathered.add(("c",))
    gathered.flush()
    assert written[1:] == [[("c",)]]


def test_a_row_for_a_team_deleted_meanwhile_drops_that_write_only(request_log_gathered, caplog):
    gone, kept = TeamFactory(), TeamFactory()
    log_one(gone)
    gone.delete()
    with caplog.at_level(logging.ERROR, logger="dashboard.buffers"):
        services.flush()
    assert "Could not write 1 request log rows" in caplog.text
    request_id = log_one(kept)
    services.flush()
    assert list(ApiRequest.objects.values_list("request_id", flat=True)) == [request_id]
