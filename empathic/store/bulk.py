"""Many rows in one driver call: the hot path's inserts and updates by id, on SQLite.

A text passes through a handful of statements several times in its life (its row, one event
per status, its carrier id, each status change). Through SQLAlchemy Core every bound value
of every row is processed in Python on the event loop (a parameter dict per row, type
processors, an execution context): that was about a third of the loop's time on the send
path (bench/throughput.py with py-spy). Here the same statements go to the driver as
`executemany` over tuples whose values are already in stored form (instants as epoch
milliseconds, `schema.to_millis`; a record's tuple is made from its fields, no dict), in the
caller's transaction; a driver error is raised as
SQLAlchemy's own (`IntegrityError` …) so callers and `db.unavailable` see no difference.

PostgreSQL keeps the Core statements (the same functions run them there): they are already
one statement per batch (multi-row VALUES; messages.py updates statuses from arrays).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any

import msgspec
from msgspec.structs import asdict, astuple

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.store.schema import Instant, to_millis

Convert = Callable[[Any], Any] | None


async def insert_rows(conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT the rows (dicts of column values, all with the first row's columns)."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        await conn.execute(insert(table), list(rows))
        return
    sql, values = _dict_values(table, tuple(rows[0]))
    await _executemany(conn, sql, [values(row) for row in rows])


async def insert_records(conn: AsyncConnection, table: Table, records: Sequence[msgspec.Struct]) -> None:
    """INSERT records (store.records, all of one type): a column per field, by name."""
    if not records:
        return
    if conn.dialect.name != "sqlite":
        await conn.execute(insert(table), [asdict(r) for r in records])
        return
    sql, converted = _insert_sql(table, type(records[0]).__struct_fields__)
    await _executemany(conn, sql, [_converted(astuple(r), converted) for r in records] if converted
                       else [astuple(r) for r in records])


async def update_by_id(
    conn: AsyncConnection, table: Table, names: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """UPDATE table SET names… WHERE id = ?: each row is the new values in `names` order,
    then the id."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":  # Core's executemany (messages.py updates from arrays there)
        stmt = update(table).where(table.c.id == bindparam("b_id")).values({n: bindparam(f"b_{n}") for n in names})
        await conn.execute(stmt, [{"b_id": row[-1], **{f"b_{n}": v for n, v in zip(names, row, strict=False)}}
                                  for row in rows])
        return
    sql, converted = _update_sql(table, tuple(names))
    if converted:
        rows = [_converted(row, converted) for row in rows]
    await _executemany(conn, sql, rows)


def _converted(row: Sequence[Any], converted: Sequence[tuple[int, Callable[[Any], Any]]]) -> tuple[Any, ...]:
    out = list(row)
    for i, convert in converted:
        out[i] = convert(out[i])
    return tuple(out)


@lru_cache(maxsize=256)
def _insert_sql(table: Table, names: tuple[str, ...]) -> tuple[str, list[tuple[int, Callable[[Any], Any]]]]:
    """The statement for these columns, and which of a row's values (by position) are
    converted to stored form, and how."""
    converts = [_convert(table.c[n]) for n in names]  # KeyError: no such column, as Core refuses
    quoted = ", ".join(f'"{n}"' for n in names)
    sql = f'INSERT INTO "{table.name}" ({quoted}) VALUES ({", ".join("?" for _ in names)})'
    return sql, [(i, c) for i, c in enumerate(converts) if c is not None]


@lru_cache(maxsize=256)
def _dict_values(table: Table, names: tuple[str, ...]) -> tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]]]:
    """The statement for these columns, and what makes a row's tuple of stored values."""
    sql, converted = _insert_sql(table, names)
    get = itemgetter(*names)
    single = len(names) == 1

    def values(row: dict[str, Any]) -> tuple[Any, ...]:
        if len(row) != len(names):  # Core would drop a later row's extra columns unwritten
            raise ValueError(f"{table.name}: every row needs the columns of the first, {names}; got {tuple(row)}")
        got = (get(row),) if single else get(row)
        return _converted(got, converted) if converted else got

    return sql, values


@lru_cache(maxsize=256)
def _update_sql(table: Table, names: tuple[str, ...]) -> tuple[str, list[tuple[int, Callable[[Any], Any]]]]:
    """The statement, and which of the values (by position) are converted, and how."""
    converts = [_convert(table.c[n]) for n in names]
    sets = ", ".join(f'"{n}" = ?' for n in names)
    return f'UPDATE "{table.name}" SET {sets} WHERE "id" = ?', [(i, c) for i, c in enumerate(converts) if c]


def _convert(column: Any) -> Convert:
    """The Python-side conversion a column's type makes before binding (only Instant has one
    among the tables written here; any other processing type is refused, not silently skipped)."""
    if isinstance(column.type, Instant):
        return to_millis
    if column.type.bind_processor(_SQLITE) is not None:
        raise TypeError(f"{column.table.name}.{column.name}: its type processes values; write it through Core")
    return None


async def _executemany(conn: AsyncConnection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    raw = await conn.get_raw_connection()
    try:
        await raw.driver_connection.executemany(sql, rows)  # type: ignore[union-attr]
    except sqlite3.Error as exc:  # as Core raises it: IntegrityError, OperationalError …
        raise DBAPIError.instance(sql, None, exc, sqlite3.Error) from exc


_SQLITE = sqlite.dialect()
