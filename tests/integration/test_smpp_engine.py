"""The engine over SMPP: Empathic binds to `empathic smsc-sim` on loopback and texts flow
both ways (messages, receipts, replies, STOP), through throttling, dropped connections and
a carrier that is gone (failover to the next channel)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any

import pytest

from empathic.core.messages import Status
from empathic.engine.outbox import MessageRequest
from empathic.engine.runtime import Runtime
from empathic.smsc.server import Smsc, SmscSettings
from empathic.store import messages as store
from empathic.store.records import MessageRow
from tests.conftest import POSTGRES_URL, eventually, make_settings, postgres_schema

SENDER = "+18005550100"


def write_project(folder: Path, channels: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empathic.toml").write_text(
        f'[sender]\nname = "Acme"\nnumber = "{SENDER}"\n\n{channels}', encoding="utf-8"
    )
    return folder


def smpp_entry(port: int, **extra: Any) -> str:
    lines = [
        "[[channels]]", 'type = "smpp"', 'name = "carrier"', 'host = "127.0.0.1"', f"port = {port}",
        'system_id = "acme"', 'password = "pw"', "window = 50", "enquire_link = 5", "response_timeout = 2",
        "reconnect_max = 0.5", "throttle_pause = 0.02",
    ]
    lines += [f"{k} = {v!r}".replace("'", '"') if isinstance(v, str) else f"{k} = {str(v).lower() if isinstance(v, bool) else v}"
              for k, v in extra.items()]
    return "\n".join(lines) + "\n"


@asynccontextmanager
async def engine(
    tmp_path: Path, backend: str, channels: str, schema: str | None = None, role: str = "all"
) -> AsyncIterator[Runtime]:
    """A runtime on the project; PostgreSQL in a fresh schema, or in `schema` (a restart)."""
    project = write_project(tmp_path / "project", channels)
    if backend == "postgresql" and schema is None:
        async with postgres_schema(migrated=True) as fresh, engine(tmp_path, backend, channels, fresh, role) as rt:
            yield rt
        return
    database = {"database_url": POSTGRES_URL, "database_schema": schema} if backend == "postgresql" else {}
    rt = Runtime(make_settings(tmp_path, project_dir=project, role=role, **database))
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


async def send(rt: Runtime, count: int, *, body: str = "Order {i} is on its way", topic: str = "transactional") -> list[str]:
    rows = await rt.outbox.submit(
        rt.workspace_id,
        [MessageRequest(to=f"+1415555{i % 10000:04d}", body=body.format(i=i), topic=topic) for i in range(count)],
        numbered=True,
    )
    return [r.id for r in rows]


async def statuses(rt: Runtime, ids: list[str]) -> dict[str, int]:
    async with rt.db.transaction() as conn:
        rows = await store.read(conn, ids)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    return counts


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


async def test_texts_receipts_and_a_long_unicode_text(tmp_path: Path, backend: str) -> None:
    async with Smsc(SmscSettings(port=0, latency=0.005, receipt_delay=0.01, receipt_id_mode="hex_to_dec")) as smsc:
        async with engine(tmp_path, backend, smpp_entry(smsc.port, receipt_id="hex_to_dec")) as rt:
            ids = await send(rt, 60)
            ids += await send(rt, 1, body="Grüße aus München 🚚 " * 8)  # UCS-2, 3 parts by UDH
            try:
                await eventually(lambda: _all(rt, ids, Status.DELIVERED), timeout=20)
            except AssertionError:
                async with rt.db.transaction() as conn:
                    odd = [r for r in await store.read(conn, ids) if r.status != "delivered"]
                    hist = [await store.history(conn, r.id) for r in odd[:3]]
                raise AssertionError(f"{_all.last} {smsc.summary()} {[(r['status'], r['reason'], r['channel'], r['carrier_id']) for r in odd[:3]]} {hist}")
    summary = smsc.summary()
    assert summary["received"] == 61 and summary["unique"] == 61 and summary["duplicates"] == 0
    assert summary["receipts_sent"] == 61


async def test_a_reply_and_stop_come_back_over_the_bind(tmp_path: Path, backend: str) -> None:
    async with Smsc(SmscSettings(port=0, receipt_delay=0.01)) as smsc:
        async with engine(tmp_path, backend, smpp_entry(smsc.port)) as rt:
            await smsc.send_mo("14155550123", SENDER[1:], "STOP")

            async def confirmed() -> bool:
                return smsc.summary()["received"] >= 1

            await eventually(confirmed, timeout=10)
            async with rt.db.transaction() as conn:
                inbound = [r for r in await store.page(conn, rt.workspace_id, limit=10, status=Status.RECEIVED.value)]
            assert [(r.from_addr, r.body, r.channel) for r in inbound] == [("+14155550123", "STOP", "carrier")]
            # the confirmation went out once, on the same channel; further texts are blocked
            rows = await rt.outbox.submit(rt.workspace_id, [MessageRequest(to="+14155550123", body="Your order shipped")])
            ids = [r.id for r in rows]
            await eventually(lambda: _all(rt, ids, Status.BLOCKED), timeout=10)
            assert smsc.summary()["received"] == 1


async def test_long_reply_in_parts_is_one_message(tmp_path: Path, backend: str) -> None:
    async with Smsc(SmscSettings(port=0)) as smsc:
        async with engine(tmp_path, backend, smpp_entry(smsc.port)) as rt:
            text = "Can you deliver it to my neighbour at number 12 instead? " * 5
            await smsc.send_mo("14155550124", SENDER[1:], text, long="sar")

            async def received() -> list[MessageRow]:
                async with rt.db.transaction() as conn:
                    return await store.page(conn, rt.workspace_id, limit=10, status=Status.RECEIVED.value)

            (row,) = await eventually(received, timeout=10)
            assert row.body == text


async def test_throttling_loses_and_doubles_nothing(tmp_path: Path, backend: str) -> None:
    async with Smsc(SmscSettings(port=0, throttle_share=0.3, seed=3, receipt_delay=0.01)) as smsc:
        async with engine(tmp_path, backend, smpp_entry(smsc.port)) as rt:
            ids = await send(rt, 200)
            await eventually(lambda: _all(rt, ids, Status.DELIVERED), timeout=30)
    summary = smsc.summary()
    assert summary["throttled"] > 20
    assert (summary["received"], summary["unique"], summary["duplicates"]) == (200, 200, 0)


HELD_TOPIC = '[topics]\nnotices = { kind = "transactional", on_unknown = "hold" }\n\n'


async def test_a_dropped_connection_holds_the_unknowns_of_a_held_topic_never_doubles(tmp_path: Path, backend: str) -> None:
    """`notices` holds its unknown outcomes: the texts written and unanswered when the SMSC
    cut the connection stay `unknown`; those not yet written went again after the rebind."""
    async with Smsc(SmscSettings(port=0, latency=0.01, drop_after=40, receipt_delay=0.01)) as smsc:
        async with engine(tmp_path, backend, HELD_TOPIC + smpp_entry(smsc.port)) as rt:
            ids = await send(rt, 300, topic="notices")

            async def settled() -> dict[str, int] | None:
                counts = await statuses(rt, ids)
                return counts if set(counts) <= {"delivered", "unknown"} else None

            counts = await eventually(settled, timeout=30)
            channel = rt.channels.by_name["carrier"]
            assert channel.binds == 2  # bound again after the drop
            assert await resent(rt, ids) == 0
    summary = smsc.summary()
    assert summary["drops"] == 1 and summary["duplicates"] == 0
    assert 1 <= counts.get("unknown", 0) <= 50  # at most a window was in flight at the drop
    # every text the SMSC took is delivered, or one of the unknowns (which it may hold)
    assert counts["delivered"] <= summary["unique"] <= counts["delivered"] + counts.get("unknown", 0)


async def test_a_dropped_connection_resends_the_unknowns_of_alerts(tmp_path: Path, backend: str) -> None:
    """Transactional alerts resend an unknown outcome: every text is delivered. The SMSC
    may hold a resent one twice (it took it, the answer was lost), never any other."""
    async with Smsc(SmscSettings(port=0, latency=0.01, drop_after=40, receipt_delay=0.01)) as smsc:
        async with engine(tmp_path, backend, smpp_entry(smsc.port)) as rt:
            ids = await send(rt, 300)
            await eventually(lambda: _all(rt, ids, Status.DELIVERED), timeout=30)
            again = await resent(rt, ids)
    summary = smsc.summary()
    assert summary["drops"] == 1 and summary["unique"] == 300
    assert 1 <= again <= 50  # at most a window was in flight at the drop
    assert 1 <= summary["duplicates"] <= again  # the one the SMSC took as it dropped, at least


async def resent(rt: Runtime, ids: list[str]) -> int:
    async with rt.db.transaction() as conn:
        return sum((await store.reason_counts(conn, ids, "resent_after_unknown")).values())


async def test_a_carrier_that_is_gone_fails_over_to_the_next_channel(tmp_path: Path, backend: str) -> None:
    smsc = Smsc(SmscSettings(port=0))
    await smsc.start()
    port = smsc.port
    channels = smpp_entry(port, priority=0) + '\n[[channels]]\ntype = "simulator"\nname = "backup"\npriority = 1\n'
    async with engine(tmp_path, backend, channels) as rt:
        rt.channels.failover_after = 0.3
        assert await rt.channels.by_name["carrier"].wait_up(5)
        await smsc.stop()  # the carrier goes away while texts are queued for it
        await eventually(lambda: _down(rt), timeout=10)
        ids = await send(rt, 5)  # routed to the backup at once: the carrier is down
        more = await _queue_on(rt, "carrier", 5)  # already queued for the carrier
        await eventually(lambda: _all(rt, ids + more, Status.DELIVERED), timeout=20)
        async with rt.db.transaction() as conn:
            assert {r.channel for r in await store.read(conn, ids + more)} == {"backup"}
        # The carrier comes back: people whose conversation began on the backup stay there
        # (their sticky channel); someone new goes to the carrier again.
        back = Smsc(SmscSettings(port=port))
        await back.start()
        try:
            assert await rt.channels.by_name["carrier"].wait_up(10)
            again = await send(rt, 2)
            fresh = await rt.outbox.submit(rt.workspace_id, [MessageRequest(to="+14155559999", body="new here")])
            async with rt.db.transaction() as conn:
                rows = {r.id: r for r in await store.read(conn, again + [fresh[0].id])}
            assert [rows[i].channel for i in again] == ["backup", "backup"]
            assert rows[fresh[0].id].channel == "carrier"
        finally:
            await back.stop()


async def test_an_api_process_routes_by_the_file_not_by_binds_it_does_not_hold(tmp_path: Path, backend: str) -> None:
    """An API process starts no channel, so it cannot see a carrier's bind: it routes as if
    the carrier were up (the worker that holds it fails its queue over if it is not)."""
    channels = smpp_entry(_closed_port(), priority=0) + '\n[[channels]]\ntype = "simulator"\nname = "backup"\npriority = 1\n'
    async with engine(tmp_path, backend, channels, role="api") as rt:
        assert not rt.channels.by_name["carrier"].up and rt.channels.local == set()
        (row,) = await rt.outbox.submit(rt.workspace_id, [MessageRequest(to="+14155550123", body="hello")])
        assert row.channel == "carrier"
        rt.channels.started_here("carrier", 0)  # where the bind is known to be down, the backup serves
        (row,) = await rt.outbox.submit(rt.workspace_id, [MessageRequest(to="+14155550124", body="hello")])
        assert row.channel == "backup"


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _down(rt: Runtime) -> bool:
    return not rt.channels.by_name["carrier"].up


async def _queue_on(rt: Runtime, channel: str, count: int) -> list[str]:
    """Texts queued for `channel` as if accepted just before it went down."""
    from sqlalchemy import update

    from empathic.store.schema import messages

    ids = await send(rt, count, body="queued before the outage {i}")
    async with rt.db.transaction() as conn:
        await conn.execute(
            update(messages).where(messages.c.id.in_(ids), messages.c.status == "queued").values(channel=channel)
        )
    return ids


async def _all(rt: Runtime, ids: list[str], status: Status) -> bool:
    counts = await statuses(rt, ids)
    if counts == {status.value: len(ids)}:
        return True
    _all.last = counts  # type: ignore[attr-defined]  # shown when the wait fails
    return False


async def test_waiting_messages_of_a_channel_no_longer_declared_are_routed_again(tmp_path: Path, backend: str) -> None:
    async with postgres_schema(migrated=True) if backend == "postgresql" else nullcontext() as schema:
        first = '[[channels]]\ntype = "simulator"\nname = "old-sim"\n'
        async with engine(tmp_path, backend, first, schema) as rt:
            for dispatcher in rt.dispatchers.values():
                await dispatcher.stop()  # nothing leaves: the texts wait on old-sim
            ids = await send(rt, 3)
        renamed = '[[channels]]\ntype = "simulator"\nname = "new-sim"\n'
        async with engine(tmp_path, backend, renamed, schema) as rt:
            await eventually(lambda: _all(rt, ids, Status.DELIVERED), timeout=15)
            async with rt.db.transaction() as conn:
                assert {r.channel for r in await store.read(conn, ids)} == {"new-sim"}


async def test_a_channel_of_two_shards_sends_on_both_and_each_settles_its_own(tmp_path: Path, backend: str) -> None:
    """`shards = 2`: two binds and two dispatchers share the queue (one process holds both
    here; across workers see tests/integration/test_leases.py). Every text goes once, some
    by each shard, and a shard's reconcile settles only what that shard left `sending`."""
    async with Smsc(SmscSettings(port=0, latency=0.002, receipt_delay=0.01)) as smsc:
        async with engine(tmp_path, backend, smpp_entry(smsc.port, shards=2)) as rt:
            assert set(rt.dispatchers) == {"carrier", "carrier/1"}
            ids = await send(rt, 400)
            await eventually(lambda: _all(rt, ids, Status.DELIVERED), timeout=30)
            async with rt.db.transaction() as conn:
                by_shard: dict[int, int] = {}
                for row in await store.read(conn, ids):
                    by_shard[row.shard] = by_shard.get(row.shard, 0) + 1
            assert set(by_shard) == {0, 1}, by_shard  # both shards claimed some
            assert smsc.summary()["binds"] >= 2

            await rt.duties.stop()  # no dispatcher running: the test claims by hand
            (left,) = await send(rt, 1, body="left sending by shard 1")
            second = rt.dispatchers["carrier/1"]
            second.lease = None
            assert await second._claim(10) is not None  # noqa: SLF001
            assert await rt.dispatchers["carrier"].reconcile() == 0  # not shard 0's
            assert await statuses(rt, [left]) == {"sending": 1}
            assert await second.reconcile() == 1
            # SMPP cannot be asked: a transactional text is resent (held as `unknown` by other kinds)
            assert await statuses(rt, [left]) == {"queued": 1} and await resent(rt, [left]) == 1
    summary = smsc.summary()
    assert summary["received"] == summary["unique"] == 400 and summary["duplicates"] == 0


