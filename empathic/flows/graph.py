"""A flow as a graph: its steps as nodes, where each may go next as labelled edges, and a
layered layout to draw it (top to bottom, in the order a run goes).

Pure. The edges are the step kinds' own `successors` (`empathic.flows.steps`), labelled by
what takes that way where the kind says (an answer of an `ask`, a case of a `branch`, a
call's failure). A way out of the flow (past its last step, an `ask` with no `on_timeout`)
leads to one pseudo-node, `END`. Layers: the longest path from the first step, over the
edges that do not go back (a back-edge closes a loop: found by a depth-first walk from the
first step, in step order); within a layer, steps keep their file order.

And a run's way through it: `advance` is the interpreter's `advance` noting the steps it ran,
and `marks` says what an input did at each step it touched (passed, waited, timed out, handed
off, failed), which `engine.runs` counts for the flows page (`store.flow_steps`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from empathic.flows import interpreter, model, steps
from empathic.flows.state import RunState
from empathic.flows.steps.ask import Ask, Expect
from empathic.flows.steps.branch import Branch
from empathic.flows.steps.call import Call
from empathic.flows.steps.end import End
from empathic.flows.steps.flow import Subflow
from empathic.flows.steps.handoff import Handoff
from empathic.flows.steps.subscribe import Subscription
from empathic.flows.steps.wait import Wait

END = "(end)"  # the pseudo-node's id: the run leaves the flow (ends, or returns from a subflow)


@dataclass(frozen=True, slots=True)
class Node:
    index: int  # the step's index in the flow; len(steps) for END
    id: str
    kind: str  # the step's kind (`ask`, `send` …); "end of flow" for END
    detail: str  # what it does, in a few words (`ask` "Reply A or B", `flow` "runs 'menu'")
    line: int  # its line in the flow file (0 for END)
    layer: int
    column: int  # its place in its layer, from 0


@dataclass(frozen=True, slots=True)
class Edge:
    source: int  # node indexes
    target: int
    label: str  # what takes this way ("" when there is one way on)
    back: bool  # closes a loop: drawn against the layers' direction


@dataclass(frozen=True, slots=True)
class Graph:
    nodes: tuple[Node, ...]  # the steps in file order, then END if anything reaches it
    edges: tuple[Edge, ...]
    layers: int  # how many layers
    width: int  # the most nodes in one layer


def kind_of(step: model.Step) -> str:
    """The step's kind as its YAML key (`unsubscribe` for a subscription that leaves)."""
    action = step.action
    if isinstance(action, Subscription):
        return "subscribe" if action.subscribe else "unsubscribe"
    return steps.BY_ACTION[type(action)].keys[0]


def ways(step: model.Step) -> list[tuple[int | None, str]]:
    """Where the step may go next (None: out of the flow), each with what takes it there."""
    action = step.action
    if isinstance(action, Ask):
        found = [(e.goto if e.goto is not None else step.next, _expected(e)) for e in action.expect]
        if action.timeout is not None:
            found.append((action.on_timeout, "timeout"))
        if action.on_unclear is not None:
            found.append((action.on_unclear, "unclear"))
        return found
    if isinstance(action, Branch):
        return [(goto, f"if {condition.source}") for condition, goto in action.cases] + [
            (action.otherwise if action.otherwise is not None else step.next, "else")
        ]
    if isinstance(action, Call):
        return [(step.next, "ok")] + ([(action.on_failure, "failed")] if action.on_failure is not None else [])
    if isinstance(action, Handoff):
        return [(step.next, "thread closed")] if action.resume else []
    return [(target, "") for target in steps.BY_ACTION[type(action)].successors(step)]


def detail(step: model.Step, limit: int = 40) -> str:
    """A few words on what the step does: its text's start, the subflow, the outcome …"""
    action = step.action
    text = ""
    if isinstance(action, Subflow):
        text = f"runs {action.name!r}"
    elif isinstance(action, End):
        text = action.outcome
    elif isinstance(action, Subscription):
        text = action.topic
    elif isinstance(action, Wait):
        text = f"for {action.duration}" if action.duration is not None else "until a time"
    elif isinstance(action, Call):
        text = f"{action.method} {action.url.source}"
    elif isinstance(action, Handoff):
        text = "then resume" if action.resume else "then end"
    elif action.messages:
        message = action.messages[0]
        text = message.template.source if message.template is not None else f"template {message.template_name}"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def layout(flow: model.Flow) -> Graph:
    count = len(flow.steps)
    out: dict[int, dict[int, list[str]]] = {}  # source -> target -> labels, in order
    for i, step in enumerate(flow.steps):
        targets = out.setdefault(i, {})
        for target, label in ways(step):
            labels = targets.setdefault(count if target is None else target, [])
            if label not in labels:
                labels.append(label)
    reached_end = any(count in targets for targets in out.values())
    size = count + (1 if reached_end else 0)
    back = _back_edges(size, {s: list(t) for s, t in out.items()})
    layer = _layers(size, {s: [t for t in ts if (s, t) not in back] for s, ts in out.items()})
    if reached_end:  # the way out is drawn below everything
        layer[count] = max(layer[:count], default=-1) + 1
    columns: dict[int, int] = {}
    column = [0] * size
    for i in range(size):
        column[i] = columns.get(layer[i], 0)
        columns[layer[i]] = column[i] + 1
    nodes = [
        Node(i, s.id, kind_of(s), detail(s), s.line, layer[i], column[i]) for i, s in enumerate(flow.steps)
    ]
    if reached_end:
        nodes.append(Node(count, END, "end of flow", "", 0, layer[count], column[count]))
    edges = tuple(
        Edge(s, t, ", ".join(label for label in labels if label), (s, t) in back)
        for s, targets in out.items() for t, labels in targets.items()
    )
    return Graph(tuple(nodes), edges, max(layer, default=-1) + 1, max(columns.values(), default=0))


