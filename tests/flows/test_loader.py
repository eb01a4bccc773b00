"""Flow files: the format's checks, with lines, and the YAML 1.2 reading of scalars."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from empathic.flows import loader, model
from empathic.flows.schema import FLOW_SCHEMA
from empathic.flows.steps.ask import Ask

REPO = Path(__file__).resolve().parents[2]
GOOD = """\
flow: demo
trigger: {event: demo.happened, keyword: [MENU]}
steps:
  - id: ask
    ask: "Reply 1 or 2"
    expect:
      - option: ["1"]
        goto: one
      - keyword: [no, yes]
    timeout: 2h
    reminders: {after: 30m, count: 2}
    on_timeout: bye
  - send: "two"
    next: bye
  - id: one
    send: "one {{ vars.x | default('') }}"
  - id: bye
    end: done
"""


def problems(text: str, known: loader.Known | None = None) -> list[str]:
    with pytest.raises(loader.FlowError) as caught:
        loader.parse(text, file="f.yaml", known=known)
    return [str(p) for p in caught.value.problems]


def test_a_good_flow_is_built_with_targets_resolved() -> None:
    flow = loader.parse(GOOD)
    assert flow.name == "demo" and flow.events == ("demo.happened",) and flow.keywords == ("MENU",)
    ask = flow.steps[0].action
    assert isinstance(ask, Ask)
    assert ask.expect[0].goto == 2 and ask.expect[1].values == ("no", "yes")  # words, not booleans
    assert ask.timeout == timedelta(hours=2) and ask.reminders is not None and ask.reminders.count == 2
    assert ask.on_timeout == 3 and flow.steps[1].next == 3 and flow.steps[3].next is None
    assert flow.conversational


def test_yaml_is_read_the_1_2_way() -> None:
    data, lines = loader.read_yaml("a: yes\nb: no\nc: 09:00\nd: on\ne: true\nf: 12\ng: 1.5\n")
    assert data == {"a": "yes", "b": "no", "c": "09:00", "d": "on", "e": True, "f": 12, "g": 1.5}
    assert lines[("c",)] == 3


def test_problems_name_the_line_and_the_place() -> None:
    found = problems(
        "flow: Bad Name\nsteps:\n  - send: hi\n    tiemout: 2h\n  - wait: {for: 2 hours}\n  - send: a\n    ask: b\n"
        "  - end: done\n    timeout: 1h\n"
    )
    assert found[0].startswith("f.yaml:1: flow: 'Bad Name'")
    assert "f.yaml:4: steps[0].tiemout: unknown key 'tiemout' (did you mean 'timeout'?)" in found
    assert any(p.startswith("f.yaml:5: steps[1].wait.for: '2 hours' is not valid: a duration") for p in found)
    assert "f.yaml:6: steps[2]: a step has one action; this one has send and ask (split it into steps)" in found
    assert "f.yaml:9: steps[3].timeout: 'timeout' belongs to an `ask` step, not `end`" in found


def test_references_are_checked() -> None:
    text = (
        "flow: demo\ntopic: dealz\nsteps:\n  - send: 'hi {{ customer.name }}'\n    next: nowhere\n"
        "  - send: {template: missing}\n  - branch:\n      - if: 'vars.a >'\n        goto: x\n"
    )
    found = problems(text, loader.Known(topics=frozenset({"deals"}), templates=frozenset({"welcome"})))
    assert "f.yaml:2: topic: unknown topic 'dealz' (did you mean 'deals'?)" in found
    assert any("steps[0].send: uses unknown variable 'customer'" in p for p in found)
    assert "f.yaml:5: steps[0].next: no step with id 'nowhere'" in found
    assert "f.yaml:6: steps[1].send.template: no template 'missing' in the project" in found
    assert any(p.startswith("f.yaml:8: steps[2].branch[0].if: syntax error") for p in found)


def test_unreachable_steps_duplicate_ids_and_compliance_keywords() -> None:
    found = problems(
        "flow: demo\ntrigger: {keyword: STOP}\nsteps:\n  - id: a\n    end: done\n  - id: a\n    send: never\n"
    )
    assert any("steps[1].id: step id 'a' is used twice" in p for p in found)
    assert any("steps[1]: step '" in p and "can never be reached" in p for p in found)
    assert any("trigger.keyword: 'STOP' is a compliance keyword" in p for p in found)


def test_reminders_must_fit_before_the_timeout() -> None:
    found = problems("flow: d\nsteps:\n  - ask: q\n    expect: [{any: true}]\n    timeout: 1h\n    reminders: {after: 30m, count: 2}\n")
    assert any("do not fit before the timeout" in p for p in found)


def test_a_flow_set_finds_missing_subflows_cycles_and_shared_keywords() -> None:
    a = loader.parse("flow: a\ntrigger: {keyword: GO}\nsteps:\n  - flow: b\n")
    b = loader.parse("flow: b\ntrigger: {keyword: go}\nsteps:\n  - flow: a\n")
    c = loader.parse("flow: c\nsteps:\n  - flow: nope\n")
    found = [p.message for p in loader.FlowSet({"a": a, "b": b, "c": c}).check()]
    assert "runs subflow 'nope', which does not exist" in found
    assert "'GO' already starts flow 'a'" in found
    assert found.count("its subflows run in a cycle") == 2


def test_bad_yaml_is_a_problem_with_a_line() -> None:
    found = problems("flow: a\nsteps:\n  - send: [unclosed\n")
    assert found[0].startswith("f.yaml:") and "not valid YAML" in found[0]


@given(st.lists(st.tuples(st.integers(0, 999), st.sampled_from("dhms")), min_size=1, max_size=4), st.booleans())
def test_durations_read_back(parts: list[tuple[int, str]], negative: bool) -> None:
    text = ("-" if negative else "") + "".join(f"{n}{u}" for n, u in parts)
    seconds = sum(n * {"d": 86400, "h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
    assert model.parse_duration(text) == timedelta(seconds=-seconds if negative else seconds)


@given(st.text(max_size=12))
def test_anything_else_is_not_a_duration(text: str) -> None:
    try:
        value = model.parse_duration(text)
    except ValueError:
        return
    assert isinstance(value, timedelta) and any(u in text for u in "dhms")


def test_every_shipped_flow_validates_against_the_published_schema() -> None:
    validator = jsonschema.Draft202012Validator(FLOW_SCHEMA)
    validator.check_schema(FLOW_SCHEMA)
    files = sorted((REPO / "empathic" / "examples").glob("*/flows/*.yaml"))
    files = [f for f in files if not f.name.endswith(".test.yaml")]
    assert files
    for path in files:
        data, _ = loader.read_yaml(path.read_text())
        assert list(validator.iter_errors(data)) == [], path


def test_the_published_schema_file_is_current() -> None:
    assert json.loads((REPO / "docs" / "flow.schema.json").read_text()) == FLOW_SCHEMA


def test_the_schema_rejects_what_the_loader_rejects() -> None:
    validator = jsonschema.Draft202012Validator(FLOW_SCHEMA)
    for bad in (
        {"flow": "a", "steps": [{"send": "x", "ask": "y"}]},
        {"flow": "a", "steps": [{"end": "done", "timeout": "1h"}]},
        {"flow": "a", "steps": [{"ask": "q"}]},
        {"flow": "a", "steps": []},
        {"flow": "a", "steps": [{"wait": {"for": "1h", "until": "x"}}]},
    ):
        assert list(validator.iter_errors(bad)), bad


def test_send_chooses_a_channel_and_email_needs_a_subject() -> None:
    flow = loader.parse(
        "flow: note\nsteps:\n"
        "  - send: {text: 'Order {{ event.data.id }} shipped', channel: both, subject: 'Order {{ event.data.id }}',"
        " html: '<p>Order {{ event.data.id }}</p>'}\n"
    )
    message = flow.steps[0].action.message
    assert message.channel == "both" and message.subject is not None and message.html is not None
    wrong = {
        "  - send: {text: hi, channel: email}\n": "`channel: email` needs a `subject`",
        "  - send: {text: hi, subject: Hello}\n": "`subject` is for email: add `channel: email`",
        "  - send: {text: hi, channel: fax}\n": "fax",
        "  - ask: {text: hi, channel: email, subject: s}\n    expect: [{any: true}]\n": "only `send` chooses a channel",
    }
    for step, expected in wrong.items():
        found = problems("flow: note\nsteps:\n" + step)
        assert any(expected in p for p in found), (step, found)
