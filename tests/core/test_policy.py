"""The policy gate: quiet hours, caps, freshness, consent and duplicates, as properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from empathic.core.consent import ALL_TOPICS, ConsentAction, ConsentEntry, ConsentState
from empathic.core.hours import allowed
from empathic.core.policy import REASONS, Block, Candidate, Defer, Send, Sent, decide
from empathic.core.regulations import Rules, shipped
from empathic.core.topics import TopicKind

REGS = shipped()
PLACES = [set(), {"US"}, {"US", "US-FL"}, {"US", "US-TX"}, {"US", "US-MD"}, {"CA"}, {"US", "US-WA"}]
ZONES = ["America/New_York", "America/Chicago", "America/Phoenix", "America/St_Johns", "Asia/Kolkata",
         "Australia/Lord_Howe", "Europe/London", "Pacific/Chatham"]
KINDS = [TopicKind.MARKETING, TopicKind.CONVERSATIONAL, TopicKind.TRANSACTIONAL]
NEAR_CHANGES = [datetime(2026, 3, 8, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 4, 5, tzinfo=UTC),
                datetime(2026, 10, 4, tzinfo=UTC), datetime(2026, 3, 29, tzinfo=UTC)]
GRANTED = ConsentState.fold([ConsentEntry(t, "sms", ConsentAction.GRANTED) for t in ("deals", "news")])

instants = st.builds(lambda base, s: base + timedelta(seconds=s), st.sampled_from(NEAR_CHANGES), st.integers(-3 * 86400, 3 * 86400))


@st.composite
def histories(draw: st.DrawFn, now: datetime) -> list[Sent]:
    ages = draw(st.lists(st.integers(60, 2 * 86400), max_size=8))
    return [Sent(now - timedelta(seconds=a), draw(st.sampled_from(["deals", "news"])), TopicKind.MARKETING) for a in ages]


def under_caps(rules: Rules, message: Candidate, history: list[Sent], at: datetime) -> bool:
    for cap in rules.caps:
        if message.kind not in cap.kinds:
            continue
        counted = [s for s in history if s.kind in cap.kinds and (not cap.same_topic or s.topic == message.topic)]
        if sum(1 for s in counted if at - cap.period < s.at <= at) >= cap.limit:
            return False
    return True


def fine_at(rules: Rules, message: Candidate, history: list[Sent], at: datetime) -> bool:
    week = rules.hours_for(message.kind)
    return (week is None or allowed(week, message.zones, at)) and under_caps(rules, message, history, at)


@settings(max_examples=80, deadline=None)
@given(
    places=st.sampled_from([*PLACES, {"US", "US-FL"}, {"US", "US-MD"}]), zone=st.sampled_from(ZONES),
    kind=st.sampled_from([*KINDS, TopicKind.MARKETING]), now=instants, data=st.data(),
)
def test_the_gate_sends_only_in_allowed_hours_under_caps_and_defers_to_the_earliest_instant(
    places: set[str], zone: str, kind: TopicKind, now: datetime, data: st.DataObject
) -> None:
    rules = REGS.for_places(places)
    history = data.draw(histories(now))
    message = Candidate("deals", kind, "sms", zones=(zone,))
    decision = decide(message, GRANTED, now, rules=rules, history=history)
    if isinstance(decision, Send):
        assert fine_at(rules, message, history, now)
        return
    assert isinstance(decision, Defer), decision
    assert decision.until > now and fine_at(rules, message, history, decision.until)
    assert decision.reason in ("quiet_hours", "frequency_cap")
    # Nothing earlier would do: allowed-ness changes only on whole UTC minutes and at the
    # instants a capped message leaves its window.
    edges = {s.at + c.period for c in rules.caps for s in history}
    at = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while at < decision.until:
        assert not fine_at(rules, message, history, at), at
        at += timedelta(minutes=1)
    for edge in edges:
        if now <= edge < decision.until:
            assert not fine_at(rules, message, history, edge), edge


@settings(max_examples=60, deadline=None)
@given(now=instants, zone=st.sampled_from(ZONES), places=st.sampled_from(PLACES))
def test_marketing_never_goes_out_between_21_and_8_local_anywhere(now: datetime, zone: str, places: set[str]) -> None:
    decision = decide(Candidate("deals", TopicKind.MARKETING, "sms", zones=(zone,)), GRANTED, now, rules=REGS.for_places(places))
    sent_at = now if isinstance(decision, Send) else decision.until  # type: ignore[union-attr]
    local = sent_at.astimezone(ZoneInfo(zone))
    assert 8 <= local.hour < 21


revocations = st.sampled_from(
    [ConsentEntry(ALL_TOPICS, "sms", ConsentAction.REVOKED), ConsentEntry("deals", "sms", ConsentAction.REVOKED)]
)


@given(
    before=st.lists(st.builds(ConsentEntry, st.sampled_from(["deals", ALL_TOPICS]), st.just("sms"), st.sampled_from(list(ConsentAction))), max_size=8),
    revoke=revocations, kind=st.sampled_from(KINDS), now=instants, in_reply=st.booleans(),
)
def test_nothing_non_essential_is_sent_or_deferred_after_an_opt_out(
    before: list[ConsentEntry], revoke: ConsentEntry, kind: TopicKind, now: datetime, in_reply: bool
) -> None:
    state = ConsentState.fold([*before, revoke])
    message = Candidate("deals", kind, "sms", zones=("America/New_York",), in_reply=in_reply)
    assert decide(message, state, now, rules=REGS.for_places({"US"})) == Block("opted_out")


def test_florida_caps_three_a_day_on_one_topic_and_waits_for_the_oldest_to_age_out() -> None:
    now = datetime(2026, 11, 23, 15, tzinfo=UTC)  # 10:00 in Miami
    history = [Sent(now - timedelta(hours=h), "deals", TopicKind.MARKETING) for h in (30, 20, 5, 1)]
    message = Candidate("deals", TopicKind.MARKETING, "sms", zones=("America/New_York",))
    florida, elsewhere = REGS.for_places({"US", "US-FL"}), REGS.for_places({"US", "US-NY"})
    assert decide(message, GRANTED, now, rules=florida, history=history) == Defer(now + timedelta(hours=4), "frequency_cap")
    assert decide(message, GRANTED, now, rules=elsewhere, history=history) == Send()
    news = Candidate("news", TopicKind.MARKETING, "sms", zones=("America/New_York",))
    assert decide(news, GRANTED, now, rules=florida, history=history) == Send()  # another subject


def test_texas_sunday_starts_at_noon() -> None:
    sunday_10 = datetime(2026, 11, 22, 10, tzinfo=ZoneInfo("America/Chicago"))
    message = Candidate("deals", TopicKind.MARKETING, "sms", zones=("America/Chicago",))
    decision = decide(message, GRANTED, sunday_10, rules=REGS.for_places({"US", "US-TX"}))
    assert decision == Defer(datetime(2026, 11, 22, 18, tzinfo=UTC), "quiet_hours")  # 12:00 CST


def test_a_reply_in_a_conversation_is_not_held_by_quiet_hours_but_marketing_is() -> None:
    late = datetime(2026, 11, 23, 23, 30, tzinfo=ZoneInfo("America/New_York"))
    rules = REGS.for_places({"US"})
    reply = Candidate("support", TopicKind.CONVERSATIONAL, "sms", zones=("America/New_York",), in_reply=True)
    assert decide(reply, ConsentState(), late, rules=rules) == Send()
    start = Candidate("support", TopicKind.CONVERSATIONAL, "sms", zones=("America/New_York",))
    assert isinstance(decide(start, ConsentState(), late, rules=rules), Defer)
    promo = Candidate("deals", TopicKind.MARKETING, "sms", zones=("America/New_York",), in_reply=True)
    assert isinstance(decide(promo, GRANTED, late, rules=rules), Defer)
    alert = Candidate("orders", TopicKind.TRANSACTIONAL, "sms", zones=("America/New_York",))
    assert decide(alert, ConsentState(), late, rules=rules) == Send()


def test_freshness_expires_instead_of_sending_late() -> None:
    late = datetime(2026, 11, 23, 23, 30, tzinfo=ZoneInfo("America/New_York"))
    rules = REGS.for_places({"US"})
    eta = Candidate("deals", TopicKind.MARKETING, "sms", zones=("America/New_York",), valid_until=late + timedelta(hours=2))
    assert decide(eta, GRANTED, late, rules=rules) == Block("expired")  # next allowed is 08:00, too late
    alert = Candidate("orders", TopicKind.TRANSACTIONAL, "sms", valid_until=late)
    assert decide(alert, ConsentState(), late, rules=rules) == Block("expired")
    otp = Candidate("otp", TopicKind.OTP, "sms", valid_until=late - timedelta(seconds=1))
    assert decide(otp, ConsentState(), late) == Block("expired")
    fresh = Candidate("deals", TopicKind.MARKETING, "sms", zones=("America/New_York",), valid_until=late + timedelta(days=1))
    assert isinstance(decide(fresh, GRANTED, late, rules=rules), Defer)


def test_the_same_marketing_content_never_goes_twice() -> None:
    now = datetime(2026, 11, 23, 15, tzinfo=UTC)
    history = [Sent(now - timedelta(days=40), "news", TopicKind.MARKETING, "sha:abc")]
    again = Candidate("deals", TopicKind.MARKETING, "sms", zones=("America/New_York",), content_key="sha:abc")
    assert decide(again, GRANTED, now, history=history) == Block("duplicate_content")
    other = Candidate("deals", TopicKind.MARKETING, "sms", zones=("America/New_York",), content_key="sha:def")
    assert decide(other, GRANTED, now, history=history) == Send()


def test_toll_free_numbers_must_suit_every_zone() -> None:
    now = datetime(2026, 11, 23, 13, tzinfo=UTC)  # 08:00 New York, 05:00 Los Angeles
    message = Candidate("deals", TopicKind.MARKETING, "sms", zones=("America/New_York", "America/Los_Angeles"))
    decision = decide(message, GRANTED, now, rules=REGS.for_places({"US"}))
    assert decision == Defer(datetime(2026, 11, 23, 16, tzinfo=UTC), "quiet_hours")  # 08:00 in LA, 11:00 in NY


def test_every_reason_has_a_sentence() -> None:
    for reason in ("expired", "opted_out", "no_consent", "duplicate_content", "quiet_hours", "frequency_cap"):
        assert REASONS[reason].endswith(".")
