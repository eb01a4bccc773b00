"""`handoff`: give the conversation to a person (an inbox thread); end, or go on when it closes.

    - handoff: {note: "Low score {{ vars.score.number }}", then: resume}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from empathic.flows import model
from empathic.flows.model import JsonValue
from empathic.flows.steps.base import Builder, Running, StepKind, Where


def parse(b: Builder, raw: Mapping[str, JsonValue], where: Where) -> model.Handoff:
    h = raw["handoff"] or {}
    note = b.template((*where, "handoff", "note"), h["note"]) if "note" in h else None
    return model.Handoff(note, h.get("then", "end") == "resume")


def execute(run: Running, step: model.Step) -> None:
    handoff = step.action
    assert isinstance(handoff, model.Handoff)
    note = run.render(handoff.note) if handoff.note else f"Handed over by the flow {run.flow().name!r}."
    run.open_handoff(note)
    run.wait("handoff", resume=handoff.resume)


def successors(step: model.Step) -> Sequence[int | None]:
    handoff = step.action
    assert isinstance(handoff, model.Handoff)
    return [step.next] if handoff.resume else []


KIND = StepKind(("handoff",), model.Handoff, parse, execute, successors)
