"""The dispatcher, scheduler and receipts against a real SQLite file and a scripted carrier."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from empathic.channels.base import ChannelError, ErrorKind, Outbound, Receipt, ReceiptStatus, SendResult
from empathic.core.routing import Destination, Reach
from empathic.core.topics import DEFAULT_TOPICS, Topics
from empathic.engine import outbox, receipts
from empathic.engine.dispatcher import Dispatcher, DispatchSettings
from empathic.engine.duties import Duties, Duty, new_owner
from empathic.engine.scheduler import Scheduler
from empathic.core.consent import ConsentAction
from empathic.store import consent as consent_store
from empathic.store import contacts as contact_store
from empathic.store import keys
from empathic.store import messages as store
from empathic.store.db import Database

WS = "ws_test"
TOPICS = Topics(dict(DEFAULT_TOPICS))


class OneChannel:
    """Routes every message to the scripted carrier."""

    def destination(self, to: str, topic: str) -> Destination:
        return Destination(Reach.SMS, None, None, topic, "transactional")

    def route(self, dest: Destination, sticky: str | None, down: object = None) -> tuple[str, str]:
        return "scripted", "+18005550100"

    def down(self) -> set[str]:
        return set()

    async def stick(self, conn: object, workspace_id: str, contact_id: str, channel: str) -> None: ...


ACCEPTANCE = outbox.Acceptance(topics=TOPICS, sender="+18005550100", router=OneChannel())


class FakeClock:
    def __init__(self) -> None:
        self.at = datetime(2026, 11, 23, 12, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


class ScriptedCarrier:
    """A carrier whose answers the test scripts: per call, an error kind or success."""

    name = "scripted"
    sender = "+18005550100"
    answers_lookup = True

    def __init__(self, tps: float = 1000.0) -> None:
        self.tps = tps
        self.script: list[ErrorKind | Exception | None] = []
        self.held: dict[str, str] = {}
        self.calls: list[list[str]] = []

    async def start(self, sink: object) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, batch: list[Outbound]) -> list[SendResult]:
        self.calls.append([o.message_id for o in batch])
        step = self.script.pop(0) if self.script else None
        if isinstance(step, Exception):
            # The carrier took the first message, then the connection dropped.
            self.held[batch[0].message_id] = uuid.uuid4().hex
            raise step
        if step is not None:
            return [SendResult(o.message_id, error=ChannelError(step, "scripted")) for o in batch]
        results = []
        for o in batch:
            self.held[o.message_id] = uuid.uuid4().hex
            results.append(SendResult(o.message_id, self.held[o.message_id]))
        return results

    async def lookup(self, message_ids: list[str]) -> dict[str, str]:
        return {m: self.held[m] for m in message_ids if m in self.held}


@pytest.fixture
async def db(database: Database) -> Database:
    async with database.transaction() as conn:
        await keys.ensure_workspace(conn, WS, "test", datetime.now(UTC))
    return database


async def queue(db: Database, clock: FakeClock, *requests: outbox.MessageRequest) -> list[str]:
    async with db.transaction() as conn:
        rows = await ACCEPTANCE.submit(conn, WS, list(requests), clock.now())
    return [r.id for r in rows]


async def statuses(db: Database, ids: list[str]) -> list[str]:
    async with db.transaction() as conn:
        rows = {r.id: r for r in await store.read(conn, ids)}
    return [rows[i].status for i in ids]


async def history(db: Database, message_id: str) -> list[tuple[str, str]]:
    async with db.transaction() as conn:
        return [(e.status, e.reason) for e in await store.history(conn, message_id)]


def msg(to: str = "+14155550100", topic: str = "transactional", body: str = "hi") -> outbox.MessageRequest:
    return outbox.MessageRequest(to=to, body=body, topic=topic)


async def test_transient_errors_retry_with_backoff_then_send(db: Database) -> None:
    clock, carrier = FakeClock(), ScriptedCarrier()
    carrier.script = [ErrorKind.CONNECTION, ErrorKind.THROTTLED]
    dispatcher = Dispatcher(db, clock, carrier, TOPICS, DispatchSettings(retry_base=10, max_attempts=5))
    scheduler = Scheduler(db, clock, on_released=lambda: None)
    (mid,) = await queue(db, clock, msg())

    await dispatcher.dispatch_once()
    assert await statuses(db, [mid]) == ["deferred"]
    assert await scheduler.fire_due() == 0  # not yet due
    clock.advance(10)  # the first retry waits 5-10 s
    assert await scheduler.fire_due() == 1
    assert await statuses(db, [mid]) == ["queued"]
    await dispatcher.dispatch_once()
    assert await statuses(db, [mid]) == ["deferred"]
    clock.advance(10)
    assert await scheduler.fire_due() == 0  # the second waits 10-20 s
    clock.advance(10)
    await scheduler.fire_due()
    await dispatcher.dispatch_once()
    assert await statuses(db, [mid]) == ["sent"]
    assert [s for s, _ in await history(db, mid)] == [
        "queued", "sending", "deferred", "queued", "sending", "deferred", "queued", "sending", "sent"
    ]
    assert len(carrier.calls) == 3


async def test_permanent_errors_and_exhausted_retries_fail(db: Database) -> None:
    clock, carrier = FakeClock(), ScriptedCarrier()
    dispatcher = Dispatcher(db, clock, carrier, TOPICS, DispatchSettings(retry_base=1, max_attempts=2))
    scheduler = Scheduler(db, clock, on_released=lambda: None)
    carrier.script = [ErrorKind.REJECTED]
    (rejected,) = await queue(db, clock, msg(body="a"))
    await dispatcher.dispatch_once()
    assert await history(db, rejected) == [("queued", "accepted"), ("sending", "handed_to_channel"), ("failed", "channel_rejected")]

    carrier.script = [ErrorKind.CONNECTION, ErrorKind.CONNECTION]
    (flaky,) = await queue(db, clock, msg(body="b"))
    await dispatcher.dispatch_once()
    clock.advance(5)
    await scheduler.fire_due()
    await dispatcher.dispatch_once()
    assert await statuses(db, [flaky]) == ["failed"]


async def grant(db: Database, clock: FakeClock, phone: str, topic: str) -> None:
    async with db.transaction() as conn:
        (contact,) = (await contact_store.ensure_by_phone(conn, WS, [phone], clock.now())).values()
        await consent_store.append(
            conn, WS, contact.id, topic=topic, channel="sms", action=ConsentAction.GRANTED,
            source="api", actor="test", evidence=None, at=clock.now(),
        )


async def test_urgent_topics_go_first(db: Database) -> None:
    clock, carrier = FakeClock(), ScriptedCarrier()
    clock.at = datetime(2026, 11, 23, 20, tzinfo=UTC)  # noon in San Francisco
    dispatcher = Dispatcher(db, clock, carrier, TOPICS, DispatchSettings(batch_size=5))
    await grant(db, clock, "+14155550100", "marketing")
    marketing = await queue(db, clock, *[msg(topic="marketing", body=f"m{i}") for i in range(20)])
    (otp,) = await queue(db, clock, msg(topic="otp", body="code 123456"))
    (alert,) = await queue(db, clock, msg(topic="transactional", body="shipped"))
    await dispatcher.dispatch_once()
    assert carrier.calls[0][:2] == [otp, alert]
    assert carrier.calls[0][2:] == marketing[:3]


async def test_a_marketing_backlog_never_delays_a_code_or_an_alert(db: Database) -> None:
    clock, carrier = FakeClock(), ScriptedCarrier()
    clock.at = datetime(2026, 11, 23, 20, tzinfo=UTC)  # noon in San Francisco
    dispatcher = Dispatcher(db, clock, carrier, TOPICS, DispatchSettings(batch_size=200))
    await grant(db, clock, "+14155550100", "marketing")
    backlog = await queue(db, clock, *[msg(topic="marketing", body=f"offer {i}") for i in range(2000)])
    await dispatcher.dispatch_once()
    assert carrier.calls[-1] == backlog[:200]  # the backlog is being worked through
    (otp,) = await queue(db, clock, msg(topic="otp", body="code 987654"))
    (alert,) = await queue(db, clock, msg(topic="transactional", body="your driver is 5 minutes away"))
    await dispatcher.dispatch_once()
    nxt = carrier.calls[-1]
    assert nxt[:2] == [otp, alert]  # the very next batch, ahead of 1,800 offers
    assert nxt[2:] == backlog[200 : 200 + len(nxt) - 2]  # then the backlog resumes in order


async def test_a_code_not_sent_within_ten_minutes_expires_instead_of_arriving_late(db: Database) -> None:
    clock, carrier = FakeClock(), ScriptedCarrier()
    dispatcher = Dispatcher(db, clock, carrier, TOPICS, DispatchSettings(retry_base=700, max_attempts=5))
    (otp,) = await queue(db, clock, msg(topic="otp", body="code 111222"))
    async with db.transaction() as conn:
        (row,) = await store.read(conn, [otp])
    assert row.valid_until == clock.now() + timedelta(minutes=10)
    carrier.script = [ErrorKind.CONNECTION]
    await dispatcher.dispatch_once()
    clock.advance(11 * 60)
    scheduler = Scheduler(db, clock, on_released=dispatcher.wake)
    await scheduler.fire_due()
    await dispatcher.dispatch_once()
    assert await statuses(db, [otp]) == ["expired"]
    assert len(carrier.calls) == 1


def test_one_time_codes_are_refused_in_a_batch() -> None:
    with pytest.raises(outbox.SubmitError) as caught:
        ACCEPTANCE.validate([msg(), msg(topic="otp", body="code 1")], numbered=True)
    assert caught.value.field == "messages[1].topic"
    ACCEPTANCE.validate([msg(topic="otp", body="code 1")])  # alone, on request: fine


async def test_rate_limit_caps_each_pass(db: Database) -> None:
    clock, carrier = FakeClock(), ScriptedCarrier(tps=10)
    dispatcher = Dispatcher(db, clock, carrier, TOPICS, DispatchSettings(batch_size=500))
    await queue(db, clock, *[msg(body=f"n{i}") for i in range(50)])
    await dispatcher.dispatch_once()
    assert len(carrier.calls[0]) == 10


async def test_interrupted_hand_off_is_reconciled_not_resent(db: Database) -> None:
    clock, carrier = FakeClock(), ScriptedCarrier()
    dispatcher = Dispatcher(db, clock, carrier, TOPICS, DispatchSettings(retry_base=1))
    carrier.script = [ConnectionResetError("dropped mid-batch")]
    ids = await queue(db, clock, *[msg(body=f"r{i}") for i in range(3)])
    await dispatcher.dispatch_once()
    # The carrier held the first one: it is sent, not retried; the others retry.
    assert await statuses(db, ids) == ["sent", "deferred", "deferred"]


async def test_crash_leftovers_in_sending_are_settled_at_start(db: Database) -> None:
    clock, carrier = FakeClock(), ScriptedCarrier()
    dispatcher = Dispatcher(db, clock, carrier, TOPICS, DispatchSettings())
    ids = await queue(db, clock, msg(body="x"), msg(body="y"))
    # Simulate a crash after the claim: both `sending`, the carrier got only the first.
    claimed = await dispatcher._claim(10)
    assert claimed is not None
    carrier.held[ids[0]] = "carrier-x"
    assert await statuses(db, ids) == ["sending", "sending"]
    assert await dispatcher.reconcile() == 2
    assert await statuses(db, ids) == ["sent", "queued"]
    await dispatcher.dispatch_once()
    assert carrier.calls == [[ids[1]]]  # only the one the carrier never had


async def test_receipts_early_duplicate_unknown_and_timeout(db: Database) -> None:
    clock, carrier = FakeClock(), ScriptedCarrier()
    dispatcher = Dispatcher(db, clock, carrier, TOPICS, DispatchSettings(receipt_timeout=3600))
    scheduler = Scheduler(db, clock, on_released=lambda: None, receipt_timeout=3600)
    early_id, late_id = await queue(db, clock, msg(body="early"), msg(body="late"))
    claimed = await dispatcher._claim(1)
    assert claimed is not None
    # The carrier's receipt arrives before we recorded `sent`.
    carrier_id = "carrier-early"
    receipt = Receipt("scripted", carrier_id, ReceiptStatus.DELIVERED, None, clock.now())
    async with db.transaction() as conn:
        assert await receipts.apply(conn, [receipt], clock.now()) == 0
    await dispatcher._record_results(claimed[1], [SendResult(early_id, carrier_id)])
    clock.advance(1)
    await scheduler.fire_due()
    assert await statuses(db, [early_id]) == ["delivered"]
    assert await pending_timers(db, early_id) == []  # no timer row per message: the sweep expires
    # The same receipt again, and one for an id nobody knows, change nothing.
    async with db.transaction() as conn:
        assert await receipts.apply(conn, [receipt], clock.now()) == 0
    # No receipt at all: after the time-out the message is `expired`.
    await dispatcher.dispatch_once()
    assert await statuses(db, [late_id]) == ["sent"]
    clock.advance(3598)
    await scheduler.fire_due()
    assert await statuses(db, [late_id]) == ["sent"]  # not yet an hour
    clock.advance(3)
    await scheduler.fire_due()
    assert await statuses(db, [late_id]) == ["sent"]  # an hour, but the sweep ran 3 s ago
    clock.advance(30)
    await scheduler.fire_due()
    assert await statuses(db, [late_id]) == ["expired"]
    assert (await history(db, late_id))[-1] == ("expired", "no_delivery_receipt")
    assert await statuses(db, [early_id]) == ["delivered"]
    assert await pending_timers(db, late_id) == []


async def test_an_early_receipt_is_applied_as_its_text_is_recorded_sent(db: Database) -> None:
    """The receipt came before our `sent` was written: this process kept it, and the write
    that records `sent` applies it (no wait for the retry timer, whose row goes too)."""
    clock, carrier = FakeClock(), ScriptedCarrier()
    early = receipts.Early()
    dispatcher = Dispatcher(db, clock, carrier, TOPICS, DispatchSettings(), early=early)
    first, second = await queue(db, clock, msg(body="one"), msg(body="two"))
    claimed = await dispatcher._claim(2)  # noqa: SLF001
    assert claimed is not None
    came_early = Receipt("scripted", "carrier-1", ReceiptStatus.UNDELIVERED, "001", clock.now())
    async with db.transaction() as conn:
        assert await receipts.apply(conn, [came_early], clock.now(), early=early) == 0
    assert len(early) == 1 and await pending_timers(db, "scripted:carrier-1") == ["receipt.retry"]
    await dispatcher._record_results(claimed[1], [SendResult(first, "carrier-1"), SendResult(second, "carrier-2")])  # noqa: SLF001
    assert await statuses(db, [first, second]) == ["undelivered", "sent"]
    assert (await history(db, first))[-2:] == [("sent", "accepted_by_carrier"), ("undelivered", "carrier_error_001")]
    assert len(early) == 0 and await pending_timers(db, "scripted:carrier-1") == []


async def test_an_early_receipt_another_worker_parked_is_applied_as_its_text_is_recorded_sent(db: Database) -> None:
    """An SMSC sends receipts on any bind of the account: this one came to another worker,
    before we recorded `sent`, and waits there as a retry timer. Our write of `sent` takes
    it and applies it, instead of leaving it to the timer (seconds later, one by one)."""
    clock, carrier = FakeClock(), ScriptedCarrier()
    dispatcher = Dispatcher(db, clock, carrier, TOPICS, DispatchSettings(), early=receipts.Early())
    (mid,) = await queue(db, clock, msg())
    claimed = await dispatcher._claim(1)  # noqa: SLF001
    assert claimed is not None
    elsewhere = receipts.Early()  # the other worker's memory
    async with db.transaction() as conn:
        receipt = Receipt("scripted", "carrier-9", ReceiptStatus.DELIVERED, None, clock.now())
        await receipts.apply(conn, [receipt], clock.now(), early=elsewhere)
    await dispatcher._record_results(claimed[1], [SendResult(mid, "carrier-9")])  # noqa: SLF001
    assert await statuses(db, [mid]) == ["delivered"]
    assert await pending_timers(db, "scripted:carrier-9") == []


async def pending_timers(db: Database, ref: str) -> list[str]:
    from sqlalchemy import select

    from empathic.store.schema import timers as timer_table

    async with db.transaction() as conn:
        return [k for (k,) in (await conn.execute(select(timer_table.c.kind).where(timer_table.c.ref == ref))).all()]


async def test_the_gate_defers_blocks_expires_and_caps(db: Database) -> None:
    clock, carrier = FakeClock(), ScriptedCarrier()
    clock.at = datetime(2026, 11, 23, 10, tzinfo=UTC)  # 02:00 in San Francisco, 05:00 in Miami
    dispatcher = Dispatcher(db, clock, carrier, TOPICS, DispatchSettings(batch_size=50))
    scheduler = Scheduler(db, clock, on_released=dispatcher.wake)
    await grant(db, clock, "+14155550100", "marketing")
    await grant(db, clock, "+13055550100", "marketing")
    night_deal, no_consent, alert = await queue(
        db, clock, msg(topic="marketing", body="deal"), msg("+14155550199", topic="marketing", body="deal"), msg(body="shipped")
    )
    async with db.transaction() as conn:
        (stale,) = await ACCEPTANCE.submit(
            conn, WS, [outbox.MessageRequest("+14155550100", "ETA 9:00", valid_until=clock.now())], clock.now()
        )
    await dispatcher.dispatch_once()
    assert await statuses(db, [night_deal, no_consent, alert, stale.id]) == ["deferred", "blocked", "sent", "expired"]
    assert (await history(db, night_deal))[-1] == ("deferred", "quiet_hours")
    assert (await history(db, no_consent))[-1] == ("blocked", "no_consent")
    assert (await history(db, stale.id))[-1] == ("expired", "expired")
    async with db.transaction() as conn:
        (row,) = await store.read(conn, [night_deal])
    assert row.next_attempt_at == datetime(2026, 11, 23, 16, tzinfo=UTC)  # 08:00 PST

    # At 08:00 in San Francisco the timer releases it and it goes.
    clock.at = datetime(2026, 11, 23, 16, tzinfo=UTC)
    assert await scheduler.fire_due() >= 1
    await dispatcher.dispatch_once()
    assert await statuses(db, [night_deal]) == ["sent"]

    # Florida: at most 3 marketing texts on one topic per 24 hours; the 4th waits.
    miami = await queue(db, clock, *[msg("+13055550100", topic="marketing", body=f"offer {i}") for i in range(4)])
    await dispatcher.dispatch_once()
    assert await statuses(db, miami) == ["sent", "sent", "sent", "deferred"]
    assert (await history(db, miami[3]))[-1] == ("deferred", "frequency_cap")

    # The same marketing content never goes twice to one person.
    (again,) = await queue(db, clock, msg(topic="marketing", body="deal"))
    await dispatcher.dispatch_once()
    assert (await history(db, again))[-1] == ("blocked", "duplicate_content")


async def test_a_reply_to_the_person_is_not_held_by_quiet_hours(db: Database) -> None:
    clock, carrier = FakeClock(), ScriptedCarrier()
    clock.at = datetime(2026, 11, 23, 7, tzinfo=UTC)  # 23:00 in San Francisco
    dispatcher = Dispatcher(db, clock, carrier, TOPICS, DispatchSettings(batch_size=50))
    async with db.transaction() as conn:
        reply, opener = await ACCEPTANCE.submit(
            conn, WS,
            [outbox.MessageRequest("+14155550100", "Sure, done", "conversational", in_reply_to="msg_inbound"),
             outbox.MessageRequest("+14155550101", "Hi there", "conversational")],
            clock.now(),
        )
    await dispatcher.dispatch_once()
    assert await statuses(db, [reply.id, opener.id]) == ["sent", "deferred"]


class WindowCarrier(ScriptedCarrier):
    """A carrier that cannot be asked what it holds (SMPP, HTTP providers), with a window of
    10, whose answers wait until the test lets them through."""

    answers_lookup = False

    def __init__(self) -> None:
        super().__init__()
        self.settings = type("Settings", (), {"window": 10})()
        self.answer = asyncio.Event()

    async def send(self, batch: list[Outbound]) -> list[SendResult]:
        await self.answer.wait()
        return await super().send(batch)


async def test_a_channel_that_cannot_be_asked_has_at_most_two_windows_in_doubt(db: Database) -> None:
    """Whatever is claimed and not yet recorded is `unknown` after a crash on such a channel
    (reconcile cannot ask it), so a backlog is claimed only up to two windows at a time, a
    window per batch: never the 4 x 500 batches that mostly never reached the carrier."""
    clock, carrier = FakeClock(), WindowCarrier()
    dispatcher = Dispatcher(db, clock, carrier, TOPICS, DispatchSettings(batch_size=500, batches_in_flight=4))
    ids = await queue(db, clock, *[msg(to=f"+1415555{i:04d}", body=f"w{i}") for i in range(200)])
    await dispatcher.start()
    try:
        for _ in range(50):  # until the dispatcher has claimed all it may
            await asyncio.sleep(0.02)
            if (await statuses(db, ids)).count("sending") >= 20:
                break
        await asyncio.sleep(0.1)
        assert (await statuses(db, ids)).count("sending") == 20  # 2 x window
        assert len(carrier.calls) == 0 and len(dispatcher._in_flight) == 2  # noqa: SLF001 - batches of 10
        carrier.answer.set()
        for _ in range(200):
            if (await statuses(db, ids)).count("sent") == len(ids):
                break
            await asyncio.sleep(0.02)
        assert (await statuses(db, ids)).count("sent") == len(ids)
        assert max(len(call) for call in carrier.calls) == 10
    finally:
        carrier.answer.set()
        await dispatcher.stop()


class StaleLease:
    """A lease never renewed in time (not fresh), still ours until the test says not."""

    def __init__(self) -> None:
        self.ours = True

    async def still_mine(self, conn: object) -> bool:
        return self.ours

    def fresh(self) -> bool:
        return False


async def test_a_worker_whose_lease_went_stale_hands_nothing_over(db: Database) -> None:
    """engine.duties fencing: a batch claimed before this worker's lease went stale is not
    handed to the carrier. If the lease is still ours it goes back to the queue; if another
    worker holds it now, it is left to that worker's reconcile."""
    clock, carrier = FakeClock(), ScriptedCarrier()
    lease = StaleLease()
    dispatcher = Dispatcher(db, clock, carrier, TOPICS, DispatchSettings(), lease=lease)
    kept, lost = await queue(db, clock, msg(body="kept"), msg(body="lost"))
    claimed = await dispatcher._claim(1)  # noqa: SLF001
    assert claimed is not None
    await dispatcher._in_background(claimed[1])  # noqa: SLF001
    assert carrier.calls == []
    assert await history(db, kept) == [("queued", "accepted"), ("sending", "handed_to_channel"), ("queued", "lease_unsure")]

    lease.ours = False
    claimed = await dispatcher._claim(1)  # noqa: SLF001
    assert claimed is None  # a claim is fenced too
    dispatcher.lease = None
    claimed = await dispatcher._claim(2)  # noqa: SLF001
    assert claimed is not None
    dispatcher.lease = lease  # lost between the claim and the hand-off
    await dispatcher._in_background(claimed[1])  # noqa: SLF001
    assert carrier.calls == [] and await statuses(db, [kept, lost]) == ["sending", "sending"]


