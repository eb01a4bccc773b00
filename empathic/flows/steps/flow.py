"""`flow`: run another flow (its current version) here, then come back to the next step.

    - flow: ask-demo

The loader's `FlowSet` checks that subflows exist, nest at most 5 deep and run in no cycle.
"""

from __future__ import annotations

from collections.abc import Mapping

from empathic.flows import model
from empathic.flows.model import JsonValue
from empathic.flows.steps.base import Builder, Running, StepKind, Where


def parse(b: Builder, raw: Mapping[str, JsonValue], where: Where) -> model.Subflow:
    if raw["flow"] == b.flow_name:
        b.problem((*where, "flow"), "a flow cannot run itself as a subflow")
    return model.Subflow(raw["flow"])


def execute(run: Running, step: model.Step) -> None:
    subflow = step.action
    assert isinstance(subflow, model.Subflow)
    run.enter(subflow.name)


KIND = StepKind(("flow",), model.Subflow, parse, execute)
