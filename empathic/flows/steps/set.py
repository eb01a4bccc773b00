"""`set`: run variables and contact fields, all of them or none.

    - set: {contact.tier: gold, vars.score: "{{ reply.number }}"}

`contact.email|timezone|locale` are the contact's fields, any other `contact.<name>` an
attribute; a whole "{{ expr }}" keeps the expression's type. The contact's fields are held to
what the API would take.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from empathic.core.json import Json
from empathic.core.limits import ATTRIBUTES_LIMIT, json_size
from empathic.flows import model
from empathic.flows.model import JsonValue
from empathic.flows.steps.base import Builder, Running, StepFailed, StepKind, Where

CONTACT_FIELDS = frozenset({"email", "timezone", "locale"})
FIELD_LENGTHS = {"email": 320, "locale": 35, "timezone": 64}

SCHEMA: Json = {
    "type": "object",
    "minProperties": 1,
    "propertyNames": {"pattern": r"^(contact|vars)\.[A-Za-z_][A-Za-z0-9_]*$"},
    "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
    "description": "contact.<field> (email, timezone, locale, or an attribute) or vars.<name> = value (strings are Jinja).",
}


@dataclass(frozen=True)
class SetFields(model.Action):
    values: tuple[tuple[str, str, JsonValue], ...]  # (scope "contact"|"vars", name, value, Template or Condition)


def parse(b: Builder, raw: Mapping[str, JsonValue], where: Where) -> SetFields:
    values = []
    for key, raw_value in raw["set"].items():
        scope, _, name = key.partition(".")
        values.append((scope, name, b.value((*where, "set", key), raw_value)))
    return SetFields(tuple(values))


def execute(run: Running, step: model.Step) -> None:
    action = step.action
    assert isinstance(action, SetFields)
    before = run.state.vars, dict(run.contact)
    changes: Json = {}
    try:
        for scope, name, raw in action.values:
            value = run.value(raw)
            if scope == "vars":
                run.set_vars({**run.state.vars, name: value})  # the values after it see it
            elif name in CONTACT_FIELDS:
                changes[name] = value
                run.contact[name] = value
            else:
                changes[f"attributes.{name}"] = value
                run.contact["attributes"] = {**(run.contact.get("attributes") or {}), name: value}
        run.check_vars(run.state.vars)
        _check_contact(run, step, changes)
    except StepFailed:
        run.set_vars(before[0])
        run.contact = before[1]
        raise
    if changes:
        run.update_contact(changes)
    run.goto(step.next)


def _check_contact(run: Running, step: model.Step, changes: Mapping[str, JsonValue]) -> None:
    for name, value in changes.items():
        longest = FIELD_LENGTHS.get(name)
        if longest is not None and value is not None and not (isinstance(value, str) and len(value) <= longest):
            raise StepFailed(f"step {step.id!r}: a contact's {name} is a text of at most {longest} characters")
    attributes = run.contact.get("attributes") or {}
    if any(name.startswith("attributes.") for name in changes) and json_size(attributes) > ATTRIBUTES_LIMIT:
        raise StepFailed(f"step {step.id!r}: the contact's attributes would take more than "
                         f"{ATTRIBUTES_LIMIT // 1024} KiB as JSON")


KIND = StepKind(("set",), SCHEMA, SetFields, parse, execute)
