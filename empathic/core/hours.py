"""Sending hours in the recipient's local time, exact across DST changes and odd offsets.

A `Week` holds the allowed windows of each weekday in local wall-clock time. `next_allowed`
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
            return cls(parse_clock(start), parse_clock(end))
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a window like '08:00-21:00' ({exc})") from None

    def __str__(self) -> str:
        return f"{format_clock(self.start)}-{format_clock(self.end)}"


DayWindows = tuple[Window, ...]


class EmptyWeek(ValueError):
    """A week with no allowed minute (raised by `Week`, `tighten` and `complement`)."""


@dataclass(frozen=True, slots=True)
class Week:
    """The allowed windows of each weekday, Monday first; an empty day allows nothing.

    Each day may be given as one `Window`, `None` (closed) or several windows; they are kept
    sorted and merged, so equal weeks compare equal.
    """

    days: tuple[DayWindows, ...]

    def __init__(self, days: Sequence[Window | DayWindows | None]) -> None:
        if len(days) != 7:
            raise ValueError("a week has 7 days")
        object.__setattr__(self, "days", tuple(_merged(day) for day in days))
        if not any(self.days):
            raise EmptyWeek("a week needs at least one allowed window")

    @classmethod
    def every_day(cls, window: Window) -> Week:
        return cls((window,) * 7)

    def allows_local(self, local: datetime) -> bool:
        second = local.hour * 3600 + local.minute * 60 + local.second
        return any(w.start * 60 <= second < w.end * 60 for w in self.days[local.weekday()])

    def tighten(self, other: Week) -> Week:
        """Allowed only when both allow: a later rule can narrow, never widen."""
        days: list[DayWindows] = []
        for mine, theirs in zip(self.days, other.days, strict=True):
            both = (
                Window(max(a.start, b.start), min(a.end, b.end))
                for a in mine
                for b in theirs
                if max(a.start, b.start) < min(a.end, b.end)
            )
            days.append(tuple(both))
        return Week(tuple(days))

    def complement(self) -> Week:
        """Allowed exactly when this week is not (EmptyWeek if this allows every minute)."""
        days: list[DayWindows] = []
        for windows in self.days:
            gaps, at = [], 0
            for w in windows:
                if w.start > at:
                    gaps.append(Window(at, w.start))
                at = w.end
            if at < MINUTES_PER_DAY:
                gaps.append(Window(at, MINUTES_PER_DAY))
            days.append(tuple(gaps))
        return Week(tuple(days))


def _merged(day: Window | DayWindows | None) -> DayWindows:
    if day is None:
        return ()
    windows = sorted((day,) if isinstance(day, Window) else day)
    merged: list[Window] = []
    for w in windows:
        if merged and w.start <= merged[-1].end:
            merged[-1] = Window(merged[-1].start, max(merged[-1].end, w.end))
        else:
            merged.append(w)
    return tuple(merged)


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
            for window in week.days[day.weekday()]:
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


def parse_clock(text: str) -> int:
    hours, _, minutes = text.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f"{text!r} is not HH:MM")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) >= 60 or value > MINUTES_PER_DAY:
        raise ValueError(f"{text!r} is not a time of day")
    return value


def format_clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
