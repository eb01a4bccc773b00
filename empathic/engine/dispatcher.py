"""The dispatcher: claims a channel's queued messages in batches, gates them, hands them over.

One dispatcher per channel, each claiming only that channel's queue (messages are routed
when accepted, see engine.channels). One batch: (1) in one transaction, claim the most
urgent queued messages the channel's rate allows, run each through the policy gate, and
mark them `sending` or `blocked`; (2) hand the `sending` ones to the channel; (3) in one
transaction, record `sent` (the scheduler expires it if no receipt comes), or `deferred`
with a retry timer for transient errors, or `failed`. Up to `batches_in_flight` batches are between (1)
and (3) at once, so a carrier's window stays full while the next batch is claimed; claims
are made one after another, most urgent first (TopicKind.priority). When all those batches
are in flight and something more urgent than each of them is queued, it is claimed at once
as one express batch; and every channel hands out its window's slots most urgent first
(channels.window). So a code waits for at most the texts already on the wire, never for
the marketing backlog queued or claimed before it.

A crash between (1) and (3) leaves messages in `sending` whose hand-off outcome is unknown.
`reconcile` asks the channel which of them it holds: those become `sent`, the others go
back to `queued`. Where the channel cannot answer (`answers_lookup` false) but keeps a
journal of what it wrote (SMPP, `HandOffJournal`), those certainly never written go back to
`queued` (`reconciled_never_written`). For the rest, and for a text written to a
connection that broke before the carrier answered, the topic decides
(`Topics.unknown_policy`): `resend` puts it back in the queue (`resent_after_unknown`; it
passes the gate again, so an expired code is not sent late), at most `resends` times;
`hold` marks it `unknown`, never re-sent. A batch whose outcome could not be written
because the database was out of reach is kept, with what the carrier answered, and written
before the next claim (`Unsettled`), so a living worker never leaves texts `sending`.

On such a channel every message claimed and not yet recorded is in doubt after a crash, so
no more are claimed at once than `doubt_windows` of its window (`doubt_limit`): one window
on the wire, one answered and being recorded while the next is claimed. A crash leaves at
most that many `unknown`, not the whole claimed backlog (up to batches_in_flight x
batch_size) of which most never reached the carrier.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import msgspec
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.channels.base import Channel, ChannelError, ErrorKind, HandOffJournal, Outbound, SendResult
from empathic.core import policy, regulations
from empathic.core.clock import Clock
from empathic.core.messages import Status
from empathic.core.ratelimit import TokenBucket
from empathic.core.topics import OnUnknown, Topics
from empathic.engine import lifecycle, receipts
from empathic.engine.gate import Gate
from empathic.loop import Loop
from empathic.store import messages as store
from empathic.store import timers
from empathic.store.db import Database
from empathic.store.messages import Transition
from empathic.store.records import Claimed, MessageRow

log = logging.getLogger(__name__)

RELEASE = "message.release"
SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
CLAIMED = Histogram("empathic_dispatch_batch_messages", "Messages claimed by one dispatcher pass", ["channel"],
                    buckets=SIZES)
UNKNOWN_OUTCOMES = Counter(
    "empathic_unknown_outcomes", "Hand-offs whose outcome was unknown, by topic kind, the topic's policy "
    "and what became of the text (resent, or held `unknown`)", ["kind", "policy", "outcome"],
)
NEVER_WRITTEN = Counter(
    "empathic_reconciled_never_written", "Texts a crash left `sending` that the channel's journal shows were "
    "never written to the network, queued again by reconcile", ["channel"],
)
RESENT = "resent_after_unknown"  # the history reason of a text re-sent after an unknown outcome



@dataclass(frozen=True)
class DispatchSettings:
    batch_size: int = 500
    max_attempts: int = 5
    retry_base: float = 2.0  # seconds; doubled each attempt, with jitter
    retry_max: float = 600.0
    receipt_timeout: float = 72 * 3600.0  # `sent` this long without a receipt: `expired` (engine.scheduler)
    batches_in_flight: int = 4
    doubt_windows: int = 2  # claimed and not yet recorded, at most, on a channel that cannot be asked


@dataclass
class Unsettled:
    """A batch whose outcome is not written yet: `results` is what the carrier answered;
    None with `handed` False: never handed over (goes back to the queue); None with
    `handed` True: the hand-off's outcome is for the carrier to say (lookup)."""

    rows: list[Claimed]
    results: list[SendResult] | None = None
    handed: bool = True


