"""Tests for the time expressions `understand` reads: days, hours and dates in six languages."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from empathic.understand import understand

# Wednesday 2027-03-10, 14:15 local: the anchor for every expected value below.
NOW_LOCAL = datetime(2027, 3, 10, 14, 15)


def _when(text: str, zone: str = "America/Chicago") -> datetime | date | None:
    return understand(text, now=NOW_LOCAL.replace(tzinfo=ZoneInfo(zone)), timezone=zone).when


def _at(day: int, hour: int, minute: int = 0, zone: str = "America/Chicago", month: int = 3) -> datetime:
    return datetime(2027, month, day, hour, minute, tzinfo=ZoneInfo(zone))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("could we do fri 3 instead", _at(12, 15)),
        ("monday at 9?", _at(15, 9)),
        ("wed works", date(2027, 3, 17)),  # a weekday is the next one strictly after today
        ("today at 5 then", _at(10, 17)),
        ("tmrw morning", date(2027, 3, 11)),
        ("tomorrow at 8:45am", _at(11, 8, 45)),
        ("after 6 tonight", _at(10, 18)),
        ("around noon tomorrow?", _at(11, 12)),
        ("at 11", _at(11, 11)),  # 11:00 has passed today: the next 11:00
        ("in 45 mins", _at(10, 15, 0)),
        ("in 2 days", date(2027, 3, 12)),
        ("day after tomorrow at 10", _at(12, 10)),
        ("next week sometime", date(2027, 3, 15)),
        ("next week thursday", date(2027, 3, 18)),
        ("this weekend?", date(2027, 3, 13)),
        ("4/2 at 2:30", _at(2, 14, 30, month=4)),
        ("march 20th", date(2027, 3, 20)),
        ("Mar 1", date(2028, 3, 1)),  # passed this year: next year's
        ("7pm sunday", _at(14, 19)),
        ("saturday 10am", _at(13, 10)),
    ],
)
def test_english(text: str, expected: datetime | date) -> None:
    assert _when(text) == expected


@pytest.mark.parametrize(
    ("text", "zone", "expected"),
    [
        ("el jueves a las 5 de la tarde", "Europe/Madrid", _at(11, 17, zone="Europe/Madrid")),
        ("mañana por la mañana a las 9", "America/Mexico_City", _at(11, 9, zone="America/Mexico_City")),
        ("el 3 de abril", "Europe/Madrid", date(2027, 4, 3)),
        ("el viernes a las 4 y media", "Europe/Madrid", _at(12, 16, 30, zone="Europe/Madrid")),
        ("jeudi à 9h", "Europe/Paris", _at(11, 9, zone="Europe/Paris")),
        ("après-demain vers 15h", "Europe/Paris", _at(12, 15, zone="Europe/Paris")),
        ("le 5 avril", "Europe/Paris", date(2027, 4, 5)),
        ("samedi matin", "Europe/Paris", date(2027, 3, 13)),
        ("2/4", "Europe/Paris", date(2027, 4, 2)),  # day/month outside English in the Americas
        ("Freitag um 11 Uhr", "Europe/Berlin", _at(12, 11, zone="Europe/Berlin")),
        ("morgen ab 16:30", "Europe/Berlin", _at(11, 16, 30, zone="Europe/Berlin")),
        ("am 5.4. um halb 3", "Europe/Berlin", datetime(2027, 4, 5, 14, 30, tzinfo=ZoneInfo("Europe/Berlin"))),
        ("nächste Woche Montag", "Europe/Vienna", date(2027, 3, 15)),
        ("sexta-feira às 10h", "America/Sao_Paulo", _at(12, 10, zone="America/Sao_Paulo")),
        ("amanhã à tarde", "Europe/Lisbon", date(2027, 3, 11)),
        ("dia 20 de março às 9", "America/Sao_Paulo", _at(20, 9, zone="America/Sao_Paulo")),
        ("giovedì alle 18", "Europe/Rome", _at(11, 18, zone="Europe/Rome")),
        ("domani pomeriggio alle 3", "Europe/Rome", _at(11, 15, zone="Europe/Rome")),
        ("il 15 marzo", "Europe/Rome", date(2027, 3, 15)),
    ],
)
def test_other_languages(text: str, zone: str, expected: datetime | date) -> None:
    assert _when(text, zone) == expected


@pytest.mark.parametrize(
    "text",
    ["yes", "ok see you", "I have 2 kids", "option 3", "call me at 555 1234", "24/7 support?", "3 out of 5", "la segunda"],
)
def test_no_time(text: str) -> None:
    assert _when(text) is None


def test_month_first_only_for_english_in_the_americas() -> None:
    assert _when("can we do 4/2", "America/New_York") == date(2027, 4, 2)
    assert _when("can we do 4/2 please", "Europe/London") == date(2028, 2, 4)  # 4 Feb has passed


def test_a_weekday_on_that_day_is_next_week_unless_today_is_said() -> None:
    assert _when("wednesday at 4") == _at(17, 16)
    assert _when("today at 4") == _at(10, 16)


def test_wall_time_in_a_dst_gap_moves_to_the_first_real_instant() -> None:
    # 2027-03-14 02:30 does not exist in Chicago (clocks jump 02:00 → 03:00).
    when = understand("sunday at 2:30am", now=_at(10, 14, 15), timezone="America/Chicago").when
    assert isinstance(when, datetime)
    assert when.utcoffset() == timedelta(hours=-5)
    assert (when.hour, when.minute) == (3, 30)


def test_times_are_read_in_the_persons_zone_not_nows() -> None:
    now = datetime(2027, 3, 10, 23, 30, tzinfo=ZoneInfo("UTC"))  # already the 11th in Tokyo
    when = understand("tomorrow at 10", now=now, timezone="Asia/Tokyo").when
    assert when == datetime(2027, 3, 12, 10, 0, tzinfo=ZoneInfo("Asia/Tokyo"))


# Properties

_ZONES = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))
_PIECES = [
    "tomorrow", "today", "thurs", "friday", "monday", "next week", "at", "after", "4", "9", "12", "16:30", "4pm",
    "10am", "16h", "um", "Uhr", "a las", "à", "alle", "mañana", "demain", "morgen", "amanhã", "domani", "jeudi",
    "3 dec", "12/3", "2.12.", "in 20 min", "in 3 days", "noon", "half", "halb", "?", ",", "pls", "instead", "31/2",
    "29 feb", "tonight", "dopodomani", "le 30", "1/1/2020",
]


@settings(max_examples=200, deadline=None)
@given(
    pieces=st.lists(st.sampled_from(_PIECES), max_size=6),
    zone=st.sampled_from(_ZONES),
    now=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(ZoneInfo("UTC"))),
)
def test_when_is_aware_in_the_zone_and_not_before_today(pieces: list[str], zone: str, now: datetime) -> None:
    when = understand(" ".join(pieces), now=now, timezone=zone).when
    start_of_day = now.astimezone(ZoneInfo(zone)).date()
    if isinstance(when, datetime):
        assert when.tzinfo is not None and when.utcoffset() is not None
        assert when.tzinfo == ZoneInfo(zone)
        assert when.date() >= start_of_day
    elif when is not None:
        assert when >= start_of_day
