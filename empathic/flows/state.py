"""A flow run's state: where it is, what it waits for, what it keeps; versioned JSON when stored.

`RunState.to_json` / `RunState.from_json` are the one way between the record and the JSON the
store keeps (`flow_runs.state`). The JSON of version 1 (an `empathic.core.json.Json`):

    {"version": 1, "status": "active" | "done" | "failed" | "ended",
     "frames": [{"flow": <version key>, "at": <step index> | null}, ...],   # subflows push a frame
     "vars": {...}, "event": {"id", "type", "data"} | {}, "reply": {...} | null,
     "seq": 3, "sent": 5,
     "wait": null | {"kind": "reply" | "timer" | "call" | "handoff" | "turn", "seq": 3, "step": 2,
                     "step_id": "ask", "reminders": 0, "retries": 0, "resume": false},
     "outcome": "confirmed" | null, "error": null | "why it failed"}

A state stored by an older release is migrated on reading (version 0: the same object without
`version`, stored before states were versioned); one from a newer release is refused, never
misread. A change of shape bumps `VERSION` and adds its step to `_MIGRATIONS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, get_args

from empathic.core.json import Json
from empathic.flows.model import JsonValue

VERSION = 1

Status = Literal["active", "done", "failed", "ended"]  # ended: stopped from outside (cancelled, opted out …)
WaitKind = Literal["reply", "timer", "call", "handoff", "turn"]


class StateVersionError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Frame:
    """A flow the run is in: the top flow, then one per subflow it runs."""

    flow: str  # the flow version's key
    at: int | None  # the step it is at; None: past its last step


@dataclass(frozen=True, slots=True)
class Waiting:
    """What a run waits for; an input carrying an older `seq` is stale."""

    kind: WaitKind
    seq: int
    step: int  # the index of the step that waits
    step_id: str
    reminders: int = 0  # reminders sent (an ask)
    retries: int = 0  # unclear answers asked again (an ask)
    resume: bool = False  # a handoff: go on when the thread is closed (else the run ends)


@dataclass(frozen=True, slots=True)
class Understood:
    """What an answer to a question was understood to say."""

    intent: str
    option: str | None
    when: str | None  # ISO date or date-time
    number: int | float | None
    language: str
    confidence: float


@dataclass(frozen=True, slots=True)
class Heard:
    """The person's last text to the run: an answer to its question, or the keyword text that
    started it (`understood` None: not an answer, so it consents to nothing)."""

    text: str | None
    message_id: str | None
    at: datetime
    understood: Understood | None = None

    def to_json(self) -> Json:
        """As stored, and as templates see `reply` (and `vars.<save>`)."""
        if self.understood is None:
            return {"text": self.text, "message_id": self.message_id, "at": self.at.isoformat()}
        u = self.understood
        return {
            "text": self.text, "intent": u.intent, "option": u.option, "when": u.when, "number": u.number,
            "language": u.language, "confidence": u.confidence, "message_id": self.message_id,
            "at": self.at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> Heard:
        understood = None
        if "intent" in data:
            understood = Understood(data["intent"], data["option"], data["when"], data["number"], data["language"],
                                    data["confidence"])
        return cls(data["text"], data["message_id"], datetime.fromisoformat(data["at"]), understood)


@dataclass(frozen=True, slots=True)
class RunState:
    frames: tuple[Frame, ...]  # empty once the run has completed
    status: Status = "active"
    vars: Mapping[str, JsonValue] = field(default_factory=dict)
    event: Mapping[str, JsonValue] = field(default_factory=dict)  # the event that started the run ({} if none)
    reply: Heard | None = None
    seq: int = 0  # bumped by every wait
    sent: int = 0  # texts sent so far (the last one's key, in its idempotency key)
    wait: Waiting | None = None  # None when not active
    outcome: str | None = None
    error: str | None = None
    version: int = VERSION

    @classmethod
    def start(cls, flow_key: str, event: Mapping[str, JsonValue] | None = None,
              variables: Mapping[str, JsonValue] | None = None) -> RunState:
        return cls((Frame(flow_key, 0),), vars=dict(variables or {}), event=dict(event or {}))

    @property
    def active(self) -> bool:
        return self.status == "active"

    def to_json(self) -> Json:
        wait = self.wait
        return {
            "version": self.version,
            "status": self.status,
            "frames": [{"flow": f.flow, "at": f.at} for f in self.frames],
            "vars": dict(self.vars),
            "event": dict(self.event),
            "reply": self.reply.to_json() if self.reply is not None else None,
            "seq": self.seq,
            "sent": self.sent,
            "wait": None if wait is None else {
                "kind": wait.kind, "seq": wait.seq, "step": wait.step, "step_id": wait.step_id,
                "reminders": wait.reminders, "retries": wait.retries, "resume": wait.resume,
            },
            "outcome": self.outcome,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> RunState:
        """The state stored as `data`, migrated from the version it was stored in."""
        version = data.get("version", 0)
        if not isinstance(version, int) or version > VERSION:
            raise StateVersionError(
                f"a run's state of version {version!r} is newer than this release reads (up to {VERSION}): "
                "it was stored by a newer Empathic"
            )
        current = dict(data)
        while version < VERSION:
            current = _MIGRATIONS[version](current)
            version = current["version"]
        wait = current["wait"]
        return cls(
            frames=tuple(Frame(f["flow"], f["at"]) for f in current["frames"]),
            status=_one_of(current["status"], Status),
            vars=current["vars"],
            event=current["event"],
            reply=Heard.from_json(current["reply"]) if current["reply"] is not None else None,
            seq=current["seq"],
            sent=current["sent"],
            wait=None if wait is None else Waiting(
                _one_of(wait["kind"], WaitKind), wait["seq"], wait["step"], wait["step_id"],
                wait["reminders"], wait["retries"], wait["resume"],
            ),
            outcome=current["outcome"],
            error=current["error"],
            version=VERSION,
        )


def _one_of(value: JsonValue, literal: object) -> JsonValue:
    """`value`, if it is one of a `Literal`'s."""
    if value not in get_args(literal):
        raise ValueError(f"{value!r} is not one of {', '.join(get_args(literal))}")
    return value


def _from_v0(data: Json) -> Json:
    """Before versions: the same object; `version` names it."""
    return {**data, "version": 1}


_MIGRATIONS: dict[int, Callable[[Json], Json]] = {0: _from_v0}
