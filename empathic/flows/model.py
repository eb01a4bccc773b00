"""A flow as the interpreter sees it: immutable steps with their targets resolved to indexes.

What a step does is its kind's record (an `Action`), defined in `empathic.flows.steps.<kind>`.

Built by `empathic.flows.loader` from a checked YAML file; never built from unchecked input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar, Literal

from empathic.core.templates import Template

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


class Action:
    """What a step does: each kind's record (`empathic.flows.steps.<kind>`) derives from it."""

    holds_conversation: ClassVar[bool] = False  # waits for what the person says, or for a person

    @property
    def messages(self) -> tuple[Message, ...]:
        """The texts it sends."""
        return ()


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
        return any(s.action.holds_conversation for s in self.steps)

    @property
    def templates(self) -> frozenset[str]:
        """The project templates its texts name (`send: {template: ...}`)."""
        return frozenset(m.template_name for s in self.steps for m in s.action.messages if m.template_name)