async def test_texts_an_smsc_never_confirmed_are_settled_by_asking_it(tmp_path: Path, backend: str) -> None:
    """An SMSC that sends no receipts (as one that died before sending them): the channel
    asks it with query_sm once receipts are overdue; the first answers say ENROUTE (its
    messages are final only `receipt_delay` after the submit), later ones the final state.
    Its ids are padded upper-case hex its receipts would write in decimal: it is asked by
    the id it gave (00AB12CD34), not by the key receipts are matched by (ab12cd34)."""
    settings = SmscSettings(port=0, receipts=False, receipt_delay=1.0, fail_share=0.25, seed=11, padded_ids=True)
    async with Smsc(settings) as smsc:
        channel = smpp_entry(smsc.port, query_after=0.2, query_tps=500, query_batch=7, receipt_id="hex_to_dec")
        async with engine(tmp_path, backend, channel) as rt:
            ids = await send(rt, 40)

            async def settled() -> dict[str, int] | None:
                counts = await statuses(rt, ids)
                return counts if set(counts) <= {"delivered", "undelivered"} else None

            counts = await eventually(settled, timeout=20)
            async with rt.db.transaction() as conn:
                reasons = {(await store.history(conn, i))[-1].reason for i in ids}
    assert counts["delivered"] + counts["undelivered"] == 40 and counts["undelivered"] >= 1, counts
    assert reasons == {"carrier_query", "carrier_query_error_001"}
    summary = smsc.summary()
    assert summary["receipts_sent"] == 0 and summary["queries"] > 40  # some were asked while still ENROUTE


