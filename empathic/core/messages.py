"""The message model: statuses, directions, priorities and which transitions are allowed.

Lifecycle (outbound): queued → (deferred → queued) → sending → sent → delivered |
undelivered | failed | expired; blocked where the policy gate says no. Inbound messages are
`received`. Every transition is recorded with a reason (see engine.transitions).
"""

from __future__ import annotations

import enum


class Direction(enum.StrEnum):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


class Status(enum.StrEnum):
    QUEUED = "queued"
    DEFERRED = "deferred"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    EXPIRED = "expired"
    BLOCKED = "blocked"
    RECEIVED = "received"
    # Handed to a channel that cannot say whether it took the message (a crash or a lost
    # connection at that moment) and held there by its topic's policy (`hold`, or `resend`
    # past its resends; core.topics): not re-sent, counted, settled by a late receipt.
    UNKNOWN = "unknown"

    @property
    def is_final(self) -> bool:
        return self in FINAL


FINAL = frozenset(
    {
        Status.DELIVERED, Status.UNDELIVERED, Status.FAILED, Status.EXPIRED, Status.BLOCKED, Status.RECEIVED,
        Status.UNKNOWN,
    }
)

# Which status may follow which. A receipt may still move a message the carrier already
# called `expired` or `undelivered` to `delivered`: carriers do send late, better news.
ALLOWED: dict[Status, frozenset[Status]] = {
    Status.QUEUED: frozenset({Status.SENDING, Status.BLOCKED, Status.DEFERRED, Status.EXPIRED}),
    Status.DEFERRED: frozenset({Status.QUEUED, Status.BLOCKED, Status.EXPIRED, Status.FAILED}),
    Status.SENDING: frozenset({Status.SENT, Status.DEFERRED, Status.FAILED, Status.QUEUED, Status.UNKNOWN}),
    Status.SENT: frozenset({Status.DELIVERED, Status.UNDELIVERED, Status.FAILED, Status.EXPIRED}),
    Status.UNDELIVERED: frozenset({Status.DELIVERED}),
    Status.EXPIRED: frozenset({Status.DELIVERED, Status.UNDELIVERED}),
    Status.DELIVERED: frozenset(),
    Status.FAILED: frozenset(),
    Status.BLOCKED: frozenset(),
    Status.RECEIVED: frozenset(),
    Status.UNKNOWN: frozenset({Status.DELIVERED, Status.UNDELIVERED}),
}


def can_move(current: Status, new: Status) -> bool:
    return new in ALLOWED[current]
