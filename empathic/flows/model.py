"""A flow as the interpreter sees it: immutable steps with their targets resolved to indexes.

Built by `empathic.flows.loader` from a checked YAML file; never built from unchecked input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from empathic.core.templates import Condition, Template

# Any YAML/JSON value, where empathic.core.json.Json is a JSON object: a flow file's parts, a
# call's answer, what a run keeps.
JsonValue = Any  # dynamic by nature (any JSON, nested): the code reading one checks what it uses

_DURATION_PART = re.compile(r"(\d+)\s*([dhms])")
_UNIT = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> timedelta:
    """'90s', '30m', '1h30m', '2d', '-24h' -> timedelta; ValueError otherwise."""
    raw = text.strip()
    sign = -1 if raw.startswith("-") else 1
    body = raw.lstrip("-").strip()
    parts = _DURATION_PART.findall(body)
    if not parts or _DURATION_PART.sub("", body).strip():
        raise ValueError(f"{text!r} is not a duration (like 90s, 30m, 2h, 1d, 1h30m)")
    return timedelta(seconds=sign * sum(int(n) * _UNIT[u] for n, u in parts))


@dataclass(frozen=True)
class Message:
    """The text of a send/ask/reminder: an inline template or a project template's name."""

    template: Template | None  # None: `template_name` is looked up in the catalog when sent
    template_name: str | None = None
    topic: str | None = None
    channel: str = "sms"  # send only: sms, email or both
    subject: Template | None = None  # email: the subject
    html: Template | None = None  # email: the HTML alternative
    fallback: str | None = None  # send only: "email" when a text that fails for good goes by email


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
class Send:
    message: Message


@dataclass(frozen=True)
class Ask:
    message: Message
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


@dataclass(frozen=True)
class Branch:
    cases: tuple[tuple[Condition, int], ...]
    otherwise: int | None


@dataclass(frozen=True)
class Call:
    url: Template
    method: str = "POST"
    headers: tuple[tuple[str, Template], ...] = ()
    body: JsonValue = None  # JSON with Templates (text) or Conditions (a whole "{{ expr }}", typed) for strings
    save: tuple[tuple[str, str], ...] = ()  # (var, dotted path)
    retries: int = 2
    timeout: timedelta = timedelta(seconds=10)
    on_failure: int | None = None  # None: the run fails


@dataclass(frozen=True)
class Wait:
    duration: timedelta | None = None
    until: Template | None = None
    offset: timedelta = timedelta(0)


@dataclass(frozen=True)
class SetFields:
    values: tuple[tuple[str, str, JsonValue], ...]  # (scope "contact"|"vars", name, value, Template or Condition)


@dataclass(frozen=True)
class Subscription:
    topic: str
    subscribe: bool


@dataclass(frozen=True)
class Handoff:
    note: Template | None
    resume: bool


@dataclass(frozen=True)
class Subflow:
    name: str


@dataclass(frozen=True)
class End:
    outcome: str


Action = Send | Ask | Branch | Call | Wait | SetFields | Subscription | Handoff | Subflow | End


@dataclass(frozen=True)
class Step:
    id: str
    action: Action
    next: int | None  # where a finished step goes; None = past the last step (the run ends)
    line: int = 0


@dataclass(frozen=True)
class Flow:
    name: str
    steps: tuple[Step, ...]
    topic: str = "transactional"
    description: str = ""
    events: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    priority: int = 0
    when_busy: Literal["queue", "interrupt", "skip"] = "queue"
    subflows: tuple[str, ...] = field(default=())
    once_per: Template | None = None  # at most one run per contact and rendered value

    @property
    def conversational(self) -> bool:
        """A flow that waits for what the person says (or for a person to take over) holds the
        contact's conversation; one that only sends and waits on the clock does not."""
        return any(isinstance(s.action, (Ask, Handoff)) for s in self.steps)

    @property
    def templates(self) -> frozenset[str]:
        """The project templates its texts name (`send: {template: ...}`)."""
        messages = [s.action.message for s in self.steps if isinstance(s.action, (Send, Ask))]
        return frozenset(m.template_name for m in messages if m.template_name)