async def test_texts_that_are_not_text_as_they_claim_are_refused_and_nothing_is_stored(
    tmp_path: Path, backend: str
) -> None:
    from empathic.channels.smpp.channel import INBOUND_REFUSED
    from empathic.channels.smpp.pdu import DeliverSm

    def refusals(reason: str) -> float:
        return INBOUND_REFUSED.labels("carrier", reason)._value.get()  # noqa: SLF001

    before = {reason: refusals(reason) for reason in ("data_coding", "udh")}
    async with Smsc(SmscSettings(port=0)) as smsc:
        async with engine(tmp_path, backend, smpp_entry(smsc.port)) as rt:
            person = {"source_addr_ton": 1, "source_addr_npi": 1, "source_addr": "14155550177",
                      "dest_addr_ton": 1, "dest_addr_npi": 1, "destination_addr": SENDER[1:]}
            # data_coding 0xFF (reserved; was read as GSM) and a UDH that does not fit (was 'é@¥')
            await smsc.send_deliver_sm(DeliverSm(**person, data_coding=0xFF, short_message=b"\x00\xff"))
            await smsc.send_deliver_sm(DeliverSm(**person, esm_class=0x40, short_message=b"\x05\x00\x03"))
            await eventually(lambda: _refused(smsc, 2), timeout=10)
            await smsc.send_mo("14155550177", SENDER[1:], "HELP")  # the bind still takes good texts

            async def received() -> list[MessageRow]:
                async with rt.db.transaction() as conn:
                    return await store.page(conn, rt.workspace_id, limit=10, status=Status.RECEIVED.value)

            rows = await eventually(received, timeout=10)
            assert [r.body for r in rows] == ["HELP"]
    assert smsc.summary()["mo_sent"] == 1 and smsc.summary()["refused"] == 2
    assert {reason: refusals(reason) - before[reason] for reason in before} == {"data_coding": 1, "udh": 1}


