"""A cursor whose statements PostgreSQL plans once per connection: for the vehicle API's few hot statements.

Django's PostgreSQL cursors bind parameters on the client, so PostgreSQL parses and plans every statement
each time; for the API's one-row lookups planning costs more than running (1.4 ms against 0.3 ms for the
token lookup, EXPLAIN ANALYZE on the bench database). `prepared_cursor` gives a Django cursor (queries logged
and errors wrapped as usual) over psycopg's server-side binding cursor, which prepares each statement on its
first use on a connection (`prepare_threshold`, settings.DATABASES; `DB_PREPARED_STATEMENTS=0` turns it off,
e.g. behind PgBouncer in transaction mode before 1.21). Other databases get their ordinary cursor.
"""

from django.db import connections
from django.db.backends.utils import CursorDebugWrapper


class _DebugWrapper(CursorDebugWrapper):
    """Logs the statement as written (with its parameters beside it): Django reads the SQL it logs back from
    client-side binding cursors, and a server-side binding cursor has none to give."""

    def execute(self, sql, params=None):
        with self.debug_sql(sql, params):
            return self._execute_with_wrappers(sql, params, many=False, executor=self._execute)


def prepared_cursor(alias: str = "default"):
    database = connections[alias]
    if database.vendor != "postgresql":
        return database.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    with database.wrap_database_errors:
        database.ensure_connection()
        database.validate_thread_sharing()
        raw = ServerBindingCursor(database.connection)
    return _DebugWrapper(raw, database) if database.queries_logged else database.make_cursor(raw)
