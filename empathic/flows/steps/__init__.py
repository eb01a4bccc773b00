"""Step kinds, one module each: its JSON Schema fragment, its model record, how its YAML becomes
that record (with its problems), how it runs, and where it may go next. `KINDS` is in the order
the docs and the schema (`empathic.flows.schema`, built from it) list them.

A new kind is a module here (its `KIND`), its tests and its example in docs/flows.md ("Adding a
step kind").
"""

from __future__ import annotations

from empathic.flows.model import Action
from empathic.flows.steps import ask, branch, call, end, flow, handoff, send, subscribe, wait
from empathic.flows.steps import set as set_fields
from empathic.flows.steps.base import StepKind

KINDS: tuple[StepKind, ...] = (
    send.KIND, ask.KIND, branch.KIND, call.KIND, wait.KIND, set_fields.KIND, subscribe.KIND, handoff.KIND, flow.KIND,
    end.KIND,
)
BY_KEY: dict[str, StepKind] = {key: kind for kind in KINDS for key in kind.keys}
BY_ACTION: dict[type[Action], StepKind] = {kind.action: kind for kind in KINDS}