async def _refused(smsc: Smsc, count: int) -> bool:
    return smsc.summary()["refused"] >= count


async def test_a_long_text_with_a_part_that_is_not_text_is_refused_whole_not_redelivered_forever(
    tmp_path: Path, backend: str
) -> None:
    """One part of a long text cannot be read (UCS-2 of odd length): its other parts are
    refused with it at once, the one before it while waiting for the rest and the one after
    it as it arrives, instead of being told to come again after reassembly_timeout, again and
    again. Nothing of it is stored."""
    from empathic.channels.smpp.pdu import DeliverSm

    async with Smsc(SmscSettings(port=0, redeliver_delay=0.05)) as smsc:
        async with engine(tmp_path, backend, smpp_entry(smsc.port)) as rt:  # reassembly_timeout: 60 s
            person = {"source_addr_ton": 1, "source_addr_npi": 1, "source_addr": "14155550177",
                      "dest_addr_ton": 1, "dest_addr_npi": 1, "destination_addr": SENDER[1:]}

            def part(seq: int, body: bytes) -> DeliverSm:
                return DeliverSm(**person, esm_class=0x40, data_coding=8, short_message=bytes((5, 0, 3, 42, 3, seq)) + body)

            await smsc.send_deliver_sm(part(1, "Hello ".encode("utf-16-be")))
            await smsc.send_deliver_sm(part(2, b"\x00t\x00h\x01"))  # odd length: not UCS-2
            await eventually(lambda: _refused(smsc, 2), timeout=5)
            await smsc.send_deliver_sm(part(3, "friend".encode("utf-16-be")))
            await eventually(lambda: _refused(smsc, 3), timeout=5)
            await smsc.send_mo("14155550177", SENDER[1:], "HELP")

            async def received() -> list[MessageRow]:
                async with rt.db.transaction() as conn:
                    return await store.page(conn, rt.workspace_id, limit=10, status=Status.RECEIVED.value)

            rows = await eventually(received, timeout=10)
            assert [r.body for r in rows] == ["HELP"]
    assert smsc.summary()["refused"] == 3 and smsc.summary()["mo_sent"] == 1
