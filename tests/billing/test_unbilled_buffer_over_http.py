"""Non-billable counts over HTTP: gunicorn's workers gather them and write them by themselves.

A real gunicorn serves free requests on the test database: its thread writes the counts about once a second
while it serves, and a graceful stop (a deploy, `max_requests`, Ctrl-C) writes what is left. What a worker killed
outright loses is said in docs/performance.md.
"""

import signal

import pytest
import requests

from tests.billing.usage import non_billable_requests
from tests.factories import ApplicationFactory, TeamFactory
from tests.processes import gunicorn, wait_for
from tests.vehicles.api_helpers import make_grant, make_owner, make_token, make_vehicle

pytestmark = pytest.mark.django_db(transaction=True)  # gunicorn reads what the test wrote


@pytest.fixture
def fleet():
    team = TeamFactory()
    owner = make_owner()
    token = make_token(make_grant(ApplicationFactory(team=team), owner, [make_vehicle(owner)]))
    return team, {"Authorization": f"Bearer {token}"}


def free_requests(base: str, headers: dict, count: int) -> list[int]:
    paths = ("/v2.0/user", "/v2.0/vehicles")
    return [requests.get(base + paths[i % 2], headers=headers, timeout=30).status_code for i in range(count)]


def test_workers_write_their_counts_about_once_a_second_while_serving(fleet, tmp_path):
    team, headers = fleet
    with gunicorn(tmp_path / "gunicorn.log", UNBILLED_FLUSH_SECONDS="1") as (_, base):
        assert free_requests(base, headers, 6) == [200] * 6
        assert wait_for(lambda: non_billable_requests(team) == 6, timeout=15), non_billable_requests(team)
        assert free_requests(base, headers, 3) == [200] * 3
        assert wait_for(lambda: non_billable_requests(team) == 9, timeout=15), non_billable_requests(team)


def test_a_graceful_stop_writes_what_the_workers_gathered(fleet, tmp_path):
    team, headers = fleet
    log = tmp_path / "gunicorn.log"
    with gunicorn(log, UNBILLED_FLUSH_SECONDS="3600") as (process, base):
        assert free_requests(base, headers, 7) == [200] * 7
        assert non_billable_requests(team) == 0  # gathered, not written: the thread would wait an hour
        process.send_signal(signal.SIGTERM)  # gunicorn's graceful stop
        assert process.wait(timeout=60) == 0, log.read_text()
    assert non_billable_requests(team) == 7
