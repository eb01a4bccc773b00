"""The built-in carrier simulator: virtual phones that receive texts and text back.

It is the default channel of the embedded mode. It behaves like a carrier seen from
Empathic: it accepts a batch and answers with carrier ids, sends delivery receipts after a
configurable delay (failing a configurable share of them), and passes what a virtual phone
texts back in as inbound messages. Its records live in its own table, `sim_messages`, so
phones keep their history across restarts and receipts it owes survive a crash.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from datetime import timedelta

from sqlalchemy import exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.channels.base import (
    ChannelSink,
    Inbound,
    Outbound,
    Receipt,
    ReceiptStatus,
    SendResult,
)
from empathic.core.clock import Clock
from empathic.loop import Loop
from empathic.store.db import Database
from empathic.store.schema import messages, sim_messages



class LeaseLost(ConnectionError):
    """A worker that no longer holds the channel tried to hand messages over."""


@dataclass
class SimulatorSettings:
    receipt_delay: float = 1.0  # seconds from hand-off to delivery receipt
    fail_share: float = 0.0  # share of receipts that report `undelivered`
    tps: float = 1000.0
    seed: int | None = None
    sender: str | None = None  # the number it sends from (`from`); else the project's sender

    @classmethod
    def from_config(cls, name: str, raw: dict[str, Any]) -> SimulatorSettings:
        """A `[[channels]]` entry of type `simulator`."""
        keys = {"receipt_delay", "fail_share", "tps", "seed", "from"}
        unknown = set(raw) - keys
        if unknown:
            raise ValueError(f"unknown keys {', '.join(sorted(unknown))}; a simulator takes {', '.join(sorted(keys))}")
        try:
            settings = cls(
                receipt_delay=float(raw.get("receipt_delay", cls.receipt_delay)),
                fail_share=float(raw.get("fail_share", cls.fail_share)),
                tps=float(raw.get("tps", cls.tps)),
                seed=raw.get("seed"),
                sender=raw.get("from"),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"bad value: {exc}") from None
        settings.validate()
        return settings

    def validate(self) -> None:
        if not 0.0 <= self.fail_share <= 1.0:
            raise ValueError("fail_share must be between 0 and 1")
        if self.receipt_delay < 0:
            raise ValueError("receipt_delay must be zero or more seconds")
        if self.tps <= 0:
            raise ValueError("tps must be positive")


@dataclass(frozen=True, slots=True)
class PhoneMessage:
    direction: str  # "received" (texts sent to the phone) | "sent" (texts it sent)
    peer: str
    body: str
    at: str
    receipt: str | None


class Simulator:
    answers_lookup = True

    def __init__(
        self, db: Database, clock: Clock, sender: str, settings: SimulatorSettings, name: str = "simulator"
    ) -> None:
        settings.validate()
        self.name = name
        self.db = db
        self.clock = clock
        self.sender = settings.sender or sender
        self.settings = settings
        self.tps = settings.tps
        self._random = random.Random(settings.seed)
        self._sink: ChannelSink | None = None
        # This carrier lives in our database, so a hand-off can be fenced like a claim
        # (engine.duties): set by the runtime when workers share channels by lease.
        self.fence: Callable[[AsyncConnection], Awaitable[bool]] | None = None
        self._receipts = Loop("simulator-receipts", self._send_due_receipts)

    # -- the carrier side Empathic talks to ---------------------------------------------

    async def start(self, sink: ChannelSink) -> None:
        self._sink = sink
        self._receipts.start()

    async def stop(self) -> None:
        await self._receipts.stop()

    def attach(self, sink: ChannelSink) -> None:
        """Take texts from the phones (/v1/simulator) into `sink` without running the carrier
        here (an API process; the carrier's work runs in a worker)."""
        self._sink = sink

    async def send(self, batch: list[Outbound]) -> list[SendResult]:
        now = self.clock.now()
        due = now + timedelta(seconds=self.settings.receipt_delay)
        rows = []
        results = []
        for out in batch:
            carrier_id = uuid.uuid4().hex
            failed = self.settings.fail_share > 0 and self._random.random() < self.settings.fail_share
            rows.append(
                {
                    "phone": out.to,
                    "direction": "mt",
                    "peer": out.sender,
                    "body": out.body,
                    "carrier_id": carrier_id,
                    "client_ref": out.message_id,
                    "receipt_status": ReceiptStatus.UNDELIVERED if failed else ReceiptStatus.DELIVERED,
                    "receipt_due_at": due,
                    "at": now,
                }
            )
            results.append(SendResult(out.message_id, carrier_id))
        if rows:
            async with self.db.transaction() as conn:
                if self.fence is not None and not await self.fence(conn):
                    raise LeaseLost(f"{self.name}: another worker holds this channel now")
                await conn.execute(insert(sim_messages), rows)
            self._receipts.wake()
        return results

    async def lookup(self, message_ids: list[str]) -> dict[str, str]:
        async with self.db.transaction() as conn:
            result = await conn.execute(
                select(sim_messages.c.client_ref, sim_messages.c.carrier_id).where(
                    sim_messages.c.client_ref.in_(message_ids)
                )
            )
            return {ref: cid for ref, cid in result.all()}

    # -- the phones' side --------------------------------------------------------------

    async def phone_sends(self, phone: str, body: str) -> str:
        """A virtual phone texts the business number; returns Empathic's inbound message id."""
        if self._sink is None:
            raise RuntimeError("simulator is not started")
        now = self.clock.now()
        carrier_id = uuid.uuid4().hex
        async with self.db.transaction() as conn:
            await conn.execute(
                insert(sim_messages).values(
                    phone=phone, direction="mo", peer=self.sender, body=body, carrier_id=carrier_id, at=now
                )
            )
        return await self._sink.on_inbound(
            Inbound(self.name, carrier_id, sender=phone, to=self.sender, body=body, at=now)
        )

    async def phone_messages(self, phone: str, *, workspace_id: str | None = None, limit: int = 100) -> list[PhoneMessage]:
        """What the phone shows, newest `limit`. With `workspace_id`, only that workspace's
        side of it: the texts its messages became and what the phone sent (the phones text
        the server's default workspace), never another workspace's texts to the number."""
        query = select(sim_messages).where(sim_messages.c.phone == phone)
        if workspace_id is not None:
            own = exists().where(messages.c.id == sim_messages.c.client_ref, messages.c.workspace_id == workspace_id)
            query = query.where((sim_messages.c.direction == "mo") | own)
        async with self.db.transaction() as conn:
            result = await conn.execute(query.order_by(sim_messages.c.id.desc()).limit(limit))
            rows = list(reversed(result.mappings().all()))
        return [
            PhoneMessage(
                direction="received" if row["direction"] == "mt" else "sent",
                peer=row["peer"],
                body=row["body"],
                at=row["at"].isoformat(),
                receipt=row["receipt_status"] if row["receipt_sent_at"] else None,
            )
            for row in rows
        ]

    def configure(self, *, receipt_delay: float | None = None, fail_share: float | None = None) -> None:
        changed = SimulatorSettings(
            receipt_delay=self.settings.receipt_delay if receipt_delay is None else receipt_delay,
            fail_share=self.settings.fail_share if fail_share is None else fail_share,
            tps=self.settings.tps,
            seed=self.settings.seed,
            sender=self.settings.sender,
        )
        changed.validate()
        self.settings = changed

    # -- receipts ------------------------------------------------------------------------

    async def _send_due_receipts(self) -> float:
        """Send receipts that are due; return seconds to sleep until the next one."""
        assert self._sink is not None
        now = self.clock.now()
        pending = sim_messages.c.receipt_sent_at.is_(None) & sim_messages.c.receipt_due_at.is_not(None)
        async with self.db.transaction() as conn:
            result = await conn.execute(
                select(sim_messages.c.id, sim_messages.c.carrier_id, sim_messages.c.receipt_status)
                .where(pending & (sim_messages.c.receipt_due_at <= now))
                .order_by(sim_messages.c.receipt_due_at)
                .limit(1000)
            )
            due = result.all()
        if due:
            # Receipts go out before they are marked sent: at least once, as carriers do;
            # the engine ignores the duplicate a crash in between may cause.
            await self._sink.on_receipts(
                [
                    Receipt(
                        self.name,
                        carrier_id,
                        ReceiptStatus(status),
                        None if status == ReceiptStatus.DELIVERED else "001",
                        now,
                    )
                    for _, carrier_id, status in due
                ]
            )
            async with self.db.transaction() as conn:
                await conn.execute(
                    update(sim_messages)
                    .where(sim_messages.c.id.in_([row[0] for row in due]))
                    .values(receipt_sent_at=now)
                )
            return 0.0
        async with self.db.transaction() as conn:
            nxt = (
                await conn.execute(
                    select(sim_messages.c.receipt_due_at)
                    .where(pending)
                    .order_by(sim_messages.c.receipt_due_at)
                    .limit(1)
                )
            ).scalar()
        if nxt is None:
            return 5.0
        return max(0.0, min(5.0, (nxt - self.clock.now()).total_seconds()))
