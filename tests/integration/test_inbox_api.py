"""The inbox over the API: what was heard in each text, filters, search, assignment, unread
counts, notes, the timeline with every decision, and the preview of a reply."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select

from empathic.core import sms
from empathic.engine.runtime import Runtime
from empathic.store import keys, readings, users
from empathic.store import threads as thread_store
from empathic.store.schema import message_events
from tests.conftest import daytime_zone, eventually

PHONE = "+14155550160"
OTHER = "+14155550161"


async def text_in(api: httpx.AsyncClient, body: str, phone: str = PHONE) -> str:
    response = await api.post(f"/v1/simulator/phones/{phone}/messages", json={"body": body})
    assert response.status_code == 202, response.text
    return response.json()["message_id"]


async def threads(api: httpx.AsyncClient, **params: str) -> list[dict]:
    response = await api.get("/v1/inbox", params=params)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def person(runtime: Runtime, role: str = "agent", workspace_id: str | None = None) -> str:
    async with runtime.db.transaction() as conn:
        user = await users.create(
            conn, workspace_id or runtime.workspace_id, f"{role}-{users.new_token()[:6].lower()}@example.com", role,
            "not-a-real-hash", runtime.now(),
        )
    return user.id


def night_zone() -> str:
    """A fixed-offset zone where it is around 3 in the morning now (quiet hours)."""
    offset = (3 - datetime.now(UTC).hour + 12) % 24 - 12
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/UTC"


async def test_each_text_is_stored_with_what_was_heard(api: httpx.AsyncClient, runtime: Runtime) -> None:
    await api.post("/v1/contacts", json={"phone": PHONE, "timezone": "America/New_York"})
    moved = await text_in(api, "can we do thurs 4 instead?")
    stop = await text_in(api, "STOP", OTHER)
    leave = await text_in(api, "stop deals", "+14155550162")
    thread = (await threads(api))[0]
    assert thread["why"] == "free_text"
    timeline = (await api.get(f"/v1/inbox/{thread['id']}/timeline")).json()
    assert timeline["timezone"] == "America/New_York"
    (entry,) = [e for e in timeline["entries"] if e["id"] == moved]
    reading = entry["reading"]
    assert reading["intent"] == "reschedule" and reading["language"] == "en" and reading["keyword"] is None
    assert 0 < reading["confidence"] <= 1
    start = datetime.fromisoformat(reading["proposed_start"]).astimezone(ZoneInfo("America/New_York"))
    assert (start.weekday(), start.hour) == (3, 16)  # Thursday, 4 pm in the contact's zone
    assert entry["at"]["contact"].endswith(("-05:00", "-04:00"))  # shown in the contact's time too
    async with runtime.db.transaction() as conn:
        heard = await readings.of_messages(conn, runtime.workspace_id, [stop, moved, leave])
    assert heard[stop].keyword == "stop" and heard[stop].intent is None
    assert heard[leave].keyword == "stop:deals"
    assert heard[moved].proposed_start == start


async def test_filters_search_assignment_and_unread(api: httpx.AsyncClient, runtime: Runtime) -> None:
    await api.post("/v1/contacts", json={"phone": PHONE, "attributes": {"first_name": "Ada", "last_name": "Lovelace"}})
    await api.post("/v1/contacts", json={"phone": OTHER, "attributes": {"name": "Grace Hopper"}})
    await text_in(api, "Where is my parcel?")
    await text_in(api, "Hello? anyone there", OTHER)
    agent, viewer = await person(runtime), await person(runtime, "viewer")
    listed = await threads(api, reader=agent)
    assert [t["contact"]["phone"] for t in listed] == [OTHER, PHONE]  # newest activity first
    assert [t["unread"] for t in listed] == [1, 1] and all(t["assignee"] is None for t in listed)
    ada = listed[1]

    for q in ["(415) 555-0160", "415.555.0160", "+1 415 555 0160", "0160", "ada", "LOVELACE", "ada love"]:
        assert [t["id"] for t in await threads(api, q=q)] == [ada["id"]], q
    assert [t["contact"]["phone"] for t in await threads(api, q="grace")] == [OTHER]
    assert await threads(api, q="nobody") == [] and await threads(api, q="%") == []

    assigned = await api.post(f"/v1/inbox/{ada['id']}/assign", json={"user_id": agent})
    assert assigned.status_code == 200 and assigned.json()["assigned_to"] == agent
    assert [t["id"] for t in await threads(api, assigned_to=agent)] == [ada["id"]]
    assert [t["contact"]["phone"] for t in await threads(api, assigned_to="none")] == [OTHER]
    assert (await threads(api))[0]["id"] == ada["id"]  # assigning is activity: it moved up
    for bad in [viewer, "usr_nobody"]:  # a viewer cannot answer threads; a stranger is nobody's
        refused = await api.post(f"/v1/inbox/{ada['id']}/assign", json={"user_id": bad})
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "user_id", refused.text
    stranger = await person(runtime, "agent", workspace_id=await other_workspace(runtime))
    assert (await api.post(f"/v1/inbox/{ada['id']}/assign", json={"user_id": stranger})).status_code == 422
    unassigned = await api.post(f"/v1/inbox/{ada['id']}/assign", json={"user_id": None})
    assert unassigned.json()["assigned_to"] is None

    async with runtime.db.transaction() as conn:
        await thread_store.mark_read(conn, ada["id"], agent, runtime.now())
        await thread_store.mark_read(conn, ada["id"], agent, runtime.now())  # again: an update
    await text_in(api, "still waiting")
    await text_in(api, "hello??")
    by_id = {t["id"]: t for t in await threads(api, reader=agent)}
    assert by_id[ada["id"]]["unread"] == 2
    assert {t["id"]: t["unread"] for t in await threads(api, reader=viewer)}[ada["id"]] == 3  # never read it

    await api.post(f"/v1/inbox/{ada['id']}/close")
    assert [t["id"] for t in await threads(api, status="closed")] == [ada["id"]]
    assert len(await threads(api, status="any")) == 2
    page = (await api.get("/v1/inbox", params={"status": "any", "limit": 1})).json()
    rest = (await api.get("/v1/inbox", params={"status": "any", "limit": 1, "cursor": page["next_cursor"]})).json()
    assert page["data"][0]["id"] != rest["data"][0]["id"] and rest["next_cursor"] is None
    bad = await api.get("/v1/inbox", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")


async def other_workspace(runtime: Runtime) -> str:
    async with runtime.db.transaction() as conn:
        await keys.ensure_workspace(conn, "ws_other", "other", runtime.now())
    return "ws_other"


async def test_notes_are_in_the_timeline_and_never_sent(api: httpx.AsyncClient, runtime: Runtime) -> None:
    inbound = await text_in(api, "My order never came")
    thread = (await threads(api))[0]
    note = await api.post(f"/v1/inbox/{thread['id']}/notes", json={"body": "Called the courier <b>twice</b>"})
    assert note.status_code == 201, note.text
    assert note.json()["body"] == "Called the courier <b>twice</b>" and note.json()["author"] is None
    assert (await api.post(f"/v1/inbox/{thread['id']}/notes", json={"body": "   "})).status_code == 422
    reply = await api.post(f"/v1/inbox/{thread['id']}/messages", json={"body": "Sorry! Resending today."})
    entries = (await api.get(f"/v1/inbox/{thread['id']}/timeline")).json()["entries"]
    assert [e["kind"] for e in entries] == ["message", "note", "message"]
    assert [e.get("id") for e in entries if e["kind"] == "message"] == [inbound, reply.json()["id"]]
    phone = (await api.get(f"/v1/simulator/phones/{PHONE}/messages")).json()["messages"]
    await eventually(lambda: _received(api, 1))
    assert all("courier" not in m["body"] for m in phone)


async def _received(api: httpx.AsyncClient, n: int) -> bool:
    messages = (await api.get(f"/v1/simulator/phones/{PHONE}/messages")).json()["messages"]
    return len([m for m in messages if m["direction"] == "received"]) >= n


async def test_the_timeline_shows_each_decision_with_until_and_why(api: httpx.AsyncClient, runtime: Runtime) -> None:
    contact = (await api.post("/v1/contacts", json={"phone": PHONE, "timezone": night_zone()})).json()
    await text_in(api, "Can I talk to someone?")
    reply_thread = (await threads(api))[0]
    # Not a reply: a conversational text at 3 in the morning waits for the morning.
    sent = await api.post("/v1/messages", json={"to": PHONE, "body": "We'll call you at 9", "topic": "conversational"})
    assert sent.status_code == 202, sent.text

    async def deferred() -> list[dict] | None:
        entries = (await api.get(f"/v1/inbox/{reply_thread['id']}/timeline")).json()["entries"]
        (entry,) = [e for e in entries if e.get("id") == sent.json()["id"]]
        return entry["history"] if entry["history"][-1]["status"] == "deferred" else None

    history = await eventually(deferred)
    step = history[-1]
    assert step["reason"] == "quiet_hours" and "allowed sending hours" in step["why"]
    until = datetime.fromisoformat(step["until"]["utc"])
    assert until > datetime.now(UTC)
    assert datetime.fromisoformat(step["until"]["contact"]).hour == 8  # the rules' first allowed hour, local
    async with runtime.db.transaction() as conn:
        stored = (await conn.execute(
            select(message_events.c.until).where(message_events.c.message_id == sent.json()["id"],
                                                 message_events.c.status == "deferred")
        )).scalar()
    assert stored == until
    view = (await api.get(f"/v1/messages/{sent.json()['id']}")).json()
    assert view["events"][-1]["until"] == until.isoformat()
    assert contact["id"] == view["contact_id"]


async def test_preview_counts_like_the_server_and_asks_the_gate(api: httpx.AsyncClient) -> None:
    await text_in(api, "Is my order late?")
    thread = (await threads(api))[0]
    url = f"/v1/inbox/{thread['id']}/preview"
    for body in ["Hello there", "Price: 20€ {ok}", "Thanks 🙂 see you", "x" * 161, ""]:
        shown = (await api.post(url, json={"body": body})).json()
        count = sms.count(body)
        assert (shown["characters"], shown["encoding"], shown["segments"]) == (
            len(body), count.encoding.value, count.segments), body
    shown = (await api.post(url, json={"body": "Yes, it is on its way"})).json()
    assert shown["gate"] == {"decision": "send", "reason": None, "why": None, "until": None}
    reply = await api.post(f"/v1/inbox/{thread['id']}/messages", json={"body": "Yes, it is on its way"})
    assert reply.json()["segments"] == 1 and reply.json()["encoding"] == "gsm7"
    assert (await api.post(url, json={"body": "y" * 2000})).json()["too_long"] is True

    await text_in(api, "STOP")
    blocked = (await api.post(url, json={"body": "Are you sure?"})).json()["gate"]
    assert blocked["decision"] == "block" and blocked["reason"] == "opted_out" and "opted out" in blocked["why"]
    count = len((await api.get("/v1/messages", params={"limit": 200})).json()["data"])
    await api.post(url, json={"body": "nothing is stored"})
    assert len((await api.get("/v1/messages", params={"limit": 200})).json()["data"]) == count
    assert (await api.post("/v1/inbox/th_nope/preview", json={"body": "x"})).status_code == 404


async def test_a_reply_with_one_key_is_sent_once(api: httpx.AsyncClient) -> None:
    await text_in(api, "Anyone?")
    thread = (await threads(api))[0]
    url = f"/v1/inbox/{thread['id']}/messages"
    first, twin = await asyncio.gather(  # a double click: both at once
        api.post(url, json={"body": "Here!", "idempotency_key": "form-1"}),
        api.post(url, json={"body": "Here!", "idempotency_key": "form-1"}),
    )
    again = await api.post(url, json={"body": "Here!", "idempotency_key": "form-1"})
    assert first.status_code == twin.status_code == again.status_code == 202, twin.text
    assert first.json()["id"] == twin.json()["id"] == again.json()["id"]
    other = await api.post(url, json={"body": "Here!", "idempotency_key": "form-2"})  # a deliberate second
    assert other.json()["id"] != first.json()["id"]
    await eventually(lambda: _received(api, 2))
    await asyncio.sleep(0.2)
    messages = (await api.get(f"/v1/simulator/phones/{PHONE}/messages")).json()["messages"]
    assert len([m for m in messages if m["direction"] == "received"]) == 2


QUIZ = """flow: quiz
steps:
  - id: ask
    ask: "Is the delivery still welcome today?"
    expect:
      - intent: confirm
        goto: thanks
    retry: {count: 0}
    timeout: 48h
  - id: thanks
    send: "Thank you!"
"""


async def test_why_a_thread_is_there(api: httpx.AsyncClient) -> None:
    """A flow that cannot understand the answer and has no `on_unclear` hands it over as
    `unclear`; a `handoff` step as `handoff` (tests/web: support-diagnostics); else `free_text`."""
    assert (await api.put("/v1/flows/quiz", json={"source": QUIZ})).status_code in (200, 201)
    started = await api.post("/v1/flows/quiz/runs", json={"contact": {"phone": PHONE, "timezone": daytime_zone()}})
    assert started.status_code in (200, 201, 202), started.text
    await eventually(lambda: _received(api, 1))
    await text_in(api, "purple elephants")
    await text_in(api, "just a question", OTHER)
    why = {t["contact"]["phone"]: (t["why"], t["run_id"] is not None) for t in await threads(api)}
    assert why == {PHONE: ("unclear", True), OTHER: ("free_text", False)}
