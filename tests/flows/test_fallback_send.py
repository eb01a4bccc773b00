"""`send` with `fallback: email`, and sends naming a template with an email variant: the
loader's checks and what the interpreter hands the engine (pure, no engine)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from empathic.core.templates import compile_email, compile_template
from empathic.flows import interpreter as fi
from empathic.flows.state import RunState
from empathic.flows import loader

NOW = datetime(2026, 3, 3, 18, 0, tzinfo=UTC)
ANA = {"id": "ct_1", "phone": "+14155550123", "email": "ana@example.com", "attributes": {}}
KNOWN = loader.Known(topics=frozenset({"transactional", "orders"}), templates=frozenset({"shipped", "plain"}),
                     emails=frozenset({"shipped"}))


def flow(step: str) -> Any:
    return loader.parse("flow: note\ntrigger: {event: e}\nsteps:\n" + step, file="note.yaml", known=KNOWN)


def problems(step: str) -> list[str]:
    with pytest.raises(loader.FlowError) as caught:
        flow(step)
    return [str(p) for p in caught.value.problems]


def test_fallback_email_is_read_with_its_subject_and_html() -> None:
    message = flow(
        "  - send: {text: 'Doc {{ event.data.doc }} ready', fallback: email, subject: 'Doc {{ event.data.doc }}',"
        " html: '<p>{{ event.data.doc }}</p>'}\n"
    ).steps[0].action.message
    assert (message.channel, message.fallback) == ("sms", "email")
    assert message.subject is not None and message.html is not None
    # a template with an email variant brings its own subject
    assert flow("  - send: {template: shipped, fallback: email}\n").steps[0].action.message.fallback == "email"
    assert flow("  - send: {template: shipped, channel: both}\n").steps[0].action.message.channel == "both"


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ("  - send: {text: hi, fallback: email}\n", "`fallback: email` needs a `subject`"),
        ("  - send: {template: plain, fallback: email}\n",
         "needs a `subject` (template 'plain' has no email variant, plain.email.toml)"),
        ("  - send: {template: plain, channel: email}\n", "`channel: email` needs a `subject`"),
        ("  - send: {text: hi, channel: both, subject: s, fallback: email}\n",
         "`fallback: email` is for a text; with `channel: both` the email goes anyway"),
        ("  - send: {text: hi, fallback: fax, subject: s}\n", "fax"),
        ("  - send: {text: hi, html: '<p>hi</p>'}\n", "add `channel: email`, `channel: both` or `fallback: email`"),
        ("  - ask: {text: hi, fallback: email, subject: s}\n    expect: [{any: true}]\n", "only `send` chooses a channel"),
    ],
)
def test_wrong_fallbacks_are_problems(step: str, expected: str) -> None:
    found = problems(step)
    assert any(expected in p for p in found), found


LIB = fi.StaticLibrary(
    {},
    templates={"shipped": compile_template("shipped", "Order {{ event.data.id }} shipped.", frozenset({"contact", "event"}))},
    emails={"shipped": compile_email("shipped", "Order {{ event.data.id }}", html="<b>{{ event.data.id }}</b>")},
)


def sends(step: str, contact: dict[str, Any] = ANA, fallback_topics: frozenset[str] = frozenset()) -> list[fi.SendText]:
    f = flow(step)
    library = fi.StaticLibrary({f.name: f}, LIB.templates, LIB.emails)
    ctx = fi.Context(NOW, contact, "UTC", fallback_topics=fallback_topics)
    out = fi.advance(library, RunState.start(f.name, {"id": "ev_1", "type": "e", "data": {"id": "A-1"}}), fi.Start(), ctx)
    assert out.state.status == "done", out.state
    return [e for e in out.effects if isinstance(e, fi.SendText)]


def test_a_text_that_may_fall_back_carries_its_email() -> None:
    (text,) = sends("  - send: {text: 'Order {{ event.data.id }}', fallback: email, subject: 'About {{ event.data.id }}'}\n")
    assert (text.channel, text.fallback, text.subject, text.html, text.email_text) == ("sms", "send", "About A-1", None, None)
    (variant,) = sends("  - send: {template: shipped, fallback: email}\n")
    assert (variant.text, variant.subject, variant.html) == ("Order A-1 shipped.", "Order A-1", "<b>A-1</b>")


def test_a_fallback_topic_uses_a_template_with_an_email_variant() -> None:
    (by_topic,) = sends("  - send: {template: shipped, topic: orders}\n", fallback_topics=frozenset({"orders"}))
    assert (by_topic.fallback, by_topic.subject) == ("topic", "Order A-1")
    (elsewhere,) = sends("  - send: {template: shipped}\n", fallback_topics=frozenset({"orders"}))
    assert (elsewhere.fallback, elsewhere.subject) == (None, None)
    (inline,) = sends("  - send: {text: hi, topic: orders}\n", fallback_topics=frozenset({"orders"}))
    assert inline.fallback is None  # nothing to write an email from


def test_no_address_no_fallback() -> None:
    (text,) = sends("  - send: {text: hi, fallback: email, subject: s}\n", contact={**ANA, "email": None})
    assert (text.fallback, text.subject) == (None, None)