def doubt_limit(channel: Channel, settings: DispatchSettings) -> int | None:
    """How many messages may be claimed and not yet recorded at once: `doubt_windows` of the
    window of a channel that cannot be asked what it holds (each is `unknown` after a crash);
    no bound when it can be asked, or has no window."""
    if channel.answers_lookup:
        return None
    window = getattr(getattr(channel, "settings", None), "window", None)
    return window * max(1, settings.doubt_windows) if isinstance(window, int) and window > 0 else None


def retry_delay(attempts: int, settings: DispatchSettings, rng: random.Random) -> float:
    base = min(settings.retry_max, settings.retry_base * 2 ** max(0, attempts - 1))
    return base * rng.uniform(0.5, 1.0)


class Lease(Protocol):
    """The lease this dispatcher's channel shard is held under (engine.duties)."""

    async def still_mine(self, conn: AsyncConnection) -> bool:
        """In the caller's transaction: is the channel still ours? (fences claims and writes)"""
        ...

    def fresh(self) -> bool:
        """Without asking the database: renewed recently enough to write to the carrier?"""
        ...


class Failover(Protocol):
    """Where a channel's queue goes when it is down too long (engine.channels.Channels)."""

    def failed_over(self) -> Collection[str]:
        """The channels down for longer than their failover delay."""
        ...

    async def failover(self, conn: AsyncConnection, channel: str) -> int:
        """Move `channel`'s waiting messages to the next serving channel that is up; how many."""
        ...


