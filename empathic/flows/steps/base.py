"""What a step kind module is given: the loader's help while it reads its YAML (`Builder`), the
run it executes in (`Running`), the JSON Schema pieces its fragment is made of, and the record
that registers it (`StepKind`).

Both sides are Protocols, so a step module imports neither the loader nor the interpreter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol

from empathic.core.json import Json
from empathic.core.templates import Condition, Template
from empathic.flows import model
from empathic.flows.model import JsonValue
from empathic.flows.state import RunState, WaitKind

# -- JSON Schema pieces shared by the kinds and the flow file (`empathic.flows.schema`) --------

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"  # a flow's name
NAME: Json = {"type": "string", "pattern": NAME_PATTERN}
STEP_ID: Json = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"}
DURATION: Json = {
    "type": "string",
    "pattern": r"^-?\s*(\d+\s*[dhms]\s*)+$",
    "description": "A duration like 90s, 30m, 2h, 1d, 1h30m (negative for `offset`: -24h).",
}
TEXT: Json = {"type": "string", "minLength": 1, "maxLength": 5000, "description": "Jinja text (contact, event, vars, reply)."}
MESSAGE: Json = {
    "description": "The text: inline Jinja, or a template of the project by name.",
    "oneOf": [
        TEXT,
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "text": TEXT,
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
                "subject": {**TEXT, "maxLength": 998, "description": "send by email (or its email fallback): the subject (Jinja)."},
                "html": {**TEXT, "maxLength": 200000, "description": "send by email (or its email fallback): the HTML alternative (Jinja; values are escaped)."},
            },
            "oneOf": [{"required": ["text"]}, {"required": ["template"]}],
        },
    ],
}
STRINGS: Json = {"oneOf": [{"type": "string", "minLength": 1}, {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}]}

Where = tuple[str | int, ...]  # a place in a flow file: ("steps", 2, "ask", "text")
TimerPurpose = Literal["wake", "remind", "timeout"]


class StepFailed(Exception):
    """The run fails with this message (`step 'x': …`)."""


class Builder(Protocol):
    """The loader's help while one flow file is read; every problem is kept with its line."""

    @property
    def flow_name(self) -> str: ...

    def problem(self, where: Where, message: str) -> None: ...

    def target(self, where: Where, step_id: str | None) -> int | None: ...  # a step's index by its id

    def template(self, where: Where, source: str, *, html: bool = False) -> Template: ...

    def condition(self, where: Where, source: str, *, named: Where | None = None) -> Condition | None: ...

    def value(self, where: Where, source: JsonValue) -> JsonValue: ...  # "{{ expr }}" typed, other text a template

    def topic_ok(self, where: Where, topic: str | None) -> None: ...

    def message(self, where: Where, raw: JsonValue) -> model.Message: ...

    def duration(self, where: Where, raw: str | None) -> timedelta | None: ...


class Running(Protocol):
    """The run a step executes in (the interpreter's); effects are kept in order."""

    contact: Json  # the contact as the run sees it, with what it set

    @property
    def now(self) -> datetime: ...

    @property
    def timezone(self) -> str: ...

    @property
    def conversation_free(self) -> bool: ...

    @property
    def state(self) -> RunState: ...

    def flow(self) -> model.Flow: ...

    def goto(self, index: int | None) -> None: ...

    def wait(self, kind: WaitKind, *, resume: bool = False) -> None: ...

    def schedule(self, at: datetime, purpose: TimerPurpose) -> None: ...  # a timer for the current wait

    def enter(self, flow_name: str) -> None: ...  # run a subflow's current version from its first step

    def finish(self, outcome: str) -> None: ...

    def set_vars(self, variables: Mapping[str, JsonValue]) -> None: ...

    def check_vars(self, variables: Mapping[str, JsonValue]) -> None: ...

    def scope(self) -> Json: ...

    def render(self, template: Template) -> str: ...

    def value(self, value: JsonValue) -> JsonValue: ...  # a Template's text, a Condition's typed value, or as is

    def text(self, message: model.Message) -> str: ...

    def topic(self, message: model.Message) -> str: ...

    def send(self, text: str, topic: str, message: model.Message | None = None) -> None: ...

    def call(
        self, method: str, url: str, headers: dict[str, str], body: JsonValue, timeout: float, retries: int
    ) -> None: ...

    def update_contact(self, changes: Json) -> None: ...

    def change_consent(self, topic: str, subscribe: bool, reply_message_id: str | None) -> None: ...

    def open_handoff(self, note: str) -> None: ...


def next_only(step: model.Step) -> Sequence[int | None]:
    return [step.next]


@dataclass(frozen=True, slots=True)
class StepKind:
    """A kind of step: the YAML keys that make one, and what the loader and interpreter do with it."""

    keys: tuple[str, ...]  # `send`; `subscribe` and `unsubscribe`
    schema: Json  # the JSON Schema of its key's value, in the flow file's schema
    action: type[model.Action]  # its record, defined in its module
    parse: Callable[[Builder, Mapping[str, JsonValue], Where], model.Action]  # the whole step's YAML
    execute: Callable[[Running, model.Step], None]  # goes to the next step itself, unless it waits or ends
    successors: Callable[[model.Step], Sequence[int | None]] = next_only  # where it may go (reachability)
    fields: Json = field(default_factory=dict)  # other keys only its steps take (ask's `expect`…); a one-key kind
    required: tuple[str, ...] = ()  # of those, the ones its steps must have
