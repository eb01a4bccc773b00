"""A flow as a graph (flows/graph.py): nodes, labelled edges, layers; and the marks a run's
inputs leave at each step (passed, waited, timed out, handed off, failed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from empathic.core.templates import compile_condition, compile_template
from empathic.flows import graph, interpreter, loader, model
from empathic.flows.state import RunState
from empathic.flows.steps.ask import Ask, Expect
from empathic.flows.steps.branch import Branch
from empathic.flows.steps.end import End
from empathic.flows.steps.send import Send

ACME = Path(__file__).parents[2] / "empathic" / "examples" / "acme" / "flows"
NOW = datetime(2026, 3, 3, 10, tzinfo=UTC)


def shipped() -> list[model.Flow]:
    return [loader.parse(p.read_text()) for p in sorted(ACME.glob("*.yaml")) if not p.name.endswith(".test.yaml")]


def check(flow: model.Flow, g: graph.Graph) -> None:
    count = len(flow.steps)
    assert [n.index for n in g.nodes[:count]] == list(range(count))  # every step once, in file order
    assert [n.id for n in g.nodes[:count]] == [s.id for s in flow.steps]
    assert len(g.nodes) in (count, count + 1) and all(n.id == graph.END for n in g.nodes[count:])
    indexes = {n.index for n in g.nodes}
    layer = {n.index: n.layer for n in g.nodes}
    assert len({(n.layer, n.column) for n in g.nodes}) == len(g.nodes)  # no two in one place
    assert g.layers == max(layer.values()) + 1 and g.width == max(n.column for n in g.nodes) + 1
    for e in g.edges:
        assert e.source in indexes and e.target in indexes
        if e.back:
            assert layer[e.target] <= layer[e.source]
        else:
            assert layer[e.target] > layer[e.source]
    for i, step in enumerate(flow.steps):  # every way a step may go is an edge
        for target, _ in graph.ways(step):
            want = count if target is None else target
            assert any(e.source == i and e.target == want for e in g.edges)
    forward = {(e.source, e.target) for e in g.edges if not e.back}
    assert not _cycle(len(g.nodes), forward)


def _cycle(size: int, edges: set[tuple[int, int]]) -> bool:
    incoming = {i: 0 for i in range(size)}
    for _, t in edges:
        incoming[t] += 1
    ready = [i for i, n in incoming.items() if n == 0]
    seen = 0
    while ready:
        node = ready.pop()
        seen += 1
        for s, t in edges:
            if s == node:
                incoming[t] -= 1
                if incoming[t] == 0:
                    ready.append(t)
    return seen != size


def test_every_shipped_flow_is_laid_out() -> None:
    flows = shipped()
    assert len(flows) >= 10
    for flow in flows:
        check(flow, graph.layout(flow))


def test_edges_say_what_takes_each_way() -> None:
    flow = loader.parse((ACME / "appointment-reminder.yaml").read_text())
    g = graph.layout(flow)
    ids = {n.index: n.id for n in g.nodes}
    labels = {(ids[e.source], ids[e.target]): e.label for e in g.edges}
    assert labels[("ask", "confirmed")] == "option A, intent confirm"  # two answers, one way: one edge
    assert labels[("ask", "no-answer")] == "timeout"
    assert labels[("proposed", "handoff")] == "failed" and labels[("proposed", "6")] == "ok"
    assert labels[("6", "rescheduled")] == "if vars.accepted" and labels[("6", "handoff")] == "else"
    assert labels[("when", graph.END)] == "timeout"  # no on_timeout: the run leaves the flow
    kinds = {n.id: (n.kind, n.line) for n in g.nodes}
    assert kinds["ask"] == ("ask", 12) and kinds["handoff"][0] == "handoff" and kinds[graph.END] == ("end of flow", 0)


def test_a_loop_back_is_a_back_edge() -> None:
    flow = loader.parse(
        "flow: again\nsteps:\n"
        "  - {id: q, ask: 'Pick A or B', expect: [{option: A, goto: q2}, {option: B}]}\n"
        "  - {id: b, send: 'B it is', next: q}\n"
        "  - {id: q2, send: done}\n"
    )
    g = graph.layout(flow)
    (back,) = [e for e in g.edges if e.back]
    assert (back.source, back.target) == (1, 0)
    check(flow, g)


# -- random flows ------------------------------------------------------------------------------

KINDS = st.sampled_from(["send", "branch", "ask", "end"])


@st.composite
def flows(draw: st.DrawFn) -> model.Flow:
    count = draw(st.integers(1, 12))
    target = st.one_of(st.none(), st.integers(0, count - 1))
    made = []
    for i in range(count):
        kind = draw(KINDS)
        nxt = draw(target)
        action: model.Action
        if kind == "send":
            action = Send(model.Message(None, "t"))
        elif kind == "branch":
            cases = tuple((compile_condition("c", "true"), draw(st.integers(0, count - 1))) for _ in range(draw(st.integers(1, 3))))
            action = Branch(cases, draw(target))
        elif kind == "ask":
            expects = tuple(Expect("option", (chr(65 + j),), goto=draw(target)) for j in range(draw(st.integers(1, 3))))
            timeout = draw(st.booleans())
            action = Ask(model.Message(None, "t"), expects, timeout=timedelta(hours=1) if timeout else None,
                         on_timeout=draw(target) if timeout else None, on_unclear=draw(target))
        else:
            action = End("done")
        made.append(model.Step(f"s{i}", action, nxt, line=i + 3))
    return model.Flow("random", tuple(made))


@settings(max_examples=200, deadline=None)
@given(flows())
def test_any_flow_is_laid_out_with_every_step_once_and_layers_that_follow_the_edges(flow: model.Flow) -> None:
    check(flow, graph.layout(flow))


# -- marks: what each input did at each step --------------------------------------------------

SURVEY = loader.parse((ACME / "post-purchase-survey.yaml").read_text())
LIBRARY = interpreter.StaticLibrary({SURVEY.name: SURVEY})
CONTEXT = interpreter.Context(now=NOW, contact={"phone": "+14155550100", "attributes": {}})


def step(state: RunState, given: interpreter.Input) -> tuple[RunState, list[tuple[str, str]]]:
    outcome = interpreter.advance(LIBRARY, state, given, CONTEXT)
    ran = outcome.ran
    marks = graph.marks(LIBRARY, state, given, outcome.state, ran)
    return outcome.state, [(m.step_id, m.outcome) for m in marks]


def test_marks_follow_a_run_through_its_steps() -> None:
    state, marks = step(RunState.start(SURVEY.name, {"id": "e1", "type": "x", "data": {"order_id": "A"}}, {}), interpreter.Start())
    assert marks == [("score", "waited")]
    again, marks = step(state, interpreter.Reply("what?"))
    assert marks == []  # asked again: the same wait
    state, marks = step(again, interpreter.Reply("2"))
    assert marks == [("score", "passed"), ("2", "passed"), ("comment", "waited")]
    stale, marks = step(state, interpreter.Timer(state.wait.seq - 1 if state.wait else 0, "timeout"))
    assert marks == [] and stale == state
    done, marks = step(state, interpreter.Reply("crushed box"))
    assert marks == [("comment", "passed"), ("4", "passed"), ("evaluate", "passed"), ("unhappy", "passed"), ("11", "handed_off")]
    _, marks = step(done, interpreter.HandoffClosed())
    assert marks == [("11", "passed")]


def test_marks_of_a_timeout_and_of_an_unclear_answer() -> None:
    start = RunState.start(SURVEY.name, {"id": "e1", "type": "x", "data": {"order_id": "A"}}, {})
    state, _ = step(start, interpreter.Start())
    assert state.wait is not None
    _, marks = step(state, interpreter.Timer(state.wait.seq, "timeout"))
    assert marks == [("score", "timed_out"), ("no-answer", "passed")]
    question = model.Message(compile_template("q", "A or B?"))
    bare = model.Flow("bare", (model.Step("q", Ask(question, (Expect("option", ("A",)),), retries=0), None, 3),))
    library = interpreter.StaticLibrary({"bare": bare})
    first = interpreter.advance(library, RunState.start("bare", None, None), interpreter.Start(), CONTEXT)
    outcome = interpreter.advance(library, first.state, interpreter.Reply("no idea"), CONTEXT)
    ran = outcome.ran
    assert outcome.state.outcome == "unclear"
    assert [(m.step_id, m.outcome) for m in graph.marks(library, first.state, interpreter.Reply("no idea"), outcome.state, ran)] == [("q", "handed_off")]


def test_a_parked_question_counts_a_wait_once_it_is_asked_and_a_subflows_steps_count_as_its_own() -> None:
    sub = loader.parse("flow: sub\nsteps:\n  - {id: hello, send: hi}\n")
    top = loader.parse(
        "flow: top\nsteps:\n  - {id: intro, flow: sub}\n"
        "  - {id: q, ask: 'A?', expect: [{option: A}]}\n"
    )
    library = interpreter.StaticLibrary({"sub": sub, "top": top})
    busy = interpreter.Context(now=NOW, contact={"phone": "+14155550100"}, conversation_free=False)
    outcome = interpreter.advance(library, RunState.start("top"), interpreter.Start(), busy)
    ran = outcome.ran
    marks = graph.marks(library, RunState.start("top"), interpreter.Start(), outcome.state, ran)
    assert [(m.flow, m.step_id, m.outcome) for m in marks] == [("top", "intro", "passed"), ("sub", "hello", "passed")]
    assert outcome.state.wait is not None and outcome.state.wait.kind == "turn"  # parked: no count yet
    asked = interpreter.advance(library, outcome.state, interpreter.Turn(), CONTEXT)
    ran = asked.ran
    assert [(m.step_id, m.outcome) for m in graph.marks(library, outcome.state, interpreter.Turn(), asked.state, ran)] == [("q", "waited")]
    assert outcome.state.wait is not None
    timer = interpreter.Timer(outcome.state.wait.seq, "timeout")
    dropped = interpreter.advance(library, outcome.state, timer, busy)
    ran = dropped.ran
    assert dropped.state.outcome == "no_turn"
    assert [(m.step_id, m.outcome) for m in graph.marks(library, outcome.state, timer, dropped.state, ran)] == [("q", "timed_out")]
