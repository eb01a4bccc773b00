"""GET /live, the pages' live updates, opened as a browser opens it: over the ASGI app, as a
stream (httpx's own ASGITransport reads a whole answer first: an endless one never comes back,
so `Streaming` below hands the body over as the app sends it, and closing it disconnects)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from empathic.api.app import create_app
from empathic.engine.runtime import Runtime
from empathic.web import live
from tests.conftest import eventually
from tests.e2e.browser import DESKTOP, Pages, browser, shot  # noqa: F401 (browser: a fixture)
from tests.e2e.server import Server
from tests.patience import patient
from tests.web.conftest import BASE_URL, SignedInClient, signed_in_client

PHONE = "+14155550140"


class Streaming(httpx.AsyncBaseTransport):
    """An ASGI app as a server streams it: the answer's body as it comes."""

    def __init__(self, app: Any) -> None:  # Any: an ASGI application
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = b"".join([chunk async for chunk in request.stream])  # type: ignore[union-attr]  # an async request
        started: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()  # Any: an ASGI message
        chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        gone = asyncio.Event()
        asked = False

        async def receive() -> dict[str, Any]:  # Any: an ASGI message
            nonlocal asked
            if not asked:
                asked = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:  # Any: an ASGI message
            if message["type"] == "http.response.start":
                started.set_result(message)
            elif message["type"] == "http.response.body":
                await chunks.put(message.get("body", b""))
                if not message.get("more_body"):
                    await chunks.put(None)

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw], "scheme": request.url.scheme,
            "path": request.url.path, "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query, "server": (request.url.host, request.url.port),
            "client": ("127.0.0.1", 123), "root_path": "",
        }

        def ended(task: asyncio.Task[None]) -> None:
            if not started.done():
                started.set_exception(RuntimeError(f"the app answered nothing: {task}"))
            chunks.put_nowait(None)

        task = asyncio.create_task(self.app(scope, receive, send))
        task.add_done_callback(ended)
        start = await started

        class Body(httpx.AsyncByteStream):
            async def __aiter__(self) -> AsyncIterator[bytes]:
                while (chunk := await chunks.get()) is not None:
                    yield chunk

            async def aclose(self) -> None:
                gone.set()
                try:
                    await asyncio.wait_for(task, 5)
                except TimeoutError:
                    task.cancel()

        return httpx.Response(start["status"], headers=start["headers"], stream=Body())


@asynccontextmanager
async def stream(runtime: Runtime, person: SignedInClient, last_event_id: str | None = None) -> AsyncIterator[Events]:
    """The person's /live stream, open until the block ends."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    async with httpx.AsyncClient(transport=Streaming(create_app(runtime)), base_url=BASE_URL,
                                 cookies=person.cookies) as client:
        async with client.stream("GET", "/live", headers=headers) as response:
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
            events = Events(response)
            assert await events.line() == "retry: 2000"  # joined: what happens from now on comes
            yield events


class Events:
    """The server-sent events of a stream, read as they come."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()
        self.seen: list[tuple[str, str, dict[str, Any]]] = []  # (id, kind, data); Any: the event's JSON

    async def line(self) -> str:
        return await asyncio.wait_for(anext(self.lines), patient(5))

    async def until(self, wanted: Any, timeout: float = 5) -> list[tuple[str, str, dict[str, Any]]]:  # Any: a test
        """Read events until one satisfies `wanted(kind, data)`; all read so far."""
        async def read() -> None:
            fields: dict[str, str] = {}
            while True:
                line = await anext(self.lines)
                if line:
                    name, _, value = line.partition(": ")
                    fields[name] = value
                    continue
                if "event" in fields:
                    self.seen.append((fields["id"], fields["event"], json.loads(fields["data"])))
                    if wanted(fields["event"], self.seen[-1][2]):
                        return
                fields = {}

        await asyncio.wait_for(read(), patient(timeout))
        return self.seen


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "POLL", 0.05)