class Dispatcher:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        channel: Channel,
        topics: Topics,
        settings: DispatchSettings,
        on_commit: Callable[[], None] | None = None,
        gate: Gate | None = None,
        failover: Failover | None = None,  # None: never fails over
        lease: Lease | None = None,  # None: not run by lease (tests, transcripts): nothing is fenced
        shard: int = 0,  # which of the channel's dispatchers this is (each claims and reconciles its own)
        early: receipts.Early | None = None,  # receipts that came before their text was recorded sent
    ) -> None:
        self.early = early
        self.db = db
        self.shard = shard
        self.failover = failover
        self.lease = lease
        self.clock = clock
        self.channel = channel
        self.topics = topics
        self.gate = gate or Gate(topics, regulations.shipped())
        self.settings = settings
        self.bucket = TokenBucket(rate=channel.tps, burst=max(1.0, min(channel.tps, settings.batch_size)))
        self._loop = Loop(f"dispatcher-{channel.name}" + (f"/{shard}" if shard else ""), self._pass)
        self._rng = random.Random()
        self._on_commit = on_commit or (lambda: None)
        self._in_flight: dict[asyncio.Task[None], int] = {}  # batch -> its least urgent priority
        self._held: dict[asyncio.Task[None], int] = {}  # batch -> its messages
        self._doubt_limit = doubt_limit(channel, settings)
        self._news = asyncio.Event()  # set by wake(): something was queued
        self._unsettled: list[Unsettled] = []

    def wake(self) -> None:
        self._news.set()
        self._loop.wake()

    async def start(self) -> None:
        await self.reconcile()
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        if self._in_flight:  # batches handed over are recorded before we stop
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        try:
            await self._settle()
        except Exception:  # noqa: BLE001 - left `sending`: reconcile() at the next start
            log.warning("%s: %d batches left unsettled at stop", self.channel.name, len(self._unsettled))

    async def _pass(self) -> float:
        if self._unsettled:  # what the database missed is written before anything new is claimed
            await self._settle()
        if not getattr(self.channel, "up", True):
            await self._fail_over()
            return 0.5
        limit = max(1, self.settings.batches_in_flight)
        if len(self._in_flight) >= limit or self._room() < 1:
            # Full. Wait for a batch to finish, or for news: something more urgent than
            # every batch in flight gets one express batch now instead of waiting its turn
            # (and goes first into the carrier's window, channels.window).
            if await self._finished_or_news() and len(self._in_flight) == limit and self._room() >= 1:
                urgent = min(self._in_flight.values()) - 1
                if urgent >= 0:
                    self._launch(await self._claim_batch(max_priority=urgent))
            return 0.0
        sending = await self._claim_batch()
        if sending is None:
            return max(self.bucket.wait_for(1, time.monotonic()), 1.0)
        self._launch(sending)
        return 0.0

    def _launch(self, sending: tuple[int, list[Claimed]] | None) -> None:
        if sending is None:
            return
        _, to_send = sending
        if not to_send:
            self._on_commit()
            return
        task = asyncio.create_task(self._in_background(to_send), name=f"dispatch-{self.channel.name}")
        self._in_flight[task] = max(r.priority for r in to_send)
        self._held[task] = len(to_send)
        task.add_done_callback(self._landed)

    def _landed(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)
        self._held.pop(task, None)

    def _room(self) -> int:
        """How many one more claim may take: the batch size or, under a doubt limit, a window
        (a batch per window in doubt: fewer, larger claims than a share per batch in flight,
        which cost 36 % more CPU per text at batches of 50), within what is free of it."""
        if self._doubt_limit is None:
            return self.settings.batch_size
        share = max(1, self._doubt_limit // max(1, min(self.settings.batches_in_flight, self.settings.doubt_windows)))
        return min(self.settings.batch_size, share, self._doubt_limit - sum(self._held.values()))

    async def _finished_or_news(self) -> bool:
        """Wait until a batch in flight finishes (False) or something was queued (True)."""
        news = asyncio.ensure_future(self._news.wait())
        try:
            await asyncio.wait({*self._in_flight, news}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            news.cancel()
        if self._news.is_set():
            self._news.clear()
            return True
        return False

    async def _in_background(self, to_send: list[Claimed]) -> None:
        batch = Unsettled(to_send, handed=False)
        try:
            if self.lease is not None and not self.lease.fresh():
                # Our lease was not renewed for a while (this process was paused, or cut off
                # from the database): another worker may hold the channel and have settled
                # this batch already. Hand nothing over.
                await self._give_back(to_send)
            else:
                batch.handed = True
                batch.results = await self._hand_off(to_send)
                await self._record(batch)
        except Exception:  # kept, and written once the database answers (_settle)
            log.exception("recording a batch on %s failed; it is kept to record again", self.channel.name)
            self._unsettled.append(batch)
        self._on_commit()

    async def _record(self, batch: Unsettled) -> None:
        """Write a handed-over batch's outcome; a part the carrier must be asked about
        (its lookup failed) is kept for later."""
        results = batch.results or []
        answered = {r.message_id for r in results}
        await self._record_results([r for r in batch.rows if r.id in answered], results)
        unanswered = [r for r in batch.rows if r.id not in answered]
        if unanswered:
            self._unsettled.append(Unsettled(unanswered))

    async def _settle(self) -> None:
        """Write the outcomes the database missed, oldest first; raises while it is still out
        of reach (the loop tries again). Each write is fenced on our claim, as at first."""
        while self._unsettled:
            batch = self._unsettled[0]
            if not batch.handed:
                await self._give_back(batch.rows)
            else:
                if batch.results is None:
                    batch.results = await self._ask_carrier(batch.rows, "outcome_not_recorded")
                await self._record(batch)  # a part still unanswered goes to the end
            self._unsettled.pop(0)

    async def _give_back(self, rows: list[Claimed]) -> None:
        """A claimed batch not handed over goes back to the queue if the channel is still
        ours; if not, it is the new holder's (its reconcile settles it)."""
        async with self.db.transaction() as conn:
            if self.lease is not None and not await self.lease.still_mine(conn):
                log.warning("%s: lease lost with %d claimed; left to its new holder", self.channel.name, len(rows))
                return
            now = self.clock.now()
            marks = await store.claim_marks(conn, [r.id for r in rows])
            back = [
                Transition(r.id, r.workspace_id, Status.QUEUED, "lease_unsure", now)
                for r in rows
                if marks.get(r.id) == (Status.SENDING.value, r.attempts)
            ]
            await lifecycle.record(conn, back, {r.id: r for r in rows}, now)
        log.warning("%s: lease not renewed in time; %d claimed go back to the queue", self.channel.name, len(back))

    async def _send_and_record(self, to_send: list[Claimed]) -> None:
        await self._record(Unsettled(to_send, await self._hand_off(to_send)))

    async def _fail_over(self) -> None:
        if self.failover is None or self.channel.name not in self.failover.failed_over():
            return
        async with self.db.transaction() as conn:
            moved = await self.failover.failover(conn, self.channel.name)
        if moved:
            self._on_commit()

    async def _claim_batch(self, max_priority: int | None = None) -> tuple[int, list[Claimed]] | None:
        """Claim as many as the channel's rate allows now (waiting for one token at least),
        of priority `max_priority` or more urgent if given; the tokens of those to send are taken."""
        allowed = self.bucket.available(time.monotonic())
        if allowed < 1:
            await asyncio.sleep(self.bucket.wait_for(1, time.monotonic()))
            allowed = self.bucket.available(time.monotonic())
        sending = await self._claim(max(1, min(self._room(), int(allowed))), max_priority)
        if sending is not None and sending[1]:
            self.bucket.take(len(sending[1]), time.monotonic())
        return sending

    async def dispatch_once(self) -> int:
        """One claim-gate-send-record pass, start to end; returns how many messages it moved."""
        sending = await self._claim_batch()
        if sending is None:
            return 0
        claimed, to_send = sending
        if to_send:
            await self._send_and_record(to_send)
        self._on_commit()
        return claimed

    async def _claim(self, limit: int, max_priority: int | None = None) -> tuple[int, list[Claimed]] | None:
        async with self.db.transaction() as conn:
            now = self.clock.now()  # read once the connection is ours, so history never runs backwards
            if self.lease is not None and not await self.lease.still_mine(conn):
                return None  # another worker holds this channel now: claim nothing
            batch = await store.queued_batch(conn, limit, channel=self.channel.name, max_priority=max_priority)
            if not batch:
                return None
            CLAIMED.labels(self.channel.name).observe(len(batch))
            decisions = await self.gate.decide(conn, batch, now)
            transitions: list[Transition] = []
            to_send: list[Claimed] = []
            releases: list[timers.Timer] = []
            for row, decision in zip(batch, decisions, strict=True):
                if isinstance(decision, policy.Block):
                    status = Status.EXPIRED if decision.reason == "expired" else Status.BLOCKED
                    transitions.append(Transition(row.id, row.workspace_id, status, decision.reason, now))
                elif isinstance(decision, policy.Defer):
                    transitions.append(
                        Transition(
                            row.id, row.workspace_id, Status.DEFERRED, decision.reason, now,
                            {"next_attempt_at": decision.until},
                        )
                    )
                    releases.append(timers.Timer(RELEASE, row.id, decision.until, {}, row.workspace_id))
                else:
                    attempts = row.attempts + 1
                    transitions.append(
                        Transition(
                            row.id, row.workspace_id, Status.SENDING, "handed_to_channel", now,
                            {"channel": self.channel.name, "attempts": attempts, "shard": self.shard},
                        )
                    )
                    to_send.append(msgspec.structs.replace(row, attempts=attempts, channel=self.channel.name))
            await lifecycle.record(conn, transitions, {r.id: r for r in batch}, now)
            await timers.schedule(conn, releases)
        return len(batch), to_send

    async def _hand_off(self, rows: list[Claimed]) -> list[SendResult]:
        outs = [
            Outbound(r.id, r.to_addr, r.from_addr or self.channel.sender, r.body, r.subject, r.html,
                     r.priority, r.attempts)
            for r in rows
        ]
        try:
            return await self.channel.send(outs)
        except Exception as exc:  # the outcome of this hand-off is unknown: ask the carrier
            log.warning("channel %s send failed (%s); reconciling", self.channel.name, type(exc).__name__)
            try:
                return await self._ask_carrier(rows, type(exc).__name__)
            except Exception:  # kept unanswered: asked again by _settle
                log.exception("lookup after failed send also failed")
                return []

    async def _ask_carrier(self, rows: Sequence[Claimed], why: str) -> list[SendResult]:
        """The outcome of handing `rows` over is unknown: sent if the carrier holds them, else
        a transient failure (retried); `unknown` where the carrier cannot be asked."""
        if not self.channel.answers_lookup:
            unknown = ChannelError(ErrorKind.UNKNOWN, why)
            return [SendResult(r.id, error=unknown) for r in rows]
        held = await self.channel.lookup([r.id for r in rows])
        error = ChannelError(ErrorKind.CONNECTION, why)
        return [
            SendResult(r.id, carrier_id=held[r.id]) if r.id in held else SendResult(r.id, error=error)
            for r in rows
        ]

    async def _record_results(self, rows: Sequence[Claimed], results: list[SendResult]) -> None:
        async with self.db.transaction() as conn:
            await self._record_results_in(conn, rows, results, self.clock.now())

    async def _record_results_in(
        self,
        conn: AsyncConnection,
        rows: Sequence[Claimed],
        results: list[SendResult],
        now: datetime,
        sent_reason: str = "accepted_by_carrier",
    ) -> None:
        by_id = {r.id: r for r in rows}
        # Only over our own claim: still `sending` from the attempt we made. A worker that
        # lost its lease while handing over finds its batch settled by the new holder.
        marks = await store.claim_marks(conn, list(by_id))
        transitions: list[Transition] = []
        new_timers: list[timers.Timer] = []
        unknown: list[Claimed] = []
        for result in results:
            row = by_id[result.message_id]
            if marks.get(row.id) != (Status.SENDING.value, row.attempts):
                log.warning("%s: %s was settled by another worker; its outcome here is dropped",
                            self.channel.name, row.id)
                continue
            if result.error is None:
                taken = {"carrier_id": result.carrier_id}
                if result.raw_carrier_id is not None:  # the id as given, where receipts match another form
                    taken["raw_carrier_id"] = result.raw_carrier_id
                transitions.append(Transition(row.id, row.workspace_id, Status.SENT, sent_reason, now, taken))
            elif result.error.kind is ErrorKind.UNKNOWN:
                unknown.append(row)
            elif result.error.kind.retryable and row.attempts < self.settings.max_attempts:
                due = now + timedelta(seconds=retry_delay(row.attempts, self.settings, self._rng))
                transitions.append(
                    Transition(row.id, row.workspace_id, Status.DEFERRED, f"retry_{result.error.kind.value}", now,
                               {"next_attempt_at": due})
                )
                new_timers.append(timers.Timer(RELEASE, row.id, due, {}, row.workspace_id))
            else:
                transitions.append(
                    Transition(row.id, row.workspace_id, Status.FAILED, f"channel_{result.error.kind.value}", now)
                )
        transitions += await self._after_unknown(conn, unknown, "outcome_unknown", now)
        await lifecycle.record(conn, transitions, by_id, now)
        await timers.schedule(conn, new_timers)
        sent = [(t.values["carrier_id"], t.message_id) for t in transitions
                if t.status is Status.SENT and t.values.get("carrier_id")]
        await store.hold_carrier_ids(conn, self.channel.name, sent)
        await receipts.apply_early(conn, self.early, self.channel.name, [cid for cid, _ in sent], now)

    async def reconcile(self) -> int:
        """Settle messages left `sending` by a crash: sent if the carrier holds them, else queued."""
        async with self.db.transaction() as conn:
            stuck = await store.left_sending(conn, 100_000, channel=self.channel.name, shard=self.shard)
        if not stuck:
            return 0
        if not self.channel.answers_lookup:
            unwritten = (await self.channel.never_written({r.id: r.attempts for r in stuck})
                         if isinstance(self.channel, HandOffJournal) else set())
            async with self.db.transaction() as conn:
                if not await self._still_ours(conn, len(stuck)):
                    return 0
                now = self.clock.now()
                claimed = await _still_claimed(conn, stuck)
                requeue = [Transition(r.id, r.workspace_id, Status.QUEUED, "reconciled_never_written", now)
                           for r in claimed if r.id in unwritten]
                marked = await self._after_unknown(
                    conn, [r for r in claimed if r.id not in unwritten], "interrupted_outcome_unknown", now
                )
                await lifecycle.record(conn, requeue + marked, {r.id: r for r in stuck}, now)
            NEVER_WRITTEN.labels(self.channel.name).inc(len(requeue))
            resent = sum(t.status is Status.QUEUED for t in marked)
            log.warning("%d interrupted hand-offs on %s: %d never written, queued again; %d have an unknown outcome "
                        "(it cannot say what it holds): %d resent, %d `unknown`", len(stuck), self.channel.name,
                        len(requeue), len(marked), resent, len(marked) - resent)
            return len(stuck)
        held = await self.channel.lookup([r.id for r in stuck])
        at_carrier = [r for r in stuck if r.id in held]
        async with self.db.transaction() as conn:
            if not await self._still_ours(conn, len(stuck)):
                return 0
            now = self.clock.now()
            await self._record_results_in(
                conn, at_carrier, [SendResult(r.id, held[r.id]) for r in at_carrier], now,
                sent_reason="reconciled_held_by_carrier",
            )
            requeue = [
                Transition(r.id, r.workspace_id, Status.QUEUED, "reconciled_not_at_carrier", now)
                for r in await _still_claimed(conn, [r for r in stuck if r.id not in held])
            ]
            await lifecycle.record(conn, requeue, {r.id: r for r in stuck}, now)
        log.info("reconciled %d interrupted hand-offs (%d held by carrier)", len(stuck), len(held))
        return len(stuck)

    async def _after_unknown(
        self, conn: AsyncConnection, rows: Sequence[Claimed], reason: str, now: datetime
    ) -> list[Transition]:
        """Texts whose hand-off outcome is unknown: back to the queue where the topic says
        `resend` and it has resends left, else `unknown` (`reason`)."""
        if not rows:
            return []
        policies = {r.id: self.topics.unknown_policy(r.topic) for r in rows}
        resending = [i for i, policy_ in policies.items() if policy_.action is OnUnknown.RESEND]
        done = await store.reason_counts(conn, resending, RESENT) if resending else {}
        transitions: list[Transition] = []
        counts: dict[tuple[str, str, str], int] = {}
        for row in rows:
            policy_ = policies[row.id]
            again = policy_.action is OnUnknown.RESEND and done.get(row.id, 0) < policy_.resends
            if again:
                transitions.append(Transition(row.id, row.workspace_id, Status.QUEUED, RESENT, now))
            else:
                transitions.append(Transition(row.id, row.workspace_id, Status.UNKNOWN, reason, now))
            kind = self.topics.kinds.get(row.topic)
            key = (kind.value if kind else "", policy_.action.value, "resent" if again else "held")
            counts[key] = counts.get(key, 0) + 1
        for labels, n in counts.items():
            UNKNOWN_OUTCOMES.labels(*labels).inc(n)
        return transitions

    async def _still_ours(self, conn: AsyncConnection, stuck: int) -> bool:
        """Reconcile writes under the fence too: a run started on a grant that went stale
        before it began (its worker paused inside the renewal) must not requeue the batches
        the lease's real holder has in flight; they would reach the carrier twice."""
        if self.lease is None or await self.lease.still_mine(conn):
            return True
        log.warning("%s: lease lost before reconciling %d; left to its holder", self.channel.name, stuck)
        return False


async def _still_claimed(conn: AsyncConnection, rows: Sequence[Claimed]) -> list[Claimed]:
    """Those of `rows` still `sending` from the attempt they were read at, locked (PostgreSQL):
    what a worker still finishing its batch recorded meanwhile is not overwritten."""
    marks = await store.claim_marks(conn, [r.id for r in rows])
    return [r for r in rows if marks.get(r.id) == (Status.SENDING.value, r.attempts)]


def release_due(row: MessageRow, now: datetime) -> Transition | None:
    """A retry or defer timer fired: a still-deferred message goes back to the queue."""
    if row.status != Status.DEFERRED.value:
        return None
    return Transition(row.id, row.workspace_id, Status.QUEUED, "retry_due", now, {"next_attempt_at": None})

