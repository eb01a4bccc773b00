"""Flows on the running engine, on SQLite and PostgreSQL: API, triggers, replies, timers,
calls to a real HTTP server on loopback, hand-off, conversations that wait for each other,
opt-out, and a restart in the middle of a conversation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from empathic.api.app import create_app
from empathic.engine.runtime import Runtime
from tests.conftest import API_KEY, POSTGRES_URL, daytime_zone, eventually, make_settings, postgres_schema
from tests.integration.conftest import Receiver

CONFIG = """\
[sender]
name = "Test Shop"
number = "+18005550100"

[topics]
deals = "marketing"
"""

FLOWS = {
    "confirm": """\
flow: confirm
trigger: {event: booking.made}
steps:
  - id: q
    ask: "Booking {{ event.data.ref }}: reply A to confirm, B to cancel"
    expect:
      - {option: A, goto: yes}
      - {option: B, goto: no}
  - {id: yes, send: "Confirmed {{ event.data.ref }}", next: fin}
  - {id: no, send: "Cancelled {{ event.data.ref }}"}
  - {id: fin, end: answered}
""",
    "menu": """\
flow: menu
trigger: {keyword: MENU}
steps:
  - ask: "Menu: 1 hours, 2 talk to us ({{ event.data.args or 'no args' }})"
    expect:
      - {option: "1", goto: hours}
      - {option: "2", goto: person}
  - {id: hours, send: "We open 9 to 5", next: fin}
  - id: person
    handoff: {note: "Asked for a person from the menu", then: resume}
  - send: "Thanks for talking to us"
  - {id: fin, end: done}
""",
    "urgent": """\
flow: urgent
priority: 50
when_busy: interrupt
trigger: {event: card.alert}
steps:
  - ask: "Was this you? YES or NO"
    expect: [{intent: confirm}, {intent: decline}]
""",
    "polite": """\
flow: polite
when_busy: skip
trigger: {event: polite.ping}
steps:
  - ask: "Quick question?"
    expect: [{any: true}]
""",
    "lookup": """\
flow: lookup
trigger: {event: order.lookup}
steps:
  - call:
      url: "{{ event.data.url }}"
      body: {order: "{{ event.data.order }}"}
      save: {answer: "reply"}
      retries: 3
      on_failure: sorry
  - send: "Found it: {{ vars.answer }}"
    next: fin
  - id: sorry
    send: "Sorry, the lookup failed ({{ vars.call_error }})"
  - {id: fin, end: done}
""",
    "offer": """\
flow: offer
topic: deals
trigger: {event: offer.made}
steps:
  - ask: "Want 20% off your next order? Reply YES"
    expect: [{intent: confirm}]
  - send: "Here is your code: SAVE20"
""",
    "later": """\
flow: later
trigger: {event: later.please}
steps:
  - wait: {for: 1h}
  - ask: "How was it?"
    expect: [{any: true}]
""",
    "pause": """\
flow: pause
trigger: {event: pause.start}
steps:
  - wait: {for: 2s}
  - send: "After the pause"
