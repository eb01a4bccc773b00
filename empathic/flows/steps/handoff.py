"""`handoff`: give the conversation to a person (an inbox thread); end, or go on when it closes.

    - handoff: {note: "Low score {{ vars.score.number }}", then: resume}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from empathic.core.json import Json
from empathic.core.templates import Template
from empathic.flows import model
from empathic.flows.model import JsonValue
from empathic.flows.steps.base import TEXT, Builder, Running, StepKind, Where

SCHEMA: Json = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"note": TEXT, "then": {"enum": ["end", "resume"]}},
}


@dataclass(frozen=True)
class Handoff(model.Action):
    holds_conversation: ClassVar[bool] = True

    note: Template | None
    resume: bool


def parse(b: Builder, raw: Mapping[str, JsonValue], where: Where) -> Handoff:
    h = raw["handoff"] or {}
    note = b.template((*where, "handoff", "note"), h["note"]) if "note" in h else None
    return Handoff(note, h.get("then", "end") == "resume")


def execute(run: Running, step: model.Step) -> None:
    handoff = step.action
    assert isinstance(handoff, Handoff)
    note = run.render(handoff.note) if handoff.note else f"Handed over by the flow {run.flow().name!r}."
    run.open_handoff(note)
    run.wait("handoff", resume=handoff.resume)


def successors(step: model.Step) -> Sequence[int | None]:
    handoff = step.action
    assert isinstance(handoff, Handoff)
    return [step.next] if handoff.resume else []


KIND = StepKind(("handoff",), SCHEMA, Handoff, parse, execute, successors)