def _expected(expect: Expect) -> str:
    if expect.kind == "number":
        low = "" if expect.low is None else f"{expect.low:g}"
        high = "" if expect.high is None else f"{expect.high:g}"
        return f"number {low}–{high}" if low or high else "a number"
    if expect.kind == "when":
        return "a time"
    if expect.kind == "any":
        return "any answer"
    return f"{expect.kind} {' / '.join(expect.values)}"


def _back_edges(size: int, out: dict[int, list[int]]) -> set[tuple[int, int]]:
    """Edges into a step still being walked (depth first from the first step, then from any
    step not reached yet, in order): without them the graph has no cycle."""
    state = [0] * size  # 0 unseen, 1 on the path, 2 done
    back: set[tuple[int, int]] = set()
    for root in range(size):
        if state[root]:
            continue
        state[root] = 1
        stack: list[tuple[int, Sequence[int], int]] = [(root, out.get(root, []), 0)]
        while stack:
            node, targets, at = stack[-1]
            if at == len(targets):
                state[node] = 2
                stack.pop()
                continue
            stack[-1] = (node, targets, at + 1)
            target = targets[at]
            if state[target] == 1:
                back.add((node, target))
            elif state[target] == 0:
                state[target] = 1
                stack.append((target, out.get(target, []), 0))
    return back


def _layers(size: int, forward: dict[int, list[int]]) -> list[int]:
    """The longest path to each node over the forward (acyclic) edges (Kahn's order)."""
    incoming = [0] * size
    for targets in forward.values():
        for t in targets:
            incoming[t] += 1
    layer = [0] * size
    ready = [i for i in range(size) if incoming[i] == 0]
    while ready:
        node = ready.pop()
        for t in forward.get(node, []):
            layer[t] = max(layer[t], layer[node] + 1)
            incoming[t] -= 1
            if incoming[t] == 0:
                ready.append(t)
    return layer


# -- a run's way through the graph ------------------------------------------------------------

StepOutcome = Literal["passed", "waited", "timed_out", "handed_off", "failed"]
STEP_OUTCOMES: tuple[StepOutcome, ...] = ("passed", "waited", "timed_out", "handed_off", "failed")


@dataclass(frozen=True, slots=True)
class Mark:
    """What one input did at one step: the flow's version key, the step's index and id."""

    flow: str
    step: int
    step_id: str
    outcome: StepOutcome


def marks(
    library: interpreter.Library, before: RunState, given: interpreter.Input, after: RunState,
    ran: Sequence[tuple[str, int]],
) -> list[Mark]:
    """What an input did at each step it touched (docs/web.md, "Flows"):

    passed      the run went on from the step: a step that does not wait, once run (an `end:`
                too); a step that waited, when what it waited for came (an answer taken, the
                timer, the call's answer, the hand-off's thread closed);
    waited      the run stopped at the step for an answer, a timer or a call's answer (a
                question parked behind another conversation counts when it is asked);
    timed_out   the step's wait ran out: an `ask`'s `timeout`, or a parked question's 24 h;
    handed_off  the step gave the conversation to a person: a `handoff`, or an `ask` whose
                answers stayed unclear with no `on_unclear`;
    failed      the run failed at the step.

    Reminders and questions asked again change nothing; runs ended from outside (cancelled,
    opted out, interrupted) mark nothing."""
    found: list[Mark] = []

    def mark(key: str, index: int, outcome: StepOutcome) -> None:
        found.append(Mark(key, index, library.flow(key).steps[index].id, outcome))

    wait = before.wait
    if wait is not None and (after.wait is None or after.wait.seq != wait.seq):  # it left that wait
        key = before.frames[-1].flow
        if isinstance(given, interpreter.Timer) and given.purpose == "timeout":
            mark(key, wait.step, "timed_out")
        elif wait.kind == "turn":
            pass  # the parked question runs again: it is in `ran`
        elif not ran and after.status == "done" and after.outcome == "unclear":
            mark(key, wait.step, "handed_off")
        elif not ran and after.status == "failed":
            mark(key, wait.step, "failed")
        else:
            mark(key, wait.step, "passed")
    for n, (key, index) in enumerate(ran):
        if n < len(ran) - 1:
            mark(key, index, "passed")
        elif after.status == "failed":
            mark(key, index, "failed")
        elif after.wait is not None and after.wait.step == index and after.frames[-1].flow == key:
            if after.wait.kind == "handoff":
                mark(key, index, "handed_off")
            elif after.wait.kind != "turn":
                mark(key, index, "waited")
        else:
            mark(key, index, "passed")
    return found
