"""store/bulk.py: rows written through the driver read back exactly as Core writes them, on
both backends. A unique-key repeat is SQLAlchemy's IntegrityError, as callers expect, and
a value Core would refuse (a naive instant) is refused too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError, StatementError

from empathic.store import bulk
from empathic.store.db import Database
from empathic.store.records import MessageRow, NewMessage
from empathic.store.schema import carrier_ids, message_events, messages, workspaces

NEW = NewMessage.__struct_fields__
LATER = ["shard", "raw_carrier_id", "redacted_at"]  # set after a message is written
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
instants = st.integers(min_value=0, max_value=2**41).map(lambda ms: EPOCH + timedelta(milliseconds=ms))
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
events = st.lists(
    st.fixed_dictionaries({"status": st.sampled_from(["queued", "sent", "delivered"]), "reason": st.none() | texts,
                           "at": instants}),
    min_size=1, max_size=30,
)


async def _workspace(db: Database) -> None:
    async with db.transaction() as conn:
        if not (await conn.execute(select(workspaces.c.id).where(workspaces.c.id == "ws_bulk"))).first():
            await conn.execute(insert(workspaces), [{"id": "ws_bulk", "name": "bulk", "created_at": EPOCH}])


def _message(i: int, now: datetime, valid_until: datetime | None) -> NewMessage:
    return NewMessage(id=f"msg_{i:06d}", workspace_id="ws_bulk", direction="outbound", contact_id=None,
                      to_addr="+14155550100", from_addr=None, body=f"text {i}", topic="transactional", priority=1,
                      status="queued", reason="accepted", valid_until=valid_until, created_at=now, updated_at=now)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=events)
async def test_events_written_in_bulk_read_back_as_written(database: Database, rows: list[dict[str, object]]) -> None:
    await _workspace(database)
    written = [{"workspace_id": "ws_bulk", "message_id": f"msg_{i}", **row} for i, row in enumerate(rows)]
    async with database.transaction() as conn:
        await conn.execute(message_events.delete())
        await bulk.insert_rows(conn, message_events, written)
        got = (await conn.execute(
            select(message_events.c.workspace_id, message_events.c.message_id, message_events.c.status,
                   message_events.c.reason, message_events.c.at).order_by(message_events.c.id)
        )).mappings().all()
    assert [dict(r) for r in got] == written


async def test_a_text_written_and_updated_in_bulk_is_what_core_reads(database: Database) -> None:
    await _workspace(database)
    now = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    later = now + timedelta(seconds=90, milliseconds=7)
    async with database.transaction() as conn:
        await bulk.insert_records(conn, messages, [_message(1, now, None), _message(2, now, later)])
        await bulk.update_by_id(conn, messages, ("status", "next_attempt_at", "updated_at"),
                                [("deferred", later, later, "msg_000001")])
        rows = {r["id"]: r for r in (await conn.execute(select(messages).order_by(messages.c.id))).mappings()}
    assert rows["msg_000002"]["valid_until"] == later and rows["msg_000002"]["status"] == "queued"
    assert rows["msg_000001"]["status"] == "deferred"
    assert rows["msg_000001"]["next_attempt_at"] == later and rows["msg_000001"]["updated_at"] == later
    assert rows["msg_000001"]["created_at"] == now and rows["msg_000001"]["body"] == "text 1"


def test_the_message_records_are_the_columns_of_messages() -> None:
    """A new column is a field of MessageRow, and of NewMessage if a new message writes it."""
    assert list(MessageRow.__struct_fields__) == [c.name for c in messages.c if c.name in NEW] + LATER
    assert set(NEW) == {c.name for c in messages.c} - set(LATER)


async def test_a_repeated_carrier_id_is_sqlalchemys_integrity_error(database: Database) -> None:
    async with database.transaction() as conn:
        await bulk.insert_rows(conn, carrier_ids, [{"channel": "smpp", "carrier_id": "c1", "message_id": "msg_1"}])
    with pytest.raises(IntegrityError):
        async with database.transaction() as conn:
            await bulk.insert_rows(conn, carrier_ids, [{"channel": "smpp", "carrier_id": "c1", "message_id": "msg_2"}])
    async with database.transaction() as conn:  # the failed transaction left nothing behind
        held = (await conn.execute(select(carrier_ids.c.message_id))).scalars().all()
    assert held == ["msg_1"]


async def test_a_naive_instant_or_a_missing_column_is_refused(database: Database) -> None:
    await _workspace(database)
    with pytest.raises((ValueError, StatementError), match="naive"):
        async with database.transaction() as conn:
            await bulk.insert_rows(conn, message_events, [
                {"workspace_id": "ws_bulk", "message_id": "m", "status": "queued", "reason": None,
                 "at": datetime(2026, 12, 3)},  # noqa: DTZ001 - the point of the test
            ])
    if database.is_sqlite:  # a later row lacking a column of the first, or with one more (Core drops it)
        first = {"workspace_id": "ws_bulk", "message_id": "m", "status": "queued", "reason": None, "at": EPOCH}
        for other, error in (({k: v for k, v in first.items() if k != "reason"}, ValueError),
                             ({**first, "id": 7}, ValueError)):
            with pytest.raises(error):
                async with database.transaction() as conn:
                    await bulk.insert_rows(conn, message_events, [first, other])
        async with database.transaction() as conn:
            assert (await conn.execute(select(message_events.c.id))).first() is None  # nothing half-written
