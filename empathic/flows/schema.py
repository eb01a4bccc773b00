"""The JSON Schema of a flow file (format 1): the published contract of `flows/*.yaml`.

`empathic flows schema` prints it, `GET /v1/flows/schema` serves it, and `docs/flow.schema.json`
is a copy kept equal by a test. Structure is checked here; what a schema cannot say (a `goto`
to a step that exists, a template that compiles, a topic the project knows) is checked by
`empathic.flows.loader`.
"""

from __future__ import annotations

from empathic.core.json import Json

FORMAT = 1

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_NAME = {"type": "string", "pattern": NAME_PATTERN}
_STEP_ID = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"}
_DURATION = {
    "type": "string",
    "pattern": r"^-?\s*(\d+\s*[dhms]\s*)+$",
    "description": "A duration like 90s, 30m, 2h, 1d, 1h30m (negative for `offset`: -24h).",
}
_TEXT = {"type": "string", "minLength": 1, "maxLength": 5000, "description": "Jinja text (contact, event, vars, reply)."}
_MESSAGE = {
    "description": "The text: inline Jinja, or a template of the project by name.",
    "oneOf": [
        _TEXT,
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "text": _TEXT,
                "template": {"type": "string", "minLength": 1},
                "topic": {"type": "string"},
                "channel": {
                    "enum": ["sms", "email", "both"],
                    "description": "send only: `sms` (default), `email` (to the contact's address) or `both`.",
                },
                "fallback": {
                    "enum": ["email"],
                    "description": "send only: a text that fails for good (or a contact without a number) goes by email.",
                },
                "subject": {**_TEXT, "maxLength": 998, "description": "send by email (or its email fallback): the subject (Jinja)."},
                "html": {**_TEXT, "maxLength": 200000, "description": "send by email (or its email fallback): the HTML alternative (Jinja; values are escaped)."},
            },
            "oneOf": [{"required": ["text"]}, {"required": ["template"]}],
        },
    ],
}
_STRINGS = {"oneOf": [{"type": "string", "minLength": 1}, {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}]}
_INTENTS = ["confirm", "decline", "reschedule", "cancel", "opt_out", "help", "question", "thanks", "other"]

_EXPECT = {
    "type": "object",
    "description": "One way of answering; the first that matches wins. `goto` a step, else the next one.",
    "additionalProperties": False,
    "properties": {
        "option": {**_STRINGS, "description": "Offered options picked: letters or numbers (A, B / 1..5)."},
        "intent": {
            "oneOf": [
                {"enum": _INTENTS},
                {"type": "array", "items": {"enum": _INTENTS}, "minItems": 1},
            ]
        },
        "keyword": {**_STRINGS, "description": "Any of these words or phrases in the reply (case-insensitive)."},
        "number": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"min": {"type": "number"}, "max": {"type": "number"}},
            "description": "A number in the reply, within [min, max].",
        },
        "when": {"const": True, "description": "The reply proposes a date or time."},
        "any": {"const": True, "description": "Any reply at all (free text)."},
        "goto": _STEP_ID,
    },
    "minProperties": 1,
    "oneOf": [
        {"required": ["option"]},
        {"required": ["intent"]},
        {"required": ["keyword"]},
        {"required": ["number"]},
        {"required": ["when"]},
        {"required": ["any"]},
    ],
}

_STEP_KINDS: Json = {
    "send": _MESSAGE,
    "ask": _MESSAGE,
    "branch": {
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"if": {"type": "string", "minLength": 1}, "goto": _STEP_ID, "else": _STEP_ID},
            "oneOf": [{"required": ["if", "goto"], "not": {"required": ["else"]}}, {"required": ["else"], "maxProperties": 1}],
        },
        "description": "Conditions (Jinja expressions) in order; the first true one's goto, else `else`, else the next step.",
    },
    "call": {
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
            "timeout": _DURATION,
            "on_failure": _STEP_ID,
        },
    },
    "wait": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "for": _DURATION,
            "until": {"type": "string", "minLength": 1, "description": "Jinja giving an ISO date-time; no zone = the contact's."},
            "offset": _DURATION,
        },
        "oneOf": [{"required": ["for"], "not": {"anyOf": [{"required": ["until"]}, {"required": ["offset"]}]}}, {"required": ["until"], "not": {"required": ["for"]}}],
    },
    "set": {
        "type": "object",
        "minProperties": 1,
        "propertyNames": {"pattern": r"^(contact|vars)\.[A-Za-z_][A-Za-z0-9_]*$"},
        "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
        "description": "contact.<field> (email, timezone, locale, or an attribute) or vars.<name> = value (strings are Jinja).",
    },
    "subscribe": {"type": "string", "minLength": 1},
    "unsubscribe": {"type": "string", "minLength": 1},
    "handoff": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"note": _TEXT, "then": {"enum": ["end", "resume"]}},
    },
    "flow": {**_NAME, "description": "Run another flow here, then go on."},
    "end": {"type": "string", "pattern": r"^[a-z0-9_]{1,40}$", "description": "The run's outcome label."},
}

_ASK_FIELDS = {
    "expect": {"type": "array", "items": _EXPECT, "minItems": 1},
    "save": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
    "timeout": _DURATION,
    "on_timeout": _STEP_ID,
    "reminders": {
        "type": "object",
        "additionalProperties": False,
        "required": ["after"],
        "properties": {"count": {"type": "integer", "minimum": 1, "maximum": 5}, "after": _DURATION, "text": _TEXT},
    },
    "retry": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"count": {"type": "integer", "minimum": 0, "maximum": 5}, "text": _TEXT},
    },
    "on_unclear": _STEP_ID,
}

_STEP = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"id": _STEP_ID, "next": _STEP_ID, **_STEP_KINDS, **_ASK_FIELDS},
    "oneOf": [{"required": [kind]} for kind in _STEP_KINDS],
    "allOf": [
        {"if": {"not": {"required": ["ask"]}}, "then": {"not": {"anyOf": [{"required": [f]} for f in _ASK_FIELDS]}}},
        {"if": {"required": ["ask"]}, "then": {"required": ["expect"]}},
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
        "flow": _NAME,
        "format": {"const": FORMAT},
        "description": {"type": "string"},
        "topic": {"type": "string", "description": "Topic of the flow's texts (default transactional)."},
        "trigger": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {
                "event": {**_STRINGS, "description": "Event types (POST /v1/events) that start it."},
                "keyword": {**_STRINGS, "description": "First word(s) of an inbound text that start it (WATCH, MENU)."},
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
