"""`wait`: go on after a while (`for`), or at an instant the run knows (`until`, `offset`).

    - wait: {for: 2h}
    - wait: {until: "{{ event.data.start }}", offset: -24h}

An instant already past goes on at once. The timer comes back through the interpreter (`Timer`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from empathic.core.json import Json
from empathic.core.templates import Template
from empathic.flows import model
from empathic.flows.model import JsonValue
from empathic.flows.steps.base import DURATION, Builder, Running, StepFailed, StepKind, Where

SCHEMA: Json = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "for": DURATION,
        "until": {"type": "string", "minLength": 1, "description": "Jinja giving an ISO date-time; no zone = the contact's."},
        "offset": DURATION,
    },
    "oneOf": [{"required": ["for"], "not": {"anyOf": [{"required": ["until"]}, {"required": ["offset"]}]}}, {"required": ["until"], "not": {"required": ["for"]}}],
}


@dataclass(frozen=True)
class Wait(model.Action):
    duration: timedelta | None = None
    until: Template | None = None
    offset: timedelta = timedelta(0)


def parse(b: Builder, raw: Mapping[str, JsonValue], where: Where) -> Wait:
    w = raw["wait"]
    wp = (*where, "wait")
    if "for" in w:
        d = b.duration((*wp, "for"), w["for"])
        if d is not None and d.total_seconds() <= 0:
            b.problem((*wp, "for"), "a wait lasts longer than zero")
        return Wait(duration=d)
    return Wait(until=b.template((*wp, "until"), w["until"]),
                      offset=b.duration((*wp, "offset"), w.get("offset", "0s")) or timedelta(0))


def execute(run: Running, step: model.Step) -> None:
    wait = step.action
    assert isinstance(wait, Wait)
    due = run.now + wait.duration if wait.duration else _instant(run, step, wait)
    if due > run.now:
        run.wait("timer")
        run.schedule(due, "wake")
    else:
        run.goto(step.next)


def _instant(run: Running, step: model.Step, wait: Wait) -> datetime:
    assert wait.until is not None
    raw = run.render(wait.until)
    zone = ZoneInfo(run.timezone)
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(raw), time(0))
        except ValueError:
            raise StepFailed(f"step {step.id!r}: {raw!r} is not an ISO date or date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC) + wait.offset  # offsets are elapsed time, across DST too


KIND = StepKind(("wait",), SCHEMA, Wait, parse, execute)
