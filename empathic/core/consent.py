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
    """Per channel: whether everything was revoked, and per-topic overrides after that."""

    all_revoked: frozenset[str] = frozenset()  # channels with a standing revoke of "*"
    topics: dict[tuple[str, str], ConsentAction] = field(default_factory=dict)

    @classmethod
    def fold(cls, entries: Iterable[ConsentEntry]) -> ConsentState:
        all_revoked: set[str] = set()
        topics: dict[tuple[str, str], ConsentAction] = {}
        for entry in entries:
            if entry.topic == ALL_TOPICS:
                # A blanket change resets every narrower choice made before it.
                topics = {k: v for k, v in topics.items() if k[1] != entry.channel}
                if entry.action is ConsentAction.REVOKED:
                    all_revoked.add(entry.channel)
                else:
                    all_revoked.discard(entry.channel)
            else:
                topics[(entry.topic, entry.channel)] = entry.action
        return cls(frozenset(all_revoked), topics)

    def opted_out(self, topic: str, channel: str) -> bool:
        specific = self.topics.get((topic, channel))
        if specific is not None:  # every topic entry kept is newer than the last blanket one
            return specific is ConsentAction.REVOKED
        return channel in self.all_revoked

    def opted_out_of_all(self, channel: str) -> bool:
        return channel in self.all_revoked
