"""The inbox pages (/inbox, /inbox/{id}) per role and workspace, and the live stream's reads
(web/live.py) against the real database."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import event as sa_event

from empathic.api.app import create_app
from empathic.engine.runtime import Runtime
from empathic.store import keys
from empathic.store import threads as thread_store
from empathic.web import inbox, live
from tests.conftest import eventually
from tests.web.conftest import SignedInClient, signed_in_client

PHONE = "+14155550180"
HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture
async def agent(runtime: Runtime) -> AsyncIterator[SignedInClient]:
    client = await signed_in_client(runtime, "agent")
    async with client:
        yield client


async def text_in(api: httpx.AsyncClient, body: str, phone: str = PHONE) -> str:
    response = await api.post(f"/v1/simulator/phones/{phone}/messages", json={"body": body})
    assert response.status_code == 202, response.text
    return response.json()["message_id"]


async def thread_id(api: httpx.AsyncClient, phone: str = PHONE) -> str:
    found = (await api.get("/v1/inbox", params={"status": "any"})).json()["data"]
    return next(t["id"] for t in found if t["contact"]["phone"] == phone)


def form_value(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, name
    return found.group(1)


async def received(api: httpx.AsyncClient, phone: str = PHONE) -> list[str]:
    messages = (await api.get(f"/v1/simulator/phones/{phone}/messages")).json()["messages"]
    return [m["body"] for m in messages if m["direction"] == "received"]


async def test_names_and_bodies_are_text_and_reading_clears_the_badge(api: httpx.AsyncClient, agent: SignedInClient) -> None:
    await api.post("/v1/contacts", json={"phone": PHONE, "attributes": {"first_name": HOSTILE}})
    await text_in(api, f"hi {HOSTILE} can we do friday at 3?")
    page = await agent.get("/inbox")
    assert page.status_code == 200 and "Content-Security-Policy" in page.headers
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text and HOSTILE not in page.text
    assert 'class="badge"' in page.text and "The person wrote something no keyword or flow handles." in page.text
    tid = await thread_id(api)
    thread = await agent.get(f"/inbox/{tid}")
    assert thread.status_code == 200 and HOSTILE not in thread.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in thread.text
    assert 'class="intent">reschedule<' in thread.text and "language en" in thread.text  # what was understood
    assert 'class="badge"' not in (await agent.get("/inbox")).text  # read now
    await text_in(api, "hello?")
    assert re.search(r'class="badge".*?</span>1</span>', (await agent.get("/inbox")).text, re.S)


async def test_filters_and_search(api: httpx.AsyncClient, agent: SignedInClient) -> None:
    await api.post("/v1/contacts", json={"phone": PHONE, "attributes": {"name": "Ada Lovelace"}})
    await text_in(api, "Where is my order?")
    await text_in(api, "Hello", "+14155550181")
    tid = await thread_id(api)
    mine = await agent.post(f"/inbox/{tid}/assign", data={"csrf": agent.csrf, "user_id": "me"})
    assert mine.status_code == 303
    assert "Ada Lovelace" in (await agent.get("/inbox?show=mine")).text
    unassigned = (await agent.get("/inbox?show=unassigned")).text
    assert "Ada Lovelace" not in unassigned and "+14155550181" in unassigned
    assert "Ada Lovelace" in (await agent.get("/inbox", params={"q": "(415) 555-0180"})).text
    assert "Ada Lovelace" in (await agent.get("/inbox", params={"q": "lovelace"})).text
    assert "Ada Lovelace" not in (await agent.get("/inbox", params={"q": "grace"})).text
    wrong = await agent.get("/inbox?show=everything")
    assert wrong.status_code == 422 and "There is no list called" in wrong.text
    assert f"Assigned to {agent.email}" in (await agent.get(f"/inbox/{tid}")).text
    assert "Nothing here" in (await agent.get("/inbox?show=closed")).text


async def test_a_reply_form_sends_once_and_shows_a_colleagues_reply_first(
    api: httpx.AsyncClient, agent: SignedInClient, runtime: Runtime
) -> None:
    await text_in(api, "Is anyone there?")
    tid = await thread_id(api)
    mine = (await agent.get(f"/inbox/{tid}")).text
    async with await signed_in_client(runtime, "agent") as colleague:
        theirs = (await colleague.get(f"/inbox/{tid}")).text
        form = {"csrf": agent.csrf, "body": "Yes, I'm here!", "idempotency_key": form_value(mine, "idempotency_key"),
                "last_seen": form_value(mine, "last_seen")}
        first, second = await asyncio.gather(  # a double click
            agent.post(f"/inbox/{tid}/reply", data=form), agent.post(f"/inbox/{tid}/reply", data=form)
        )
        assert (first.status_code, second.status_code) == (303, 303)
        again = await agent.post(f"/inbox/{tid}/reply", data=form)  # the same form, sent later
        assert again.status_code == 303
        late = {"csrf": colleague.csrf, "body": "Hi, how can I help?",
                "idempotency_key": form_value(theirs, "idempotency_key"), "last_seen": form_value(theirs, "last_seen")}
        warned = await colleague.post(f"/inbox/{tid}/reply", data=late)
        assert warned.status_code == 409 and "Someone else replied" in warned.text
        assert "Yes, I&#39;m here!" in warned.text and 'name="anyway" value="1"' in warned.text
        assert "Hi, how can I help?</textarea>" in warned.text  # their draft is kept
        deliberate = await colleague.post(f"/inbox/{tid}/reply", data={**late, "anyway": "1"})
        assert deliberate.status_code == 303
    assert await eventually(lambda: _at_least(api, 2)) == ["Yes, I'm here!", "Hi, how can I help?"]
    await asyncio.sleep(0.3)
    assert len(await received(api)) == 2
    blank = await agent.post(f"/inbox/{tid}/reply", data={**form, "body": "  ", "idempotency_key": "k2"})
    assert blank.status_code == 422 and "Write a reply first." in blank.text


async def _at_least(api: httpx.AsyncClient, n: int) -> list[str] | None:
    texts = await received(api)
    return texts if len(texts) >= n else None


async def test_notes_assignment_and_closing_resumes_the_flow(
    api: httpx.AsyncClient, agent: SignedInClient, runtime: Runtime
) -> None:
    await text_in(api, "SUPPORT")
    await eventually(lambda: _at_least(api, 1))
    await text_in(api, "3")  # something else: a person
    await eventually(lambda: _at_least(api, 2))
    tid = await thread_id(api)
    page = (await agent.get(f"/inbox/{tid}")).text
    assert "A flow handed the conversation to a person." in page and "Internet support." in page
    assert "Closing gives the conversation back to the flow" in page
    noted = await agent.post(f"/inbox/{tid}/notes", data={"csrf": agent.csrf, "body": f"Router model {HOSTILE}"})
    assert noted.status_code == 303
    page = (await agent.get(noted.headers["location"])).text
    assert "Note added." in page and "Router model &lt;img" in page and "(never sent)" in page
    assert (await agent.post(f"/inbox/{tid}/notes", data={"csrf": agent.csrf, "body": ""})).status_code == 422
    async with await signed_in_client(runtime, "viewer") as viewer:
        refused = await agent.post(f"/inbox/{tid}/assign", data={"csrf": agent.csrf, "user_id": viewer.user_id})
        assert refused.status_code == 422 and "agent or admin" in refused.text
    closed = await agent.post(f"/inbox/{tid}/close", data={"csrf": agent.csrf})
    assert closed.status_code == 303
    texts = await eventually(lambda: _at_least(api, 3))
    assert texts[2].startswith("Your support chat is now closed")  # the flow went on, as its step says
    assert all("Router model" not in t for t in texts)
    view = (await api.get("/v1/inbox", params={"status": "closed"})).json()["data"]
    assert [t["id"] for t in view] == [tid]
    await text_in(api, "one more thing")  # the person opens it again: theirs now, not the flow's
    (again,) = (await api.get("/v1/inbox")).json()["data"]
    assert (again["id"], again["why"], again["run_id"], again["note"]) == (tid, "free_text", None, None)


async def test_a_viewer_reads_but_changes_nothing(api: httpx.AsyncClient, runtime: Runtime) -> None:
    await text_in(api, "Hello there")
    tid = await thread_id(api)
    async with await signed_in_client(runtime, "viewer") as viewer:
        page = await viewer.get(f"/inbox/{tid}")
        assert page.status_code == 200 and "Hello there" in page.text
        assert 'method="post" action="/inbox/' not in page.text and "a viewer cannot reply" in page.text
        for action, data in [("reply", {"body": "hi", "idempotency_key": "v1"}), ("notes", {"body": "n"}),
                             ("assign", {"user_id": "me"}), ("close", {})]:
            answer = await viewer.post(f"/inbox/{tid}/{action}", data={"csrf": viewer.csrf, **data})
            assert answer.status_code == 403, action
    assert await received(api) == []
    assert (await api.get("/v1/inbox")).json()["data"][0]["assigned_to"] is None


async def test_another_workspace_sees_no_thread(api: httpx.AsyncClient, runtime: Runtime) -> None:
    await text_in(api, "Hello there")
    tid = await thread_id(api)
    async with runtime.db.transaction() as conn:
        await keys.ensure_workspace(conn, "ws_b", "b", runtime.now())
    async with await signed_in_client(runtime, "admin", workspace_id="ws_b") as stranger:
        assert "Hello there" not in (await stranger.get("/inbox")).text
        missing = await stranger.get(f"/inbox/{tid}")
        assert missing.status_code == 404 and "Hello there" not in missing.text
        for action, data in [("reply", {"body": "hi", "idempotency_key": "b1"}), ("notes", {"body": "n"}),
                             ("assign", {"user_id": "me"}), ("close", {})]:
            answer = await stranger.post(f"/inbox/{tid}/{action}", data={"csrf": stranger.csrf, **data})
            assert answer.status_code == 404, action
    assert await received(api) == []


async def test_signed_out_people_are_sent_to_sign_in(runtime: Runtime) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(runtime)),
                                 base_url="https://empathic.test") as browser:
        page = await browser.get("/inbox")
        assert page.status_code == 303 and page.headers["location"] == "/?next=%2Finbox"


async def test_the_live_stream_reads_new_messages_and_thread_changes(api: httpx.AsyncClient, runtime: Runtime) -> None:
    ws = runtime.workspace_id
    async with runtime.db.transaction() as conn:
        cursor = await live.start(conn, ws, runtime.now())
        assert await live.changes(conn, ws, cursor) == []
    inbound = await text_in(api, "Where is it?")
    tid = await thread_id(api)

    async def seen() -> list[live.Event]:
        async with runtime.db.transaction() as conn:
            return await live.changes(conn, ws, cursor)

    events = await seen()
    assert live.Event("message", {"id": inbound, "contact_id": events[0].data["contact_id"], "thread_id": tid,
                                  "direction": "inbound", "status": "received"}) in events
    assert live.Event("thread", {"id": tid, "status": "open", "assigned_to": None}) in events
    assert await seen() == []  # the cursor moved past them
    resumed = live.Cursor.parse(str(cursor))
    assert resumed is not None and resumed.event_id == cursor.event_id
    assert live.Cursor.parse("nonsense") is None and live.Cursor.parse(None) is None
    await api.post(f"/v1/inbox/{tid}/close")
    assert [e.data for e in await seen() if e.kind == "thread"] == [{"id": tid, "status": "closed", "assigned_to": None}]
    reply = (await api.post(f"/v1/inbox/{tid}/messages", json={"body": "ok"})).json()

    async def statuses() -> list[str]:
        return [e.data["status"] for e in await seen() if e.kind == "message" and e.data["id"] == reply["id"]]

    got: list[str] = []

    async def delivered() -> bool:
        got.extend(await statuses())
        return "delivered" in got

    await eventually(delivered)
    assert got[0] == "queued"
    async with runtime.db.transaction() as conn:  # another workspace's stream sees none of it
        await keys.ensure_workspace(conn, "ws_b", "b", runtime.now())
        assert await live.changes(conn, "ws_b", live.Cursor(0, 0)) == []


async def test_the_pages_scripts_read_the_api_as_the_person(api: httpx.AsyncClient, agent: SignedInClient) -> None:
    await text_in(api, "Hello?")
    tid = await thread_id(api)
    listed = (await agent.get("/v1/inbox")).json()["data"]  # the session cookie, no key
    assert [(t["id"], t["unread"]) for t in listed] == [(tid, 1)]
    csrf = {"X-CSRF-Token": agent.csrf}
    note = await agent.post(f"/v1/inbox/{tid}/notes", json={"body": "checking"}, headers=csrf)
    assert note.status_code == 201 and note.json()["author"]["email"] == agent.email
    preview = await agent.post(f"/v1/inbox/{tid}/preview", json={"body": "On it"}, headers=csrf)
    assert preview.status_code == 200 and preview.json()["segments"] == 1
    timeline = (await agent.get(f"/v1/inbox/{tid}/timeline")).json()
    assert [e["kind"] for e in timeline["entries"]] == ["message", "note"]
    assert (await agent.get("/v1/inbox")).json()["data"][0]["unread"] == 0  # the page's live re-read counts
    assert (await agent.post(f"/v1/inbox/{tid}/preview", json={"body": "x"})).status_code == 403  # no CSRF token


async def test_the_template_picker_offers_what_renders_for_the_contact(api: httpx.AsyncClient, agent: SignedInClient) -> None:
    await api.post("/v1/contacts", json={"phone": PHONE, "attributes": {"first_name": HOSTILE}})
    made = await api.put("/v1/templates/greeting", json={"body": "Hi {{ contact.attributes.first_name }}, how can we help?"})
    assert made.status_code in (200, 201), made.text
    await text_in(api, "Hello")
    page = (await agent.get(f"/inbox/{await thread_id(api)}")).text
    assert '<option value="greeting" data-text="Hi &lt;img src=x onerror=alert(1)&gt;, how can we help?">' in page
    assert 'value="order_out_for_delivery"' not in page  # needs an event's data: not offered by hand


def test_a_live_event_is_one_server_sent_event() -> None:
    event = live.Event("thread", {"id": "th_1", "status": "open", "assigned_to": None})
    assert event.encode(live.Cursor(5, 1700000000000)) == (
        b'id: 5.1700000000000\nevent: thread\ndata: {"id": "th_1", "status": "open", "assigned_to": null}\n\n'
    )


async def test_two_agents_answering_at_once_take_turns(api: httpx.AsyncClient, agent: SignedInClient, runtime: Runtime) -> None:
    """Two people send at the same moment from pages drawn before either reply: one goes, the
    other is told a colleague replied (the contact is locked while one reply is decided)."""
    await text_in(api, "Anyone?")
    tid = await thread_id(api)
    async with await signed_in_client(runtime, "agent") as colleague:
        forms = []
        for who, body in ((agent, "Me, here."), (colleague, "Hello, I can help.")):
            html = (await who.get(f"/inbox/{tid}")).text
            forms.append((who, {"csrf": who.csrf, "body": body, "idempotency_key": form_value(html, "idempotency_key"),
                                "last_seen": form_value(html, "last_seen")}))
        answers = await asyncio.gather(*(who.post(f"/inbox/{tid}/reply", data=form) for who, form in forms))
    assert sorted(a.status_code for a in answers) == [303, 409]
    (warned,) = [a for a in answers if a.status_code == 409]
    assert "Someone else replied" in warned.text
    (sent,) = [form["body"] for (_, form), a in zip(forms, answers) if a.status_code == 303]
    assert await eventually(lambda: _at_least(api, 1)) == [sent]
    await asyncio.sleep(0.3)
    assert await received(api) == [sent]


async def test_a_form_sent_again_with_other_words_is_not_taken_for_the_first(
    api: httpx.AsyncClient, agent: SignedInClient
) -> None:
    """Back, edit, send again: the form's key already sent a text; the new words are not lost
    silently (409 with the draft kept). A web form's key is not an API client's key either."""
    await text_in(api, "Is my order late?")
    tid = await thread_id(api)
    html = (await agent.get(f"/inbox/{tid}")).text
    form = {"csrf": agent.csrf, "body": "Let me check.", "idempotency_key": form_value(html, "idempotency_key"),
            "last_seen": form_value(html, "last_seen")}
    assert (await agent.post(f"/inbox/{tid}/reply", data=form)).status_code == 303
    edited = await agent.post(f"/inbox/{tid}/reply", data={**form, "body": "It left today."})
    assert edited.status_code == 409 and "already sent a different reply" in edited.text
    assert "It left today.</textarea>" in edited.text
    assert form_value(edited.text, "idempotency_key") != form["idempotency_key"]  # a new form: sending it goes
    assert await eventually(lambda: _at_least(api, 1)) == ["Let me check."]

    by_api = await api.post(f"/v1/inbox/{tid}/messages", json={"body": "From the API.", "idempotency_key": "shared-1"})
    assert by_api.status_code == 202
    html = (await agent.get(f"/inbox/{tid}")).text
    web = {"csrf": agent.csrf, "body": "From the page.", "idempotency_key": "shared-1",
           "last_seen": form_value(html, "last_seen")}
    assert (await agent.post(f"/inbox/{tid}/reply", data=web)).status_code == 303
    assert await eventually(lambda: _at_least(api, 3)) == ["Let me check.", "From the API.", "From the page."]


async def test_the_list_pages_older_threads(
    api: httpx.AsyncClient, agent: SignedInClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox, "PAGE", 2)
    for n in range(3):
        await text_in(api, f"text {n}", f"+1415555019{n}")
    first = await agent.get("/inbox")
    assert first.status_code == 200
    assert re.findall(r'class="who">([^<]+)<', first.text) == ["+14155550192", "+14155550191"]
    assert 'data-limit="2"' in first.text and "data-first-page" in first.text  # the live re-read: this page only
    older = re.search(r'<a href="([^"]+)" rel="next" id="older">Older threads</a>', first.text)
    assert older
    second = await agent.get(older.group(1).replace("&amp;", "&"))
    assert re.findall(r'class="who">([^<]+)<', second.text) == ["+14155550190"]
    assert "data-first-page" not in second.text and 'hidden rel="next" id="older"' in second.text
    assert "Newest threads" in second.text
    wrong = await agent.get("/inbox", params={"after": "yesterday"})
    assert wrong.status_code == 422 and "not one this list gave" in wrong.text


async def test_unread_counts_start_when_the_thread_opens_in_one_query(
    api: httpx.AsyncClient, agent: SignedInClient, runtime: Runtime
) -> None:
    await text_in(api, "HELP")  # a keyword: answered, no thread
    await text_in(api, "HELP")
    await asyncio.sleep(0.01)
    await text_in(api, "My parcel never came")  # opens the thread
    tid = await thread_id(api)
    assert re.search(r'class="badge".*?</span>1</span>', (await agent.get("/inbox")).text, re.S)
    await api.post(f"/v1/inbox/{tid}/close")
    await asyncio.sleep(0.01)
    await text_in(api, "Still waiting")  # opens it again: counted from here for who never read it
    async with await signed_in_client(runtime, "agent") as newcomer:
        assert re.search(r'class="badge".*?</span>1</span>', (await newcomer.get("/inbox")).text, re.S)
    for n in range(3):
        await text_in(api, f"another {n}", f"+1415555017{n}")
    async with runtime.db.transaction() as conn:
        found = await thread_store.page(conn, runtime.workspace_id, status=None, limit=10, cursor=None)
        statements: list[str] = []

        def count(*args: object) -> None:
            statements.append(str(args[2]))

        sa_event.listen(conn.sync_connection, "before_cursor_execute", count)
        counts = await thread_store.unread(conn, runtime.workspace_id, agent.user_id, found)
        sa_event.remove(conn.sync_connection, "before_cursor_execute", count)
    assert len(found) == 4 and sorted(counts.values()) == [1, 1, 1, 1]
    assert len(statements) == 1  # one grouped count for the page, not one per thread


async def test_a_name_search_folds_accents(api: httpx.AsyncClient, agent: SignedInClient) -> None:
    await api.post("/v1/contacts", json={"phone": PHONE, "attributes": {"first_name": "JOSÉ", "last_name": "ÑÚÑEZ"}})
    await text_in(api, "hola")
    await text_in(api, "hello", "+14155550181")
    page = (await agent.get("/inbox", params={"q": "josé ñúñez"})).text
    assert "JOSÉ ÑÚÑEZ" in page and "+14155550181" not in page
    assert [t["contact"]["phone"] for t in (await agent.get("/v1/inbox", params={"q": "José"})).json()["data"]] == [PHONE]


async def test_the_live_cursor_passes_many_threads_of_one_millisecond(
    api: httpx.AsyncClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "BATCH", 2)
    ids = [(await api.post("/v1/contacts", json={"phone": f"+1415555016{n}"})).json()["id"] for n in range(5)]
    now = runtime.now()
    async with runtime.db.transaction() as conn:
        cursor = await live.start(conn, runtime.workspace_id, now - timedelta(seconds=1))
        made = {await thread_store.open_for(conn, runtime.workspace_id, contact_id, None, now) for contact_id in ids}
    seen: list[str] = []
    for _ in range(5):
        async with runtime.db.transaction() as conn:
            seen += [e.data["id"] for e in await live.changes(conn, runtime.workspace_id, cursor) if e.kind == "thread"]
    assert sorted(seen) == sorted(made)  # each once, though more than BATCH share one updated_at
    assert live.Cursor.parse(str(cursor)) == cursor and cursor.thread_id == max(made)
