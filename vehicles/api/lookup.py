"""The vehicle API's first query: who is calling and, for /vehicles/{id}/..., which vehicle, in one round trip.

One SELECT joins the bearer token to its live grant, owner and application and, when the path names a vehicle,
to this grant's live connection to that vehicle with the vehicle row. It is the query every API request makes, so
it is written as SQL once, at import, from the models' own table and column names: the ORM would otherwise spend
longer compiling it than PostgreSQL spends answering it. Values go through the converters the ORM itself applies
to each column, so it answers the same Python values on PostgreSQL and SQLite.

Nothing is cached: a revoked token, grant or connection is refused by the very next request. A connection the
server dropped is replaced once, here, as the request's first statement (the hot path skips Django's health check).
"""

import uuid
from dataclasses import dataclass

from django.db import OperationalError, connections, router
from django.utils import timezone

from accounts.credentials import hash_secret
from accounts.models import Application
from dashboard.prepared import prepared_cursor
from vehicles.models import AccessToken, Connection, Grant, Mode, SimulatedOwner, SimulatedVehicle


@dataclass(frozen=True)
class Access:
    """Who a bearer token speaks for: the application (and its team), the owner and the scopes."""

    grant_id: int
    application_id: int
    team_id: int
    owner_id: int
    owner_public_id: uuid.UUID
    scopes: frozenset[str]
    test_mode: bool = False  # a Connect test-mode owner: never metered


@dataclass(frozen=True)
class Lookup:
    access: Access | None  # None: the token is unknown, expired or revoked (401)
    connection: Connection | None = None  # the grant's live connection to the vehicle asked for, vehicle loaded


def _fields(model, alias):
    return [(alias, field) for field in model._meta.concrete_fields]


# The columns read, in order: the access, then the connection and the vehicle (NULLs when there is none).
_ACCESS_COLUMNS = [
    ("g", Grant._meta.get_field("id")),
    ("g", Grant._meta.get_field("application")),
    ("a", Application._meta.get_field("team")),
    ("g", Grant._meta.get_field("owner")),
    ("o", SimulatedOwner._meta.get_field("public_id")),
    ("o", SimulatedOwner._meta.get_field("mode")),
    ("g", Grant._meta.get_field("scopes")),
]
# Of the connection, what the views use; its grant and application are the access's, its revoked_at NULL (the join
# says so), and connected_at is left deferred: each timestamp column read costs the hot path a Python loader.
_CONNECTION_COLUMNS = [("c", Connection._meta.get_field(name)) for name in ("id", "vehicle", "last_request_at")]
_VEHICLE_COLUMNS = _fields(SimulatedVehicle, "v")
_COLUMNS = _ACCESS_COLUMNS + _CONNECTION_COLUMNS + _VEHICLE_COLUMNS
_CONNECTION_ATTNAMES = [field.attname for _, field in _CONNECTION_COLUMNS]
_VEHICLE_ATTNAMES = [field.attname for _, field in _VEHICLE_COLUMNS]


def _table(model) -> str:
    return model._meta.db_table


def _select_list() -> str:
    return ", ".join(f'{alias}."{field.column}"' for alias, field in _COLUMNS)


# Parameters: the vehicle's public id (NULL when the path names none), the token's hash, now. Only the models'
# own table and column names are formatted in.
_SQL = f"""
SELECT {_select_list()}
FROM "{_table(AccessToken)}" t
JOIN "{_table(Grant)}" g ON g."id" = t."grant_id" AND g."revoked_at" IS NULL
JOIN "{_table(SimulatedOwner)}" o ON o."id" = g."owner_id"
JOIN "{_table(Application)}" a ON a."id" = g."application_id"
LEFT JOIN "{_table(SimulatedVehicle)}" v ON v."public_id" = %s
LEFT JOIN "{_table(Connection)}" c ON c."grant_id" = g."id" AND c."vehicle_id" = v."id" AND c."revoked_at" IS NULL
WHERE t."token_hash" = %s AND t."expires_at" > %s
"""  # noqa: S608

_converters_by_alias: dict[str, list] = {}


def _converters(connection) -> list:
    """The columns the ORM converts on this database, with their converters (built once per connection alias)."""
    converters = _converters_by_alias.get(connection.alias)
    if converters is None:
        converters = []
        for index, (alias, field) in enumerate(_COLUMNS):
            column = field.get_col(alias)
            column_converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            if column_converters:
                converters.append((index, column, column_converters))
        _converters_by_alias[connection.alias] = converters
    return converters


def _converted(row, connection) -> list:
    values = list(row)
    for index, column, converters in _converters(connection):
        for convert in converters:
            values[index] = convert(values[index], column, connection)
    return values


def _fetch(connection, params: list):
    with prepared_cursor(connection.alias) as cursor:
        cursor.execute(_SQL, params)
        return cursor.fetchone()


def lookup(token: str, vehicle_id: uuid.UUID | None = None) -> Lookup:
    """The access `token` carries and, if `vehicle_id` is given, its grant's live connection to that vehicle."""
    if not token:
        return Lookup(access=None)
    connection = connections[router.db_for_read(AccessToken)]
    public_id = (
        SimulatedVehicle._meta.get_field("public_id").get_db_prep_value(vehicle_id, connection) if vehicle_id else None
    )
    params = [public_id, hash_secret(token), connection.ops.adapt_datetimefield_value(timezone.now())]
    try:
        row = _fetch(connection, params)
    except OperationalError:
        # The request's first statement, on a persistent connection sent without Django's health check (it would
        # cost a round trip): if the server dropped the connection (a restart, a failover), once more on a new one.
        if connection.in_atomic_block or connection.is_usable():
            raise
        connection.close()
        row = _fetch(connection, params)
    if row is None:
        return Lookup(access=None)
    values = _converted(row, connection)
    grant_id, application_id, team_id, owner_id, owner_public_id, mode, scopes = values[: len(_ACCESS_COLUMNS)]
    access = Access(
        grant_id=grant_id,
        application_id=application_id,
        team_id=team_id,
        owner_id=owner_id,
        owner_public_id=owner_public_id,
        scopes=frozenset(scopes),
        test_mode=mode == Mode.TEST,
    )
    start = len(_ACCESS_COLUMNS)
    connection_values = values[start : start + len(_CONNECTION_COLUMNS)]
    if connection_values[0] is None:
        return Lookup(access=access)
    found = Connection.from_db(connection.alias, _CONNECTION_ATTNAMES, connection_values)
    found.grant_id, found.application_id, found.revoked_at = grant_id, application_id, None
    vehicle_values = values[start + len(_CONNECTION_COLUMNS) :]
    found.vehicle = SimulatedVehicle.from_db(connection.alias, _VEHICLE_ATTNAMES, vehicle_values)
    return Lookup(access=access, connection=found)
