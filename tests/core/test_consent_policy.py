"""Consent as a fold of the ledger, and the policy gate over it."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from empathic.core.consent import ALL_TOPICS, ConsentAction, ConsentEntry, ConsentState
from empathic.core.policy import Block, Candidate, Send, decide
from empathic.core.topics import DEFAULT_TOPICS, TopicKind

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
TOPICS = ["deals", "news", "transactional", ALL_TOPICS]
entries = st.lists(
    st.builds(ConsentEntry, st.sampled_from(TOPICS), st.sampled_from(["sms", "email"]), st.sampled_from(list(ConsentAction))),
    max_size=30,
)


def reference_opted_out(history: list[ConsentEntry], topic: str, channel: str) -> bool:
    """The slow, obvious reading, newest first: the topic's own entry decides, a blanket
    revoke (STOP) silences everything older, and a blanket grant (START) only lifts the
    blanket revokes older than itself."""
    lifted = False
    for entry in reversed(history):
        if entry.channel != channel or entry.action is ConsentAction.REQUESTED:  # a request decides nothing
            continue
        if entry.topic == topic:
            return entry.action is ConsentAction.REVOKED
        if entry.topic == ALL_TOPICS:
            if entry.action is ConsentAction.GRANTED:
                lifted = True
            elif not lifted:
                return True
    return False


def reference_pending(history: list[ConsentEntry], topic: str, channel: str) -> bool:
    """A request waits until the topic's own grant or revocation, or a STOP, comes after it."""
    for entry in reversed(history):
        if entry.channel != channel:
            continue
        if entry.topic == topic:
            return entry.action is ConsentAction.REQUESTED
        if entry.topic == ALL_TOPICS and entry.action is ConsentAction.REVOKED:
            return False
    return False


@given(entries, st.sampled_from(TOPICS[:-1]), st.sampled_from(["sms", "email"]))
def test_pending_requests_agree_with_the_reference_reading(history: list[ConsentEntry], topic: str, channel: str) -> None:
    state = ConsentState.fold(history)
    assert ((topic, channel) in state.requests) == reference_pending(history, topic, channel)


@given(entries, st.sampled_from(TOPICS[:-1]), st.sampled_from(["sms", "email"]))
def test_fold_agrees_with_the_reference_reading(history: list[ConsentEntry], topic: str, channel: str) -> None:
    state = ConsentState.fold(history)
    assert state.opted_out(topic, channel) == reference_opted_out(history, topic, channel)


@given(entries)
def test_a_final_blanket_revoke_blocks_every_non_essential_topic(history: list[ConsentEntry]) -> None:
    state = ConsentState.fold([*history, ConsentEntry(ALL_TOPICS, "sms", ConsentAction.REVOKED)])
    for name, kind in DEFAULT_TOPICS.items():
        decision = decide(Candidate(name, kind, "sms"), state, NOW)
        assert decision == (Send() if kind.essential else Block("opted_out")), name


def test_topic_revoke_is_narrow() -> None:
    state = ConsentState.fold(
        [ConsentEntry(t, c, ConsentAction.GRANTED) for t in ("deals", "news") for c in ("sms", "email")]
        + [ConsentEntry("deals", "sms", ConsentAction.REVOKED)]
    )
    assert decide(Candidate("deals", TopicKind.MARKETING, "sms"), state, NOW) == Block("opted_out")
    assert decide(Candidate("news", TopicKind.MARKETING, "sms"), state, NOW) == Send()
    assert decide(Candidate("deals", TopicKind.MARKETING, "email"), state, NOW) == Send()


def test_marketing_needs_express_consent_transactional_does_not() -> None:
    nothing = ConsentState()
    assert decide(Candidate("deals", TopicKind.MARKETING, "sms"), nothing, NOW) == Block("no_consent")
    assert decide(Candidate("orders", TopicKind.TRANSACTIONAL, "sms"), nothing, NOW) == Send()
    other_channel = ConsentState.fold([ConsentEntry("deals", "email", ConsentAction.GRANTED)])
    assert decide(Candidate("deals", TopicKind.MARKETING, "sms"), other_channel, NOW) == Block("no_consent")


def test_start_after_stop_restores_what_was_chosen_before() -> None:
    state = ConsentState.fold(
        [
            ConsentEntry("deals", "sms", ConsentAction.GRANTED),
            ConsentEntry("news", "sms", ConsentAction.REVOKED),
            ConsentEntry(ALL_TOPICS, "sms", ConsentAction.REVOKED),
            ConsentEntry(ALL_TOPICS, "sms", ConsentAction.GRANTED),
        ]
    )
    assert decide(Candidate("deals", TopicKind.MARKETING, "sms"), state, NOW) == Send()
    assert decide(Candidate("news", TopicKind.MARKETING, "sms"), state, NOW) == Block("opted_out")
    assert decide(Candidate("orders", TopicKind.TRANSACTIONAL, "sms"), state, NOW) == Send()
    assert not state.opted_out_of_all("sms")


def test_a_topic_grant_after_stop_reopens_only_that_topic() -> None:
    state = ConsentState.fold(
        [ConsentEntry("deals", "sms", ConsentAction.GRANTED), ConsentEntry("news", "sms", ConsentAction.GRANTED),
         ConsentEntry(ALL_TOPICS, "sms", ConsentAction.REVOKED), ConsentEntry("news", "sms", ConsentAction.GRANTED)]
    )
    assert state.granted("news", "sms") and not state.granted("deals", "sms")
    assert state.opted_out("orders", "sms") and state.opted_out_of_all("sms")


def test_priorities_put_codes_and_alerts_before_marketing() -> None:
    assert TopicKind.OTP.priority < TopicKind.TRANSACTIONAL.priority < TopicKind.MARKETING.priority
    assert TopicKind.COMPLIANCE.essential and TopicKind.OTP.essential and not TopicKind.TRANSACTIONAL.essential
