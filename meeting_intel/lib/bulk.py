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
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time
from typing import Any

from django.db import connections, models

_MODIFIERS = re.compile(r"\(.*\)$")


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
    opts = model._meta
    columns = [opts.get_field(name) for name in fields]
    fixed = [(opts.get_field(name), value) for name, value in (shared or {}).items()]
    if any(isinstance(field, models.JSONField) for field in columns):
        raise TypeError("insert_rows does not insert JSONField values")  # ->> would unquote them
    if connection.vendor != "postgresql":
        common = {field.attname: value for field, value in fixed}
        objs = model.objects.using(using).bulk_create(
            model(
                **common,
                **{field.attname: value for field, value in zip(columns, row, strict=True)},
            )
            for row in rows
        )
        return [tuple(getattr(obj, name) for name in returning) for obj in objs]
    payload = json.dumps(list(rows), default=_json_value)
    quote = connection.ops.quote_name
    values = ["%s"] * len(fixed)
    values += [_column_value(f"r->>{i}", field, connection) for i, field in enumerate(columns)]
    names = ", ".join(quote(f.column) for f in [field for field, _ in fixed] + columns)
    sql = (
        f"INSERT INTO {quote(opts.db_table)} ({names}) SELECT {', '.join(values)} "
        "FROM json_array_elements(%s::json) WITH ORDINALITY AS rows(r, n) ORDER BY n"
    )
    if returning:
        sql += " RETURNING " + ", ".join(quote(opts.get_field(name).column) for name in returning)
    params = [field.get_db_prep_save(value, connection) for field, value in fixed]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, payload])
        return [tuple(row) for row in cursor.fetchall()] if returning else []


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