async def text_in(api: httpx.AsyncClient, body: str) -> str:
    response = await api.post(f"/v1/simulator/phones/{PHONE}/messages", json={"body": body})
    assert response.status_code == 202, response.text
    return response.json()["message_id"]


async def test_a_stream_shows_its_workspaces_texts_and_no_other(api: httpx.AsyncClient, runtime: Runtime) -> None:
    async with (
        await signed_in_client(runtime, "viewer") as ours,
        await signed_in_client(runtime, "admin", workspace_id="ws_other") as theirs,
        stream(runtime, ours) as mine,
        stream(runtime, theirs) as other,
    ):
        hub = live.hub_of(runtime)
        assert set(hub.rooms) == {runtime.workspace_id, "ws_other"}  # one poller per workspace
        message_id = await text_in(api, "Where is my parcel?")
        seen = await mine.until(lambda kind, data: kind == "message" and data["id"] == message_id)
        assert seen[-1][2]["direction"] == "inbound" and seen[-1][2]["thread_id"]
        assert any(kind == "thread" for _, kind, _ in await mine.until(lambda kind, _: kind == "thread"))
        await asyncio.sleep(live.POLL * 4)  # the other workspace's poller looked a few times meanwhile
        with pytest.raises(TimeoutError):
            await other.until(lambda kind, data: True, timeout=0.2)
        assert other.seen == []

    async def nobody_polls() -> bool:
        return not hub.rooms

    assert await eventually(nobody_polls)  # every stream gone: the poller stopped


async def test_streams_of_one_workspace_share_one_poller_and_a_reconnect_resumes(
    api: httpx.AsyncClient, runtime: Runtime
) -> None:
    async with await signed_in_client(runtime, "agent") as person:
        async with stream(runtime, person) as first, stream(runtime, person) as second:
            (room,) = live.hub_of(runtime).rooms.values()
            assert len(room.listeners) == 2
            message_id = await text_in(api, "Hello")
            for each in (first, second):
                await each.until(lambda kind, data: kind == "message" and data["id"] == message_id)
            last_id = first.seen[-1][0]
        missed = await text_in(api, "Are you there?")  # while no stream was open
        async with stream(runtime, person, last_event_id=last_id) as again:
            seen = await again.until(lambda kind, data: kind == "message" and data["id"] == missed)
            assert message_id not in {data.get("id") for _, kind, data in seen if kind == "message"}


def test_a_colleagues_reply_that_arrives_live_still_warns_before_sending(tmp_path: Path, browser: Pages) -> None:  # noqa: F811
    """The thread page re-reads its timeline on each live event, but the reply form keeps the
    last message the page was drawn with: a reply a colleague sent meanwhile is asked about."""
    admin, password, number = "agent@example.com", "some-password-123", "+14155550141"
    server = Server(tmp_path / "data", tmp_path, env={"EMPATHIC_BOOTSTRAP_ADMIN": f"{admin}:{password}"})
    try:
        server.start()
        with server.client() as api:
            api.post(f"/v1/simulator/phones/{number}/messages", json={"body": "Is anyone there?"}).raise_for_status()
            thread_id = api.get("/v1/inbox").json()["data"][0]["id"]
            page = browser.page(DESKTOP)
            page.goto(f"{server.url}/inbox/{thread_id}")
            page.get_by_label("Email").fill(admin)
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_label("Your reply").fill("I am, how can I help?")
            expect(page.locator("html[data-live=on]")).to_have_count(1)
            api.post(f"/v1/inbox/{thread_id}/messages", json={"body": "A colleague here."}).raise_for_status()
            expect(page.locator("#timeline")).to_contain_text("A colleague here.")  # arrived live
            page.get_by_role("button", name="Send reply").click()
            expect(page.get_by_role("status").filter(has_text="Someone else replied")).to_be_visible()
            expect(page.get_by_role("button", name="Send anyway")).to_be_visible()
            shot(page, tmp_path, "colleague-replied")
    finally:
        for context in browser.browser.contexts:
            context.close()
        server.terminate()
