"""Inserting many rows of one model in one statement, without a model instance per row.

``bulk_create`` builds an instance for every row and prepares every field of
every instance, then psycopg quotes each value of its arrays in Python: for
the hundreds of segments of a one-hour meeting that is most of the save's
CPU. On PostgreSQL :func:`insert_rows` sends the rows as one JSON array
instead (encoded in C) and the server unpacks it
(``INSERT … SELECT … FROM json_array_elements``): one statement, as before.
Values go in as the database stores them (ids, not instances; no defaults,
no ``auto_now``, no signals, as with ``bulk_create``); a value too long for
its column is refused as an ORM insert would refuse it. Other databases
get ``bulk_create``.

A :data:`Write` (an UPDATE, a DELETE or new :class:`Rows`) is one write a
caller may run on its own (:func:`perform`) or send as one part of a larger
statement (:func:`write_sql`: ``jobs.state.write_with_event`` makes a step's
result writes CTEs of its checkpoint's statement).
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time
from typing import Any, NamedTuple

from django.db import connections, models
from django.db.models import QuerySet
from django.db.models.sql import DeleteQuery, UpdateQuery

_MODIFIERS = re.compile(r"\(.*\)$")


class Rows(NamedTuple):
    """Rows of one model to insert: values in the order of `fields`, and the values
    every row shares, by field (see `insert_rows`)."""

    model: type[models.Model]
    fields: Sequence[str]
    rows: Sequence[Sequence[Any]]
    shared: Mapping[str, Any] | None = None


def insert_rows(
    model: type[models.Model],
    fields: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    shared: Mapping[str, Any] | None = None,
    returning: Sequence[str] = (),
    using: str = "default",
) -> list[tuple[Any, ...]]:
    """INSERT `rows` (values in the order of `fields`, field names or attnames such as
    ``meeting_id``) into `model`'s table, each with the `shared` values (by field) too;
    returns the `returning` fields of each row, in the order the rows were given (empty
    without `returning`)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        columns = _columns(model, fields)
        common = {
            model._meta.get_field(name).attname: value for name, value in (shared or {}).items()
        }
        objs = model.objects.using(using).bulk_create(
            model(
                **common,
                **{field.attname: value for field, value in zip(columns, row, strict=True)},
            )
            for row in rows
        )
        return [tuple(getattr(obj, name) for name in returning) for obj in objs]
    sql, params = insert_sql(Rows(model, fields, list(rows), shared), using=using)
    if returning:
        quote, opts = connection.ops.quote_name, model._meta
        sql += " RETURNING " + ", ".join(quote(opts.get_field(name).column) for name in returning)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()] if returning else []


def insert_sql(rows: Rows, *, where: str = "", using: str = "default") -> tuple[str, list[Any]]:
    """The PostgreSQL INSERT of `rows`, unsent (a caller may make it one part of a larger
    statement); `where`: an SQL condition the whole insert depends on."""
    connection = connections[using]
    opts = rows.model._meta
    columns = _columns(rows.model, rows.fields)
    fixed = [(opts.get_field(name), value) for name, value in (rows.shared or {}).items()]
    payload = json.dumps(list(rows.rows), default=_json_value)
    quote = connection.ops.quote_name
    values = ["%s"] * len(fixed)
    values += [_column_value(f"r->>{i}", field, connection) for i, field in enumerate(columns)]
    names = ", ".join(quote(f.column) for f in [field for field, _ in fixed] + columns)
    sql = (
        f"INSERT INTO {quote(opts.db_table)} ({names}) SELECT {', '.join(values)} "
        "FROM json_array_elements(%s::json) WITH ORDINALITY AS rows(r, n) "
        f"{f'WHERE {where} ' if where else ''}ORDER BY n"
    )
    params = [field.get_db_prep_save(value, connection) for field, value in fixed]
    return sql, [*params, payload]


# An UPDATE of the rows with these values, their DELETE (None: Django's raw
# delete, so only of rows nothing refers to and no signal watches), or new rows.
Write = tuple[QuerySet[Any], dict[str, Any] | None] | Rows


def perform(write: Write, using: str = "default") -> None:
    """Run `write` on its own."""
    if isinstance(write, Rows):
        insert_rows(write.model, write.fields, write.rows, shared=write.shared, using=using)
        return
    queryset, values = write
    if values is None:
        queryset._raw_delete(queryset.db)
    else:
        queryset.update(**values)


def write_sql(write: Write, condition: str, using: str = "default") -> tuple[str, tuple]:
    """The PostgreSQL statement of `write` (Django's own compiled UPDATE or DELETE,
    or the rows' INSERT), unsent, made to depend on the SQL `condition` too."""
    if isinstance(write, Rows):
        sql, params = insert_sql(write, where=condition, using=using)
        return sql, tuple(params)
    queryset, values = write
    query = queryset.query.chain(DeleteQuery if values is None else UpdateQuery)
    compiler = query.get_compiler(queryset.db)
    if values is not None:
        query.add_update_values(values)
        compiler.pre_sql_setup()  # a filter across a relation becomes `pk IN (…)`
    sql, params = compiler.as_sql()
    head, where, rest = sql.partition(" WHERE ")
    assert where, f"a write sent inside another statement must be filtered: {sql}"
    return f"{head} WHERE {condition} AND ({rest})", tuple(params)


def _columns(model: type[models.Model], fields: Sequence[str]) -> list[models.Field]:
    columns = [model._meta.get_field(name) for name in fields]
    if any(isinstance(field, models.JSONField) for field in columns):
        raise TypeError("insert_rows does not insert JSONField values")  # ->> would unquote them
    return columns


def _column_value(text: str, field: models.Field, connection: Any) -> str:
    """SQL for the value of `field` from the JSON text `text`: binary values travel as
    base64, anything else is cast to the column's type without its length, so the
    INSERT's assignment checks the length, as it does for a plain insert."""
    if isinstance(field, models.BinaryField):
        return f"decode({text}, 'base64')"
    return f"({text})::{_MODIFIERS.sub('', field.db_type(connection))}"


def _json_value(value: Any) -> Any:
    """Values JSON has no type for, in the text form PostgreSQL reads them from."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    raise TypeError(f"cannot insert a {type(value).__name__} with insert_rows")
