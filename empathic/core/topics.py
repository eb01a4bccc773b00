"""Topics: what a message is about, and the kind that decides which consent rules apply.

`compliance` is internal: the replies that keywords require (opt-out confirmation, HELP).
Essential kinds are sent even to a contact who opted out of everything: compliance replies
are the law's own requirement and an OTP is sent only because the person asked for it.

A topic also says what happens to a text whose hand-off outcome nobody knows (a crash or a
broken connection before the carrier answered): `resend` it (a late code or fraud alert is
worse than a second one) or `hold` it as `unknown` (a second offer is worse than none).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from empathic.core.errors import InputError


class TopicKind(enum.StrEnum):
    OTP = "otp"
    TRANSACTIONAL = "transactional"
    CONVERSATIONAL = "conversational"
    MARKETING = "marketing"
    COMPLIANCE = "compliance"

    @property
    def essential(self) -> bool:
        return self in (TopicKind.OTP, TopicKind.COMPLIANCE)

    @property
    def priority(self) -> int:
        """Dispatch order: lower first. A marketing backlog never delays a code or an alert."""
        return _PRIORITY[self]


_PRIORITY = {
    TopicKind.COMPLIANCE: 0,
    TopicKind.OTP: 0,
    TopicKind.TRANSACTIONAL: 1,
    TopicKind.CONVERSATIONAL: 2,
    TopicKind.MARKETING: 3,
}

COMPLIANCE_TOPIC = "compliance"


class OnUnknown(enum.StrEnum):
    """What becomes of a text whose hand-off outcome is unknown (it may be at the carrier)."""

    RESEND = "resend"  # back to the queue (through the gate again), at most `resends` times
    HOLD = "hold"  # stays `unknown`: never re-sent


@dataclass(frozen=True, slots=True)
class UnknownPolicy:
    action: OnUnknown
    resends: int = 1  # times one text may be re-sent after unknown outcomes (RESEND only)


MAX_RESENDS = 5
RESEND_ONCE = UnknownPolicy(OnUnknown.RESEND, 1)
HOLD = UnknownPolicy(OnUnknown.HOLD, 0)


def default_unknown_policy(kind: TopicKind) -> UnknownPolicy:
    """Codes and alerts are re-sent once; marketing, conversations and compliance replies held."""
    return RESEND_ONCE if kind in (TopicKind.OTP, TopicKind.TRANSACTIONAL) else HOLD

DEFAULT_TOPICS: Mapping[str, TopicKind] = {
    "transactional": TopicKind.TRANSACTIONAL,
    "conversational": TopicKind.CONVERSATIONAL,
    "marketing": TopicKind.MARKETING,
    "otp": TopicKind.OTP,
    COMPLIANCE_TOPIC: TopicKind.COMPLIANCE,
}


class UnknownTopic(InputError):
    def __init__(self, topic: str, known: list[str]) -> None:
        message = f"unknown topic {topic!r}; known topics: {', '.join(known)}"
        super().__init__("topic", message, message=message)
        self.topic = topic
        self.known = known


@dataclass(frozen=True)
class Topics:
    kinds: Mapping[str, TopicKind]
    # Topics whose unknown outcomes are not handled as their kind's default says.
    unknown: Mapping[str, UnknownPolicy] = field(default_factory=dict)

    def kind(self, topic: str) -> TopicKind:
        try:
            return self.kinds[topic]
        except KeyError:
            raise UnknownTopic(topic, sorted(self.kinds)) from None

    def unknown_policy(self, topic: str) -> UnknownPolicy:
        """The topic's policy for unknown outcomes; a topic no longer declared holds."""
        declared = self.unknown.get(topic)
        if declared is not None:
            return declared
        kind = self.kinds.get(topic)
        return HOLD if kind is None else default_unknown_policy(kind)
