"""`ask`: a question, then wait for the answer (with reminders, retries and a time-out).

    - ask: "Still on for {{ event.data.day }}? Reply YES or NO"
      save: answer
      expect:
        - intent: confirm
          goto: confirmed
      timeout: 1d
      reminders: {after: 4h, count: 2}

Its answer comes back through the interpreter (`Reply`, `Timer`), which matches `expect`.
While another run holds the contact's conversation, the question parks (waiting `turn`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar, Literal

from empathic.core.json import Json
from empathic.core.templates import Template
from empathic.flows import model
from empathic.flows.model import JsonValue
from empathic.flows.steps.base import DURATION, MESSAGE, STEP_ID, STRINGS, TEXT, Builder, Running, StepKind, Where

TURN_LIMIT = timedelta(hours=24)  # a question parked this long behind another conversation is dropped

SCHEMA: Json = MESSAGE  # the question
_INTENTS = ["confirm", "decline", "reschedule", "cancel", "opt_out", "help", "question", "thanks", "other"]
_EXPECT: Json = {
    "type": "object",
    "description": "One way of answering; the first that matches wins. `goto` a step, else the next one.",
    "additionalProperties": False,
    "properties": {
        "option": {**STRINGS, "description": "Offered options picked: letters or numbers (A, B / 1..5)."},
        "intent": {
            "oneOf": [
                {"enum": _INTENTS},
                {"type": "array", "items": {"enum": _INTENTS}, "minItems": 1},
            ]
        },
        "keyword": {**STRINGS, "description": "Any of these words or phrases in the reply (case-insensitive)."},
        "number": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"min": {"type": "number"}, "max": {"type": "number"}},
            "description": "A number in the reply, within [min, max].",
        },
        "when": {"const": True, "description": "The reply proposes a date or time."},
        "any": {"const": True, "description": "Any reply at all (free text)."},
        "goto": STEP_ID,
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
FIELDS: Json = {  # the other keys of an ask step
    "expect": {"type": "array", "items": _EXPECT, "minItems": 1},
    "save": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
    "timeout": DURATION,
    "on_timeout": STEP_ID,
    "reminders": {
        "type": "object",
        "additionalProperties": False,
        "required": ["after"],
        "properties": {"count": {"type": "integer", "minimum": 1, "maximum": 5}, "after": DURATION, "text": TEXT},
    },
    "retry": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"count": {"type": "integer", "minimum": 0, "maximum": 5}, "text": TEXT},
    },
    "on_unclear": STEP_ID,
}


@dataclass(frozen=True)
class Expect:
    kind: Literal["option", "intent", "keyword", "number", "when", "any"]
    values: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    goto: int | None = None  # index of the target step; None = the next one


@dataclass(frozen=True)
class Reminders:
    count: int
    after: timedelta
    text: Template | None  # None: the question is sent again


@dataclass(frozen=True)
class Ask(model.Action):
    holds_conversation: ClassVar[bool] = True

    message: model.Message
    expect: tuple[Expect, ...]
    save: str | None = None
    timeout: timedelta | None = None
    on_timeout: int | None = None  # None: the run ends with outcome `no_answer`
    reminders: Reminders | None = None
    retries: int = 1
    retry_text: Template | None = None
    on_unclear: int | None = None  # None: hand the thread to a person

    @property
    def options(self) -> tuple[str, ...]:
        return tuple(v for e in self.expect if e.kind == "option" for v in e.values)

    @property
    def messages(self) -> tuple[model.Message, ...]:
        return (self.message,)


def parse(b: Builder, raw: Mapping[str, JsonValue], where: Where) -> Ask:
    expects = [_expect(b, e, (*where, "expect", j)) for j, e in enumerate(raw["expect"])]
    reminders = None
    if "reminders" in raw:
        r = raw["reminders"]
        reminders = Reminders(
            r.get("count", 1),
            b.duration((*where, "reminders", "after"), r["after"]) or timedelta(0),
            b.template((*where, "reminders", "text"), r["text"]) if "text" in r else None,
        )
    timeout = b.duration((*where, "timeout"), raw.get("timeout"))
    if reminders and reminders.after and timeout and reminders.after * reminders.count >= timeout:
        b.problem((*where, "reminders"), f"{reminders.count} reminder(s) every {raw['reminders']['after']} do not fit "
                                         f"before the timeout {raw['timeout']}")
    if reminders and timeout is None:
        b.problem((*where, "reminders"), "reminders need a `timeout` (they are sent before it)")
    if "on_timeout" in raw and timeout is None:
        b.problem((*where, "on_timeout"), "`on_timeout` needs a `timeout`")
    retry = raw.get("retry", {})
    return Ask(
        b.message((*where, "ask"), raw["ask"]),
        tuple(expects),
        save=raw.get("save"),
        timeout=timeout,
        on_timeout=b.target((*where, "on_timeout"), raw.get("on_timeout")),
        reminders=reminders,
        retries=retry.get("count", 1),
        retry_text=b.template((*where, "retry", "text"), retry["text"]) if "text" in retry else None,
        on_unclear=b.target((*where, "on_unclear"), raw.get("on_unclear")),
    )


def _expect(b: Builder, e: Mapping[str, JsonValue], where: Where) -> Expect:
    goto = b.target((*where, "goto"), e.get("goto"))
    if "option" in e:
        return Expect("option", tuple(str(v).upper() for v in _listed(e["option"])), goto=goto)
    if "intent" in e:
        return Expect("intent", tuple(_listed(e["intent"])), goto=goto)
    if "keyword" in e:
        return Expect("keyword", tuple(str(v).casefold() for v in _listed(e["keyword"])), goto=goto)
    if "number" in e:
        low, high = e["number"].get("min"), e["number"].get("max")
        if low is not None and high is not None and low > high:
            b.problem((*where, "number"), f"min {low} is above max {high}")
        return Expect("number", low=low, high=high, goto=goto)
    if "when" in e:
        return Expect("when", goto=goto)
    return Expect("any", goto=goto)


def _listed(value: JsonValue) -> list[JsonValue]:
    return value if isinstance(value, list) else [value]


def execute(run: Running, step: model.Step) -> None:
    ask = step.action
    assert isinstance(ask, Ask)
    if not run.conversation_free:
        run.wait("turn")
        run.schedule(run.now + TURN_LIMIT, "timeout")
        return
    run.send(run.text(ask.message), run.topic(ask.message))
    run.wait("reply")
    if ask.reminders:
        for k in range(1, ask.reminders.count + 1):
            run.schedule(run.now + ask.reminders.after * k, "remind")
    if ask.timeout:
        run.schedule(run.now + ask.timeout, "timeout")


def successors(step: model.Step) -> Sequence[int | None]:
    ask = step.action
    assert isinstance(ask, Ask)
    return [e.goto if e.goto is not None else step.next for e in ask.expect] + [ask.on_timeout, ask.on_unclear]


KIND = StepKind(("ask",), SCHEMA, Ask, parse, execute, successors, fields=FIELDS, required=("expect",))