async def _idle() -> None:
    pass


@pytest.mark.parametrize("answers_lookup", [True, False])
async def test_a_run_begun_on_a_stale_grant_leaves_the_holders_batch_alone(db: Database, answers_lookup: bool) -> None:
    """Worker a was granted the channel, then paused before its run began (inside the
    renewal, or stopping its previous run); b took the lapsed lease over and has a batch
    claimed, not yet at the carrier. a's run begins with reconcile, which writes under the
    fence: b's batch is not requeued (b hands it over, and claimed again it would reach the
    carrier twice), and b's outcome is recorded as ever."""
    clock, carrier = FakeClock(), ScriptedCarrier()
    carrier.answers_lookup = answers_lookup  # else reconcile marks them `unknown`
    name = "channel:scripted"
    a = Duties(db, clock, new_owner(), [Duty(name, _idle, _idle)], ttl=10)
    b = Duties(db, clock, new_owner(), [Duty(name, _idle, _idle)], ttl=10)
    await a._pass()  # noqa: SLF001
    clock.advance(11)  # a paused past its lease
    await b._pass()  # noqa: SLF001
    assert a.held == {name} and b.held == {name}  # a does not know yet
    holder = Dispatcher(db, clock, carrier, TOPICS, DispatchSettings(), lease=b.lease(name))
    late = Dispatcher(db, clock, carrier, TOPICS, DispatchSettings(), lease=a.lease(name))
    ids = await queue(db, clock, msg(body="x"), msg(body="y"))
    claimed = await holder._claim(10)  # noqa: SLF001
    assert claimed is not None
    assert await late.reconcile() == 0
    assert await statuses(db, ids) == ["sending", "sending"]
    await holder._in_background(claimed[1])  # noqa: SLF001
    assert carrier.calls == [ids] and await statuses(db, ids) == ["sent", "sent"]
    assert [s for s, _ in await history(db, ids[0])] == ["queued", "sending", "sent"]


