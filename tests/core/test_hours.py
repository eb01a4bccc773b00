"""Sending hours: exact next allowed instant across DST gaps and folds and odd offsets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from empathic.core.hours import NoCommonHours, Week, Window, allowed, next_allowed

# DST in both hemispheres, half- and quarter-hour offsets, a 30-minute DST shift (Lord Howe).
ZONES = [
    "America/New_York", "Europe/London", "Europe/Berlin", "Australia/Adelaide", "Asia/Kolkata",
    "America/St_Johns", "Asia/Kathmandu", "Australia/Lord_Howe", "Pacific/Chatham",
    "America/Sao_Paulo", "America/Phoenix", "UTC",
]
# Days around DST changes, where the interesting cases live.
NEAR_CHANGES = [
    datetime(2026, 3, 8, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 3, 29, tzinfo=UTC),
    datetime(2026, 10, 25, tzinfo=UTC), datetime(2026, 4, 5, tzinfo=UTC), datetime(2026, 10, 4, tzinfo=UTC),
    datetime(2027, 3, 14, tzinfo=UTC), datetime(2027, 11, 7, tzinfo=UTC),
]

@st.composite
def weeks(draw: st.DrawFn) -> Week:
    # A day is closed, one window, or several (own quiet hours and channel hours split a day).
    several = st.lists(windows_ok(), min_size=1, max_size=3).map(tuple)
    days = [draw(st.one_of(st.none(), windows_ok(), several)) for _ in range(7)]
    if all(d is None for d in days):
        days[draw(st.integers(0, 6))] = draw(windows_ok())
    return Week(tuple(days))


def windows_ok() -> st.SearchStrategy[Window]:
    # Starts near 01:00-03:00 hit spring-forward gaps and fall-back folds on purpose.
    start = st.one_of(st.integers(0, 1439), st.integers(55, 185))
    return st.tuples(start, st.integers(1, 1440)).filter(lambda t: t[0] < t[1]).map(lambda t: Window(*t))


instants = st.one_of(
    st.builds(
        lambda base, seconds: base + timedelta(seconds=seconds),
        st.sampled_from(NEAR_CHANGES), st.integers(-2 * 86400, 2 * 86400),
    ),
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)),
)


def brute_force(week: Week, zones: list[str], now: datetime, until: datetime) -> datetime | None:
    """First allowed instant in [now, until]: allowed-ness changes only on whole UTC minutes."""
    if allowed(week, zones, now):
        return now
    at = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while at <= until:
        if allowed(week, zones, at):
            return at
        at += timedelta(minutes=1)
    return None


@settings(max_examples=60, deadline=None)
@given(week=weeks(), zone=st.sampled_from(ZONES), now=instants)
def test_next_allowed_is_the_earliest_allowed_instant(week: Week, zone: str, now: datetime) -> None:
    got = next_allowed(week, [zone], now)
    assert got >= now and allowed(week, [zone], got)
    assert brute_force(week, [zone], now, got) == got


@settings(max_examples=40, deadline=None)
@given(zones=st.lists(st.sampled_from(ZONES), min_size=2, max_size=3, unique=True), now=instants)
def test_several_zones_need_all_of_them(zones: list[str], now: datetime) -> None:
    week = Week.every_day(Window(8 * 60, 21 * 60))
    try:
        got = next_allowed(week, zones, now)
    except NoCommonHours:
        # Only when no single minute of the next week is inside every zone's window.
        assert brute_force(week, zones, now, now + timedelta(days=8)) is None
        return
    for zone in zones:
        local = got.astimezone(ZoneInfo(zone))
        assert 8 <= local.hour < 21
    assert brute_force(week, zones, now, got) == got


def test_a_window_starting_in_the_spring_gap_opens_at_the_jump() -> None:
    ny = ZoneInfo("America/New_York")
    week = Week.every_day(Window(2 * 60 + 30, 23 * 60))  # 02:30 does not exist on 2026-03-08
    now = datetime(2026, 3, 8, 1, 0, tzinfo=ny)
    got = next_allowed(week, ["America/New_York"], now)
    assert got == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT, the first local time past 02:30
    assert got.astimezone(ny).hour == 3


def test_fall_back_repeats_the_hour_and_the_earlier_fold_counts() -> None:
    week = Week.every_day(Window(60 + 30, 23 * 60))  # 01:30 happens twice on 2026-11-01 in New York
    now = datetime(2026, 11, 1, 5, 0, tzinfo=UTC)  # 01:00 EDT
    assert next_allowed(week, ["America/New_York"], now) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


def test_the_repeated_hour_opens_a_window_a_second_time() -> None:
    week = Week.every_day(Window(60 + 30, 60 + 45))  # 01:30-01:45, which 2026-11-01 has twice
    now = datetime(2026, 11, 1, 5, 50, tzinfo=UTC)  # 01:50 EDT: the first 01:30-01:45 is over
    assert next_allowed(week, ["America/New_York"], now) == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST


def test_half_hour_zone_and_closed_days() -> None:
    days: list[Window | None] = [Window(9 * 60, 21 * 60)] * 6 + [None]  # no Sundays
    week = Week(tuple(days))
    now = datetime(2026, 11, 21, 16, 0, tzinfo=UTC)  # Saturday 21:30 in Kolkata
    got = next_allowed(week, ["Asia/Kolkata"], now)
    assert got.astimezone(ZoneInfo("Asia/Kolkata")) == datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("Asia/Kolkata"))


def test_inside_the_window_is_now() -> None:
    now = datetime(2026, 11, 23, 15, 0, 42, tzinfo=UTC)
    assert next_allowed(Week.every_day(Window(0, 1440)), ["Pacific/Chatham"], now) == now


def test_tighten_only_narrows() -> None:
    base = Week.every_day(Window.parse("08:00-21:00"))
    texas = Week((Window.parse("09:00-21:00"),) * 6 + (Window.parse("12:00-21:00"),))
    florida = Week.every_day(Window.parse("08:00-20:00"))
    both = base.tighten(texas).tighten(florida)
    assert both.days[0] == (Window.parse("09:00-20:00"),) and both.days[6] == (Window.parse("12:00-20:00"),)
    assert base.tighten(Week.every_day(Window.parse("00:00-24:00"))) == base  # a looser rule changes nothing
    with pytest.raises(ValueError, match="at least one"):
        base.tighten(Week.every_day(Window.parse("22:00-23:00")))


@pytest.mark.parametrize("text", ["8-21", "08:00", "21:00-08:00", "08:00-25:00", "08:60-09:00", "aa:bb-cc:dd", ""])
def test_bad_windows_are_clear_errors(text: str) -> None:
    with pytest.raises(ValueError, match="not a window"):
        Window.parse(text)


@given(weeks(), st.integers(0, 6), st.integers(0, 1439))
def test_complement_allows_exactly_the_other_minutes(week: Week, day: int, minute: int) -> None:
    local = datetime(2026, 11, 23 + day, minute // 60, minute % 60)  # 2026-11-23 is a Monday
    try:
        other = week.complement()
    except ValueError:  # the week allows every minute: nothing is left
        assert all(w == (Window(0, 1440),) for w in week.days)
        return
    assert other.allows_local(local) != week.allows_local(local)


def test_windows_of_a_day_are_sorted_and_merged() -> None:
    week = Week(((Window.parse("12:00-14:00"), Window.parse("08:00-10:00"), Window.parse("09:00-11:00")),) + (None,) * 6)
    assert week.days[0] == (Window.parse("08:00-11:00"), Window.parse("12:00-14:00"))
    assert week.days[1] == ()
    lunch = Week.every_day(Window.parse("08:00-21:00")).tighten(Week.every_day(Window.parse("13:00-14:00")).complement())
    assert lunch.days[2] == (Window.parse("08:00-13:00"), Window.parse("14:00-21:00"))
