"""The phone pages (/phone, /phone/{number}): the simulator's numbers this workspace has seen,
one number's conversation, replying from it and trying a flow on it (agent/admin), per role
and workspace; everything escaped."""

from __future__ import annotations

import re

import httpx
import pytest

from empathic.api.app import create_app

from empathic.engine.runtime import Runtime
from empathic.store import sim_phones
from tests.conftest import eventually
from tests.web.conftest import BASE_URL, SignedInClient, signed_in_client

PHONE = "+14155550461"
HOSTILE = "<img src=x onerror=alert(1)>"


async def texts_on(client: SignedInClient, phone: str) -> list[tuple[str, str]]:
    html = (await client.get(f"/phone/{phone}")).text
    return [(d, re.sub(r"\s+", " ", b).strip()) for d, b in
            re.findall(r'<li class="text (received|sent)">.*?<p class="body">(.*?)</p>', html, re.S)]


async def start_fraud_alert(client: SignedInClient, phone: str = PHONE, how: str = "run") -> None:
    data = '{"amount": "$12.50", "merchant": "CAFE", "card_last4": "4242"}'
    answer = await client.post(f"/phone/{phone}/start", data={"csrf": client.csrf, "flow": "fraud-alert", "data": data, "how": how})
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == f"/phone/{phone}?started=" + ("flow%20fraud-alert" if how == "run" else "event%20card.suspicious_charge") + "&flow=fraud-alert"


async def test_an_agent_starts_a_flow_and_answers_it_from_the_phone(runtime: Runtime) -> None:
    async with await signed_in_client(runtime, "agent") as agent:
        page = await agent.get(f"/phone/{PHONE}")
        assert page.status_code == 200 and "No texts yet." in page.text
        assert 'option value="fraud-alert" data-example="{\n  &#34;amount&#34;: &#34;$249.99&#34;' in page.text  # its transcript's data
        await start_fraud_alert(agent)
        started = await agent.get(f"/phone/{PHONE}?started=flow%20fraud-alert")
        assert "Started: flow fraud-alert." in started.text

        async def asked() -> list[tuple[str, str]] | None:
            got = await texts_on(agent, PHONE)
            return got if got and "Was this you?" in got[0][1] else None

        (first,) = await eventually(asked)
        assert first[0] == "received" and "$12.50 at CAFE" in first[1]
        sent = await agent.post(f"/phone/{PHONE}", data={"csrf": agent.csrf, "body": "yes it was me"},
                                headers={"Accept": "application/json"})
        assert sent.status_code == 202 and sent.json()["phone"] == PHONE and sent.json()["message_id"]

        async def answered() -> list[tuple[str, str]] | None:
            got = await texts_on(agent, PHONE)
            return got if len(got) >= 3 else None

        got = await eventually(answered)
        assert got[1] == ("sent", "yes it was me") and got[2][0] == "received" and got[2][1].startswith("Thanks for confirming!")
        listed = (await agent.get("/phone")).text
        assert f'<a href="/phone/{PHONE}">{PHONE}</a>' in listed
        async with runtime.db.transaction() as conn:
            (seen,) = await sim_phones.phones(conn, runtime.workspace_id)
        assert seen.phone == PHONE and seen.texts == 3


async def test_firing_a_flows_event_starts_it(runtime: Runtime) -> None:
    async with await signed_in_client(runtime, "admin") as admin:
        await start_fraud_alert(admin, "+14155550462", how="event")
        got = await eventually(lambda: texts_on(admin, "+14155550462"))
        assert "Was this you?" in got[0][1]


async def test_a_number_opens_in_its_e164_form_and_a_bad_one_says_why(runtime: Runtime) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(runtime)), base_url=BASE_URL) as anon:
        answer = await anon.get("/phone/+14155550463")
        assert answer.status_code == 303 and answer.headers["location"].startswith("/?next=")
        assert (await anon.post("/phone/+14155550463", data={"body": "hi"})).status_code == 401
    async with await signed_in_client(runtime, "viewer") as viewer:
        opened = await viewer.get("/phone", params={"number": "(415) 555-0463"})
        assert opened.status_code == 303 and opened.headers["location"] == "/phone/+14155550463"
        again = await viewer.get("/phone/4155550463")
        assert again.status_code == 303 and again.headers["location"] == "/phone/+14155550463"
        bad = await viewer.get("/phone", params={"number": "12"})
        assert bad.status_code == 422 and "“12” is not a phone number we can read" in bad.text and 'aria-invalid="true"' in bad.text
        missing = await viewer.get("/phone/not-a-number")
        assert missing.status_code == 404 and "is not a phone number we can read" in missing.text


