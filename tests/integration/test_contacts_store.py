"""store.contacts: contacts found and made by number, as whole records or as the send path's addressees."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert

from empathic.store import contacts as store
from empathic.store.db import Database
from empathic.store.schema import workspaces

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


async def test_found_by_number_as_whole_records_or_as_addressees(database: Database) -> None:
    async with database.transaction() as conn:
        await conn.execute(insert(workspaces), [{"id": "ws_c", "name": "c", "created_at": NOW}])
        made = await store.ensure_by_phone(conn, "ws_c", ["+14155550101", "+14155550102"], NOW)
        await store.set_channel(conn, "ws_c", [made["+14155550101"].id], "carrier")
    async with database.transaction() as conn:
        whole = await store.by_phones(conn, "ws_c", ["+14155550101", "+14155550102", "+14155550199"])
        narrow = await store.addressees_by_phones(conn, "ws_c", ["+14155550101", "+14155550102", "+14155550199"])
        mixed = await store.ensure_addressees_by_phone(conn, "ws_c", ["+14155550102", "+14155550103"], NOW)
    assert set(whole) == set(narrow) == {"+14155550101", "+14155550102"}  # the unknown number is not made up
    for phone, contact in whole.items():
        assert contact.phone == phone and contact.workspace_id == "ws_c"
        assert narrow[phone] == store.Addressee(contact.id, contact.channel)
    assert narrow["+14155550101"].channel == "carrier" and narrow["+14155550102"].channel is None
    assert mixed["+14155550102"] == narrow["+14155550102"]
    assert mixed["+14155550103"].id.startswith("ct_") and mixed["+14155550103"].channel is None  # made
    async with database.transaction() as conn:
        again = await store.by_phones(conn, "ws_c", ["+14155550103"])
    assert again["+14155550103"].id == mixed["+14155550103"].id
    assert again["+14155550103"].timezone  # made whole: a zone from its number
    assert made["+14155550102"] == whole["+14155550102"]  # what was made is what is read back


async def test_changes_are_stored_and_the_view_is_the_api_shape(database: Database) -> None:
    async with database.transaction() as conn:
        await conn.execute(insert(workspaces), [{"id": "ws_v", "name": "v", "created_at": NOW}])
        made = await store.create(conn, "ws_v", NOW, phone=None, email="a@example.com", attributes={"tier": "gold"})
        await store.update_fields(conn, "ws_v", made.id, NOW, {"locale": "fr", "attributes": {"tier": "silver"}})
        found = await store.get(conn, "ws_v", made.id)
    assert found is not None and found.locale == "fr" and found.attributes == {"tier": "silver"}
    assert store.to_view(found) == {
        "id": made.id, "phone": None, "email": "a@example.com", "locale": "fr", "timezone": None,
        "attributes": {"tier": "silver"}, "created_at": NOW.isoformat(), "updated_at": NOW.isoformat(),
    }
