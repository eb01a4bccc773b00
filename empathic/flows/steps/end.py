"""`end`: the run ends here with an outcome (in the run and its `flow.run.ended` webhook).

    - end: confirmed
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from empathic.flows import model
from empathic.flows.model import JsonValue
from empathic.flows.steps.base import Builder, Running, StepKind, Where


def parse(b: Builder, raw: Mapping[str, JsonValue], where: Where) -> model.End:
    return model.End(raw["end"])


def execute(run: Running, step: model.Step) -> None:
    end = step.action
    assert isinstance(end, model.End)
    run.finish(end.outcome)


def successors(step: model.Step) -> Sequence[int | None]:
    return []


KIND = StepKind(("end",), model.End, parse, execute, successors)
