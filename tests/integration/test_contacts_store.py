"""store.contacts: contacts found and made by number, whole rows or the send path's columns."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert

from empathic.store import contacts as store
from empathic.store.db import Database
from empathic.store.schema import workspaces

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


async def test_found_by_number_as_whole_rows_or_as_the_columns_asked(database: Database) -> None:
    async with database.transaction() as conn:
        await conn.execute(insert(workspaces), [{"id": "ws_c", "name": "c", "created_at": NOW}])
        made = await store.ensure_by_phone(conn, "ws_c", ["+14155550101", "+14155550102"], NOW)
        await store.set_channel(conn, "ws_c", [made["+14155550101"]["id"]], "carrier")
    async with database.transaction() as conn:
        whole = await store.by_phones(conn, "ws_c", ["+14155550101", "+14155550102", "+14155550199"])
        narrow = await store.by_phones(conn, "ws_c", ["+14155550101", "+14155550102", "+14155550199"], ("id", "channel"))
        mixed = await store.ensure_by_phone(conn, "ws_c", ["+14155550102", "+14155550103"], NOW, ("id", "channel"))
    assert set(whole) == set(narrow) == {"+14155550101", "+14155550102"}  # the unknown number is not made up
    for phone, row in whole.items():
        assert narrow[phone] == {"phone": phone, "id": row["id"], "channel": row["channel"]}
    assert narrow["+14155550101"]["channel"] == "carrier" and narrow["+14155550102"]["channel"] is None
    assert mixed["+14155550102"] == narrow["+14155550102"]  # found: the columns asked
    assert mixed["+14155550103"]["id"].startswith("ct_") and mixed["+14155550103"]["timezone"]  # made: whole
    async with database.transaction() as conn:
        again = await store.by_phones(conn, "ws_c", ["+14155550103"])
    assert again["+14155550103"]["id"] == mixed["+14155550103"]["id"]
