"""Consent state as the fold of an append-only ledger.

A ledger entry grants or revokes a topic (or "*", every non-essential topic) on a channel.
The current state is never stored on its own: it is computed from the entries in order,
so the ledger is the single source of truth and its history explains every decision.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

ALL_TOPICS = "*"


class ConsentAction(enum.StrEnum):
    GRANTED = "granted"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class ConsentEntry:
    topic: str
    channel: str
    action: ConsentAction


@dataclass(frozen=True)
class ConsentState:
    """Per channel, the latest blanket ("*") entry and the latest entry of each topic, each
    with its position in the ledger.

    So STOP (blanket revoke) silences every topic, a later "START DEALS" re-opens that one
    topic, and START (blanket grant) lifts the STOP without erasing what the person had
    chosen before it: a topic they had granted is granted again, one they had revoked
    stays revoked.
    """

    blanket: dict[str, tuple[ConsentAction, int]] = field(default_factory=dict)
    topics: dict[tuple[str, str], tuple[ConsentAction, int]] = field(default_factory=dict)

    @classmethod
    def fold(cls, entries: Iterable[ConsentEntry]) -> ConsentState:
        blanket: dict[str, tuple[ConsentAction, int]] = {}
        topics: dict[tuple[str, str], tuple[ConsentAction, int]] = {}
        for position, entry in enumerate(entries):
            if entry.topic == ALL_TOPICS:
                blanket[entry.channel] = (entry.action, position)
            else:
                topics[(entry.topic, entry.channel)] = (entry.action, position)
        return cls(blanket, topics)

    def opted_out(self, topic: str, channel: str) -> bool:
        return self._latest(topic, channel) is ConsentAction.REVOKED

    def granted(self, topic: str, channel: str) -> bool:
        """Express consent: an explicit grant of this topic, not revoked by anything since."""
        own = self.topics.get((topic, channel))
        return own is not None and own[0] is ConsentAction.GRANTED and not self.opted_out(topic, channel)

    def opted_out_of_all(self, channel: str) -> bool:
        entry = self.blanket.get(channel)
        return entry is not None and entry[0] is ConsentAction.REVOKED

    def _latest(self, topic: str, channel: str) -> ConsentAction | None:
        own, blanket = self.topics.get((topic, channel)), self.blanket.get(channel)
        if blanket is not None and blanket[0] is ConsentAction.REVOKED and (own is None or blanket[1] > own[1]):
            return ConsentAction.REVOKED
        if own is not None:
            return own[0]  # a blanket grant lifts a STOP, not the person's own earlier choices
        return blanket[0] if blanket is not None else None
