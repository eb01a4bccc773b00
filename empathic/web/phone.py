"""The phone: the built-in simulator's virtual numbers, one at a time on screen like a phone.

/phone lists the numbers this workspace's texts went to through the simulator (and those that
texted in), with a box to open any number; /phone/{number} shows what it received and sent,
updating live (static/phone.js re-reads `GET /v1/simulator/phones/{phone}/messages` on each
message event of /live). An agent or admin replies as that person
(the simulator's `phone_sends`, as `POST /v1/simulator/phones/{phone}/messages` does) and
tries any flow on the number: starting it (as `POST /v1/flows/{name}/runs` does) or firing
its event (as `POST /v1/events`), with the event data of its first transcript test.

The simulator's phones text the server's default workspace, so only that workspace has them
(another workspace's page says so and shows nothing, as the API answers it 404).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import yaml
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from empathic.channels.simulator import PhoneMessage, Simulator
from empathic.core.errors import InputError
from empathic.core.json import Json
from empathic.core.limits import DATA_LIMIT, json_size
from empathic.core.phones import InvalidPhoneNumber, normalize
from empathic.engine.events import ContactInput, EventInput, ingest, upsert_contact
from empathic.engine.runtime import Runtime, runtime_of
from empathic.store import contacts as contact_store
from empathic.store import flows as flow_store
from empathic.store import sim_phones
from empathic.web.auth import Person, acting, signed_in
from empathic.web.pages import render

router = APIRouter(include_in_schema=False)
SignedIn = Annotated[Person, Depends(signed_in)]
Acting = Annotated[Person, Depends(acting)]
SHOWN = 200  # the newest texts a phone shows
MAX_BODY = 5000
TRIGGER = "web:phone"  # a run started from the phone page
_STARTED = re.compile(r"(flow|event) [A-Za-z0-9._:-]{1,100}")


@dataclass(frozen=True, slots=True)
class Tryout:
    """A flow as the phone page offers it: how it starts, and event data to start it with."""

    name: str
    events: list[str]
    keywords: list[str]
    event: str | None  # the event "Fire its event" sends (its first transcript test's, else its first)
    example: str  # JSON: its first transcript test's event data, else {}


@dataclass(frozen=True, slots=True)
class Shown:
    """A text as the phone shows it."""

    direction: str  # received | sent
    body: str
    at: str  # ISO 8601
    when: str  # "2026-03-03 10:00 UTC"
    receipt: str | None


@router.get("/phone", response_class=HTMLResponse)
async def phones_page(request: Request, person: SignedIn, number: str | None = None) -> Response:
    rt = runtime_of(request)
    unavailable = _unavailable(rt, person)
    error = None
    if number and unavailable is None:
        try:
            return RedirectResponse(_url(normalize(number, rt.settings.default_region)), status_code=303)
        except InvalidPhoneNumber as exc:
            error = f"“{number}” is not a phone number we can read: {exc.detail}"
    seen: list[sim_phones.PhoneSeen] = []
    if unavailable is None:
        async with rt.db.transaction() as conn:
            seen = await sim_phones.phones(conn, person.workspace_id)
    return render(request, "phones.html", status=422 if error else 200, person=person, phones=seen,
                  unavailable=unavailable, error=error, number=number or "", url=_url)


@router.get("/phone/{number}", response_class=HTMLResponse)
async def phone_page(
    number: str, request: Request, person: SignedIn, started: str | None = None, flow: str | None = None
) -> Response:
    rt = runtime_of(request)
    found = _phone(request, rt, person, number)
    if isinstance(found, Response):
        return found
    if f"/phone/{found}" != request.url.path:  # one address per number: its E.164 form
        return RedirectResponse(_url(found), status_code=303)
    shown = started if started and _STARTED.fullmatch(started) else None  # never any text a link carries
    return await _show(request, rt, person, found, notice=f"Started: {shown}." if shown else None, chosen=flow)


@router.post("/phone/{number}", response_model=None)
async def phone_sends(number: str, request: Request, person: Acting) -> Response:
    """The phone texts the business number (what a person would type on it)."""
    rt = runtime_of(request)
    found = _phone(request, rt, person, number)
    if isinstance(found, Response):
        return found
    form = await request.form()
    body = str(form.get("body") or "").strip()
    wants_json = "application/json" in request.headers.get("accept", "")
    error = None
    if not body:
        error = "Type the text the phone sends."
    elif len(body) > MAX_BODY:
        error = f"A text is at most {MAX_BODY} characters."
    elif not _storable(body):
        error = "A text cannot hold a NUL character or half of a surrogate pair."
    if error is not None:
        if wants_json:
            return JSONResponse({"detail": error}, status_code=422)
        return await _show(request, rt, person, found, error=error, status=422, draft=str(form.get("body") or ""))
    message_id = await _simulator(rt).phone_sends(found, body)
    if wants_json:
        return JSONResponse({"phone": found, "message_id": message_id}, status_code=202)
    return RedirectResponse(_url(found), status_code=303)


@router.post("/phone/{number}/start", response_model=None)
async def start(number: str, request: Request, person: Acting) -> Response:
    """Try a flow on the number: start it, or fire its event (which starts every flow and
    trigger that listens to it)."""
    rt = runtime_of(request)
    found = _phone(request, rt, person, number)
    if isinstance(found, Response):
        return found
    form = await request.form()
    name, how, raw = str(form.get("flow") or ""), str(form.get("how") or "run"), str(form.get("data") or "{}")
    try:
        data = _data(raw)
        async with rt.db.transaction() as conn:
            head = (await flow_store.current(conn, person.workspace_id)).get(name)
            if head is None:
                raise InputError("flow", f"there is no flow {name!r} in this workspace")
            contact_input = ContactInput(phone=found)
            if how == "event":
                tryout = _tryout(rt, name, list(head["events"]), list(head["keywords"]))
                if tryout.event is None:
                    raise InputError("how", f"flow {name!r} is not started by an event")
                event = EventInput(tryout.event, contact_input, data)
                await ingest(conn, person.workspace_id, event, rt.catalog, rt.acceptance, rt.now(), rt.flows)
                what = f"event {tryout.event}"
            else:
                contact = await upsert_contact(conn, person.workspace_id, contact_input, rt.settings.default_region, rt.now())
                run = (await rt.flows.start(
                    conn, person.workspace_id, name, contact, rt.now(), trigger=TRIGGER,
                    event={"id": None, "type": "api", "data": data}, head=head,
                )).run
                if run.status in ("failed", "skipped"):
                    raise InputError("data", f"the run {run.status}: {run.error}")
                what = f"flow {name}"
    except InputError as exc:
        return await _show(request, rt, person, found, error=exc.detail, status=422, chosen=name, data=raw)
    rt.flows_moved()
    return RedirectResponse(f"{_url(found)}?started={quote(what)}&flow={quote(name)}", status_code=303)


async def _show(
    request: Request, rt: Runtime, person: Person, phone: str, *, notice: str | None = None, error: str | None = None,
    status: int = 200, draft: str = "", chosen: str | None = None, data: str | None = None,
) -> HTMLResponse:
    texts = await _simulator(rt).phone_messages(phone, workspace_id=person.workspace_id, limit=SHOWN)
    async with rt.db.transaction() as conn:
        contact = (await contact_store.by_phones(conn, person.workspace_id, [phone])).get(phone)
        heads = await flow_store.current(conn, person.workspace_id) if person.can_act else {}
    tryouts = [_tryout(rt, name, list(h["events"]), list(h["keywords"])) for name, h in sorted(heads.items())]
    if chosen not in {t.name for t in tryouts}:
        chosen = tryouts[0].name if tryouts else ""
    if data is not None:  # what was sent, to correct
        tryouts = [t if t.name != chosen else Tryout(t.name, t.events, t.keywords, t.event, data) for t in tryouts]
    return render(
        request, "phone.html", status=status, person=person, phone=phone, texts=[_shown(t) for t in texts],
        contact_id=contact.id if contact else "", business=_simulator(rt).sender, tryouts=tryouts,
        chosen=chosen, notice=notice, error=error, draft=draft,
        url=_url(phone),
    )


def _phone(request: Request, rt: Runtime, person: Person, number: str) -> str | HTMLResponse:
    """The number in E.164, or the page that says why there is none: another workspace has no
    phones (404, as the API answers it), or the number does not read (404)."""
    why = _unavailable(rt, person)
    if why is None:
        try:
            return normalize(number, rt.settings.default_region)
        except InvalidPhoneNumber as exc:
            why = f"“{number}” is not a phone number we can read: {exc.detail}"
    return render(request, "phone_missing.html", status=404, person=person, why=why)


def _unavailable(rt: Runtime, person: Person) -> str | None:
    if rt.simulator is None:
        return "This server's project declares no simulator channel, so there are no virtual phones."
    if person.workspace_id != rt.workspace_id:
        return "The built-in simulator's phones text this server's default workspace; this workspace has none."
    return None


def _simulator(rt: Runtime) -> Simulator:
    assert rt.simulator is not None  # _unavailable said so first
    return rt.simulator


def _url(phone: str) -> str:
    return f"/phone/{quote(phone, safe='+')}"  # E.164: a plus is itself in a path


def _shown(text: PhoneMessage) -> Shown:
    return Shown(text.direction, text.body, text.at, text.at[:16].replace("T", " ") + " UTC", text.receipt)


def _data(raw: str) -> Json:
    try:
        data = json.loads(raw or "{}")
    except ValueError as exc:
        raise InputError("data", f"the event data is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError("data", "the event data is a JSON object, like {\"order_id\": \"A-1\"}")
    if not all(_storable(text) for text in _strings(data)):
        raise InputError("data", "the event data cannot hold a NUL character or half of a surrogate pair")
    if json_size(data) > DATA_LIMIT:
        raise InputError("data", f"the event data is more than {DATA_LIMIT // 1024} KiB as JSON")
    return data


def _storable(text: str) -> bool:
    """Text both databases keep as it is (PostgreSQL refuses NUL; UTF-8 has no lone surrogates)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _strings(value: object) -> list[str]:
    """Every key and text in a JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [t for v in value for t in _strings(v)]
    return []


def _tryout(rt: Runtime, name: str, events: list[str], keywords: list[str]) -> Tryout:
    root = rt.project.root
    event, data = _example(str(root / "flows" / f"{name}.test.yaml")) if root is not None else (None, None)
    return Tryout(name, events, keywords, event or (events[0] if events else None),
                  json.dumps(data if data is not None else {}, indent=2, ensure_ascii=False))


@lru_cache(maxsize=128)
def _example(path: str) -> tuple[str | None, Json | None]:
    """The first event of a flow's first transcript test (`<flow>.test.yaml`): its type and data."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None, None
    for case in (document or {}).get("tests") or []:
        for step in (case or {}).get("script") or []:
            if isinstance(step, dict) and "event" in step:
                data = step.get("data")
                return str(step["event"]), data if isinstance(data, dict) else {}
    return None, None
