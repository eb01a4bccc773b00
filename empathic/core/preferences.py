"""A contact's own preferences: channel per topic, email hours, quiet hours, language, cadence.

Preferences only ever narrow what the rules allow: a person can ask for fewer texts, later
texts or email instead, never for texts the law or the workspace forbids. The gate applies
them to every non-essential message (`core.policy.decide`); a reply to the person's own
message is not held back by them.

Stored and served as plain JSON:

    {"channels": {"deals": "email", "orders": "both"},
     "email_hours": {"days": "weekdays", "from": "09:00", "to": "17:00"},
     "quiet_hours": {"from": "21:30", "to": "08:00"},
     "language": "es",
     "max_marketing_per_week": 2}

`email_hours`: during these local hours the person prefers email, so an SMS waits until
they end (unless the topic's channel is `both`). `quiet_hours` may cross midnight and hold
every day.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache

from empathic.core.errors import InputError
from empathic.core.hours import EmptyWeek, Week, Window, format_clock, parse_clock
from empathic.core.json import Json
from empathic.core.regulations import Cap
from empathic.core.topics import TopicKind

LANGUAGES = ("en", "es", "fr", "de", "pt", "it")
DAY_GROUPS = {"every_day": range(7), "weekdays": range(5), "weekend": range(5, 7)}
# Kinds a person's own hours hold back. OTP and compliance replies are essential: the
# person asked for the code, the law asks for the reply.
HELD_KINDS = frozenset({TopicKind.MARKETING, TopicKind.CONVERSATIONAL, TopicKind.TRANSACTIONAL})
WEEK = timedelta(days=7)


class ChannelChoice(enum.StrEnum):
    SMS = "sms"
    EMAIL = "email"
    BOTH = "both"

    def allows(self, channel: str) -> bool:
        return self is ChannelChoice.BOTH or self.value == channel


class PreferencesError(InputError):
    """Preferences that cannot be used; `field` names the offending one (dotted)."""


@dataclass(frozen=True, slots=True)
class Hours:
    """A local time range on some days; `start > end` crosses midnight."""

    days: str
    start: int
    end: int

    def week(self) -> Week:
        return _week(self.days, self.start, self.end)

    def outside(self) -> Week:
        """Every minute of the week these hours do not cover (EmptyWeek if none)."""
        return _outside(self.days, self.start, self.end)

    def to_data(self) -> dict[str, str]:
        return {"days": self.days, "from": format_clock(self.start), "to": format_clock(self.end)}


@dataclass(frozen=True)
class Preferences:
    channels: Mapping[str, ChannelChoice] = field(default_factory=dict)
    email_hours: Hours | None = None
    quiet_hours: Hours | None = None
    language: str | None = None
    max_marketing_per_week: int | None = None

    def channel_for(self, topic: str) -> ChannelChoice | None:
        return self.channels.get(topic)

    def hours_for(self, kind: TopicKind, channel: str, topic: str) -> list[tuple[Week, str]]:
        """The windows this person allows a message in, each with the reason it waits for."""
        if kind not in HELD_KINDS:
            return []
        windows: list[tuple[Week, str]] = []
        if self.quiet_hours is not None:
            windows.append((self.quiet_hours.outside(), "contact_quiet_hours"))
        choice = self.channels.get(topic)
        if self.email_hours is not None and channel == "sms" and choice is not ChannelChoice.BOTH:
            windows.append((self.email_hours.outside(), "channel_hours"))
        return windows

    def caps_for(self, kind: TopicKind) -> list[Cap]:
        if kind is not TopicKind.MARKETING or self.max_marketing_per_week is None:
            return []
        return [Cap(self.max_marketing_per_week, WEEK, frozenset({TopicKind.MARKETING}), False, "contact preference")]

    def to_data(self) -> Json:
        return {
            "channels": {topic: choice.value for topic, choice in sorted(self.channels.items())},
            "email_hours": self.email_hours.to_data() if self.email_hours else None,
            "quiet_hours": self.quiet_hours.to_data() if self.quiet_hours else None,
            "language": self.language,
            "max_marketing_per_week": self.max_marketing_per_week,
        }


NO_PREFERENCES = Preferences()


# The gate asks for these per message; a few distinct hour ranges cover everyone.
@lru_cache(maxsize=1024)
def _week(days: str, start: int, end: int) -> Week:
    on = DAY_GROUPS[days]
    if start < end:
        windows: tuple[Window, ...] = (Window(start, end),)
    else:
        windows = (Window(start, 1440), *((Window(0, end),) if end else ()))
    return Week(tuple(windows if day in on else () for day in range(7)))


@lru_cache(maxsize=1024)
def _outside(days: str, start: int, end: int) -> Week:
    return _week(days, start, end).complement()


def parse(data: object, topics: Mapping[str, TopicKind] | None = None) -> Preferences:
    """Check stored or submitted preferences; `topics` (name → kind) limits `channels` to real, non-essential topics."""
    if not isinstance(data, Mapping):
        raise PreferencesError("preferences", "must be an object")
    unknown = set(data) - {"channels", "email_hours", "quiet_hours", "language", "max_marketing_per_week"}
    if unknown:
        raise PreferencesError(sorted(unknown)[0], "unknown preference")
    channels = _channels(data.get("channels") or {}, topics)
    email_hours = _hours(data.get("email_hours"), "email_hours", crossing=False)
    quiet_hours = _hours(data.get("quiet_hours"), "quiet_hours", crossing=True)
    if quiet_hours is not None:
        if quiet_hours.days != "every_day":
            raise PreferencesError("quiet_hours.days", "quiet hours hold every day")
        if quiet_hours.start == quiet_hours.end:
            raise PreferencesError("quiet_hours", "from and to are equal: that is no quiet hours or all day")
        _check_leaves_time(quiet_hours, "quiet_hours")
    if email_hours is not None:
        _check_leaves_time(email_hours, "email_hours")
    if email_hours is not None and quiet_hours is not None:
        try:
            email_hours.outside().tighten(quiet_hours.outside())
        except EmptyWeek:
            raise PreferencesError("email_hours", "with these quiet hours no hour is left for texts") from None
    language = data.get("language")
    if language is not None and language not in LANGUAGES:
        raise PreferencesError("language", f"{language!r} is not one of {', '.join(LANGUAGES)}")
    cap = data.get("max_marketing_per_week")
    if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or not 1 <= cap <= 100):
        raise PreferencesError(
            "max_marketing_per_week", f"{cap!r} must be a whole number from 1 to 100 (opt out of a topic to get none)"
        )
    return Preferences(channels, email_hours, quiet_hours, language, cap)


def _channels(raw: object, topics: Mapping[str, TopicKind] | None) -> dict[str, ChannelChoice]:
    if not isinstance(raw, Mapping):
        raise PreferencesError("channels", "must map topic names to sms, email or both")
    choices: dict[str, ChannelChoice] = {}
    for topic, value in raw.items():
        if topics is not None:
            kind = topics.get(topic)
            if kind is None:
                raise PreferencesError(f"channels.{topic}", f"unknown topic; known: {', '.join(sorted(topics))}")
            if kind.essential:
                raise PreferencesError(f"channels.{topic}", f"{kind.value} messages go where they were asked for")
        try:
            choices[topic] = ChannelChoice(value)
        except ValueError:
            raise PreferencesError(f"channels.{topic}", f"{value!r} must be sms, email or both") from None
    return choices


def _hours(raw: object, name: str, *, crossing: bool) -> Hours | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or set(raw) - {"days", "from", "to"} or not {"from", "to"} <= set(raw):
        raise PreferencesError(name, 'must be {"from": "HH:MM", "to": "HH:MM"} with optional "days"')
    days = raw.get("days", "every_day")
    if days not in DAY_GROUPS:
        raise PreferencesError(f"{name}.days", f"{days!r} must be one of {', '.join(DAY_GROUPS)}")
    bounds = []
    for key in ("from", "to"):
        value = raw[key]
        try:
            if not isinstance(value, str):
                raise ValueError("not text")
            minute = parse_clock(value)
        except ValueError:
            raise PreferencesError(f"{name}.{key}", f"{value!r} is not a time like 08:30") from None
        bounds.append(minute % 1440)
    start, end = bounds
    if not crossing and start >= end:
        raise PreferencesError(name, "from must be before to (these hours do not cross midnight)")
    return Hours(days, start, end)


def _check_leaves_time(hours: Hours, name: str) -> None:
    try:
        hours.outside()
    except EmptyWeek:
        raise PreferencesError(name, "covers every hour of the week; no hour is left for texts") from None
