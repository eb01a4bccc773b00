"""The JSON Schema of a flow file (format 1): the published contract of `flows/*.yaml`.

`empathic flows schema` prints it, `GET /v1/flows/schema` serves it, and `docs/flow.schema.json`
is a copy kept equal by a test. Structure is checked here; what a schema cannot say (a `goto`
to a step that exists, a template that compiles, a topic the project knows) is checked by
`empathic.flows.loader`.
"""

from __future__ import annotations

from empathic.core.json import Json
from empathic.flows.steps import KINDS
from empathic.flows.steps.base import NAME, STEP_ID, STRINGS

FORMAT = 1

# A step: its id, its `next`, and one kind's key with that kind's other keys (`empathic.flows.steps`).
_STEP = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "id": STEP_ID,
        "next": STEP_ID,
        **{key: kind.schema for kind in KINDS for key in kind.keys},
        **{name: schema for kind in KINDS for name, schema in kind.fields.items()},
    },
    "oneOf": [{"required": [key]} for kind in KINDS for key in kind.keys],
    "allOf": [
        *({"if": {"not": {"required": [kind.keys[0]]}}, "then": {"not": {"anyOf": [{"required": [f]} for f in kind.fields]}}}
          for kind in KINDS if kind.fields),
        *({"if": {"required": [kind.keys[0]]}, "then": {"required": list(kind.required)}} for kind in KINDS if kind.required),
    ],
}

FLOW_SCHEMA: Json = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://empathic.dev/schemas/flow-1.json",
    "title": "Empathic flow (format 1)",
    "type": "object",
    "additionalProperties": False,
    "required": ["flow", "steps"],
    "properties": {
        "flow": NAME,
        "format": {"const": FORMAT},
        "description": {"type": "string"},
        "topic": {"type": "string", "description": "Topic of the flow's texts (default transactional)."},
        "trigger": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {
                "event": {**STRINGS, "description": "Event types (POST /v1/events) that start it."},
                "keyword": {**STRINGS, "description": "First word(s) of an inbound text that start it (WATCH, MENU)."},
            },
        },
        "once_per": {
            "type": "string",
            "minLength": 1,
            "description": "Jinja over `event` (e.g. {{ event.data.cart_id }}): at most one run per contact and value, ever.",
        },
        "priority": {"type": "integer", "minimum": 0, "maximum": 100},
        "when_busy": {
            "enum": ["queue", "interrupt", "skip"],
            "description": "If the contact already talks with another flow: wait for it (default), end it when this one's priority is higher, or not start.",
        },
        "steps": {"type": "array", "minItems": 1, "items": _STEP},
    },
}