async def test_an_outcome_is_recorded_only_over_our_own_claim(db: Database) -> None:
    """A worker that lost its channel while handing over finds its batch settled by the new
    holder (requeued and claimed again): its late outcome changes nothing."""
    clock, carrier = FakeClock(), ScriptedCarrier()
    stale, fresh = Dispatcher(db, clock, carrier, TOPICS, DispatchSettings()), Dispatcher(db, clock, carrier, TOPICS, DispatchSettings())
    (mid,) = await queue(db, clock, msg())
    old = await stale._claim(1)  # noqa: SLF001
    assert old is not None
    await fresh.reconcile()  # the new holder: not at the carrier, so queued again
    new = await fresh._claim(1)  # noqa: SLF001
    assert new is not None and new[1][0].attempts == 2
    await stale._record_results(old[1], [SendResult(mid, "late-carrier-id")])  # noqa: SLF001
    assert await statuses(db, [mid]) == ["sending"]  # still the new holder's claim
    await fresh._send_and_record(new[1])  # noqa: SLF001
    await stale._record_results(old[1], [SendResult(mid, error=ChannelError(ErrorKind.REJECTED, "late"))])  # noqa: SLF001
    assert [s for s, _ in await history(db, mid)] == ["queued", "sending", "queued", "sending", "sent"]


