"""The request log over HTTP: gunicorn's workers gather their requests' rows and write them by themselves.

A real gunicorn serves the API on the test database: each worker's thread writes its rows about once a second
(on PostgreSQL with one COPY), and a graceful stop writes what is left. The Logs tab then reads them over HTTP too.
"""

import signal

import pytest
import requests
from django.test import Client

from accounts.roles import Role
from requestlog.models import ApiRequest
from tests.factories import ApplicationFactory, MembershipFactory, TeamFactory
from tests.processes import gunicorn, wait_for
from tests.vehicles.api_helpers import make_grant, make_owner, make_token, make_vehicle

pytestmark = pytest.mark.django_db(transaction=True)  # gunicorn reads what the test wrote


@pytest.fixture
def fleet():
    team = TeamFactory()
    owner = make_owner()
    vehicle = make_vehicle(owner)
    token = make_token(make_grant(ApplicationFactory(team=team), owner, [vehicle]))
    return team, vehicle, {"Authorization": f"Bearer {token}"}


def call(base: str, vehicle, headers: dict, count: int) -> list[str]:
    """`count` requests (odometer reads and free /user calls, alternately); their SC-Request-Ids."""
    paths = (f"/v2.0/vehicles/{vehicle.public_id}/odometer", "/v2.0/user")
    ids = []
    for i in range(count):
        response = requests.get(base + paths[i % 2], headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        ids.append(response.headers["SC-Request-Id"])
    return ids


def logged_ids(team) -> set[str]:
    return set(ApiRequest.objects.filter(team=team).values_list("request_id", flat=True))


def test_workers_write_the_log_about_once_a_second_and_the_tab_shows_it(fleet, tmp_path):
    team, vehicle, headers = fleet
    with gunicorn(tmp_path / "gunicorn.log", REQUEST_LOG_FLUSH_SECONDS="1") as (_, base):
        ids = call(base, vehicle, headers, 6)
        assert wait_for(lambda: logged_ids(team) == set(ids), timeout=15), logged_ids(team)
        rows = ApiRequest.objects.filter(team=team)
        assert sorted(rows.values_list("billable", flat=True)) == [False] * 3 + [True] * 3
        # The Logs tab, over HTTP, as the team's Owner.
        client = Client()
        client.force_login(MembershipFactory(team=team, role=Role.OWNER).user)
        session = client.session
        session["current_team_id"] = team.pk
        session.save()
        page = requests.get(f"{base}/logs/", cookies={"sessionid": session.session_key}, timeout=30)
        assert page.status_code == 200
        assert all(request_id in page.text for request_id in ids)


def test_a_graceful_stop_writes_what_the_workers_gathered(fleet, tmp_path):
    team, vehicle, headers = fleet
    log = tmp_path / "gunicorn.log"
    with gunicorn(log, REQUEST_LOG_FLUSH_SECONDS="3600") as (process, base):
        ids = call(base, vehicle, headers, 7)
        assert logged_ids(team) == set()  # gathered, not written: the thread would wait an hour
        process.send_signal(signal.SIGTERM)  # gunicorn's graceful stop
        assert process.wait(timeout=60) == 0, log.read_text()
    assert logged_ids(team) == set(ids)
    assert "Traceback" not in log.read_text()
