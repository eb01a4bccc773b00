"""Sending hours in the recipient's local time, exact across DST changes and odd offsets.

A `Week` holds the allowed window of each weekday in local wall-clock time. `next_allowed`
finds the earliest instant at or after `now` that is allowed in every one of the given time
zones (several when the recipient's zone is not known for sure: the message must be
welcome in all of them).

The earliest allowed instant is always one of: `now`; a window's start on some day,
resolved in both folds (a repeated hour has two); or a UTC offset change (a window start
that falls in a spring-forward gap becomes allowed at the jump). `next_allowed` checks
exactly those candidates, in order, so its answer is exact to the second rather than
stepped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

MINUTES_PER_DAY = 24 * 60
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SEARCH_DAYS = 8  # a week plus a day covers every weekday's window


@dataclass(frozen=True, slots=True, order=True)
class Window:
    """Minutes of the local day, `start` inclusive and `end` exclusive (1440 is midnight)."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end <= MINUTES_PER_DAY:
            raise ValueError(f"a window needs 00:00 <= start < end <= 24:00, got {self}")

    @classmethod
    def parse(cls, text: str) -> Window:
        """`"08:00-21:00"`; raises ValueError naming what is wrong."""
        try:
            start, end = (part.strip() for part in text.split("-"))
            return cls(_minutes(start), _minutes(end))
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a window like '08:00-21:00' ({exc})") from None

    def __str__(self) -> str:
        return f"{_clock(self.start)}-{_clock(self.end)}"


@dataclass(frozen=True, slots=True)
class Week:
    """The allowed window of each weekday, Monday first; None: not at all that day."""

    days: tuple[Window | None, ...]

    def __post_init__(self) -> None:
        if len(self.days) != 7:
            raise ValueError("a week has 7 days")
        if all(d is None for d in self.days):
            raise ValueError("a week needs at least one allowed window")

    @classmethod
    def every_day(cls, window: Window) -> Week:
        return cls((window,) * 7)

    def allows_local(self, local: datetime) -> bool:
        window = self.days[local.weekday()]
        if window is None:
            return False
        second = local.hour * 3600 + local.minute * 60 + local.second
        return window.start * 60 <= second < window.end * 60

    def tighten(self, other: Week) -> Week:
        """Allowed only when both allow: a later rule can narrow, never widen."""
        days: list[Window | None] = []
        for mine, theirs in zip(self.days, other.days, strict=True):
            if mine is None or theirs is None:
                days.append(None)
                continue
            start, end = max(mine.start, theirs.start), min(mine.end, theirs.end)
            days.append(Window(start, end) if start < end else None)
        return Week(tuple(days))


def allowed(week: Week, zones: Sequence[str], at: datetime) -> bool:
    """Whether `at` (aware) is inside the week's windows in every zone."""
    return all(week.allows_local(at.astimezone(_zone(z))) for z in zones)


def next_allowed(week: Week, zones: Sequence[str], now: datetime) -> datetime:
    """The earliest instant at or after `now` (aware) allowed in every zone, in UTC."""
    if not zones:
        raise ValueError("need at least one time zone")
    now = now.astimezone(UTC)
    if allowed(week, zones, now):
        return now
    candidates: set[datetime] = set()
    for name in zones:
        tz = _zone(name)
        today = now.astimezone(tz).date()
        for offset in range(-1, _SEARCH_DAYS + 1):
            day = today + timedelta(days=offset)
            window = week.days[day.weekday()]
            if window is not None:
                candidates.update(_starts(day, window.start, tz))
        candidates.update(_offset_changes(tz, now - timedelta(days=1), now + timedelta(days=_SEARCH_DAYS + 1)))
    for at in sorted(c for c in candidates if c > now):
        if allowed(week, zones, at):
            return at
    # Zones whose windows never overlap within the search span (a week has at least one
    # window per zone, so this needs zones half a day apart with narrow windows).
    raise NoCommonHours(week, zones)


class NoCommonHours(ValueError):
    def __init__(self, week: Week, zones: Sequence[str]) -> None:
        super().__init__(f"no instant in the next {_SEARCH_DAYS} days is allowed in all of {', '.join(zones)}")
        self.zones = tuple(zones)


def _starts(day: date, minute: int, tz: ZoneInfo) -> Iterable[datetime]:
    naive = datetime.combine(day, time()) + timedelta(minutes=minute)
    for fold in (0, 1):
        yield naive.replace(tzinfo=tz, fold=fold).astimezone(UTC)


def _offset_changes(tz: ZoneInfo, start: datetime, end: datetime) -> Iterable[datetime]:
    """Each instant in [start, end) where the zone's UTC offset changes (the first second of the new one)."""
    step = timedelta(hours=1)
    at = start.replace(minute=0, second=0, microsecond=0)
    before = at.astimezone(tz).utcoffset()
    while at < end:
        nxt = at + step
        after = nxt.astimezone(tz).utcoffset()
        if after != before:
            lo, hi = 0, 3600  # the change lies in (at, nxt]: find its first second
            while lo + 1 < hi:
                mid = (lo + hi) // 2
                if (at + timedelta(seconds=mid)).astimezone(tz).utcoffset() == before:
                    lo = mid
                else:
                    hi = mid
            yield at + timedelta(seconds=hi)
        at, before = nxt, after


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _minutes(text: str) -> int:
    hours, _, minutes = text.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f"{text!r} is not HH:MM")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) >= 60 or value > MINUTES_PER_DAY:
        raise ValueError(f"{text!r} is not a time of day")
    return value


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