""",
}


def write_project(root: Path) -> Path:
    (root / "flows").mkdir(parents=True)
    (root / "empathic.toml").write_text(CONFIG)
    for name, text in FLOWS.items():
        (root / "flows" / f"{name}.yaml").write_text(text)
    return root


@pytest.fixture(params=["sqlite", "postgresql"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    project = write_project(tmp_path / "project")
    if request.param == "sqlite":
        yield {"settings": lambda: make_settings(tmp_path, project_dir=project)}
        return
    async with postgres_schema(migrated=True) as schema:
        yield {"settings": lambda: make_settings(tmp_path, project_dir=project, database_url=POSTGRES_URL, database_schema=schema)}


@asynccontextmanager
async def running(backend: dict[str, Any]) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    rt = Runtime(backend["settings"]())
    await rt.start()
    try:
        transport = httpx.ASGITransport(app=create_app(rt))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://empathic.test", headers={"Authorization": f"Bearer {API_KEY}"}
        ) as api:
            yield rt, api
    finally:
        await rt.stop()


async def texts(rt: Runtime, phone: str) -> list[str]:
    return [m.body for m in await rt.simulator.phone_messages(phone, limit=1000) if m.direction == "received"]


async def wait_texts(rt: Runtime, phone: str, count: int) -> list[str]:
    async def enough() -> list[str] | None:
        got = await texts(rt, phone)
        return got if len(got) >= count else None

    return await eventually(enough)


async def event(api: httpx.AsyncClient, kind: str, phone: str, **data: Any) -> dict[str, Any]:
    response = await api.post(
        "/v1/events", json={"type": kind, "contact": {"phone": phone, "timezone": daytime_zone()}, "data": data}
    )
    assert response.status_code == 202, response.text
    return response.json()


async def runs(api: httpx.AsyncClient, **filters: str) -> list[dict[str, Any]]:
    return (await api.get("/v1/runs", params=filters)).json()["data"]


async def test_an_event_starts_a_conversation_that_the_reply_finishes(backend: dict[str, Any]) -> None:
    phone = "+14155550201"
    async with running(backend) as (rt, api):
        started = await event(api, "booking.made", phone, ref="R1")
        assert [r["flow"] for r in started["runs"]] == ["confirm"] and started["messages"][0]["body"].startswith("Booking R1")
        await wait_texts(rt, phone, 1)
        await rt.simulator.phone_sends(phone, "b")
        assert (await wait_texts(rt, phone, 2))[1] == "Cancelled R1"
        (run,) = await runs(api, flow="confirm")
        assert run["status"] == "done" and run["outcome"] == "answered" and run["ended_at"]
        answered = (await api.get("/v1/messages", params={"limit": 10})).json()["data"]
        cancelled = next(m for m in answered if m["body"] == "Cancelled R1")
        assert cancelled["in_reply_to"]  # an answer to the person's own text (not held by quiet hours)


async def test_a_run_keeps_the_version_it_started_with(backend: dict[str, Any]) -> None:
    phone = "+14155550202"
    async with running(backend) as (rt, api):
        await event(api, "booking.made", phone, ref="R2")
        await wait_texts(rt, phone, 1)
        changed = FLOWS["confirm"].replace("Confirmed {{ event.data.ref }}", "All set for {{ event.data.ref }}")
        put = await api.put("/v1/flows/confirm", content=changed, headers={"Content-Type": "application/yaml"})
        assert put.status_code == 201 and put.json()["version"] == 1 and put.json()["origin"] == "api"
        await rt.simulator.phone_sends(phone, "A")
        assert (await wait_texts(rt, phone, 2))[1] == "Confirmed R2"  # the project version it started on
        await event(api, "booking.made", phone, ref="R3")
        await wait_texts(rt, phone, 3)
        await rt.simulator.phone_sends(phone, "A")
        assert (await wait_texts(rt, phone, 4))[3] == "All set for R3"  # a new run takes the new version


async def test_flows_api_versions_validation_and_schema(backend: dict[str, Any]) -> None:
    async with running(backend) as (rt, api):
        listed = {f["name"]: f for f in (await api.get("/v1/flows")).json()["data"]}
        assert set(listed) == set(FLOWS) and listed["menu"]["trigger"] == {"events": [], "keywords": ["MENU"]}
        assert listed["menu"]["origin"] == "project"
        source = "flow: hello\ntrigger: {event: hi.there}\nsteps:\n  - send: hi\n"
        first = await api.put("/v1/flows/hello", json={"source": source})
        assert first.status_code == 201 and first.json()["version"] == 1
        same = await api.put("/v1/flows/hello", json={"source": source})
        assert same.status_code == 200 and same.json()["changed"] is False and same.json()["version"] == 1
        second = await api.put("/v1/flows/hello", content=source.replace("hi\n", "hello\n"), headers={"Content-Type": "text/plain"})
        assert second.json()["version"] == 2
        versions = (await api.get("/v1/flows/hello/versions")).json()["data"]
        assert [v["version"] for v in versions] == [1, 2]
        assert (await api.get("/v1/flows/hello", params={"version": 1})).json()["source"] == source
        bad = await api.put("/v1/flows/hello", content="flow: hello\nsteps:\n  - send: '{{ nope }}'\n  - wait: {for: soon}\n",
                            headers={"Content-Type": "application/yaml"})
        assert bad.status_code == 422
        assert {(e["line"], e["field"]) for e in bad.json()["errors"]} >= {(4, "steps[1].wait.for")}
        wrong_name = await api.put("/v1/flows/other", json={"source": source})
        assert wrong_name.status_code == 422 and "the address 'other'" in wrong_name.json()["detail"]
        sub = await api.put("/v1/flows/caller", json={"source": "flow: caller\nsteps:\n  - flow: missing\n"})
        assert sub.status_code == 422 and "subflow 'missing'" in sub.json()["detail"]
        clash = await api.put("/v1/flows/menu2", json={"source": "flow: menu2\ntrigger: {keyword: menu}\nsteps:\n  - send: x\n"})
        assert clash.status_code == 422 and "already starts flow 'menu'" in clash.json()["detail"]
        schema = (await api.get("/v1/flows/schema")).json()
        assert schema["title"].startswith("Empathic flow")
        assert (await api.delete("/v1/flows/hello")).status_code == 204
        assert (await api.get("/v1/flows/hello")).status_code == 404
        assert (await api.delete("/v1/flows/menu")).status_code == 404  # the project's file is not the API's to delete


async def test_api_start_replays_and_refuses_bad_data(backend: dict[str, Any]) -> None:
    phone = "+14155550203"
    async with running(backend) as (rt, api):
        body = {"contact": {"phone": phone, "timezone": daytime_zone()}, "data": {"ref": "R9"}, "idempotency_key": "k1"}
        first = await api.post("/v1/flows/confirm/runs", json=body)
        assert first.status_code == 201 and first.json()["status"] == "active" and first.json()["waiting_for"] == "reply"
        again = await api.post("/v1/flows/confirm/runs", json=body)
        assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
        missing = await api.post("/v1/flows/confirm/runs", json={"contact": {"phone": "+14155550299"}})
        assert missing.status_code == 422 and "event.data.ref is not defined" in missing.json()["detail"]
        assert (await api.post("/v1/flows/nope/runs", json={"contact": {"phone": phone}})).status_code == 404
        assert len(await wait_texts(rt, phone, 1)) == 1
        cancelled = await api.post(f"/v1/runs/{first.json()['id']}/cancel")
        assert cancelled.json()["status"] == "cancelled"
        assert (await api.post(f"/v1/runs/{first.json()['id']}/cancel")).status_code == 409


async def test_conversations_wait_their_turn_interrupt_or_skip(backend: dict[str, Any]) -> None:
    phone = "+14155550204"
    async with running(backend) as (rt, api):
        await event(api, "booking.made", phone, ref="Q1")
        second = await event(api, "booking.made", phone, ref="Q2")
        assert second["runs"][0]["status"] == "active" and second["messages"] == []  # parked before its question
        assert (await runs(api, flow="confirm"))[0]["waiting_for"] == "turn"
        skipped = await event(api, "polite.ping", phone)
        assert skipped["runs"][0]["status"] == "skipped"
        await wait_texts(rt, phone, 1)
        await rt.simulator.phone_sends(phone, "A")
        got = await wait_texts(rt, phone, 3)
        assert got[1:] == ["Confirmed Q1", "Booking Q2: reply A to confirm, B to cancel"]  # the parked one asks now
        urgent = await event(api, "card.alert", phone)
        assert urgent["runs"][0]["status"] == "active"
        confirm_runs = await runs(api, flow="confirm")
        assert [r["status"] for r in confirm_runs] == ["interrupted", "done"]
        await wait_texts(rt, phone, 4)
        await rt.simulator.phone_sends(phone, "yes it was me")
        await eventually(lambda: _status(api, "urgent", "done"))


async def _status(api: httpx.AsyncClient, flow: str, status: str, field: str = "status") -> bool:
    """The flow's latest run has `field` == `status`."""
    found = await runs(api, flow=flow)
    return bool(found) and found[0][field] == status


