"""A contact's own preferences: parsing with clear errors, and the gate honouring them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from empathic.core.consent import ConsentAction, ConsentEntry, ConsentState
from empathic.core.hours import allowed
from empathic.core.policy import Block, Candidate, Defer, Send, Sent, decide
from empathic.core.preferences import ChannelChoice, Preferences, PreferencesError, parse
from empathic.core.regulations import shipped
from empathic.core.topics import DEFAULT_TOPICS, TopicKind

REGS = shipped()
TOPICS = {**DEFAULT_TOPICS, "deals": TopicKind.MARKETING, "orders": TopicKind.TRANSACTIONAL}
GRANTED = ConsentState.fold([ConsentEntry(t, "sms", ConsentAction.GRANTED) for t in ("deals", "news")])
NY = ZoneInfo("America/New_York")
# Half-hour and DST-shifting zones, where a local hour is easy to get wrong.
ZONES = ["America/New_York", "Asia/Kolkata", "America/St_Johns", "Australia/Lord_Howe", "Europe/London"]
NEAR_CHANGES = [datetime(2026, 3, 8, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 4, 5, tzinfo=UTC),
                datetime(2026, 10, 25, tzinfo=UTC)]
instants = st.builds(lambda base, s: base + timedelta(seconds=s), st.sampled_from(NEAR_CHANGES), st.integers(-3 * 86400, 3 * 86400))
clock = st.integers(0, 23 * 60 + 59).map(lambda m: f"{m // 60:02d}:{m % 60:02d}")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY).astimezone(UTC)  # type: ignore[misc]


def test_round_trip_and_defaults() -> None:
    data = {
        "channels": {"deals": "email", "orders": "both"},
        "email_hours": {"days": "weekdays", "from": "09:00", "to": "17:00"},
        "quiet_hours": {"from": "21:30", "to": "08:00"},
        "language": "es",
        "max_marketing_per_week": 2,
    }
    prefs = parse(data, TOPICS)
    assert prefs.channels == {"deals": ChannelChoice.EMAIL, "orders": ChannelChoice.BOTH}
    assert parse(prefs.to_data(), TOPICS) == prefs
    assert prefs.to_data()["quiet_hours"] == {"days": "every_day", "from": "21:30", "to": "08:00"}
    assert parse({}) == Preferences()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"colour": "blue"}, "colour"),
        ({"channels": {"nope": "sms"}}, "channels.nope"),
        ({"channels": {"otp": "email"}}, "channels.otp"),
        ({"channels": {"deals": "pigeon"}}, "channels.deals"),
        ({"quiet_hours": {"from": "25:00", "to": "08:00"}}, "quiet_hours.from"),
        ({"quiet_hours": {"from": "08:00", "to": "08:00"}}, "quiet_hours"),
        ({"quiet_hours": {"from": "00:00", "to": "24:00"}}, "quiet_hours"),
        ({"quiet_hours": {"days": "weekend", "from": "22:00", "to": "08:00"}}, "quiet_hours.days"),
        ({"email_hours": {"from": "17:00", "to": "09:00"}}, "email_hours"),
        ({"email_hours": {"from": "00:00", "to": "24:00"}}, "email_hours"),
        ({"email_hours": {"from": "08:00", "to": "20:00"}, "quiet_hours": {"from": "20:00", "to": "08:00"}}, "email_hours"),
        ({"language": "xx"}, "language"),
        ({"max_marketing_per_week": 0}, "max_marketing_per_week"),
        ({"max_marketing_per_week": True}, "max_marketing_per_week"),
        ({"email_hours": {"from": "9"}}, "email_hours"),
    ],
)
def test_bad_preferences_name_the_field(data: dict, field: str) -> None:
    with pytest.raises(PreferencesError) as caught:
        parse(data, TOPICS)
    assert caught.value.field == field


def test_channel_preference_blocks_the_other_channel_and_both_allows_either() -> None:
    now = local(2026, 11, 23, 12)
    email_only = parse({"channels": {"deals": "email", "orders": "both"}})
    deals = Candidate("deals", TopicKind.MARKETING, "sms", zones=("America/New_York",))
    assert decide(deals, GRANTED, now, preferences=email_only) == Block("channel_preference")
    orders = Candidate("orders", TopicKind.TRANSACTIONAL, "sms", zones=("America/New_York",))
    assert decide(orders, GRANTED, now, preferences=email_only) == Send()
    otp = Candidate("otp", TopicKind.OTP, "sms")
    assert decide(otp, GRANTED, now, preferences=parse({"quiet_hours": {"from": "00:00", "to": "23:59"}})) == Send()


def test_email_hours_hold_texts_until_they_end_unless_the_topic_is_both() -> None:
    prefs = parse({"email_hours": {"days": "weekdays", "from": "09:00", "to": "17:00"}, "channels": {"news": "both"}})
    monday_noon = local(2026, 11, 23, 12)
    orders = Candidate("orders", TopicKind.TRANSACTIONAL, "sms", zones=("America/New_York",))
    assert decide(orders, GRANTED, monday_noon, preferences=prefs) == Defer(local(2026, 11, 23, 17), "channel_hours")
    assert decide(orders, GRANTED, local(2026, 11, 28, 12), preferences=prefs) == Send()  # Saturday
    news = Candidate("news", TopicKind.CONVERSATIONAL, "sms", zones=("America/New_York",))
    assert decide(news, GRANTED, monday_noon, preferences=prefs) == Send()
    reply = Candidate("orders", TopicKind.TRANSACTIONAL, "sms", zones=("America/New_York",), in_reply=True)
    assert decide(reply, GRANTED, monday_noon, preferences=prefs) == Send()


def test_own_quiet_hours_narrow_the_rules_and_the_reason_says_whose() -> None:
    prefs = parse({"quiet_hours": {"from": "19:00", "to": "10:00"}})
    rules = REGS.for_places({"US"})
    deals = Candidate("deals", TopicKind.MARKETING, "sms", zones=("America/New_York",))
    # 07:00: the law allows nothing before 08:00, so the law's reason is given first.
    assert decide(deals, GRANTED, local(2026, 11, 23, 7), rules=rules, preferences=prefs) == Defer(local(2026, 11, 23, 10), "quiet_hours")
    assert decide(deals, GRANTED, local(2026, 11, 23, 9), rules=rules, preferences=prefs) == Defer(local(2026, 11, 23, 10), "contact_quiet_hours")
    assert decide(deals, GRANTED, local(2026, 11, 23, 20), rules=rules, preferences=prefs) == Defer(local(2026, 11, 24, 10), "contact_quiet_hours")
    # Only night-time texts wanted, which the rules forbid for marketing: never, said so.
    night_owl = parse({"quiet_hours": {"from": "07:00", "to": "22:00"}})
    assert decide(deals, GRANTED, local(2026, 11, 23, 12), rules=rules, preferences=night_owl) == Block("no_allowed_hours")


def test_weekly_marketing_limit_counts_every_marketing_topic() -> None:
    prefs = parse({"max_marketing_per_week": 2})
    now = local(2026, 11, 23, 12)
    history = [Sent(now - timedelta(days=6), "news", TopicKind.MARKETING), Sent(now - timedelta(days=1), "deals", TopicKind.MARKETING)]
    deals = Candidate("deals", TopicKind.MARKETING, "sms", zones=("America/New_York",))
    assert decide(deals, GRANTED, now, history=history, preferences=prefs) == Defer(now + timedelta(days=1), "contact_cap")
    alert = Candidate("orders", TopicKind.TRANSACTIONAL, "sms", zones=("America/New_York",))
    assert decide(alert, GRANTED, now, history=history, preferences=prefs) == Send()


@st.composite
def preferences(draw: st.DrawFn) -> Preferences:
    data: dict = {}
    if draw(st.booleans()):
        data["quiet_hours"] = {"from": draw(clock), "to": draw(clock)}
    if draw(st.booleans()):
        start, end = sorted(draw(st.lists(clock, min_size=2, max_size=2, unique=True)))
        data["email_hours"] = {"days": draw(st.sampled_from(["every_day", "weekdays", "weekend"])), "from": start, "to": end}
    if draw(st.booleans()):
        data["max_marketing_per_week"] = draw(st.integers(1, 4))
    try:
        return parse(data)
    except PreferencesError:
        return parse({})


def fine_at(prefs: Preferences, rules_week: object, message: Candidate, history: list[Sent], at: datetime) -> bool:
    for week, _ in prefs.hours_for(message.kind, message.channel, message.topic):
        if not allowed(week, message.zones, at):
            return False
    if rules_week is not None and not allowed(rules_week, message.zones, at):  # type: ignore[arg-type]
        return False
    for cap in prefs.caps_for(message.kind):
        if sum(1 for s in history if s.kind in cap.kinds and at - cap.period < s.at <= at) >= cap.limit:
            return False
    return True


@settings(max_examples=80, deadline=None)
@given(prefs=preferences(), zone=st.sampled_from(ZONES), kind=st.sampled_from([TopicKind.MARKETING, TopicKind.TRANSACTIONAL]),
       now=instants, ages=st.lists(st.integers(60, 8 * 86400), max_size=6))
def test_the_gate_never_sends_inside_own_hours_and_defers_to_the_earliest_allowed_minute(
    prefs: Preferences, zone: str, kind: TopicKind, now: datetime, ages: list[int]
) -> None:
    rules = REGS.for_places(set())
    history = [Sent(now - timedelta(seconds=a), "news", TopicKind.MARKETING) for a in ages]
    message = Candidate("deals", kind, "sms", zones=(zone,))
    decision = decide(message, GRANTED, now, rules=rules, history=history, preferences=prefs)
    rules_week = rules.hours_for(kind)
    if isinstance(decision, Send):
        assert fine_at(prefs, rules_week, message, history, now)
        return
    if isinstance(decision, Block):
        assert decision.reason == "no_allowed_hours"
        return
    assert decision.until > now and fine_at(prefs, rules_week, message, history, decision.until)
    edges = {s.at + timedelta(days=7) for s in history}
    at = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while at < decision.until:
        assert not fine_at(prefs, rules_week, message, history, at), at
        at += timedelta(minutes=1)
    for edge in edges:
        if now <= edge < decision.until:
            assert not fine_at(prefs, rules_week, message, history, edge), edge
