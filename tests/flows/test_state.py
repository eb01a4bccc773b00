"""A run's state: its JSON, read back the same, and states stored by older releases migrated.

`data/run_states_v0.json` holds states captured from the interpreter before states had a version
(the flows below, run input by input; `keyword_started` and `cancelled` as engine/runs.py
stored them), exactly as the store kept them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from empathic.flows import interpreter as fi
from empathic.flows.loader import parse
from empathic.flows.state import VERSION, Frame, Heard, RunState, StateVersionError, Understood, Waiting

V0 = json.loads((Path(__file__).parent / "data" / "run_states_v0.json").read_text())
NOW = datetime(2026, 3, 3, 18, 0, tzinfo=UTC)
CTX = fi.Context(NOW, {"id": "ct_1", "phone": "+14155550123", "attributes": {"first_name": "Ana"}}, "America/Los_Angeles")
LIB = fi.StaticLibrary({
    "visit": parse("""\
flow: visit
steps:
  - send: "Hi {{ contact.attributes.first_name }}"
  - flow: confirm
  - id: pause
    wait: {for: 1h}
  - call: {url: "https://example.com/orders/{{ event.data.order }}", save: {total: order.total}}
  - handoff: {note: "Over to you", then: resume}
  - send: "Done, {{ vars.answer.option }}"
"""),
    "confirm": parse("""\
flow: confirm
steps:
  - id: question
    ask: "Come on {{ event.data.day }}? A) yes B) no"
    save: answer
    expect:
      - option: [A, B]
    timeout: 1d
    reminders: {after: 4h}
"""),
})


@pytest.mark.parametrize("name", sorted(V0))
def test_a_state_stored_before_versions_reads_as_version_1_unchanged(name: str) -> None:
    state = RunState.from_json(V0[name])
    assert state.version == VERSION == 1
    assert state.to_json() == {**V0[name], "version": 1}


def test_states_stored_before_versions_go_on_where_they_were() -> None:
    # Each stored state, read back, takes the input the old code gave it and gives the state
    # the old code stored next.
    steps: list[tuple[str, fi.Input, str]] = [
        ("reply_in_subflow", fi.Timer(1, "remind"), "reply_reminded"),
        ("reply_reminded", fi.Reply("A please", "msg_2"), "timer"),
        ("timer", fi.Timer(2, "wake"), "call"),
        ("call", fi.CallResult(3, True, {"order": {"total": 12.5}}), "handoff"),
        ("handoff", fi.HandoffClosed(), "done"),
        ("call", fi.CallResult(3, False, error="HTTP 500"), "failed"),
    ]
    for before, given_input, after in steps:
        out = fi.advance(LIB, RunState.from_json(V0[before]), given_input, CTX)
        assert out.state.to_json() == {**V0[after], "version": 1}, (before, after)
    resumed = fi.advance(LIB, RunState.from_json(V0["handoff"]), fi.HandoffClosed(), CTX)
    assert [e.text for e in resumed.effects if isinstance(e, fi.SendText)] == ["Done, A"]


def test_a_parked_or_keyword_started_run_goes_on() -> None:
    asked = fi.advance(LIB, RunState.from_json(V0["turn"]), fi.Turn(), CTX)
    assert [e.text for e in asked.effects if isinstance(e, fi.SendText)] == ["Come on Friday? A) yes B) no"]
    keyword = RunState.from_json(V0["keyword_started"])
    assert keyword.reply is not None and keyword.reply.understood is None  # the keyword text is no answer
    answered = fi.advance(LIB, keyword, fi.Reply("B", "msg_9"), CTX)
    assert answered.state.outcome == "completed" and answered.state.vars["answer"]["option"] == "B"


def test_a_state_from_a_newer_release_is_refused() -> None:
    with pytest.raises(StateVersionError, match="version 2 is newer than this release reads"):
        RunState.from_json({**V0["timer"], "version": 2})


_TEXT = st.text(max_size=8)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)
_WHEN = st.datetimes(timezones=st.just(UTC))
_UNDERSTOOD = st.builds(Understood, _TEXT, st.none() | _TEXT, st.none() | _TEXT,
                        st.none() | st.integers() | st.floats(allow_nan=False), _TEXT, st.floats(0, 1))
STATES = st.builds(
    RunState,
    frames=st.lists(st.builds(Frame, _TEXT, st.none() | st.integers(0, 50)), max_size=3).map(tuple),
    status=st.sampled_from(["active", "done", "failed", "ended"]),
    vars=st.dictionaries(_TEXT, _JSON, max_size=3),
    event=st.dictionaries(_TEXT, _JSON, max_size=3),
    reply=st.none() | st.builds(Heard, st.none() | _TEXT, st.none() | _TEXT, _WHEN, st.none() | _UNDERSTOOD),
    seq=st.integers(0, 100),
    sent=st.integers(0, 100),
    wait=st.none() | st.builds(Waiting, st.sampled_from(["reply", "timer", "call", "handoff", "turn"]),
                               st.integers(0, 100), st.integers(0, 50), _TEXT, st.integers(0, 5), st.integers(0, 5),
                               st.booleans()),
    outcome=st.none() | _TEXT,
    error=st.none() | _TEXT,
)


@given(STATES)
def test_a_state_reads_back_as_it_was_stored(state: RunState) -> None:
    stored: Any = json.loads(json.dumps(state.to_json()))  # as the store's JSON column keeps it
    assert RunState.from_json(stored) == state


def test_a_reply_keeps_its_instant() -> None:
    heard = Heard("yes", "msg_1", NOW + timedelta(microseconds=5))
    assert Heard.from_json(heard.to_json()) == heard
