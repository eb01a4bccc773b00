"""`call`: an HTTP request to the business's system; wait for its answer, keep parts of it.

    - call:
        url: "https://shop.example/api/orders/{{ event.data.order_id }}"
        save: {total: order.total}
        on_failure: sorry

The answer comes back through the interpreter (`CallResult`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from empathic.core.json import Json
from empathic.core.templates import Condition, Template
from empathic.flows import model
from empathic.flows.model import JsonValue
from empathic.flows.steps.base import DURATION, STEP_ID, Builder, Running, StepKind, Where

SCHEMA: Json = {
    "type": "object",
    "additionalProperties": False,
    "required": ["url"],
    "properties": {
        "url": {"type": "string", "pattern": r"^(https?://|\{\{)"},
        "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE"]},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "body": {"description": "JSON sent; strings in it are Jinja."},
        "save": {
            "type": "object",
            "additionalProperties": {"type": "string", "pattern": r"^[A-Za-z0-9_.\[\]-]+$"},
            "description": "vars name -> dotted path in the JSON answer.",
        },
        "retries": {"type": "integer", "minimum": 0, "maximum": 10},
        "timeout": DURATION,
        "on_failure": STEP_ID,
    },
}


@dataclass(frozen=True)
class Call(model.Action):
    url: Template
    method: str = "POST"
    headers: tuple[tuple[str, Template], ...] = ()
    body: JsonValue = None  # JSON with Templates (text) or Conditions (a whole "{{ expr }}", typed) for strings
    save: tuple[tuple[str, str], ...] = ()  # (var, dotted path)
    retries: int = 2
    timeout: timedelta = timedelta(seconds=10)
    on_failure: int | None = None  # None: the run fails


def parse(b: Builder, raw: Mapping[str, JsonValue], where: Where) -> Call:
    c = raw["call"]
    cp = (*where, "call")
    return Call(
        url=b.template((*cp, "url"), c["url"]),
        method=c.get("method", "POST"),
        headers=tuple((k, b.template((*cp, "headers", k), v)) for k, v in c.get("headers", {}).items()),
        body=_templates(b, c.get("body"), (*cp, "body")),
        save=tuple(c.get("save", {}).items()),
        retries=c.get("retries", 2),
        timeout=b.duration((*cp, "timeout"), c.get("timeout", "10s")) or timedelta(0),
        on_failure=b.target((*cp, "on_failure"), c.get("on_failure")),
    )


def _templates(b: Builder, data: JsonValue, where: Where) -> JsonValue:
    """The body's JSON with its strings compiled (text as Templates, "{{ expr }}" as Conditions)."""
    if isinstance(data, str):
        return b.value(where, data)
    if isinstance(data, dict):
        return {k: _templates(b, v, (*where, k)) for k, v in data.items()}
    if isinstance(data, list):
        return [_templates(b, v, (*where, i)) for i, v in enumerate(data)]
    return data


def execute(run: Running, step: model.Step) -> None:
    call = step.action
    assert isinstance(call, Call)
    run.wait("call")
    url = run.render(call.url)
    headers = {k: str(run.value(v)) for k, v in call.headers}  # a Template's text (may be empty)
    run.call(call.method, url, headers, _rendered(run, call.body), call.timeout.total_seconds(), call.retries)


def _rendered(run: Running, value: JsonValue) -> JsonValue:
    if isinstance(value, (Template, Condition)):
        return run.value(value)
    if isinstance(value, dict):
        return {k: _rendered(run, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rendered(run, v) for v in value]
    return value


def successors(step: model.Step) -> Sequence[int | None]:
    call = step.action
    assert isinstance(call, Call)
    return [step.next, call.on_failure]


KIND = StepKind(("call",), SCHEMA, Call, parse, execute, successors)
