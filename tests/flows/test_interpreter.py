"""The interpreter alone: pure (state, input) -> (state, effects), no engine, no clock."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from empathic.flows import interpreter as fi
from empathic.flows.state import RunState
from empathic.flows.steps import ask
from empathic.flows.loader import parse

NOW = datetime(2026, 3, 3, 18, 0, tzinfo=UTC)
CTX = fi.Context(NOW, {"id": "ct_1", "phone": "+14155550123", "attributes": {"first_name": "Ana"}}, "America/Los_Angeles")

SURVEY = parse("""\
flow: survey
steps:
  - id: score
    ask: "Rate us 1 to 5"
    save: score
    expect:
      - number: {min: 1, max: 5}
    timeout: 1d
    reminders: {after: 4h, count: 2}
    retry: {count: 1}
  - set: {contact.last_score: "{{ vars.score.number }}", vars.rated: true}
  - branch:
      - if: "vars.score.number <= 2"
        goto: sorry
  - send: "Thanks {{ contact.attributes.first_name }}, you gave {{ contact.attributes.last_score }}"
    next: end
  - id: sorry
    handoff: {note: "Low score {{ vars.score.number }}", then: resume}
  - send: "A colleague will be in touch"
  - id: end
    end: rated
""")


def lib(*flows: Any) -> fi.StaticLibrary:
    return fi.StaticLibrary({f.name: f for f in flows})


def start(flow: Any, library: fi.StaticLibrary | None = None, event: dict[str, Any] | None = None) -> fi.Outcome:
    return fi.advance(library or lib(flow), RunState.start(flow.name, event), fi.Start(), CTX)


def texts(outcome: fi.Outcome) -> list[str]:
    return [e.text for e in outcome.effects if isinstance(e, fi.SendText)]


def test_an_ask_sends_the_question_and_sets_its_timers() -> None:
    out = start(SURVEY)
    assert texts(out) == ["Rate us 1 to 5"]
    timers = [(e.at - NOW, e.purpose) for e in out.effects if isinstance(e, fi.Schedule)]
    assert timers == [(timedelta(hours=4), "remind"), (timedelta(hours=8), "remind"), (timedelta(days=1), "timeout")]
    assert out.state.wait.kind == "reply" and out.state.wait.step_id == "score"


def test_an_answer_moves_on_sets_fields_and_texts_see_them() -> None:
    out = fi.advance(lib(SURVEY), start(SURVEY).state, fi.Reply("I'd say 4", "msg_1"), CTX)
    assert texts(out) == ["Thanks Ana, you gave 4"]
    assert fi.UpdateContact({"attributes.last_score": 4}) in out.effects  # "{{ expr }}" alone keeps its type
    assert out.state.status == "done" and out.state.outcome == "rated"
    assert out.state.vars["score"]["number"] == 4 and out.state.vars["rated"] is True


def test_an_unclear_answer_is_retried_then_handed_to_a_person() -> None:
    first = fi.advance(lib(SURVEY), start(SURVEY).state, fi.Reply("banana"), CTX)
    assert texts(first) == ["Sorry, I didn't get that. Rate us 1 to 5"] and first.state.status == "active"
    second = fi.advance(lib(SURVEY), first.state, fi.Reply("9"), CTX)  # out of range: still unclear
    assert second.state.status == "done" and second.state.outcome == "unclear"
    assert any(isinstance(e, fi.OpenHandoff) for e in second.effects)


def test_a_low_score_waits_for_the_person_then_resumes() -> None:
    low = fi.advance(lib(SURVEY), start(SURVEY).state, fi.Reply("2"), CTX)
    assert fi.OpenHandoff("Low score 2") in low.effects and low.state.wait.kind == "handoff"
    assert fi.advance(lib(SURVEY), low.state, fi.Reply("hello?"), CTX).effects == []  # the person has it now
    done = fi.advance(lib(SURVEY), low.state, fi.HandoffClosed(), CTX)
    assert texts(done) == ["A colleague will be in touch"] and done.state.outcome == "rated"


def test_reminders_then_timeout_and_stale_timers_change_nothing() -> None:
    asked = start(SURVEY).state
    assert asked.wait is not None
    seq = asked.wait.seq
    reminded = fi.advance(lib(SURVEY), asked, fi.Timer(seq, "remind"), CTX)
    assert texts(reminded) == ["Rate us 1 to 5"] and reminded.state.wait.reminders == 1
    stale = fi.advance(lib(SURVEY), reminded.state, fi.Timer(seq - 1, "timeout"), CTX)
    assert stale.effects == [] and stale.state == reminded.state
    timed_out = fi.advance(lib(SURVEY), reminded.state, fi.Timer(seq, "timeout"), CTX)
    assert timed_out.state.status == "done" and timed_out.state.outcome == "no_answer"
    again = fi.advance(lib(SURVEY), timed_out.state, fi.Timer(seq, "remind"), CTX)
    assert again.effects == [] and again.state == timed_out.state  # an ended run never moves


def test_the_state_passed_in_is_never_changed() -> None:
    state = start(SURVEY).state
    before = copy.deepcopy(state)
    fi.advance(lib(SURVEY), state, fi.Reply("5"), CTX)
    assert state == before


def test_a_wait_until_event_time_is_in_the_contacts_zone_and_a_past_time_goes_on() -> None:
    flow = parse('flow: w\nsteps:\n  - wait: {until: "{{ event.data.at }}", offset: -24h}\n  - send: now\n')
    out = start(flow, event={"data": {"at": "2026-03-05T09:30:00"}})
    (timer,) = [e for e in out.effects if isinstance(e, fi.Schedule)]
    assert timer.at == datetime(2026, 3, 4, 17, 30, tzinfo=UTC)  # 09:30 in Los Angeles (UTC-8), a day before
    past = start(flow, event={"data": {"at": "2026-03-04T09:30:00+00:00"}})
    assert texts(past) == ["now"] and past.state.status == "done"
    bad = start(flow, event={"data": {"at": "next tuesday"}})
    assert bad.state.status == "failed" and "not an ISO date" in bad.state.error


def test_calls_save_fields_or_fail_over() -> None:
    flow = parse(
        "flow: c\nsteps:\n  - call: {url: 'https://x.example/{{ event.data.id }}', body: {q: '{{ contact.phone }}'},"
        " save: {total: 'order.total', first: 'items[0].sku'}, on_failure: oops}\n"
        "  - send: 'total {{ vars.total }} {{ vars.first }}'\n    next: fin\n  - id: oops\n    send: 'failed: {{ vars.call_error }}'\n"
        "  - id: fin\n    end: ok\n"
    )
    out = start(flow, event={"data": {"id": "7"}})
    (call,) = [e for e in out.effects if isinstance(e, fi.HttpCall)]
    assert call.url == "https://x.example/7" and call.body == {"q": "+14155550123"} and call.method == "POST"
    ok = fi.advance(lib(flow), out.state, fi.CallResult(call.seq, True, {"order": {"total": 12}, "items": [{"sku": "s1"}]}), CTX)
    assert texts(ok) == ["total 12 s1"]
    failed = fi.advance(lib(flow), out.state, fi.CallResult(call.seq, False, error="HTTP 500"), CTX)
    assert texts(failed) == ["failed: HTTP 500"]
    late = fi.advance(lib(flow), ok.state, fi.CallResult(call.seq, True, {}), CTX)
    assert late.effects == []


def test_a_call_failure_without_a_branch_fails_the_run_and_drops_its_timers() -> None:
    flow = parse("flow: c\nsteps:\n  - call: {url: 'https://x.example/'}\n")
    out = start(flow)
    seq = out.state.wait.seq
    failed = fi.advance(lib(flow), out.state, fi.CallResult(seq, False, error="HTTP 404"), CTX)
    assert failed.state.status == "failed" and "HTTP 404" in failed.state.error


def test_subflows_return_to_the_step_after_them() -> None:
    inner = parse("flow: inner\nsteps:\n  - send: 'inner {{ vars.n }}'\n  - set: {vars.n: 2}\n")
    outer = parse("flow: outer\nsteps:\n  - set: {vars.n: 1}\n  - flow: inner\n  - send: 'back {{ vars.n }}'\n")
    out = start(outer, lib(outer, inner))
    assert texts(out) == ["inner 1", "back 2"] and out.state.outcome == "completed"


def test_a_goto_loop_without_a_wait_fails_instead_of_spinning() -> None:
    flow = parse("flow: l\nsteps:\n  - id: a\n    set: {vars.x: 1}\n    next: a\n")
    out = start(flow)
    assert out.state.status == "failed" and "without waiting" in out.state.error


def test_a_text_missing_data_fails_the_run_naming_the_value() -> None:
    flow = parse("flow: t\nsteps:\n  - send: 'Order {{ event.data.order_id }}'\n")
    out = start(flow, event={"data": {}})
    assert out.state.status == "failed" and "event.data.order_id is not defined" in out.state.error
    assert out.effects == []


def test_options_intents_keywords_and_times_pick_their_branch() -> None:
    flow = parse("""\
