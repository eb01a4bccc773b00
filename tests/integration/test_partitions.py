"""Time partitions of messages and their events (PostgreSQL), and the tables that keep what
must be unique across them: idempotency keys and carrier ids (both backends)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from msgspec.structs import asdict, replace
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from empathic.core.ids import first_id, made_at_ms, new_id
from empathic.core.messages import Status
from empathic.store import messages as store
from empathic.store import partitions, privacy
from empathic.store.db import MIGRATIONS, Database
from empathic.store.messages import Transition
from empathic.store.records import NewMessage
from empathic.store.schema import carrier_ids, contacts, message_events, message_keys, messages, workspaces
from tests.conftest import POSTGRES_URL, postgres_schema

WS = "ws_parts"
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def _ms(year: int, month: int, day: int = 15) -> int:
    return int(datetime(year, month, day, tzinfo=UTC).timestamp() * 1000)


def _row(message_id: str, *, key: str | None = None, carrier_id: str | None = None, at: datetime = NOW) -> NewMessage:
    return NewMessage(
        id=message_id, workspace_id=WS, direction="outbound", contact_id="ct_1", to_addr="+15551230000",
        from_addr=None, body="hello", topic="orders", priority=1, status=Status.QUEUED.value, reason=None,
        encoding="gsm7", segments=1, idempotency_key=key, channel="main", carrier_id=carrier_id,
        created_at=at, updated_at=at,
    )


async def _workspace(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.execute(workspaces.insert().values(id=WS, name="parts", created_at=NOW))


async def _where(db: Database, table: str, key: str) -> dict[str, str]:
    """Which partition holds each row of `table`, by its partition key."""
    async with db.transaction() as conn:
        rows = await conn.execute(text(f"SELECT {key}, tableoid::regclass::text FROM {table}"))
        return {k: part.rsplit(".", 1)[-1] for k, part in rows}


@pytest.fixture
async def pg() -> Any:
    async with postgres_schema() as schema:
        db = Database(POSTGRES_URL, schema=schema)
        try:
            await db.migrate()
            await _workspace(db)
            yield db
        finally:
            await db.close()


def test_a_months_bounds_are_the_lowest_ids_made_in_it() -> None:
    december, january = partitions.bound((2026, 12)), partitions.bound((2027, 1))
    assert made_at_ms(december) == _ms(2026, 12, 1) and made_at_ms(january) == _ms(2027, 1, 1)
    last_of_december = new_id("msg", at_ms=_ms(2027, 1, 1) - 1)
    assert december <= new_id("msg", at_ms=_ms(2026, 12, 1)) < january
    assert december < last_of_december < january <= new_id("msg", at_ms=_ms(2027, 1, 1))
    assert partitions.next_month((2026, 12)) == (2027, 1) and partitions.next_month((2027, 1)) == (2027, 2)
    assert first_id("msg", 0) == "msg_" + "0" * 26 and made_at_ms("ct_1") is None


async def test_messages_and_their_events_lie_in_the_partition_of_their_month(pg: Database) -> None:
    async with pg.transaction() as conn:
        kinds = dict((await conn.execute(text(
            "SELECT c.relname, p.partstrat::text FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
            "WHERE c.relnamespace = current_schema()::regnamespace"
        ))).all())
        made = await conn.run_sync(partitions.partitions)
    assert kinds == {"messages": "r", "message_events": "r"}  # range partitions, both
    now = partitions.month_of(datetime.now(UTC))
    ahead = [now, partitions.next_month(now), partitions.next_month(partitions.next_month(now))]
    assert set(made) >= {partitions.name(t, m) for t in partitions.KEYS for m in ahead} | {
        "messages_default", "message_events_default"}

    this_month = new_id("msg")
    far_ahead = new_id("msg", at_ms=_ms(2031, 5))  # no partition for it yet
    odd = "m-imported-1"  # an id not made by new_id: below every month
    async with pg.transaction() as conn:
        await store.insert_many(conn, [_row(this_month), _row(far_ahead), _row(odd)], "accepted")
        await store.apply_transitions(conn, [Transition(far_ahead, WS, Status.SENDING, "claimed", NOW)])
    where, events = await _where(pg, "messages", "id"), await _where(pg, "message_events", "message_id")
    assert where == {this_month: partitions.name("messages", now), far_ahead: "messages_default", odd: "messages_default"}
    assert events == {this_month: partitions.name("message_events", now),
                      far_ahead: "message_events_default", odd: "message_events_default"}

    # The month's partitions are made when it comes near, and take its rows from the default.
    async with pg.transaction() as conn:
        made_now = await partitions.ensure(conn, datetime(2031, 4, 20, tzinfo=UTC), ahead=1)
    assert made_now == [partitions.name(t, m) for m in ((2031, 4), (2031, 5)) for t in partitions.KEYS]
    assert (await _where(pg, "messages", "id"))[far_ahead] == "messages_y2031m05"
    async with pg.transaction() as conn:
        history = await store.history(conn, far_ahead)
        assert [h.status for h in history] == ["queued", "sending"]  # both events moved, in order
        assert (await conn.execute(text("SELECT count(*) FROM message_events_y2031m05"))).scalar() == 2
        assert (await conn.execute(text("SELECT count(*) FROM messages_default"))).scalar() == 1  # the odd id
        assert await partitions.ensure(conn, datetime(2031, 4, 20, tzinfo=UTC), ahead=1) == []  # once only


async def test_a_message_found_by_id_reads_one_partition(pg: Database) -> None:
    message_id = new_id("msg")
    async with pg.transaction() as conn:
        await store.insert_many(conn, [_row(message_id)], "accepted")
        plan = "\n".join(r for (r,) in await conn.execute(
            text("EXPLAIN SELECT * FROM messages WHERE workspace_id = :ws AND id = :id"), {"ws": WS, "id": message_id}))
        events = "\n".join(r for (r,) in await conn.execute(
            text("EXPLAIN SELECT * FROM message_events WHERE message_id = :id ORDER BY id"), {"id": message_id}))
    month = partitions.month_of(datetime.now(UTC))
    for table, shown in (("messages", plan), ("message_events", events)):
        named = [p for p in (await _partition_names(pg, table)) if p in shown]
        assert named == [partitions.name(table, month)], shown


async def _partition_names(db: Database, table: str) -> list[str]:
    async with db.transaction() as conn:
        return await conn.run_sync(partitions.partitions, table)


async def test_workers_starting_together_make_each_partition_once(pg: Database) -> None:
    async def make() -> list[str]:
        async with pg.transaction() as conn:
            return await partitions.ensure(conn, datetime(2033, 1, 10, tzinfo=UTC), ahead=2)

    first, second = await asyncio.gather(make(), make())
    assert sorted(first + second) == sorted(partitions.name(t, m) for t in partitions.KEYS
                                            for m in ((2033, 1), (2033, 2), (2033, 3)))
    assert not (set(first) & set(second))


async def test_keys_and_carrier_ids_stay_unique_across_months(database: Database) -> None:
    await _workspace(database)
    old = new_id("msg", at_ms=_ms(2026, 1))
    async with database.transaction() as conn:
        await store.insert_many(conn, [_row(old, key="order-1")], "accepted")
        await store.hold_carrier_ids(conn, "main", [("smsc-77", old)])
    # A repeat of the key, or of the carrier's id, is refused in any other month's message too.
    for row in (_row(new_id("msg"), key="order-1"), _row(new_id("msg"), carrier_id="smsc-77")):
        with pytest.raises(IntegrityError):
            async with database.transaction() as conn:
                await store.insert_many(conn, [row], "accepted")
    with pytest.raises(IntegrityError):
        async with database.transaction() as conn:
            await store.hold_carrier_ids(conn, "main", [("smsc-77", new_id("msg"))])
    async with database.transaction() as conn:
        await store.hold_carrier_ids(conn, "other", [("smsc-77", new_id("msg"))])  # another channel's id space
        by_key = await store.by_idempotency_keys(conn, WS, ["order-1", "order-2"])
        by_carrier = await store.by_carrier_ids(conn, "main", ["smsc-77", "smsc-78"])
        assert (await conn.execute(select(func.count()).select_from(messages))).scalar() == 1  # nothing half-written
    assert list(by_key) == ["order-1"] and by_key["order-1"].id == old
    assert list(by_carrier) == ["smsc-77"] and by_carrier["smsc-77"] == by_key["order-1"]


async def test_erasing_a_contact_frees_its_keys_and_carrier_ids(database: Database) -> None:
    await _workspace(database)
    mine, theirs = new_id("msg"), new_id("msg")
    async with database.transaction() as conn:
        await conn.execute(contacts.insert().values(
            id="ct_1", workspace_id=WS, phone="+15551230000", attributes={}, created_at=NOW, updated_at=NOW))
        other = replace(_row(theirs, key="kept", carrier_id="c-2"), contact_id="ct_2")
        await store.insert_many(conn, [_row(mine, key="order-1", carrier_id="c-1"), other], "accepted")
        assert await privacy.erase(conn, WS, "ct_1", NOW)
    async with database.transaction() as conn:
        keys = [k for (k,) in await conn.execute(select(message_keys.c.idempotency_key))]
        held = [c for (c,) in await conn.execute(select(carrier_ids.c.carrier_id))]
        await store.insert_many(conn, [_row(new_id("msg"), key="order-1", carrier_id="c-1")], "accepted")  # free again
    assert keys == ["kept"] and held == ["c-2"]


async def test_migration_partitions_what_was_stored_and_back(pg: Database) -> None:
    """Upgrading from 0010 moves every stored message and event into its month, fills the
    key and carrier id tables, and keeps the event ids counting; downgrading restores 0010."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))

    def to(revision: str, down: bool = False):  # type: ignore[no-untyped-def]
        def run(connection):  # type: ignore[no-untyped-def]
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, revision)
        return run

    async with pg.transaction() as conn:
        await conn.run_sync(to("0010", down=True))
        assert "messages_default" not in await conn.run_sync(lambda c: inspect(c).get_table_names())
    ids = [new_id("msg", at_ms=_ms(2025, 3)), new_id("msg", at_ms=_ms(2026, 11)), new_id("msg")]
    async with pg.transaction() as conn:
        for n, message_id in enumerate(ids):  # as 0010 stored them: key and carrier id in the row
            row = _row(message_id, key=f"k{n}", carrier_id=f"c{n}")
            await conn.execute(messages.insert().values(
                **{k: v for k, v in asdict(row).items() if k in messages.c and k not in ("flow", "trigger")}))
            await conn.execute(message_events.insert().values(
                workspace_id=WS, message_id=message_id, status="queued", reason="accepted", at=NOW))
        last_event = (await conn.execute(select(func.max(message_events.c.id)))).scalar()
        await conn.run_sync(to("head"))
    where = await _where(pg, "messages", "id")
    assert where == {ids[0]: "messages_y2025m03", ids[1]: "messages_y2026m11",
                     ids[2]: partitions.name("messages", partitions.month_of(datetime.now(UTC)))}
    async with pg.transaction() as conn:
        made = await conn.run_sync(partitions.partitions, "messages")
        assert "messages_y2025m04" in made  # every month from the first message's: none falls to the default
        assert len(await store.by_idempotency_keys(conn, WS, ["k0", "k1", "k2"])) == 3
        assert len(await store.by_carrier_ids(conn, "main", ["c0", "c1", "c2"])) == 3
        await store.apply_transitions(conn, [Transition(ids[0], WS, Status.SENDING, "claimed", NOW)])
        assert (await conn.execute(select(func.max(message_events.c.id)))).scalar() == last_event + 1
        await conn.run_sync(to("0010", down=True))
    async with pg.transaction() as conn:
        assert (await conn.execute(select(func.count()).select_from(messages))).scalar() == 3
        assert (await conn.execute(select(func.count()).select_from(message_events))).scalar() == 4
        with pytest.raises(IntegrityError):  # 0010's unique index is back
            async with conn.begin_nested():
                await conn.execute(messages.insert().values(
                    **{k: v for k, v in asdict(_row(new_id("msg"), key="k0")).items() if k in messages.c and k not in ("flow", "trigger")}))
        await conn.run_sync(to("head"))
    assert len(await _where(pg, "messages", "id")) == 3
