"""`branch`: the first case whose condition holds says where to go; `else`, or the next step.

    - branch:
        - if: "vars.score.number <= 2"
          goto: sorry
        - else: thanks
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from empathic.core.templates import Condition, TemplateError
from empathic.flows import model
from empathic.flows.model import JsonValue
from empathic.flows.steps.base import Builder, Running, StepFailed, StepKind, Where


def parse(b: Builder, raw: Mapping[str, JsonValue], where: Where) -> model.Branch:
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
    return model.Branch(tuple(cases), otherwise)


def execute(run: Running, step: model.Step) -> None:
    branch = step.action
    assert isinstance(branch, model.Branch)
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
    assert isinstance(branch, model.Branch)
    return [g for _, g in branch.cases] + [branch.otherwise if branch.otherwise is not None else step.next]


KIND = StepKind(("branch",), model.Branch, parse, execute, successors)
