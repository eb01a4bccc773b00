"""Consent state as the fold of an append-only ledger.

A ledger entry grants or revokes a topic (or "*", every non-essential topic) on a channel,
or records a request to subscribe that waits for the person's yes (double opt-in).
The current state is never stored on its own: it is computed from the entries in order,
so the ledger is the single source of truth and its history explains every decision.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

ALL_TOPICS = "*"


class ConsentAction(enum.StrEnum):
    GRANTED = "granted"
    REVOKED = "revoked"
    REQUESTED = "requested"  # asked to subscribe; counts only once the person confirms


@dataclass(frozen=True, slots=True)
class ConsentEntry:
    topic: str
    channel: str
    action: ConsentAction
    at: datetime | None = None


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
    # Subscriptions asked for and not yet answered by a grant, a revocation or a STOP: when.
    requests: dict[tuple[str, str], datetime | None] = field(default_factory=dict)

    @classmethod
    def fold(cls, entries: Iterable[ConsentEntry]) -> ConsentState:
        blanket: dict[str, tuple[ConsentAction, int]] = {}
        topics: dict[tuple[str, str], tuple[ConsentAction, int]] = {}
        requests: dict[tuple[str, str], datetime | None] = {}
        for position, entry in enumerate(entries):
            if entry.action is ConsentAction.REQUESTED:
                requests[(entry.topic, entry.channel)] = entry.at
            elif entry.topic == ALL_TOPICS:
                blanket[entry.channel] = (entry.action, position)
                if entry.action is ConsentAction.REVOKED:
                    requests = {k: v for k, v in requests.items() if k[1] != entry.channel}
            else:
                topics[(entry.topic, entry.channel)] = (entry.action, position)
                requests.pop((entry.topic, entry.channel), None)
        return cls(blanket, topics, requests)

    def pending(self, channel: str, now: datetime, within: timedelta) -> list[str]:
        """Topics whose subscription request on `channel` still waits for a yes, newest first."""
        waiting = [(at, topic) for (topic, ch), at in self.requests.items() if ch == channel and at and now - at <= within]
        return [topic for _, topic in sorted(waiting, reverse=True)]

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
