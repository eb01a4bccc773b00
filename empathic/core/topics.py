"""Topics: what a message is about, and the kind that decides which consent rules apply.

`compliance` is internal: the replies that keywords require (opt-out confirmation, HELP).
Essential kinds are sent even to a contact who opted out of everything: compliance replies
are the law's own requirement and an OTP is sent only because the person asked for it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


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

DEFAULT_TOPICS: Mapping[str, TopicKind] = {
    "transactional": TopicKind.TRANSACTIONAL,
    "conversational": TopicKind.CONVERSATIONAL,
    "marketing": TopicKind.MARKETING,
    "otp": TopicKind.OTP,
    COMPLIANCE_TOPIC: TopicKind.COMPLIANCE,
}


class UnknownTopic(ValueError):
    def __init__(self, topic: str, known: list[str]) -> None:
        super().__init__(f"unknown topic {topic!r}; known topics: {', '.join(known)}")
        self.topic = topic
        self.known = known


@dataclass(frozen=True)
class Topics:
    kinds: Mapping[str, TopicKind]

    def kind(self, topic: str) -> TopicKind:
        try:
            return self.kinds[topic]
        except KeyError:
            raise UnknownTopic(topic, sorted(self.kinds)) from None
