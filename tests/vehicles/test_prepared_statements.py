"""The vehicle API's hot statements are prepared once per PostgreSQL connection (dashboard/prepared.py)."""

import pytest
from django.db import connection

from tests.vehicles.api_helpers import request

# Outside a test transaction, as production runs: no savepoint around the reservation.
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("in_memory_cache", "request_log_gathered"),  # the log's rows: gathered, as in production
]


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [statement for (statement,) in cursor.fetchall()]


def test_the_lookup_and_the_reservation_are_planned_once_and_logged_as_written(client, api, django_assert_num_queries):
    request(client, "GET", api.base + "/odometer", token=api.token)  # opens the period with the full path
    for _ in range(3):
        with django_assert_num_queries(2) as queries:  # the lookup and ignition_reserve (and nothing to stamp)
            assert request(client, "GET", api.base + "/odometer", token=api.token).status_code == 200

    statements = prepared_statements()
    assert sum('FROM "vehicles_accesstoken" t' in statement for statement in statements) == 1
    assert sum("ignition_reserve(" in statement for statement in statements) == 1
    logged = [query["sql"] for query in queries.captured_queries]
    assert logged[0].lstrip().startswith("SELECT g.") and logged[1].startswith("SELECT * FROM ignition_reserve(")


def test_the_dashboards_own_queries_are_not_prepared(client, api):
    from accounts.models import Team

    for _ in range(3):
        list(Team.objects.filter(name="not prepared"))
    assert not any("not prepared" in statement or "accounts_team" in statement for statement in prepared_statements())
