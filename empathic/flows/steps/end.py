"""`end`: the run ends here with an outcome (in the run and its `flow.run.ended` webhook).

    - end: confirmed
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from empathic.core.json import Json
from empathic.flows import model
from empathic.flows.model import JsonValue
from empathic.flows.steps.base import Builder, Running, StepKind, Where

SCHEMA: Json = {"type": "string", "pattern": r"^[a-z0-9_]{1,40}$", "description": "The run's outcome label."}


@dataclass(frozen=True)
class End(model.Action):
    outcome: str


def parse(b: Builder, raw: Mapping[str, JsonValue], where: Where) -> End:
    return End(raw["end"])


def execute(run: Running, step: model.Step) -> None:
    end = step.action
    assert isinstance(end, End)
    run.finish(end.outcome)


def successors(step: model.Step) -> Sequence[int | None]:
    return []


KIND = StepKind(("end",), SCHEMA, End, parse, execute, successors)
