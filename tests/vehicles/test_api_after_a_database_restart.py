"""The vehicle API after PostgreSQL drops its connections (a restart, a failover, an idle-session timeout).

gunicorn's workers keep their connections (DB_CONN_MAX_AGE). Django checks a reused connection once a request
before its own queries (CONN_HEALTH_CHECKS), but the API's hot path sends its prepared statements without that
check, to save the round trip (dashboard/prepared.py). So the token lookup, every request's first statement,
retries once on a new connection when the one it had is gone (vehicles/api/lookup.py): the first request after a
restart answers as any other, not 500.
"""

import psycopg
import pytest
import requests
from django.db import connection

from tests.factories import ApplicationFactory, TeamFactory
from tests.processes import gunicorn
from tests.vehicles.api_helpers import make_grant, make_owner, make_token, make_vehicle

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def drop_the_servers_connections(database: str) -> int:
    """What a PostgreSQL restart does to the clients' connections: every backend of `database` but this one ends."""
    with psycopg.connect(
        host=connection.settings_dict["HOST"] or None,
        port=connection.settings_dict["PORT"] or None,
        user=connection.settings_dict["USER"] or None,
        password=connection.settings_dict["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as admin:
        ended = admin.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
            [database],
        ).fetchone()[0]
    connection.close()  # this process's own, ended too
    return ended


def test_the_first_requests_after_the_connections_drop_answer_as_usual(tmp_path):
    team = TeamFactory()
    owner = make_owner()
    car = make_vehicle(owner)
    headers = {"Authorization": f"Bearer {make_token(make_grant(ApplicationFactory(team=team), owner, [car]))}"}
    paths = ("/v2.0/user", f"/v2.0/vehicles/{car.public_id}/odometer", "/v2.0/vehicles")
    database = connection.settings_dict["NAME"]
    with gunicorn(tmp_path / "gunicorn.log", workers=1, DB_CONN_MAX_AGE="600") as (_, base):
        assert [requests.get(base + path, headers=headers, timeout=30).status_code for path in paths] == [200] * 3
        assert drop_the_servers_connections(database) >= 1  # the worker's persistent connection among them
        answers = [requests.get(base + path, headers=headers, timeout=30) for path in paths]
        assert [answer.status_code for answer in answers] == [200] * 3, [answer.text for answer in answers]
