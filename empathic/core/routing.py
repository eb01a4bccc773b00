"""Which channel a message goes out on: pure choice over the declared routes.

A route is a channel's entry in `empathic.toml` (`[[channels]]`) reduced to what the
choice needs: the kind of address it reaches (`sms` numbers or `email` addresses), the
countries and number types it serves, the topics (names or kinds) it carries, and its
priority (lower is tried first; declaration order breaks ties). An empty list serves all.

The choice, for one message: the routes that serve it, in priority order; the contact's
sticky channel first if it is one of them and up (a conversation stays on one number);
else the first that is up; else the first (its queue waits for it, or for failover).
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass


class Reach(enum.StrEnum):
    SMS = "sms"
    EMAIL = "email"


class NoRoute(LookupError):
    """No declared channel serves this message (country, number type, topic or reach)."""


@dataclass(frozen=True, slots=True)
class Route:
    channel: str
    reach: Reach = Reach.SMS
    countries: frozenset[str] = frozenset()  # ISO 3166-1 alpha-2, upper case
    number_types: frozenset[str] = frozenset()  # mobile, fixed_line, toll_free, … (see core.phones)
    topics: frozenset[str] = frozenset()  # topic names or kinds
    priority: int = 0

    def serves(self, *, reach: Reach, country: str | None, number_type: str | None, topic: str, kind: str) -> bool:
        if reach is not self.reach:
            return False
        if self.countries and (country is None or country not in self.countries):
            return False
        if self.number_types and (number_type is None or number_type not in self.number_types):
            return False
        return not self.topics or topic in self.topics or kind in self.topics


@dataclass(frozen=True, slots=True)
class Destination:
    reach: Reach
    country: str | None
    number_type: str | None
    topic: str
    kind: str


def candidates(routes: Sequence[Route], dest: Destination) -> list[Route]:
    """Routes serving the destination, best first (priority, then declaration order)."""
    serving = [
        (r.priority, i, r)
        for i, r in enumerate(routes)
        if r.serves(reach=dest.reach, country=dest.country, number_type=dest.number_type, topic=dest.topic, kind=dest.kind)
    ]
    return [r for _, _, r in sorted(serving, key=lambda t: (t[0], t[1]))]


def choose(
    routes: Sequence[Route],
    dest: Destination,
    *,
    sticky: str | None = None,
    down: Collection[str] = (),
    found: Sequence[Route] | None = None,
) -> str:
    """The channel for one message; raises NoRoute when none serves it. `found`: the
    routes' `candidates` for `dest`, if the caller has them already."""
    found = candidates(routes, dest) if found is None else found
    if not found:
        if dest.reach is Reach.EMAIL:
            raise NoRoute(f"no email channel (type smtp) is declared for topic {dest.topic!r}")
        raise NoRoute(
            f"no channel reaches {dest.reach.value} in {dest.country or 'an unknown country'}"
            f" for topic {dest.topic!r}"
        )
    names = [r.channel for r in found]
    if sticky in names and sticky not in down:
        return sticky
    for name in names:
        if name not in down:
            return name
    return names[0]


def next_after(routes: Sequence[Route], dest: Destination, current: str, down: Collection[str]) -> str | None:
    """Where a message queued on `current` goes when that channel is down: the best other
    serving channel that is up, or None (it stays where it is)."""
    for route in candidates(routes, dest):
        if route.channel != current and route.channel not in down:
            return route.channel
    return None
