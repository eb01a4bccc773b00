"""`flow`: run another flow (its current version) here, then come back to the next step.

    - flow: ask-demo

The loader's `FlowSet` checks that subflows exist, nest at most 5 deep and run in no cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from empathic.core.json import Json
from empathic.flows import model
from empathic.flows.model import JsonValue
from empathic.flows.steps.base import NAME, Builder, Running, StepKind, Where

SCHEMA: Json = {**NAME, "description": "Run another flow here, then go on."}


@dataclass(frozen=True)
class Subflow(model.Action):
    name: str


def parse(b: Builder, raw: Mapping[str, JsonValue], where: Where) -> Subflow:
    if raw["flow"] == b.flow_name:
        b.problem((*where, "flow"), "a flow cannot run itself as a subflow")
    return Subflow(raw["flow"])


def execute(run: Running, step: model.Step) -> None:
    subflow = step.action
    assert isinstance(subflow, Subflow)
    run.enter(subflow.name)


KIND = StepKind(("flow",), SCHEMA, Subflow, parse, execute)
