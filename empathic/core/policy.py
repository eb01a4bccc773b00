"""The policy gate: one pure function every outbound message passes before it leaves.

`decide` returns Send, Defer(until, reason) or Block(reason). In this first cut it enforces
opt-outs; quiet hours, caps and freshness join it later without changing its callers.
Reasons are stable snake_case codes API clients can rely on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from empathic.core.consent import ConsentState
from empathic.core.topics import TopicKind

REASONS: dict[str, str] = {
    "opted_out": "The contact opted out of this topic; only essential messages may reach them.",
}


@dataclass(frozen=True, slots=True)
class Send:
    pass


@dataclass(frozen=True, slots=True)
class Defer:
    until: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class Block:
    reason: str


Decision = Send | Defer | Block
SEND = Send()


@dataclass(frozen=True, slots=True)
class Candidate:
    """What the gate needs to know of a message."""

    topic: str
    kind: TopicKind
    channel: str  # "sms" or "email"


def decide(message: Candidate, consent: ConsentState, now: datetime) -> Decision:
    if not message.kind.essential and consent.opted_out(message.topic, message.channel):
        return Block("opted_out")
    return SEND
