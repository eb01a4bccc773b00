"""What every channel is: a thing that sends batches and reports receipts and replies.

Errors are a small closed set so the dispatcher decides retry or fail without matching
strings (the way courier does it).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable


class ErrorKind(enum.StrEnum):
    CONFIG = "config"  # the channel is set up wrong: permanent until someone fixes it
    CONNECTION = "connection"  # could not reach the carrier: retry
    THROTTLED = "throttled"  # carrier asked us to slow down: retry
    REJECTED = "rejected"  # the carrier refused this message: permanent
    BAD_CONTENT = "bad_content"  # cannot be encoded or too long for this channel: permanent
    # The connection broke after the carrier may have taken the message: never retried as
    # a transient error; its topic says whether it is resent or held `unknown` (engine.dispatcher).
    UNKNOWN = "unknown"

    @property
    def retryable(self) -> bool:
        return self in (ErrorKind.CONNECTION, ErrorKind.THROTTLED)


@dataclass(frozen=True, slots=True)
class ChannelError:
    kind: ErrorKind
    detail: str


@dataclass(frozen=True, slots=True)
class Outbound:
    message_id: str
    to: str  # E.164 for SMS, an address for email
    sender: str
    body: str  # the text (an email's plain-text part)
    subject: str | None = None  # email only
    html: str | None = None  # email only: the HTML alternative
    priority: int = 0  # lower goes first into the carrier's window (TopicKind.priority)
    attempt: int = 0  # which claim of the message this is (its `attempts`): a journal's key (HandOffJournal)


@dataclass(frozen=True, slots=True)
class SendResult:
    message_id: str
    carrier_id: str | None = None  # the key its receipts are matched by
    error: ChannelError | None = None
    # The id exactly as the carrier gave it, when `carrier_id` is a normalised form of it
    # (SMPP `receipt_id`: "00AB12" kept as "ab12"); asking the carrier about it takes this one.
    raw_carrier_id: str | None = None


class ReceiptStatus(enum.StrEnum):
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Receipt:
    channel: str
    carrier_id: str
    status: ReceiptStatus
    error_code: str | None
    at: datetime
    queried: bool = False  # the carrier's answer when asked (ReceiptQueries), not a receipt it sent


@dataclass(frozen=True, slots=True)
class Inbound:
    channel: str
    carrier_id: str
    sender: str  # the person's number
    to: str  # our number
    body: str
    at: datetime


# What the store keeps of a carrier's values (messages.carrier_id, contacts.phone, messages.to_addr);
# PostgreSQL text holds no NUL. No provider sends more: past these a callback is malformed.
MAX_CARRIER_ID, MAX_SENDER, MAX_ADDRESS = 100, 20, 320


def storable_id(carrier_id: str) -> bool:
    return len(carrier_id) <= MAX_CARRIER_ID and "\x00" not in carrier_id


def well_formed(inbound: Inbound) -> bool:
    """Whether the inbound's ids and numbers can be stored as they are (its text always can)."""
    return (storable_id(inbound.carrier_id) and len(inbound.sender) <= MAX_SENDER and len(inbound.to) <= MAX_ADDRESS
            and "\x00" not in inbound.sender + inbound.to)


class ChannelSink(Protocol):
    """Where a channel hands what comes back from the network (the engine implements it)."""

    @property
    def data_dir(self) -> Path | None:
        """Where a channel may keep files of its own (the SMPP journal); None: nowhere."""
        ...

    async def on_receipts(self, receipts: list[Receipt]) -> None: ...

    async def on_inbound(self, inbound: Inbound) -> str: ...


class Channel(Protocol):
    name: str
    sender: str  # the number (or short code) messages go out from
    tps: float  # messages per second this channel may take
    # Whether `lookup` can tell which messages the carrier holds. When it cannot (SMTP, most
    # HTTP providers), an interrupted hand-off's outcome is unknown: resent or held by its topic.
    answers_lookup: bool
    # A channel with a connection (SMPP) may also have `up: bool`; while it is false its
    # dispatcher claims nothing, and after a while its queue fails over. Without it: up.

    async def start(self, sink: ChannelSink) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, batch: list[Outbound]) -> list[SendResult]: ...

    async def lookup(self, message_ids: list[str]) -> dict[str, str]:
        """Carrier ids for messages the carrier holds, for reconciling interrupted hand-offs."""
        ...


@runtime_checkable
class ReceiptQueries(Protocol):
    """A channel that can ask its carrier about texts whose receipts are overdue (SMPP's
    query_sm). `engine.overdue` asks about texts `sent` for `query_after` seconds without
    news, `query_batch` at a time; the channel keeps to its carrier's rate itself."""

    query_after: float  # 0: this channel does not ask
    query_batch: int

    async def query(self, texts: list[Overdue]) -> list[Receipt]:
        """A receipt (`queried`) for each text whose final state the carrier tells; none
        for texts still on their way, unknown to it, or that could not be asked."""
        ...


@runtime_checkable
class HandOffJournal(Protocol):
    """A channel that cannot say what its carrier holds (`answers_lookup` false) but keeps
    a write-ahead journal of what it wrote to the network (SMPP): reconcile puts the texts
    a crash left `sending` that were certainly never written back in the queue, and only
    the others have an unknown outcome."""

    async def never_written(self, claims: dict[str, int]) -> set[str]:
        """Of `claims` (message id -> the attempt left `sending`), those the journal shows
        handed to a process that is gone and never written by it. Unsure: not among them."""
        ...


@dataclass(frozen=True, slots=True)
class Overdue:
    """A text whose receipt is overdue, as a carrier is asked about it."""

    carrier_id: str  # the key a receipt about it carries
    sender: str  # the address it went out from (SMPP's query_sm names it)
    raw_carrier_id: str | None = None  # the id as the carrier gave it, where it differs (SendResult)


Wake = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """A provider's call to us (status callback or inbound message), as it arrived."""

    method: str
    url: str  # the full URL the provider called (the public one, which its signature covers)
    headers: dict[str, str]  # names lower-cased
    query: dict[str, str]
    body: bytes
    content_type: str


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain"


class Webhooks(Protocol):
    """A channel that hears from its provider over HTTP (`/hooks/{channel}/{kind}`)."""

    async def webhook(self, kind: str, request: WebhookRequest, sink: ChannelSink) -> WebhookResponse:
        """Verify the provider's signature (403 when forged), parse, hand receipts or the
        inbound message to `sink`, and answer as the provider expects. `kind` is the last
        path segment (`status`, `inbound`); an unknown kind answers 404."""
        ...
