"""Keyset paging, the one way every list reads a page: newest first by id, after a cursor.

A cursor is the id of the last row of the page before (ids grow with time), so a page is
`id < cursor`, never an offset: a row added meanwhile neither shifts a page nor repeats.
The API side (empathic.api.paging) asks for one row more than it shows, to know whether
a next page exists.
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import ColumnElement, Select

Query = TypeVar("Query", bound=Select[tuple[object, ...]])


def newest_first(query: Query, id_column: ColumnElement[str], *, limit: int, cursor: str | None) -> Query:
    """At most `limit` rows of `query`, by id descending, after `cursor` when one is given."""
    if cursor:
        query = query.where(id_column < cursor)
    return query.order_by(id_column.desc()).limit(limit)
