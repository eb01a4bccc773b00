"""`branch`: the first case whose condition holds says where to go; `else`, or the next step.

    - branch:
        - if: "vars.score.number <= 2"
          goto: sorry
        - else: thanks
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from empathic.core.json import Json
from empathic.core.templates import Condition, TemplateError
from empathic.flows import model
from empathic.flows.model import JsonValue
from empathic.flows.steps.base import STEP_ID, Builder, Running, StepFailed, StepKind, Where

SCHEMA: Json = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"if": {"type": "string", "minLength": 1}, "goto": STEP_ID, "else": STEP_ID},
        "oneOf": [{"required": ["if", "goto"], "not": {"required": ["else"]}}, {"required": ["else"], "maxProperties": 1}],
    },
    "description": "Conditions (Jinja expressions) in order; the first true one's goto, else `else`, else the next step.",
}


@dataclass(frozen=True)
class Branch(model.Action):
    cases: tuple[tuple[Condition, int], ...]
    otherwise: int | None


def parse(b: Builder, raw: Mapping[str, JsonValue], where: Where) -> Branch:
    cases: list[tuple[Condition, int]] = []
    otherwise = None
    for j, case in enumerate(raw["branch"]):
        cp = (*where, "branch", j)
        if "else" in case:
            if j != len(raw["branch"]) - 1:
                b.problem(cp, "`else` must be the last case of a branch")
            otherwise = b.target((*cp, "else"), case["else"])
            continue
        condition = b.condition((*cp, "if"), case["if"], named=cp)
        if condition is None:
            continue
        goto = b.target((*cp, "goto"), case["goto"])
        if goto is not None:
            cases.append((condition, goto))
    return Branch(tuple(cases), otherwise)


def execute(run: Running, step: model.Step) -> None:
    branch = step.action
    assert isinstance(branch, Branch)
    for condition, goto in branch.cases:
        try:
            if condition.holds(**run.scope()):
                run.goto(goto)
                return
        except TemplateError as exc:
            raise StepFailed(f"step {step.id!r}: {exc.detail}") from None
    run.goto(branch.otherwise if branch.otherwise is not None else step.next)


def successors(step: model.Step) -> Sequence[int | None]:
    branch = step.action
    assert isinstance(branch, Branch)
    return [g for _, g in branch.cases] + [branch.otherwise if branch.otherwise is not None else step.next]


KIND = StepKind(("branch",), SCHEMA, Branch, parse, execute, successors)
