"""Transcript tests: a conversation written down, played against the real engine.

`empathic flows test FILE` reads `<flow>.test.yaml` (next to `<flow>.yaml` in a project's
`flows/` folder) and plays each test on a fresh embedded Empathic: SQLite in a temporary folder,
the project's own files, the policy gate, the outbox, the dispatcher, the timers, and the
carrier simulator, whose virtual phone is the person. Only the clock is the test's: it stands
still until `advance` moves it (firing every timer due on the way, in order).

    flow: appointment-reminder
    now: "2026-03-03T10:00:00"           # the contact's local time when the test starts
    contact:
      phone: "+14155550123"
      timezone: America/Los_Angeles
      attributes: {first_name: Ana}
      consent: [deals]                   # topics the person subscribed to (optional)
    calls:                               # how the business's system answers `call` steps
      - {method: POST, url: "https://shop.example/api/orders", status: 201, json: {id: "A-1"}}
    tests:
      - name: confirms with A
        script:
          - event: appointment.booked    # POST /v1/events for the contact
            data: {start: "2026-03-04T15:00:00"}
          - expect: "Reply A to confirm" # the next text the phone received matches (regex, any case)
          - reply: "a"                   # the phone texts back
          - expect: "see you"
          - advance: 30h                 # the clock moves; due timers fire
          - expect: nothing              # no text arrived since the last expect
          - run: done                    # the flow's latest run: status (or {status:, outcome:})
          - thread: open                 # the contact's inbox thread: open | closed | none
          - close_thread: true           # a person closes it (a handed-off run goes on)
          - called: {method: POST, url: "https://shop.example/api/orders", json: {sku: "X"}}
          - start: {vars: {...}, data: {...}}   # start this flow over the API instead of an event

`now`, `contact` and `calls` may also be given per test.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from empathic.channels.simulator import Simulator
from empathic.core.clock import ManualClock
from empathic.core.consent import ConsentAction
from empathic.engine import consents
from empathic.engine.calls import FlowCalls
from empathic.engine.events import ContactInput, EventError, EventInput, ingest, upsert_contact
from empathic.engine.project import Project, ProjectError, load_project
from empathic.engine.runtime import Runtime, Settings
from empathic.flows.loader import FlowError, Problem, read_yaml
from empathic.flows.model import parse_duration
from empathic.store import flows as flow_store
from empathic.store import threads, timers
from empathic.store.contacts import Contact
from empathic.store.db import Database, sqlite_url

DEFAULT_NOW = "2026-03-03T10:00:00"  # a Tuesday morning
SETTLE_ROUNDS = 200


@dataclass
class Failure:
    line: int
    message: str


@dataclass
class CaseResult:
    name: str
    line: int
    failure: Failure | None = None
    transcript: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure is None


@dataclass
class FileResult:
    file: str
    cases: list[CaseResult]
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(c.ok for c in self.cases)


class _StepFailed(Exception):
    pass


def project_of(path: Path) -> Path:
    """A transcript or flow file lives in <project>/flows/."""
    folder = path.resolve().parent
    if folder.name != "flows":
        raise FlowError([Problem(1, "", "a flow or transcript file lives in a project's flows/ folder (or give --project)", str(path))])
    return folder.parent


def transcript_for(path: Path) -> Path:
    """`x.yaml` -> `x.test.yaml`; a `.test.yaml` is itself."""
    return path if path.name.endswith(".test.yaml") else path.with_name(path.name.removesuffix(".yaml") + ".test.yaml")


async def run_file(path: Path, project: Path | None = None) -> FileResult:
    path = transcript_for(path)
    if not path.exists():
        return FileResult(str(path), [], error="no transcript file")
    try:
        data, lines = read_yaml(path.read_text(encoding="utf-8"))
    except FlowError as exc:
        return FileResult(str(path), [], error=str(exc.problems[0]))
    if not isinstance(data, dict) or not isinstance(data.get("tests"), list) or not data["tests"]:
        return FileResult(str(path), [], error="a transcript file has `tests:`, a list of {name, script}")
    try:
        root = project or project_of(path)
        loaded = load_project(root)  # once: every case starts a fresh engine on the same files
        with tempfile.TemporaryDirectory(prefix="empathic-transcripts-") as tmp:
            empty = await _migrated(Path(tmp) / "empty.sqlite3")
            results = [await _run_case(root, loaded, empty, data, case, i, lines) for i, case in enumerate(data["tests"])]
    except (ProjectError, FlowError) as exc:
        return FileResult(str(path), [], error=f"the project does not load: {exc}")
    return FileResult(str(path), results)


async def _migrated(path: Path) -> Path:
    """An empty database at the newest migration, copied for each case (migrating every
    case's own took longer than most cases)."""
    db = Database(sqlite_url(path))
    try:
        await db.migrate()
    finally:
        await db.close()
    return path


async def _run_case(
    root: Path, project: Project, empty: Path, top: dict[str, Any], case: dict[str, Any], index: int,
    lines: dict[tuple[Any, ...], int],
) -> CaseResult:
    name = str(case.get("name", f"test {index + 1}"))
    result = CaseResult(name, lines.get(("tests", index), 1))
    settings_of = {**top, **case}
    contact_cfg = dict(settings_of.get("contact") or {})
    zone = ZoneInfo(contact_cfg.get("timezone") or "UTC")
    start = datetime.fromisoformat(str(settings_of.get("now", DEFAULT_NOW)))
    clock = ManualClock((start if start.tzinfo else start.replace(tzinfo=zone)).astimezone(UTC))  # elapsed time, as in production
    calls = _Calls(settings_of.get("calls") or [])
    with tempfile.TemporaryDirectory(prefix="empathic-transcript-") as tmp:
        shutil.copyfile(empty, Path(tmp) / "empathic.sqlite3")
        settings = Settings(data_dir=Path(tmp), database_url=None, project_dir=root, run_workers=False,
                            simulator={"receipt_delay": 0.0, "seed": 1}, public_url="https://empathic.test")
        settings.retention_days = 0
        rt = Runtime(settings, clock=clock, project=project)
        rt.calls = FlowCalls(rt.db, clock, rt.flows, client=httpx.AsyncClient(transport=httpx.MockTransport(calls.answer)))
        await rt.start()
        try:
            player = _Player(rt, clock, contact_cfg, calls, str(top.get("flow", "")), result)
            await player.setup()
            for j, step in enumerate(case.get("script") or []):
                line = lines.get(("tests", index, "script", j), result.line)
                try:
                    await player.play(step)
                except _StepFailed as exc:
                    result.failure = Failure(line, str(exc))
                    break
                except (ValueError, KeyError, TypeError) as exc:
                    result.failure = Failure(line, f"bad step {step!r}: {exc}")
                    break
            if result.failure is None and calls.unexpected:
                result.failure = Failure(result.line, f"unexpected call(s): {', '.join(calls.unexpected)}")
        finally:
            await rt.stop()
    return result


class _Calls:
    def __init__(self, table: list[dict[str, Any]]) -> None:
        self.table = table
        self.made: list[dict[str, Any]] = []
        self.unexpected: list[str] = []

    def answer(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        url = str(request.url)
        self.made.append({"method": request.method, "url": url, "json": body, "headers": dict(request.headers)})
        for entry in self.table:
            if entry.get("url") == url and entry.get("method", "POST").upper() == request.method:
                if "json" in entry:
                    return httpx.Response(int(entry.get("status", 200)), json=entry["json"])
                return httpx.Response(int(entry.get("status", 200)), text=str(entry.get("text", "")))
        self.unexpected.append(f"{request.method} {url}")
        return httpx.Response(404, text="no such call in the transcript")


class _Player:
    def __init__(self, rt: Runtime, clock: ManualClock, contact: dict[str, Any], calls: _Calls, flow: str, result: CaseResult) -> None:
        self.rt = rt
        self.clock = clock
        self.contact_cfg = contact
        self.calls = calls
        self.flow = flow
        self.result = result
        self.seen = 0
        self.contact: Contact  # made by `setup`

    @property
    def phone(self) -> str:
        return str(self.contact.phone)

    @property
    def _simulator(self) -> Simulator:
        if self.rt.simulator is None:
            raise _StepFailed("the project declares no simulator channel; its phone is the person")
        return self.rt.simulator

    async def setup(self) -> None:
        cfg = self.contact_cfg
        given = ContactInput(cfg.get("phone", "+14155550123"), cfg.get("email"), cfg.get("timezone"),
                             cfg.get("locale"), None, cfg.get("attributes") or {})
        async with self.rt.db.transaction() as conn:
            self.contact = await upsert_contact(conn, self.rt.workspace_id, given, self.rt.settings.default_region, self.clock.now())
            for topic in cfg.get("consent") or []:
                await consents.record(conn, self.rt.workspace_id, self.contact, topic=topic, action=ConsentAction.GRANTED,
                                      source="web_form", actor="transcript", evidence="transcript setup", now=self.clock.now())

    async def play(self, step: dict[str, Any]) -> None:
        if not isinstance(step, dict) or len(step) != 1 and not ("event" in step and set(step) <= {"event", "data", "contact"}):
            raise _StepFailed(f"a script step is one of event, start, reply, expect, advance, run, thread, close_thread, called: {step!r}")
        if "event" in step:
            await self._event(str(step["event"]), step.get("data") or {})
        elif "start" in step:
            await self._start(step["start"] or {})
        elif "reply" in step:
            self.result.transcript.append(f"  person: {step['reply']}")
            await self._simulator.phone_sends(self.phone, str(step["reply"]))
            await self.settle()
        elif "expect" in step:
            await self._expect(step["expect"])
        elif "advance" in step:
            await self.advance(parse_duration(str(step["advance"])))
        elif "run" in step:
            await self._run(step["run"])
        elif "thread" in step:
            await self._thread(str(step["thread"]))
        elif "close_thread" in step:
            await self._close_thread()
        elif "called" in step:
            self._called(step["called"])
        else:
            raise _StepFailed(f"unknown script step {next(iter(step))!r}")

    # -- driving the engine ---------------------------------------------------------------

    async def settle(self) -> None:
        """Run every loop's pass until nothing moves (the clock stands still)."""
        for _ in range(SETTLE_ROUNDS):
            moved = await self.rt.scheduler.fire_due()
            moved += await self.rt.calls.call_due()
            moved += await self.rt.dispatch_once()
            if not moved:
                return
        raise _StepFailed(f"the engine did not settle after {SETTLE_ROUNDS} rounds")

    async def advance(self, by: timedelta) -> None:
        target = self.clock.now() + by
        await self.settle()
        while True:
            async with self.rt.db.transaction() as conn:
                nxt = await timers.next_due(conn)
            if nxt is None or nxt > target:
                break
            self.clock.at = max(self.clock.at, nxt)
            await self.settle()
        self.clock.at = target
        await self.settle()

    async def _event(self, kind: str, data: dict[str, Any]) -> None:
        event = EventInput(kind, ContactInput(self.phone), data)
        try:
            async with self.rt.db.transaction() as conn:
                await ingest(conn, self.rt.workspace_id, event, self.rt.catalog, self.rt.acceptance, self.clock.now(), self.rt.flows)
        except EventError as exc:
            raise _StepFailed(f"the event was refused: {exc}") from None
        await self.settle()

    async def _start(self, spec: dict[str, Any]) -> None:
        name = spec.get("flow", self.flow)
        async with self.rt.db.transaction() as conn:
            started = await self.rt.flows.start(
                conn, self.rt.workspace_id, name, self.contact, self.clock.now(), trigger="api",
                event={"id": None, "type": "api", "data": spec.get("data") or {}}, variables=spec.get("vars") or {},
            )
        if started.run.status == "failed":
            raise _StepFailed(f"the run failed at once: {started.run.error}")
        await self.settle()

    # -- checking -------------------------------------------------------------------------

    async def _texts(self) -> list[str]:
        got = await self._simulator.phone_messages(self.phone, limit=10_000)
        return [m.body for m in got if m.direction == "received"]

    async def _expect(self, pattern: Any) -> None:
        texts = await self._texts()
        fresh = texts[self.seen:]
        if pattern == "nothing" or pattern is None:
            if fresh:
                raise _StepFailed(f"expected no text, got {fresh[0]!r}" + (f" (and {len(fresh) - 1} more)" if len(fresh) > 1 else ""))
            return
        if not fresh:
            raise _StepFailed(f"expected a text matching {pattern!r}, got none" + self._context(texts))
        text = fresh[0]
        self.seen += 1
        self.result.transcript.append(f"  {self.flow or 'flow'}: {text}")
        if not re.search(str(pattern), text, re.IGNORECASE | re.DOTALL):
            raise _StepFailed(f"expected a text matching {pattern!r}, got {text!r}")

    def _context(self, texts: list[str]) -> str:
        return f" (the phone got {len(texts)} text(s) so far; last: {texts[-1]!r})" if texts else " (the phone got no text at all)"

    async def _latest_run(self, flow: str | None) -> flow_store.Run | None:
        async with self.rt.db.transaction() as conn:
            rows = await flow_store.page(conn, self.rt.workspace_id, contact_id=self.contact.id, flow=flow or None,
                                    status=None, limit=1, cursor=None)
        return rows[0] if rows else None

    async def _run(self, spec: Any) -> None:
        wanted = spec if isinstance(spec, dict) else {"status": spec}
        run = await self._latest_run(wanted.get("flow", self.flow))
        if run is None:
            raise _StepFailed(f"no run of flow {wanted.get('flow', self.flow)!r} for the contact")
        for key in ("status", "outcome", "waiting"):
            if key in wanted and getattr(run, key) != wanted[key]:
                detail = f"; error: {run.error}" if run.error else ""
                raise _StepFailed(f"run {key} is {getattr(run, key)!r}, expected {wanted[key]!r}{detail}")
        for name, value in (wanted.get("vars") or {}).items():
            got = _dig(run.state.vars, name)
            if got != value:
                raise _StepFailed(f"run vars.{name} is {got!r}, expected {value!r}")

    async def _thread(self, expected: str) -> None:
        async with self.rt.db.transaction() as conn:
            thread = await threads.of_contact(conn, self.rt.workspace_id, self.contact.id)
        status = thread.status if thread else None
        if (status or "none") != expected:
            raise _StepFailed(f"the inbox thread is {status or 'none'}, expected {expected}")

    async def _close_thread(self) -> None:
        async with self.rt.db.transaction() as conn:
            thread = await threads.of_contact(conn, self.rt.workspace_id, self.contact.id)
            if thread is None:
                raise _StepFailed("there is no inbox thread to close")
            await self.rt.flows.close_thread(conn, self.rt.workspace_id, thread, self.clock.now())
        await self.settle()

    def _called(self, spec: Any) -> None:
        wanted = spec if isinstance(spec, dict) else {"url": spec}
        for made in self.calls.made:
            if made["url"] != wanted.get("url", made["url"]) or made["method"] != wanted.get("method", made["method"]).upper():
                continue
            if "json" in wanted and not _subset(wanted["json"], made["json"]):
                continue
            return
        seen = "; ".join(f"{m['method']} {m['url']} {json.dumps(m['json'])}" for m in self.calls.made) or "none"
        raise _StepFailed(f"no call like {wanted!r} was made (calls: {seen})")


def _subset(wanted: Any, got: Any) -> bool:
    if isinstance(wanted, dict):
        return isinstance(got, dict) and all(k in got and _subset(v, got[k]) for k, v in wanted.items())
    return bool(wanted == got)


def _dig(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data