flow: pick
steps:
  - ask: "A or B?"
    expect:
      - {option: A, goto: a}
      - {option: B, goto: b}
      - {keyword: [home], goto: home}
      - {when: true, goto: when}
      - {intent: cancel, goto: cancel}
  - {id: a, send: A, next: fin}
  - {id: b, send: B, next: fin}
  - {id: home, send: HOME, next: fin}
  - {id: when, send: "WHEN {{ reply.when }}", next: fin}
  - {id: cancel, send: CANCEL}
  - {id: fin, end: done}
""")
    asked = start(flow).state
    for reply, expected in [
        ("a", "A"), ("B please", "B"), ("Nobody HOME today", "HOME"), ("cancel it", "CANCEL"),
        ("tomorrow at 5pm", "WHEN 2026-03-04T17:00:00-08:00"), ("la b", "B"),
    ]:
        assert texts(fi.advance(lib(flow), asked, fi.Reply(reply), CTX)) == [expected], reply


INPUTS = st.one_of(
    st.builds(fi.Reply, st.sampled_from(["1", "5", "2", "nah", "yes", "", "banana", "stop", "👍", "tomorrow 4pm"])),
    st.builds(fi.Timer, st.integers(0, 4), st.sampled_from(["remind", "timeout", "wake"])),
    st.builds(fi.CallResult, st.integers(0, 4), st.booleans()),
    st.just(fi.HandoffClosed()),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(INPUTS, max_size=12))
def test_any_sequence_of_inputs_keeps_a_valid_json_state(inputs: list[fi.Input]) -> None:
    out = start(SURVEY)
    for given_input in inputs:
        again = fi.advance(lib(SURVEY), out.state, given_input, CTX)
        assert fi.advance(lib(SURVEY), out.state, given_input, CTX).state == again.state  # deterministic
        out = again
        json.dumps(out.state.to_json())
        assert out.state.status in ("active", "done", "failed")
        assert (out.state.wait is None) == (out.state.status != "active")
        if out.state.status != "active":
            assert all(not isinstance(e, (fi.Schedule, fi.HttpCall)) for e in out.effects)


def test_a_question_behind_another_conversation_parks_then_asks_or_gives_up() -> None:
    busy = fi.Context(NOW, CTX.contact, CTX.timezone, conversation_free=False)
    parked = fi.advance(lib(SURVEY), RunState.start(SURVEY.name), fi.Start(), busy)
    assert texts(parked) == [] and parked.state.wait.kind == "turn"
    (limit,) = [e for e in parked.effects if isinstance(e, fi.Schedule)]
    assert limit.at - NOW == ask.TURN_LIMIT and limit.purpose == "timeout"
    assert fi.advance(lib(SURVEY), parked.state, fi.Reply("5"), CTX).effects == []  # not its answer to take
    asked = fi.advance(lib(SURVEY), parked.state, fi.Turn(), CTX)
    assert texts(asked) == ["Rate us 1 to 5"] and asked.state.wait.kind == "reply"
    dropped = fi.advance(lib(SURVEY), parked.state, fi.Timer(limit.seq, "timeout"), CTX)
    assert dropped.state.status == "done" and dropped.state.outcome == "no_turn"


def test_texts_before_a_parked_question_still_go_out() -> None:
    flow = parse("flow: p\nsteps:\n  - send: 'Your order shipped'\n  - ask: 'Rate it 1-5'\n    expect: [{any: true}]\n")
    busy = fi.Context(NOW, CTX.contact, CTX.timezone, conversation_free=False)
    out = fi.advance(lib(flow), RunState.start(flow.name), fi.Start(), busy)
    assert texts(out) == ["Your order shipped"] and out.state.wait.kind == "turn"


def test_offsets_are_elapsed_time_across_a_dst_change() -> None:
    # 2026-03-08 is the US spring-forward day: 24 h before 2026-03-09 10:00 EDT is 09:00 EST on the 8th.
    flow = parse('flow: w\nsteps:\n  - wait: {until: "{{ event.data.at }}", offset: -24h}\n  - send: now\n')
    ctx = fi.Context(datetime(2026, 3, 1, tzinfo=UTC), CTX.contact, "America/New_York")
    out = fi.advance(lib(flow), RunState.start(flow.name, {"data": {"at": "2026-03-09T10:00:00"}}), fi.Start(), ctx)
    (timer,) = [e for e in out.effects if isinstance(e, fi.Schedule)]
    assert timer.at == datetime(2026, 3, 8, 14, 0, tzinfo=UTC)  # 10:00 EDT = 14:00 UTC, minus 24 h


def test_typed_and_empty_values_in_set_and_call_bodies() -> None:
    flow = parse(
        "flow: v\nsteps:\n  - set: {vars.n: '{{ event.data.n }}', vars.note: \"{{ event.data.note | default('') }}\"}\n"
        "  - call: {url: 'https://x.example/', body: {n: '{{ vars.n }}', label: 'n={{ vars.n }}', note: '{{ vars.note }}'}}\n"
    )
    out = start(flow, event={"data": {"n": 3}})
    (call,) = [e for e in out.effects if isinstance(e, fi.HttpCall)]
    assert call.body == {"n": 3, "label": "n=3", "note": ""}


# --- what a run may keep (issue 21: a flow's vars grew tenfold per step) -----------------------

def test_vars_that_would_grow_past_their_limit_fail_the_run_and_are_not_kept() -> None:
    # Each value is within a template's limits; together they are not what a run may store.
    flow = parse(
        "flow: g\nsteps:\n  - set: {vars.a: \"{{ 'x' * 20000 }}\"}\n"
        "  - id: grow\n    set: {vars.b: '{{ [vars.a, vars.a, vars.a] }}'}\n  - send: never\n"
    )
    out = start(flow)
    assert out.state.status == "failed" and texts(out) == []
    assert out.state.error == "step 'grow': the run's vars would take more than 64 KiB as JSON"
    assert set(out.state.vars) == {"a"}
    json.dumps(out.state.to_json())


def test_a_set_step_keeps_all_its_values_or_none() -> None:
    flow = parse("flow: s\nsteps:\n  - set: {vars.ok: 1, contact.tier: gold, vars.big: \"{{ 'x' * 70000 }}\"}\n")
    out = start(flow)
    assert out.state.status == "failed" and "64 KiB" in out.state.error
    assert out.state.vars == {} and not [e for e in out.effects if isinstance(e, fi.UpdateContact)]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("contact.note: \"{{ 'x' * 17000 }}\"", "the contact's attributes would take more than 16 KiB as JSON"),
        ("contact.email: \"{{ 'x' * 320 }}@example.com\"", "a contact's email is a text of at most 320 characters"),
        ("contact.locale: '{{ 35 }}'", "a contact's locale is a text of at most 35 characters"),
    ],
)
def test_contact_fields_a_flow_sets_are_held_to_the_apis_limits(value: str, says: str) -> None:
    out = start(parse("flow: c\nsteps:\n  - id: set\n    set: {" + value + "}\n  - send: never\n"))
    assert out.state.status == "failed" and out.state.error == f"step 'set': {says}"
    assert out.effects == []


def test_a_call_answer_too_big_to_keep_fails_the_run() -> None:
    flow = parse("flow: c\nsteps:\n  - id: ask\n    call: {url: 'https://x.example/', save: {blob: 'blob'}}\n  - send: never\n")
    out = start(flow)
    seq = out.state.wait.seq
    failed = fi.advance(lib(flow), out.state, fi.CallResult(seq, True, {"blob": "x" * 70_000}), CTX)
    assert failed.state.status == "failed" and "64 KiB" in failed.state.error
    assert failed.state.vars == {}
    small = fi.advance(lib(flow), out.state, fi.CallResult(seq, True, {"blob": "x" * 60_000}), CTX)
    assert small.state.status == "done" and len(small.state.vars["blob"]) == 60_000