async def test_a_viewer_reads_but_cannot_text_or_start(runtime: Runtime) -> None:
    async with await signed_in_client(runtime, "agent") as agent:
        await start_fraud_alert(agent, "+14155550464")
    async with await signed_in_client(runtime, "viewer") as viewer:
        await eventually(lambda: texts_on(viewer, "+14155550464"))
        page = (await viewer.get("/phone/+14155550464")).text
        assert 'id="reply"' not in page and 'id="start"' not in page and "A viewer can read this phone" in page
        refused = await viewer.post("/phone/+14155550464", data={"csrf": viewer.csrf, "body": "hi"})
        assert refused.status_code == 403
        refused = await viewer.post("/phone/+14155550464/start", data={"csrf": viewer.csrf, "flow": "fraud-alert"})
        assert refused.status_code == 403
        assert len(await texts_on(viewer, "+14155550464")) == 1  # nothing sent
    async with await signed_in_client(runtime, "agent") as agent:
        forged = await agent.post("/phone/+14155550464", data={"body": "hi"})  # no CSRF token
        assert forged.status_code == 403


async def test_another_workspace_sees_no_phone_and_none_of_these_texts(runtime: Runtime) -> None:
    async with await signed_in_client(runtime, "agent") as agent:
        await start_fraud_alert(agent, "+14155550465")
        await eventually(lambda: texts_on(agent, "+14155550465"))
    async with await signed_in_client(runtime, "admin", workspace_id="ws_other") as other:
        listed = await other.get("/phone")
        assert listed.status_code == 200 and "this workspace has none" in listed.text and "+14155550465" not in listed.text
        page = await other.get("/phone/+14155550465")
        assert page.status_code == 404 and "Was this you" not in page.text
        sent = await other.post("/phone/+14155550465", data={"csrf": other.csrf, "body": "hi"})
        assert sent.status_code == 404
        started = await other.post("/phone/+14155550465/start", data={"csrf": other.csrf, "flow": "fraud-alert"})
        assert started.status_code == 404
    async with runtime.db.transaction() as conn:
        assert await sim_phones.phones(conn, "ws_other") == []


@pytest.mark.parametrize("field", ["body", "data"])
async def test_texts_and_bad_input_are_shown_as_text(runtime: Runtime, field: str) -> None:
    phone = "+14155550466"
    async with await signed_in_client(runtime, "agent") as agent:
        if field == "body":
            sent = await agent.post(f"/phone/{phone}", data={"csrf": agent.csrf, "body": HOSTILE})
            assert sent.status_code == 303
            got = await eventually(lambda: texts_on(agent, phone))
            assert got[0] == ("sent", "&lt;img src=x onerror=alert(1)&gt;")
            page = (await agent.get(f"/phone/{phone}")).text
            assert HOSTILE not in page
            empty = await agent.post(f"/phone/{phone}", data={"csrf": agent.csrf, "body": "  "})
            assert empty.status_code == 422 and "Type the text the phone sends." in empty.text
            nul = await agent.post(f"/phone/{phone}", data={"csrf": agent.csrf, "body": "a\x00b"})
            assert nul.status_code == 422 and "NUL" in nul.text
        else:
            bad = await agent.post(f"/phone/{phone}/start", data={"csrf": agent.csrf, "flow": "fraud-alert", "data": HOSTILE})
            assert bad.status_code == 422 and "the event data is not JSON" in bad.text
            assert HOSTILE not in bad.text and "&lt;img src=x onerror=alert(1)&gt;" in bad.text  # kept to correct
            nul = await agent.post(f"/phone/{phone}/start", data={"csrf": agent.csrf, "flow": "fraud-alert", "data": '{"a": "\\u0000", "b": "\\ud800"}'})
            assert nul.status_code == 422 and "NUL" in nul.text
            listed = await agent.post(f"/phone/{phone}/start", data={"csrf": agent.csrf, "flow": "fraud-alert", "data": "[1]"})
            assert listed.status_code == 422 and "is a JSON object" in listed.text
            nothing = await agent.post(f"/phone/{phone}/start", data={"csrf": agent.csrf, "flow": "no-such", "data": "{}"})
            assert nothing.status_code == 422 and "no flow &#39;no-such&#39;" in nothing.text
            keyword = await agent.post(f"/phone/{phone}/start", data={"csrf": agent.csrf, "flow": "order-by-text", "how": "event"})
            assert keyword.status_code == 422 and "is not started by an event" in keyword.text
        injected = await agent.get(f"/phone/{phone}", params={"started": "flow x<b>"})
        assert "Started:" not in injected.text
