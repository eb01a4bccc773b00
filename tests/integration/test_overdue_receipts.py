"""Texts a carrier took but never confirmed: each channel's own receipt time-out, and the
engine asking the carrier about overdue receipts (in rounds, a batch at a time), against
a real database and a scripted carrier."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from empathic.channels.base import Outbound, Overdue, Receipt, ReceiptStatus, SendResult
from empathic.engine import receipts
from empathic.engine.dispatcher import Dispatcher, DispatchSettings
from empathic.engine.overdue import OverdueReceipts
from empathic.engine.scheduler import Scheduler
from empathic.store import keys
from empathic.store.db import Database
from tests.conftest import eventually
from tests.integration.test_dispatcher import TOPICS, WS, FakeClock, ScriptedCarrier, history, msg, queue, statuses


@pytest.fixture
async def db(database: Database) -> Database:
    async with database.transaction() as conn:
        await keys.ensure_workspace(conn, WS, "test", datetime.now(UTC))
    return database


async def sent_texts(db: Database, clock: FakeClock, count: int) -> tuple[ScriptedCarrier, list[str]]:
    carrier = ScriptedCarrier()
    ids = await queue(db, clock, *(msg(body=f"text {i}") for i in range(count)))
    await Dispatcher(db, clock, carrier, TOPICS, DispatchSettings()).dispatch_once()
    assert set(await statuses(db, ids)) == {"sent"}
    return carrier, ids


async def test_a_channel_waits_for_receipts_as_long_as_its_own_receipt_timeout(db: Database) -> None:
    clock = FakeClock()
    _, ids = await sent_texts(db, clock, 2)
    others = Scheduler(db, clock, on_released=lambda: None, receipt_timeout=3600, receipt_timeouts={"other": 600})
    own = Scheduler(db, clock, on_released=lambda: None, receipt_timeout=3600, receipt_timeouts={"scripted": 600})
    clock.advance(599)
    await own.fire_due()
    assert await statuses(db, ids) == ["sent", "sent"]
    clock.advance(31)  # past the 10 minutes, and past the next sweep
    await others.fire_due()
    assert await statuses(db, ids) == ["sent", "sent"]  # another channel's time-out is not theirs
    await own.fire_due()
    assert await statuses(db, ids) == ["expired", "expired"]
    assert (await history(db, ids[0]))[-1] == ("expired", "no_delivery_receipt")


class Querying:
    """A carrier that can be asked (channels.base.ReceiptQueries), answering from a script."""

    def __init__(self, answers: dict[str, tuple[ReceiptStatus, str | None] | None], clock: FakeClock) -> None:
        self.query_after = 600.0
        self.query_batch = 2
        self.answers = answers
        self.clock = clock
        self.asked: list[list[str]] = []

    async def query(self, texts: list[Overdue]) -> list[Receipt]:
        self.asked.append([t.carrier_id for t in texts])
        assert all(t.sender == "+18005550100" for t in texts)
        found = [(t.carrier_id, self.answers[t.carrier_id]) for t in texts]
        return [Receipt("scripted", cid, a[0], a[1], self.clock.now(), queried=True) for cid, a in found if a]


class Sink:
    def __init__(self, db: Database, clock: FakeClock) -> None:
        self.db, self.clock = db, clock

    async def on_receipts(self, batch: list[Receipt]) -> None:  # as Runtime.on_receipts
        async with self.db.transaction() as conn:
            await receipts.apply(conn, batch, self.clock.now())

    async def on_inbound(self, inbound: object) -> str:
        raise AssertionError("no texts come in here")


async def test_overdue_texts_are_asked_about_a_batch_at_a_time_in_rounds(db: Database) -> None:
    clock = FakeClock()
    carrier, ids = await sent_texts(db, clock, 5)
    cids = [carrier.held[i] for i in ids]
    answers = {
        cids[0]: None,  # still on its way: asked again next round
        cids[1]: (ReceiptStatus.DELIVERED, None),
        cids[2]: (ReceiptStatus.UNDELIVERED, "001"),
        cids[3]: None,
        cids[4]: (ReceiptStatus.EXPIRED, None),
    }
    querying = Querying(answers, clock)
    overdue = OverdueReceipts(db, clock, "scripted", querying, Sink(db, clock))
    assert await overdue.pass_once() > 0  # nothing is 10 minutes old yet
    clock.advance(601)
    passes = [await overdue.pass_once() for _ in range(4)]
    assert querying.asked == [[cids[0], cids[1]], [cids[2], cids[3]], [cids[4]]]
    assert passes[:3] == [0.0, 0.0, 0.0] and passes[3] > 0  # the round is over: the next in 10 minutes
    assert await statuses(db, ids) == ["sent", "delivered", "undelivered", "sent", "expired"]
    assert (await history(db, ids[1]))[-1] == ("delivered", "carrier_query")
    assert (await history(db, ids[2]))[-1] == ("undelivered", "carrier_query_error_001")
    assert await overdue.pass_once() > 0 and len(querying.asked) == 3  # not before the next round
    clock.advance(601)
    await overdue.pass_once()
    assert querying.asked[3:] == [[cids[0], cids[3]]]  # only those still `sent`


async def test_stopping_does_not_wait_for_questions_still_to_be_asked(db: Database) -> None:
    clock = FakeClock()
    await sent_texts(db, clock, 1)
    clock.advance(601)

    class Slow(Querying):
        async def query(self, texts: list[Overdue]) -> list[Receipt]:
            self.asked.append([t.carrier_id for t in texts])
            await asyncio.sleep(60)  # a long batch at a low query_tps
            return []

    slow = Slow({}, clock)
    overdue = OverdueReceipts(db, clock, "scripted", slow, Sink(db, clock))
    overdue.start()

    async def asking() -> bool:
        return bool(slow.asked)

    await eventually(asking, timeout=5)
    started = time.monotonic()
    await overdue.stop()
    assert time.monotonic() - started < 1  # not the loop's 10 s grace, nor the 60 s


class Normalising(ScriptedCarrier):
    """A carrier whose ids its receipts write in another form (SMPP receipt_id hex_to_dec):
    the key they are matched by is not the id it gave, "00AB12" matched as "ab12"."""

    async def send(self, batch: list[Outbound]) -> list[SendResult]:
        results = []
        for i, out in enumerate(batch):
            given = f"00{0xAB12 + i:X}"
            self.held[out.message_id] = given
            results.append(SendResult(out.message_id, f"{0xAB12 + i:x}", raw_carrier_id=given))
        return results


async def test_the_carrier_is_asked_by_the_id_it_gave_and_its_answer_found_by_the_key(db: Database) -> None:
    clock = FakeClock()
    carrier = Normalising()
    ids = await queue(db, clock, msg(body="one"), msg(body="two"))
    await Dispatcher(db, clock, carrier, TOPICS, DispatchSettings()).dispatch_once()
    asked: list[Overdue] = []

    class Asked(Querying):
        async def query(self, texts: list[Overdue]) -> list[Receipt]:
            asked.extend(texts)
            return [Receipt("scripted", t.carrier_id, ReceiptStatus.DELIVERED, None, clock.now(), queried=True)
                    for t in texts]

    overdue = OverdueReceipts(db, clock, "scripted", Asked({}, clock), Sink(db, clock))
    clock.advance(601)
    await overdue.pass_once()
    assert sorted((t.carrier_id, t.raw_carrier_id) for t in asked) == [("ab12", "00AB12"), ("ab13", "00AB13")]
    assert await statuses(db, ids) == ["delivered", "delivered"]  # the answers found them by the key