class Outage:
    """The database out of reach, at the connection: while `down`, a transaction fails to
    begin as a refused connection does (the rows underneath are real)."""

    def __init__(self, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
        self.down = False
        real = db.transaction

        def transaction():  # type: ignore[no-untyped-def]
            if self.down:
                raise ConnectionRefusedError(111, "Connect call failed")
            return real()

        monkeypatch.setattr(db, "transaction", transaction)


@pytest.mark.parametrize("answers_lookup", [True, False])
async def test_an_outcome_the_database_missed_is_written_when_it_is_back(
    db: Database, monkeypatch: pytest.MonkeyPatch, answers_lookup: bool,
) -> None:
    """The carrier took the batch, then the database went away before its outcome was
    written: the living worker keeps the carrier's answers and writes them before its next
    claim. They become `sent` with their carrier ids, not `unknown` (which is only for a
    worker that died), and nothing is sent twice."""
    clock, carrier = FakeClock(), ScriptedCarrier()
    carrier.answers_lookup = answers_lookup
    dispatcher = Dispatcher(db, clock, carrier, TOPICS, DispatchSettings())
    outage = Outage(db, monkeypatch)
    ids = await queue(db, clock, msg(body="a"), msg(body="b"))
    claimed = await dispatcher._claim(10)  # noqa: SLF001
    assert claimed is not None
    real_send = carrier.send

    async def send_then_lose_the_database(batch: list[Outbound]) -> list[SendResult]:
        results = await real_send(batch)
        outage.down = True
        return results

    carrier.send = send_then_lose_the_database  # type: ignore[method-assign]
    await dispatcher._in_background(claimed[1])  # noqa: SLF001
    outage.down = False
    assert await statuses(db, ids) == ["sending", "sending"]
    outage.down = True
    with pytest.raises(ConnectionRefusedError):
        await dispatcher._pass()  # noqa: SLF001 - still away: kept, the loop tries again
    outage.down = False
    await dispatcher._pass()  # noqa: SLF001
    assert await statuses(db, ids) == ["sent", "sent"]
    async with db.transaction() as conn:
        rows = await store.read(conn, ids)
    assert sorted(r.carrier_id for r in rows) == sorted(carrier.held[i] for i in ids)
    assert carrier.calls == [ids]


async def test_a_hand_off_whose_outcome_could_not_be_asked_is_asked_again(
    db: Database, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The connection to the carrier dropped mid-batch and the lookup that should settle it
    failed too: the carrier is asked again later, and only what it lacks is retried."""
    clock, carrier = FakeClock(), ScriptedCarrier()
    dispatcher = Dispatcher(db, clock, carrier, TOPICS, DispatchSettings(retry_base=1))
    carrier.script = [ConnectionResetError("dropped mid-batch")]
    ids = await queue(db, clock, *[msg(body=f"r{i}") for i in range(3)])
    real_lookup = carrier.lookup
    failing = [True]

    async def lookup(message_ids: list[str]) -> dict[str, str]:
        if failing.pop(0) if failing else False:
            raise ConnectionResetError("carrier unreachable")
        return await real_lookup(message_ids)

    carrier.lookup = lookup  # type: ignore[method-assign]
    claimed = await dispatcher._claim(10)  # noqa: SLF001
    assert claimed is not None
    await dispatcher._in_background(claimed[1])  # noqa: SLF001
    assert await statuses(db, ids) == ["sending"] * 3
    await dispatcher._pass()  # noqa: SLF001
    assert await statuses(db, ids) == ["sent", "deferred", "deferred"]
    assert carrier.calls == [ids]


class UnaskableCarrier(ScriptedCarrier):
    """A carrier that cannot be asked what it holds (SMPP, HTTP providers)."""

    answers_lookup = False


def unknown_outcomes(kind: str, policy: str, outcome: str) -> float:
    from prometheus_client import REGISTRY

    labels = {"kind": kind, "policy": policy, "outcome": outcome}
    return REGISTRY.get_sample_value("empathic_unknown_outcomes_total", labels) or 0.0


async def test_an_unknown_outcome_is_resent_for_codes_and_alerts_and_held_for_the_rest(db: Database) -> None:
    """After a crash on a channel that cannot be asked, a code and an alert go back to the
    queue once (`resent_after_unknown`); a conversation's text and an offer stay `unknown`.
    A second unknown outcome of the resent ones holds them: one resend by default. A topic
    may say otherwise (`deals`: marketing, resent up to twice)."""
    from empathic.core.topics import OnUnknown, UnknownPolicy

    clock, carrier = FakeClock(), UnaskableCarrier()
    clock.at = datetime(2026, 11, 23, 20, tzinfo=UTC)  # noon in San Francisco
    topics = Topics({**DEFAULT_TOPICS, "deals": DEFAULT_TOPICS["marketing"]},
                    {"deals": UnknownPolicy(OnUnknown.RESEND, 2)})
    acceptance = outbox.Acceptance(topics=topics, sender="+18005550100", router=OneChannel())
    dispatcher = Dispatcher(db, clock, carrier, topics, DispatchSettings(batch_size=50))
    for phone in ("+14155550103", "+14155550104"):
        await grant(db, clock, phone, "marketing")
        await grant(db, clock, phone, "deals")
    ids = []
    for i, topic in enumerate(["otp", "transactional", "conversational", "marketing", "deals"]):
        async with db.transaction() as conn:
            (row,) = await acceptance.submit(conn, WS, [msg(f"+1415555010{i}", topic, f"text {i}")], clock.now())
        ids.append(row.id)
    before = {key: unknown_outcomes(*key) for key in [
        ("otp", "resend", "resent"), ("transactional", "resend", "resent"), ("conversational", "hold", "held"),
        ("marketing", "hold", "held"), ("marketing", "resend", "resent"), ("otp", "resend", "held"),
    ]}

    assert await dispatcher._claim(10) is not None  # noqa: SLF001 - then the process dies
    assert await dispatcher.reconcile() == 5
    assert await statuses(db, ids) == ["queued", "queued", "unknown", "unknown", "queued"]
    assert (await history(db, ids[0]))[-2:] == [("sending", "handed_to_channel"), ("queued", "resent_after_unknown")]
    assert (await history(db, ids[2]))[-1] == ("unknown", "interrupted_outcome_unknown")
    assert carrier.calls == []

    carrier.script = [ErrorKind.UNKNOWN]  # the connection breaks again before the carrier answers
    await dispatcher.dispatch_once()
    assert carrier.calls == [[ids[0], ids[1], ids[4]]]  # the same messages, through the gate again
    assert await statuses(db, ids) == ["unknown", "unknown", "unknown", "unknown", "queued"]
    assert (await history(db, ids[0]))[-1] == ("unknown", "outcome_unknown")  # its one resend is used
    await dispatcher.dispatch_once()
    assert await statuses(db, [ids[4]]) == ["sent"]
    assert [r for _, r in await history(db, ids[4])].count("resent_after_unknown") == 2

    after = {key: unknown_outcomes(*key) - n for key, n in before.items()}
    assert after == {
        ("otp", "resend", "resent"): 1, ("transactional", "resend", "resent"): 1, ("conversational", "hold", "held"): 1,
        ("marketing", "hold", "held"): 1, ("marketing", "resend", "resent"): 2, ("otp", "resend", "held"): 1,
    }


async def test_a_resent_code_past_its_validity_expires_instead_of_arriving_late(db: Database) -> None:
    clock, carrier = FakeClock(), UnaskableCarrier()
    dispatcher = Dispatcher(db, clock, carrier, TOPICS, DispatchSettings())
    (code,) = await queue(db, clock, msg(topic="otp", body="Your code is 123456"))
    assert await dispatcher._claim(10) is not None  # noqa: SLF001 - then the process dies
    clock.advance(11 * 60)  # back 11 minutes later: a code is worth 10
    assert await dispatcher.reconcile() == 1
    await dispatcher.dispatch_once()
    assert await history(db, code) == [
        ("queued", "accepted"), ("sending", "handed_to_channel"), ("queued", "resent_after_unknown"),
        ("expired", "expired"),
    ]
    assert carrier.calls == []