async def test_a_keyword_takes_over_and_a_handoff_resumes_when_closed(backend: dict[str, Any]) -> None:
    phone = "+14155550205"
    async with running(backend) as (rt, api):
        await event(api, "booking.made", phone, ref="K1")
        await wait_texts(rt, phone, 1)
        await rt.simulator.phone_sends(phone, "menu please")
        assert (await wait_texts(rt, phone, 2))[1] == "Menu: 1 hours, 2 talk to us (please)"
        assert (await runs(api, flow="confirm"))[0]["status"] == "interrupted"
        await rt.simulator.phone_sends(phone, "2")
        thread = (await eventually(lambda: _threads(api)))[0]
        assert thread["note"] == "Asked for a person from the menu" and thread["run_id"]
        await rt.simulator.phone_sends(phone, "is anyone there?")  # goes to the person, not the flow
        await asyncio.sleep(0.2)
        assert len(await texts(rt, phone)) == 2
        assert (await api.post(f"/v1/inbox/{thread['id']}/close")).status_code == 200
        assert (await wait_texts(rt, phone, 3))[2] == "Thanks for talking to us"
        await eventually(lambda: _status(api, "menu", "done"))


async def _threads(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    return (await api.get("/v1/inbox")).json()["data"]


async def test_stop_ends_every_run_of_the_person(backend: dict[str, Any]) -> None:
    phone = "+14155550206"
    async with running(backend) as (rt, api):
        await event(api, "booking.made", phone, ref="S1")
        await event(api, "booking.made", phone, ref="S2")
        await wait_texts(rt, phone, 1)
        await rt.simulator.phone_sends(phone, "please stop texting me")
        await wait_texts(rt, phone, 2)  # the one opt-out confirmation
        assert sorted(r["status"] for r in await runs(api, flow="confirm")) == ["stopped", "stopped"]
        await rt.simulator.phone_sends(phone, "A")
        await asyncio.sleep(0.3)
        assert len(await texts(rt, phone)) == 2


async def test_calls_retry_server_errors_and_fail_over_on_client_errors(backend: dict[str, Any], receiver: Receiver) -> None:
    phone = "+14155550207"
    receiver.script = [500, 503]  # then 200 "ok"
    async with running(backend) as (rt, api):
        await event(api, "order.lookup", phone, url=receiver.url, order="O-1")
        got = await wait_texts(rt, phone, 1)
        assert got == ["Found it: None"]  # the answer was text, not JSON: nothing at `reply`
        assert len(receiver.requests) == 3
        keys = {r.headers["idempotency-key"] for r in receiver.requests}
        assert len(keys) == 1 and next(iter(keys)).startswith("run_")  # the same call, recognisable as a repeat
        assert json.loads(receiver.requests[0].body) == {"order": "O-1"}
        receiver.script = [404]
        await event(api, "order.lookup", phone, url=receiver.url, order="O-2")
        assert (await wait_texts(rt, phone, 2))[1] == "Sorry, the lookup failed (HTTP 404)"
        assert len(receiver.requests) == 4  # a 404 is not retried


async def test_a_restart_in_the_middle_loses_nothing(backend: dict[str, Any]) -> None:
    phone = "+14155550208"
    async with running(backend) as (rt, api):
        await event(api, "booking.made", phone, ref="X1")
        await event(api, "pause.start", phone)
        await wait_texts(rt, phone, 1)
    async with running(backend) as (rt, api):  # a new process on the same database
        await rt.simulator.phone_sends(phone, "A")
        got = await wait_texts(rt, phone, 3)
        assert "Confirmed X1" in got and "After the pause" in got  # the reply, and the timer set before the restart


async def test_export_shows_runs_and_erasure_removes_them_and_their_timers(backend: dict[str, Any]) -> None:
    from sqlalchemy import func, select

    from empathic.store import schema

    phone = "+14155550209"
    async with running(backend) as (rt, api):
        started = await event(api, "pause.start", phone)
        await event(api, "booking.made", phone, ref="E1")
        await wait_texts(rt, phone, 1)
        await rt.simulator.phone_sends(phone, "hmm?")  # unclear: the retry text
        await wait_texts(rt, phone, 2)
        contact_id = started["contact_id"]

        async def settled() -> bool:
            page = (await api.get("/v1/messages", params={"contact_id": contact_id})).json()["data"]
            return all(m["status"] not in ("queued", "sending") for m in page)

        await eventually(settled)
        exported = (await api.get(f"/v1/contacts/{contact_id}/export")).json()
        by_flow = {r["flow"]: r for r in exported["flow_runs"]}
        assert by_flow["confirm"]["last_reply"]["text"] == "hmm?" and by_flow["pause"]["status"] == "active"
        assert (await api.delete(f"/v1/contacts/{contact_id}")).status_code == 204
        async with rt.db.transaction() as conn:
            left_runs = (await conn.execute(select(func.count()).select_from(schema.flow_runs))).scalar_one()
            left_timers = (await conn.execute(select(func.count()).where(schema.timers.c.kind.like("flow.%")))).scalar_one()
        assert (left_runs, left_timers) == (0, 0)


async def test_a_reply_to_a_question_that_never_arrived_goes_to_the_inbox(backend: dict[str, Any]) -> None:
    phone = "+14155550210"  # never subscribed to deals: the gate blocks the offer
    async with running(backend) as (rt, api):
        started = await event(api, "offer.made", phone)
        offer = started["messages"][0]

        async def blocked() -> bool:
            return (await api.get(f"/v1/messages/{offer['id']}")).json()["status"] == "blocked"

        await eventually(blocked)
        await rt.simulator.phone_sends(phone, "yes")
        threads = await eventually(lambda: _threads(api))
        assert threads[0]["last_message"]["body"] == "yes"
        (run,) = await runs(api, flow="offer")
        assert run["status"] == "failed" and "never reached the person (blocked" in run["error"]
        assert await texts(rt, phone) == []  # no code for a yes to nothing


async def test_a_keyword_waits_for_a_higher_priority_conversation(backend: dict[str, Any]) -> None:
    phone = "+14155550211"
    async with running(backend) as (rt, api):
        await event(api, "card.alert", phone)
        await wait_texts(rt, phone, 1)
        await rt.simulator.phone_sends(phone, "MENU")
        await eventually(lambda: _status(api, "menu", "turn", field="waiting_for"))
        assert (await runs(api, flow="urgent"))[0]["status"] == "active"  # not ended by a keyword
        await rt.simulator.phone_sends(phone, "no that wasn't me")
        got = await wait_texts(rt, phone, 2)
        assert got[1].startswith("Menu: 1 hours, 2 talk to us")  # asked once the alert was answered
        menu_text = next(m for m in (await api.get("/v1/messages", params={"limit": 10})).json()["data"]
                         if m["body"].startswith("Menu"))
        assert menu_text["in_reply_to"]


async def test_a_run_waiting_on_the_clock_blocks_no_conversation(backend: dict[str, Any]) -> None:
    phone = "+14155550212"
    async with running(backend) as (rt, api):
        later = await event(api, "later.please", phone)
        assert later["runs"][0]["status"] == "active"
        now = await event(api, "booking.made", phone, ref="T1")
        assert now["messages"] and now["messages"][0]["body"].startswith("Booking T1")
        await rt.simulator.phone_sends(phone, "A")
        assert (await wait_texts(rt, phone, 2))[1] == "Confirmed T1"
        assert (await runs(api, flow="later"))[0]["waiting_for"] == "timer"


async def test_a_call_cut_off_by_a_crash_is_made_again_after_its_lease(database: Any) -> None:
    from datetime import UTC, datetime, timedelta

    from empathic.store import timers

    now = datetime(2026, 3, 3, 12, tzinfo=UTC)
    call = timers.Timer("flow.call", "run_1", now, {"seq": 1}, None)
    async with database.transaction() as conn:
        await timers.schedule(conn, [call])
        first = await timers.lease_due(conn, "flow.call", now, 10, timedelta(seconds=90))
        assert [t.ref for _, t in first] == ["run_1"]
        assert await timers.lease_due(conn, "flow.call", now + timedelta(seconds=89), 10, timedelta(seconds=90)) == []
        assert await timers.claim_due(conn, now + timedelta(days=1), 10, skip=("flow.call",)) == []  # not the scheduler's
    # the process died mid-call: nothing took the timer, so once the lease runs out it is due again
    async with database.transaction() as conn:
        again = await timers.lease_due(conn, "flow.call", now + timedelta(seconds=91), 10, timedelta(seconds=90))
        assert [t.ref for _, t in again] == ["run_1"]
        assert await timers.take(conn, again[0][0]) is True
        assert await timers.take(conn, again[0][0]) is False  # a second finisher finds it gone


async def test_a_run_stored_by_a_newer_release_is_left_alone_and_holds_nothing(backend: dict[str, Any]) -> None:
    """After a rollback, a run whose state this release cannot read is not misread, and the
    person's texts still get through (to the inbox) instead of failing on it."""
    from sqlalchemy import update

    from empathic.store.schema import flow_runs

    phone = "+14155550231"
    async with running(backend) as (rt, api):
        await event(api, "booking.made", phone, ref="R9")
        await wait_texts(rt, phone, 1)
        (run,) = await runs(api, flow="confirm")
        async with rt.db.transaction() as conn:
            stored = (await conn.execute(flow_runs.select().where(flow_runs.c.id == run["id"]))).mappings().one()
            await conn.execute(update(flow_runs).where(flow_runs.c.id == run["id"])
                               .values(state={**stored["state"], "version": 99}))
        await rt.simulator.phone_sends(phone, "A")
        threads = await eventually(lambda: _threads(api))
        assert threads[0]["last_message"]["body"] == "A"
        async with rt.db.transaction() as conn:
            after = (await conn.execute(flow_runs.select().where(flow_runs.c.id == run["id"]))).mappings().one()
        assert after["status"] == "active" and after["state"]["version"] == 99  # untouched, for the newer release
        assert [r["id"] for r in await runs(api, flow="confirm")] == []  # not listed, not misread
        answer = await api.get(f"/v1/runs/{run['id']}")
        assert answer.status_code == 409 and "newer" in answer.json()["detail"]


async def test_a_newer_releases_run_keeps_its_timer_and_an_opt_out_still_ends_it(backend: dict[str, Any]) -> None:
    from sqlalchemy import select, update

    from empathic.store.schema import flow_runs, timers

    phone = "+14155550232"
    async with running(backend) as (rt, api):
        await event(api, "pause.start", phone)  # waits 2 s, then texts
        (run,) = await runs(api, flow="pause")
        async with rt.db.transaction() as conn:
            stored = (await conn.execute(flow_runs.select().where(flow_runs.c.id == run["id"]))).mappings().one()
            await conn.execute(update(flow_runs).where(flow_runs.c.id == run["id"])
                               .values(state={**stored["state"], "version": 99}))

        async def postponed() -> Any:
            async with rt.db.transaction() as conn:
                due = (await conn.execute(select(timers.c.due_at).where(timers.c.ref == run["id"]))).scalars().all()
            return due if due and min(due) > rt.now() + timedelta(minutes=50) else None

        assert len(await eventually(postponed)) == 1  # fired, not lost nor doubled: it waits for a release that can read it
        assert await texts(rt, phone) == []
        await rt.simulator.phone_sends(phone, "STOP")

        async def stopped() -> Any:
            async with rt.db.transaction() as conn:
                row = (await conn.execute(flow_runs.select().where(flow_runs.c.id == run["id"]))).mappings().one()
            return row if row["status"] == "stopped" else None

        assert (await eventually(stopped))["outcome"] == "opted_out"


async def test_a_timer_and_an_event_for_one_person_lock_in_the_same_order(backend: dict[str, Any]) -> None:
    """A timer's run is locked after its contact, as an event's conversation change is: an event
    holding the contact never waits for a run a timer locked first (that was a deadlock)."""
    from empathic.store import flows as run_store

    phone = "+14155550233"
    async with running(backend) as (rt, api):
        await event(api, "pause.start", phone)
        (listed,) = await runs(api, flow="pause")
        if rt.db.is_sqlite:
            return  # one writer at a time: nothing to order
        async with rt.db.transaction() as conn:
            run = (await run_store.runs_by_ids(conn, [listed["id"]]))[listed["id"]]
        contact_locked, event_done = asyncio.Event(), asyncio.Event()

        async def as_an_event() -> None:
            async with rt.db.transaction() as conn:
                await run_store.lock_contact(conn, run.workspace_id, run.contact_id)
                contact_locked.set()
                await asyncio.sleep(0.3)  # the timer's transaction starts meanwhile
                await run_store.open_runs(conn, run.workspace_id, run.contact_id)
                event_done.set()  # inside its transaction: the timer cannot be past the contact yet

        async def as_a_timer() -> None:
            await contact_locked.wait()
            async with rt.db.transaction() as conn:
                await run_store.runs_by_ids(conn, [run.id])
                assert event_done.is_set()  # it waited for the contact, holding no run

        await asyncio.wait_for(asyncio.gather(as_an_event(), as_a_timer()), timeout=10)


async def test_a_run_a_newer_release_stored_ends_no_page_of_runs_early(backend: dict[str, Any]) -> None:
    from sqlalchemy import update

    from empathic.store.schema import flow_runs

    async with running(backend) as (rt, api):
        for n, phone in enumerate(("+14155550235", "+14155550236", "+14155550237")):
            await event(api, "booking.made", phone, ref=f"P{n}")
        oldest, middle, newest = sorted(r["id"] for r in await runs(api, flow="confirm"))
        async with rt.db.transaction() as conn:
            state = (await conn.execute(flow_runs.select().where(flow_runs.c.id == middle))).mappings().one()["state"]
            await conn.execute(update(flow_runs).where(flow_runs.c.id == middle).values(state={**state, "version": 99}))
        first = (await api.get("/v1/runs", params={"limit": 1})).json()
        assert [r["id"] for r in first["data"]] == [newest] and first["next_cursor"] == newest
        second = (await api.get("/v1/runs", params={"limit": 1, "cursor": first["next_cursor"]})).json()
        assert [r["id"] for r in second["data"]] == [oldest] and second["next_cursor"] is None
