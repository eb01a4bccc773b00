"""The stats loop: keeps the dashboard's counts (store/stats.py) and samples each queue.

Every minute, one worker (a single loop, under the `loops` lease):
  1. finds what followed texts since its last pass (replies, opt-outs, hand-offs;
     `store.stats.follow`), in spans of at most a day at a time;
  2. counts again every hour with a message changed since its last pass, and every hour of a
     text an outcome was just found for (`stats_hours`);
  3. records each workspace's queue (queued, deferred, sending) for the queue depth chart.
Each step starts `OVERLAP` before where the last one ended: a transaction that wrote earlier
instants but committed after that pass is still seen (counting an hour again and finding an
outcome again change nothing). On a database that never had a pass, the first counts every
hour there is and follows all history, a day per pass, before sampling.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from empathic.core.clock import Clock
from empathic.core.errors import InputError
from empathic.core.json import Json
from empathic.loop import Loop
from empathic.store import stats as store
from empathic.store.db import Database

log = logging.getLogger(__name__)

EVERY = 60.0
OVERLAP = timedelta(minutes=2)
SPAN = timedelta(days=1)  # outcomes followed per transaction, catching up
KEEP_SAMPLES = timedelta(days=100)
COUNTED, FOLLOWED = "counted", "followed"


class Stats:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._loop = Loop("stats", self._pass, error_delay=30.0)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _pass(self) -> float:
        caught_up = await self.run_once()
        return EVERY if caught_up else 0.0

    async def run_once(self, now: datetime | None = None) -> bool:
        """One pass at `now`; False while it is still catching up with history (call again)."""
        now = now or self.clock.now()
        hours: dict[str, set[int]] = {}
        async with self.db.transaction() as conn:
            followed = await store.mark(conn, FOLLOWED)
            counted = await store.mark(conn, COUNTED)
            workspaces = await store.workspace_ids(conn)
            oldest = await store.oldest(conn) if followed is None else None
        start = (followed if followed is not None else min(oldest or now, now)) - OVERLAP
        upto = min(now, start + SPAN)
        async with self.db.transaction() as conn:
            for ws in workspaces:
                for w, h in store.hours_of(await store.follow(conn, ws, start, upto)).items():
                    hours.setdefault(w, set()).update(h)
            await store.set_mark(conn, FOLLOWED, upto)
        async with self.db.transaction() as conn:
            changed = await store.changed_hours(conn, counted - OVERLAP if counted is not None else None, now)
        for w, h in changed.items():
            hours.setdefault(w, set()).update(h)
        for ws, todo in hours.items():
            ordered = sorted(todo)
            for i in range(0, len(ordered), 24):  # a day of hours per transaction
                async with self.db.transaction() as conn:
                    await store.recount(conn, ws, ordered[i : i + 24])
        async with self.db.transaction() as conn:
            await store.set_mark(conn, COUNTED, now)
            if upto == now:
                for ws in workspaces:
                    await store.sample_queue(conn, ws, now)
                await store.forget_samples(conn, now - KEEP_SAMPLES)
        if upto < now:
            log.info("stats: outcomes followed up to %s; catching up", upto.isoformat())
        return upto == now


# ---- Reading: the figures of a period, for /v1/stats and the dashboard page ----

PRESETS: dict[str, timedelta] = {
    "1h": timedelta(hours=1), "6h": timedelta(hours=6), "24h": timedelta(hours=24),
    "7d": timedelta(days=7), "30d": timedelta(days=30), "90d": timedelta(days=90),
}
DEFAULT_PRESET = "24h"
LONGEST = timedelta(days=92)
BUCKETS: dict[str, int] = {"minute": store.MINUTE, "hour": store.HOUR, "day": store.DAY}
MOST_POINTS = 1500
LIVE_MINUTES = timedelta(hours=6)  # minute buckets are read from the messages: at most this long a period


@dataclass(frozen=True, slots=True)
class Period:
    """[start, end) and the size of its time buckets (`bucket`: minute, hour or day)."""

    start: datetime
    end: datetime
    bucket: str
    preset: str | None = None  # when asked for by name (24h, 7d …)

    @property
    def bucket_ms(self) -> int:
        return BUCKETS[self.bucket]

    def to_json(self) -> Json:
        return {"from": iso(self.start), "to": iso(self.end), "bucket": self.bucket, "preset": self.preset}


def period(now: datetime, *, preset: str | None = None, start: datetime | None = None, end: datetime | None = None,
           bucket: str | None = None) -> Period:
    """The period asked for: a preset ending now, or `from` (and `to`, default now); 24h if none.
    InputError names the parameter at fault."""
    if preset is not None and (start is not None or end is not None):
        raise InputError("period", "give either a period (24h, 7d …) or from/to, not both")
    if preset is None and start is None and end is not None:
        raise InputError("from", "is needed with `to`")
    for name, value in (("from", start), ("to", end)):
        if value is not None and value.utcoffset() is None:
            raise InputError(name, "must carry a time zone offset, such as 2026-11-23T18:00:00Z")
    if start is None:
        name = preset or DEFAULT_PRESET
        if name not in PRESETS:
            raise InputError("period", f"must be one of {', '.join(PRESETS)}")
        end, start = now, now - PRESETS[name]
        preset = name
    else:
        end = end or now
    if start >= end:
        raise InputError("from", "must be before `to`")
    if end - start > LONGEST:
        raise InputError("from", f"a period is at most {LONGEST.days} days long")
    span = end - start
    if bucket is None:
        bucket = "minute" if span <= timedelta(hours=3) else "hour" if span <= timedelta(days=8) else "day"
    if bucket not in BUCKETS:
        raise InputError("bucket", f"must be one of {', '.join(BUCKETS)}")
    if bucket == "minute" and span > LIVE_MINUTES:
        raise InputError("bucket", f"minutes are for a period of at most {int(LIVE_MINUTES.total_seconds() // 3600)} hours")
    if span / timedelta(milliseconds=BUCKETS[bucket]) > MOST_POINTS:
        raise InputError("bucket", f"at most {MOST_POINTS} buckets: choose a longer bucket or a shorter period")
    return Period(start.astimezone(UTC), end.astimezone(UTC), bucket, preset)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


# How a text's status and reason count (sent = a carrier took it: it left us).
_CARRIER_SAID = ("carrier_",)  # reasons of a receipt or a carrier's answer when asked
_PENDING = frozenset({"queued", "deferred", "sending"})


def left_us(status: str | None, reason: str | None) -> bool:
    """Whether an outbound message with this status and reason was taken by a carrier: `sent`,
    `delivered`, `undelivered`, `unknown` (handed over, outcome unknown), or `failed`/`expired`
    by the carrier's receipt or answer (`carrier_…`) or the receipt time-out
    (`no_delivery_receipt`). Not: refused at hand-off (`channel_…`), expired before sending,
    blocked, or still waiting."""
    if status in ("sent", "delivered", "undelivered", "unknown"):
        return True
    if status in ("failed", "expired") and reason is not None:
        return reason == "no_delivery_receipt" or reason.startswith(_CARRIER_SAID)
    return False


@dataclass(slots=True)
class Figures:
    """What a set of outbound messages did (see docs/web.md#dashboard for each figure)."""

    accepted: int = 0  # outbound messages written in the period
    sent: int = 0  # of them, taken by a carrier (`left_us`)
    delivered: int = 0
    failed: int = 0  # failed or undelivered, at hand-off or reported by the carrier
    refused: int = 0  # of the failed, refused at hand-off (never left)
    expired: int = 0
    blocked: int = 0
    pending: int = 0  # queued, deferred or being handed over now
    replied: int = 0
    opted_out: int = 0
    handed_off: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # failed by reason (carrier error, channel error kind …)

    def add(self, c: store.Count) -> None:
        if c.measure != store.MESSAGES:
            if c.measure in store.OUTCOMES:
                setattr(self, c.measure, getattr(self, c.measure) + c.count)
            return
        status, n = c.status, c.count
        self.accepted += n
        if left_us(status, c.reason):
            self.sent += n
        if status == "delivered":
            self.delivered += n
        elif status in ("failed", "undelivered"):
            self.failed += n
            if not left_us(status, c.reason):
                self.refused += n
            key = c.reason or status or ""
            self.failures[key] = self.failures.get(key, 0) + n
        elif status == "expired":
            self.expired += n
        elif status == "blocked":
            self.blocked += n
        elif status in _PENDING:
            self.pending += n

    def rates(self) -> dict[str, float | None]:
        """delivered, replied, opted_out, handed_off per sent; failed per attempted (sent or refused)."""
        def per(n: int, d: int) -> float | None:
            return round(n / d, 4) if d else None
        return {
            "delivered": per(self.delivered, self.sent), "failed": per(self.failed, self.sent + self.refused),
            "replied": per(self.replied, self.sent), "opted_out": per(self.opted_out, self.sent),
            "handed_off": per(self.handed_off, self.sent),
        }

    def to_json(self) -> Json:
        return {
            "accepted": self.accepted, "sent": self.sent, "delivered": self.delivered, "failed": self.failed,
            "refused": self.refused, "expired": self.expired, "blocked": self.blocked, "pending": self.pending,
            "replied": self.replied, "opted_out": self.opted_out, "handed_off": self.handed_off,
            "rates": self.rates(),
            "failures": [{"reason": r, "count": n} for r, n in sorted(self.failures.items(), key=lambda kv: (-kv[1], kv[0]))],
        }


DIMENSIONS = ("flow", "trigger", "template", "topic")


@dataclass(frozen=True, slots=True)
class MessageReport:
    """A period's figures: in all, and by flow, trigger, template and topic (None: not sent by one)."""

    period: Period
    totals: Figures
    by: dict[str, dict[str | None, Figures]]
    received: int  # inbound texts in the period

    def to_json(self) -> Json:
        def groups(found: dict[str | None, Figures]) -> list[Json]:
            ordered = sorted(found.items(), key=lambda kv: (-kv[1].accepted, kv[0] or ""))
            return [{"name": name, **f.to_json()} for name, f in ordered]
        return {"period": self.period.to_json(), "totals": self.totals.to_json(), "received": self.received,
                **{f"by_{d}": groups(self.by[d]) for d in DIMENSIONS}}


async def messages_report(db: Database, workspace_id: str, p: Period, now: datetime) -> MessageReport:
    async with db.transaction() as conn:
        rows = await store.counts(conn, workspace_id, p.start, p.end, now)
    totals = Figures()
    by: dict[str, dict[str | None, Figures]] = {d: {} for d in DIMENSIONS}
    received = 0
    for c in rows:
        if c.direction == "inbound":
            received += c.count
            continue
        totals.add(c)
        for d in DIMENSIONS:
            key = getattr(c, d)
            found = by[d].get(key)
            if found is None:
                found = by[d][key] = Figures()
            found.add(c)
    return MessageReport(p, totals, by, received)


@dataclass(frozen=True, slots=True)
class Point:
    """Messages written in one bucket: outbound accepted, and of them sent, delivered, failed; inbound received."""

    at: datetime
    accepted: int
    sent: int
    delivered: int
    failed: int
    received: int

    def to_json(self) -> Json:
        return {"at": iso(self.at), "accepted": self.accepted, "sent": self.sent, "delivered": self.delivered,
                "failed": self.failed, "received": self.received}


def _buckets(p: Period) -> list[int]:
    size = p.bucket_ms
    first = store.ms(p.start) // size * size
    return list(range(first, store.ms(p.end), size))


async def throughput(db: Database, workspace_id: str, p: Period, now: datetime) -> list[Point]:
    """Messages by the bucket they were written in (every bucket of the period, zeros too)."""
    async with db.transaction() as conn:
        rows = await store.counts(conn, workspace_id, p.start, p.end, now, bucket=p.bucket_ms, senders=False)
    by_bucket = {b: Figures() for b in _buckets(p)}
    received = dict.fromkeys(by_bucket, 0)
    for c in rows:
        if c.bucket not in by_bucket:
            continue
        if c.direction == "inbound":
            received[c.bucket] += c.count
        elif c.measure == store.MESSAGES:
            by_bucket[c.bucket].add(c)
    return [Point(store.at(b), f.accepted, f.sent, f.delivered, f.failed, received[b]) for b, f in by_bucket.items()]


async def queue(db: Database, workspace_id: str, p: Period) -> list[store.QueuePoint]:
    """The queue's samples by bucket (the most of each kind in it); buckets without one left out."""
    async with db.transaction() as conn:
        return await store.queue_series(conn, workspace_id, p.start, p.end, p.bucket_ms)


@dataclass(frozen=True, slots=True)
class Deferred:
    now: dict[str, int]  # messages deferred now, by reason
    period: dict[str, int]  # messages deferred in the period, by reason


async def deferred(db: Database, workspace_id: str, p: Period) -> Deferred:
    async with db.transaction() as conn:
        return Deferred(await store.deferred_now(conn, workspace_id),
                        await store.deferred_between(conn, workspace_id, p.start, p.end))
