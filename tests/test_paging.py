"""Cursor paging (store.paging's keyset, api.paging's page): any page size walks every row
exactly once, newest first, and only the last page has no cursor."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, MetaData, String, Table, create_engine, delete, insert, select

from empathic.api import paging
from empathic.store.paging import newest_first

_metadata = MetaData()
_rows = Table("rows", _metadata, Column("id", String(40), primary_key=True))
_engine = create_engine("sqlite://")
_metadata.create_all(_engine)

IDS = st.lists(st.text("abcxyz0129_", min_size=1, max_size=6), unique=True, max_size=30)


@settings(max_examples=150, deadline=None)
@given(ids=IDS, limit=st.integers(min_value=1, max_value=12))
def test_pages_walk_every_row_once_newest_first(ids: list[str], limit: int) -> None:
    with _engine.begin() as conn:
        conn.execute(delete(_rows))
        if ids:
            conn.execute(insert(_rows), [{"id": i} for i in ids])
        seen: list[str] = []
        pages = 0
        cursor: str | None = None
        while True:
            fetched = conn.execute(
                newest_first(select(_rows.c.id), _rows.c.id, limit=paging.fetch(limit), cursor=cursor)
            ).scalars().all()
            page = paging.Page.of(fetched, limit, lambda i: i)
            pages += 1
            assert len(page.rows) <= limit
            assert page.rows or not ids  # only an empty list has an empty page
            seen += page.rows
            if page.next_cursor is None:
                break
            assert page.next_cursor == page.rows[-1]  # the last row shown, not the extra one
            cursor = page.next_cursor
    assert seen == sorted(ids, reverse=True)
    assert pages == max(1, -(-len(ids) // limit))  # a full last page says so: no empty page after it


def test_the_response_shape() -> None:
    page = paging.Page.of(["c", "b", "a"], 2, lambda i: i)
    assert page.to_json([{"id": r} for r in page.rows]) == {"data": [{"id": "c"}, {"id": "b"}], "next_cursor": "b"}
    last = paging.Page.of(["a"], 2, lambda i: i)
    assert last.to_json([{"id": "a"}]) == {"data": [{"id": "a"}], "next_cursor": None}
