"""The policy gate: one pure function every outbound message passes before it leaves.

`decide` returns Send, Defer(until, reason) or Block(reason). It checks, in this order:
freshness (`expired`), opt-outs (`opted_out`), the person's channel for the topic
(`channel_preference`), express consent for marketing (`no_consent`), marketing content
already sent to the person (`duplicate_content`), then timing: the rules' quiet hours in the
recipient's local time, the person's own quiet hours and email hours, the rules' frequency
caps and the person's own, deferring to the earliest instant that satisfies all of them
(`quiet_hours`, `contact_quiet_hours`, `channel_hours`, `frequency_cap`, `contact_cap`). A
message whose earliest instant falls after its `valid_until` is `expired` now rather than
sent late.

Essential kinds (compliance replies, requested OTP codes) pass everything but freshness. A
reply to the person's own message is a conversation, not a campaign: quiet hours and caps
do not hold it back (marketing is never such a reply). Reasons are stable snake_case
codes; `REASONS` has a sentence for each.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from empathic.core.consent import ConsentState
from empathic.core.hours import EmptyWeek, NoCommonHours, Week, allowed, next_allowed
from empathic.core.preferences import NO_PREFERENCES, Preferences
from empathic.core.regulations import NO_RULES, Cap, Rules
from empathic.core.topics import TopicKind

REASONS: dict[str, str] = {
    "expired": "The message was no longer worth sending: its valid_until passed before it could go out.",
    "opted_out": "The contact opted out of this topic; only essential messages may reach them.",
    "no_consent": "Marketing needs the contact's recorded express consent to this topic, and there is none.",
    "duplicate_content": "The contact already received this exact marketing content.",
    "quiet_hours": "It is outside the allowed sending hours in the contact's local time; it waits for the next allowed minute.",
    "frequency_cap": "The contact reached a frequency cap for this kind of message; it waits until the cap allows it.",
    "no_common_hours": "The contact's possible time zones share no allowed sending hour within a week.",
    "no_allowed_hours": "The sending rules and the contact's own hours leave no hour in the week for this message.",
    "channel_preference": "The contact asked to get this topic on another channel.",
    "contact_quiet_hours": "It is inside the quiet hours the contact chose; it waits until they end.",
    "channel_hours": "The contact prefers email at this hour; the text waits until their email hours end.",
    "contact_cap": "The contact reached the number of marketing messages per week they chose; it waits until the week allows it.",
    "suppressed": "The number belonged to a contact who opted out and was erased; it stays suppressed.",
}


def content_key(body: str) -> str:
    """The digest marketing de-duplication compares (kept when a body is redacted)."""
    return "sha256:" + hashlib.sha256(body.encode("utf-8")).hexdigest()


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
    zones: tuple[str, ...] = ()  # the recipient's possible time zones; needed when hours apply
    in_reply: bool = False  # answers the person's own message (a flow step, an agent in the inbox)
    valid_until: datetime | None = None
    content_key: str | None = None  # a digest of the body, for marketing de-duplication


@dataclass(frozen=True, slots=True)
class Sent:
    """A message that already went to the same contact (from its history)."""

    at: datetime
    topic: str
    kind: TopicKind
    content_key: str | None = None


def decide(
    message: Candidate,
    consent: ConsentState,
    now: datetime,
    *,
    rules: Rules = NO_RULES,
    history: Sequence[Sent] = (),
    preferences: Preferences = NO_PREFERENCES,
) -> Decision:
    if message.valid_until is not None and now >= message.valid_until:
        return Block("expired")
    if message.kind.essential:
        return SEND
    if consent.opted_out(message.topic, message.channel):
        return Block("opted_out")
    choice = preferences.channel_for(message.topic)
    if choice is not None and not choice.allows(message.channel):
        return Block("channel_preference")
    marketing = message.kind is TopicKind.MARKETING
    if marketing and not consent.granted(message.topic, message.channel):
        return Block("no_consent")
    if marketing and message.content_key is not None:
        if any(s.kind is TopicKind.MARKETING and s.content_key == message.content_key for s in history):
            return Block("duplicate_content")
    if message.in_reply and not marketing:
        return SEND
    try:
        until, reason = _earliest(message, rules, preferences, history, now)
    except NoCommonHours:
        return Block("no_common_hours")
    except EmptyWeek:
        return Block("no_allowed_hours")
    if until <= now:
        return SEND
    if message.valid_until is not None and until >= message.valid_until:
        return Block("expired")
    return Defer(until, reason)


def _earliest(
    message: Candidate, rules: Rules, preferences: Preferences, history: Sequence[Sent], now: datetime
) -> tuple[datetime, str]:
    """The first instant at or after `now` inside every window and under every cap, and why it waits."""
    weeks: list[tuple[Week, str]] = []
    if (week := rules.hours_for(message.kind)) is not None:
        weeks.append((week, "quiet_hours"))
    weeks += preferences.hours_for(message.kind, message.channel, message.topic)
    caps = [(c, "frequency_cap") for c in rules.caps if message.kind in c.kinds]
    caps += [(c, "contact_cap") for c in preferences.caps_for(message.kind)]
    if weeks and not message.zones:
        raise ValueError("the recipient's time zones are needed to apply sending hours")
    combined = None
    for week, _ in weeks:
        combined = week if combined is None else combined.tighten(week)  # EmptyWeek: no hour left
    at, reason = now, ""
    for _ in range(64):  # each round moves forward; real rule sets settle in two or three
        moved = False
        if combined is not None:
            allowed_at = next_allowed(combined, message.zones, at)
            if allowed_at > at:
                reason = reason or next(why for week, why in weeks if not allowed(week, message.zones, at))
                at, moved = allowed_at, True
        for cap, why in caps:
            free_at = _cap_frees_at(cap, message, history, at)
            if free_at > at:
                at, reason, moved = free_at, reason or why, True
        if not moved:
            return at, reason
    raise RuntimeError("sending hours and caps did not settle")  # caps are fixed points: never in practice


def _cap_frees_at(cap: Cap, message: Candidate, history: Sequence[Sent], at: datetime) -> datetime:
    """Under the cap at `t` means fewer than `limit` counted sends in (t - period, t]."""
    times = sorted(
        s.at for s in history if s.kind in cap.kinds and (not cap.same_topic or s.topic == message.topic) and s.at <= at
    )
    if len(times) < cap.limit:
        return at
    return max(at, times[-cap.limit] + cap.period)
