"""Insert many model instances at once, for the billing run: `insert_rows(model, objs)`.

`bulk_create` prepares every value of every row in Python (`get_db_prep_save`, field by field) and, with Django's
client-side binding, writes each of them into the SQL text: closing 10,000 periods spent most of its time there,
not in PostgreSQL (docs/performance.md). On PostgreSQL `insert_rows` sends each column as one array parameter
(server-side binding) and inserts them in one statement:

    INSERT INTO t (id, a, b) SELECT * FROM unnest($1::bigint[], $2::integer[], $3::jsonb[])

The primary keys are drawn from the table's own sequence first (one query), so each instance gets its key without
relying on the order RETURNING gives rows back. Fields of Django's own simple types (integers, text, decimals,
UUIDs, booleans, dates and aware datetimes, foreign keys), with no auto_now stamp, put their attribute straight
into the arrays: for them `pre_save` and `get_db_prep_save` hand psycopg the value unchanged. JSON is serialised
with the field's encoder. Every other field, a subclass included (it may prepare its values its own way), goes
through its own `pre_save` and `get_db_prep_save`, as `bulk_create` would. No signals are sent (as
`bulk_create`). On other databases it is `bulk_create`.
"""

import json

from django.db import connections, models, router

from dashboard.prepared import prepared_cursor

# Field types whose Python value PostgreSQL takes as it is (what get_db_prep_save would hand psycopg unchanged).
# Matched exactly, not with isinstance: a subclass may override how its values are prepared.
_AS_IS = frozenset(
    {
        models.AutoField,
        models.BigAutoField,
        models.SmallAutoField,
        models.IntegerField,
        models.BigIntegerField,
        models.SmallIntegerField,
        models.PositiveIntegerField,
        models.PositiveBigIntegerField,
        models.PositiveSmallIntegerField,
        models.CharField,
        models.TextField,
        models.BooleanField,
        models.DateTimeField,
        models.DateField,
        models.DecimalField,
        models.UUIDField,
        models.ForeignKey,
        models.OneToOneField,
    }
)


def insert_rows(model: type[models.Model], objs: list[models.Model]) -> list[models.Model]:
    """Insert `objs` (unsaved instances of `model`) and set their primary keys; returns `objs`."""
    if not objs:
        return objs
    alias = router.db_for_write(model)
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return model.objects.using(alias).bulk_create(objs)
    meta = model._meta
    fields = [field for field in meta.concrete_fields if not field.generated]
    with prepared_cursor(alias) as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(objs)],
        )
        for obj, (pk,) in zip(objs, cursor.fetchall(), strict=True):
            obj.pk = pk
        columns = [_column(field, objs, connection) for field in fields]
        cursor.execute(_statement(model, fields, connection), columns)
    for obj in objs:
        obj._state.adding, obj._state.db = False, alias
    return objs


def _column(field, objs, connection) -> list:
    """The field's values of `objs`, as the array parameter of its column."""
    as_is = type(field) in _AS_IS
    stamped = getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
    if as_is and not stamped:
        return [getattr(obj, field.attname) for obj in objs]
    values = [field.pre_save(obj, add=True) for obj in objs]
    if as_is:
        return values
    if type(field) is models.JSONField:
        return [None if value is None else json.dumps(value, cls=field.encoder) for value in values]
    return [None if value is None else field.get_db_prep_save(value, connection) for value in values]


_statements: dict[tuple[str, type], str] = {}


def _statement(model, fields, connection) -> str:
    key = (connection.alias, model)
    if key not in _statements:
        quote = connection.ops.quote_name
        names = ", ".join(quote(field.column) for field in fields)
        arrays = ", ".join(f"%b::{_array_type(field, connection)}" for field in fields)  # binary: no escaping
        _statements[key] = f"INSERT INTO {quote(model._meta.db_table)} ({names}) SELECT * FROM unnest({arrays})"  # noqa: S608
    return _statements[key]


def _array_type(field, connection) -> str:
    """The column's type as an array (a foreign key's is its target's); JSON travels as text and is cast."""
    return "jsonb[]" if type(field) is models.JSONField else f"{field.db_type(connection)}[]"
