"""The built-in carrier simulator: virtual phones that receive texts and text back.

It is the default channel of the embedded mode. It behaves like a carrier seen from
Empathic: it accepts a batch and answers with carrier ids, sends delivery receipts after a
configurable delay (failing a configurable share of them), and passes what a virtual phone
texts back in as inbound messages. It keeps its records through a `CarrierLog` (the engine
gives it one over the database, `store.simulator`), so phones keep their history across
restarts and receipts it owes survive a crash.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

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


@dataclass(frozen=True, slots=True)
class CarriedText:
    """A text the carrier carried: to a phone (`mt`, with the receipt it owes) or from one (`mo`)."""

    phone: str
    direction: str  # "mt" (to the phone) | "mo" (from it)
    peer: str  # the business number
    body: str
    carrier_id: str
    at: datetime
    client_ref: str | None = None  # Empathic's message id as handed over (mt)
    receipt_status: ReceiptStatus | None = None
    receipt_due_at: datetime | None = None
    receipt_sent: bool = False


@dataclass(frozen=True, slots=True)
class OwedReceipt:
    ref: int  # the log's own reference, to mark it sent
    carrier_id: str
    status: ReceiptStatus


class CarrierLog(Protocol):
    """The simulator's memory: the texts it carried and the receipts it owes."""

    async def took(self, texts: Sequence[CarriedText]) -> bool:
        """Keep texts handed over; False (nothing kept) if this worker no longer holds the channel."""
        ...

    async def phone_sent(self, text: CarriedText) -> None: ...

    async def carrier_ids(self, message_ids: Sequence[str]) -> dict[str, str]:
        """The carrier id of each of these messages it took, by message id."""
        ...

    async def phone_history(self, phone: str, *, workspace_id: str | None, limit: int) -> list[CarriedText]:
        """The phone's newest `limit` texts, oldest first; with `workspace_id`, only what that
        workspace's messages became and what the phone sent."""
        ...

    async def owed_receipts(self, now: datetime, limit: int) -> list[OwedReceipt]:
        """Receipts due by `now` and not sent yet, the earliest first."""
        ...

    async def receipts_sent(self, refs: Sequence[int], now: datetime) -> None: ...

    async def next_receipt_due(self) -> datetime | None: ...


class Simulator:
    answers_lookup = True

    def __init__(
        self, carrier_log: CarrierLog, clock: Clock, sender: str, settings: SimulatorSettings, name: str = "simulator"
    ) -> None:
        settings.validate()
        self.name = name
        self.carrier_log = carrier_log
        self.clock = clock
        self.sender = settings.sender or sender
        self.settings = settings
        self.tps = settings.tps
        self._random = random.Random(settings.seed)
        self._sink: ChannelSink | None = None
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
        texts: list[CarriedText] = []
        results = []
        for out in batch:
            carrier_id = uuid.uuid4().hex
            failed = self.settings.fail_share > 0 and self._random.random() < self.settings.fail_share
            texts.append(
                CarriedText(
                    phone=out.to, direction="mt", peer=out.sender, body=out.body, carrier_id=carrier_id, at=now,
                    client_ref=out.message_id,
                    receipt_status=ReceiptStatus.UNDELIVERED if failed else ReceiptStatus.DELIVERED,
                    receipt_due_at=due,
                )
            )
            results.append(SendResult(out.message_id, carrier_id))
        if texts:
            if not await self.carrier_log.took(texts):
                raise LeaseLost(f"{self.name}: another worker holds this channel now")
            self._receipts.wake()
        return results

    async def lookup(self, message_ids: list[str]) -> dict[str, str]:
        return await self.carrier_log.carrier_ids(message_ids)

    # -- the phones' side --------------------------------------------------------------

    async def phone_sends(self, phone: str, body: str) -> str:
        """A virtual phone texts the business number; returns Empathic's inbound message id."""
        if self._sink is None:
            raise RuntimeError("simulator is not started")
        now = self.clock.now()
        carrier_id = uuid.uuid4().hex
        await self.carrier_log.phone_sent(CarriedText(phone, "mo", self.sender, body, carrier_id, now))
        return await self._sink.on_inbound(
            Inbound(self.name, carrier_id, sender=phone, to=self.sender, body=body, at=now)
        )

    async def phone_messages(self, phone: str, *, workspace_id: str | None = None, limit: int = 100) -> list[PhoneMessage]:
        """What the phone shows, newest `limit`. With `workspace_id`, only that workspace's
        side of it: the texts its messages became and what the phone sent (the phones text
        the server's default workspace), never another workspace's texts to the number."""
        return [
            PhoneMessage(
                direction="received" if text.direction == "mt" else "sent",
                peer=text.peer,
                body=text.body,
                at=text.at.isoformat(),
                receipt=text.receipt_status.value if text.receipt_sent and text.receipt_status else None,
            )
            for text in await self.carrier_log.phone_history(phone, workspace_id=workspace_id, limit=limit)
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
        due = await self.carrier_log.owed_receipts(now, 1000)
        if due:
            # Receipts go out before they are marked sent: at least once, as carriers do;
            # the engine ignores the duplicate a crash in between may cause.
            await self._sink.on_receipts(
                [
                    Receipt(
                        self.name,
                        owed.carrier_id,
                        owed.status,
                        None if owed.status == ReceiptStatus.DELIVERED else "001",
                        now,
                    )
                    for owed in due
                ]
            )
            await self.carrier_log.receipts_sent([owed.ref for owed in due], now)
            return 0.0
        nxt = await self.carrier_log.next_receipt_due()
        if nxt is None:
            return 5.0
        return max(0.0, min(5.0, (nxt - self.clock.now()).total_seconds()))
