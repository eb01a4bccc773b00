"""The flows pages (/flows, /flows/{name}): every role reads them; a flow drawn with its step
counts (this workspace's only) and its problems with line numbers; everything escaped."""

from __future__ import annotations

import re

import httpx
import pytest

from empathic.engine.events import ContactInput, upsert_contact
from empathic.engine.runtime import Runtime
from tests.web.conftest import signed_in_client

SURVEY = "post-purchase-survey"


async def start_survey(rt: Runtime, phone: str) -> None:
    async with rt.db.transaction() as conn:
        contact = await upsert_contact(conn, rt.workspace_id, ContactInput(phone, None, "Etc/UTC", None, None, {}),
                                       rt.settings.default_region, rt.now())
        started = await rt.flows.start(conn, rt.workspace_id, SURVEY, contact, rt.now(), trigger="api",
                                       event={"id": None, "type": "api", "data": {"order_id": "A-9"}})
    assert started.run.waiting in ("reply", "turn"), started.run


def cells(html: str, step: str) -> list[str]:
    row = re.search(rf'<tr id="step-{re.escape(step)}">(.*?)</tr>', html, re.S)
    assert row, f"no row for step {step}"
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row.group(1), re.S)]


@pytest.mark.parametrize("role", ["viewer", "agent", "admin"])
async def test_every_role_sees_the_flows_and_one_drawn(runtime: Runtime, role: str) -> None:
    async with await signed_in_client(runtime, role) as client:
        listed = await client.get("/flows")
        assert listed.status_code == 200 and "no-store" in listed.headers["cache-control"]
        for name in (SURVEY, "fraud-alert", "order-by-text"):
            assert f'href="/flows/{name}"' in listed.text
        assert "event <code>survey.requested</code>" in listed.text and "keyword <code>ORDER</code>" in listed.text
        page = await client.get(f"/flows/{SURVEY}")
        assert page.status_code == 200
        html = page.text
        assert '<svg class="flow-graph"' in html and "ask · score" in html and "handoff · 11" in html
        assert "No problems" in html
        assert cells(html, "score")[:3] == ["score line 10", "ask", "Hi {{ contact.attributes.first_name | d…"]
        assert "number 1–5 → 2" in cells(html, "score")[-1] and "timeout → no-answer" in cells(html, "score")[-1]
        assert '<li id="L10"><code>  - id: score</code></li>' in html  # the file, line by line


async def test_not_signed_in_is_sent_to_sign_in_and_a_missing_flow_is_404(runtime: Runtime) -> None:
    from empathic.api.app import create_app

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(runtime)), base_url="https://empathic.test") as anon:
        answer = await anon.get(f"/flows/{SURVEY}")
        assert answer.status_code == 303 and answer.headers["location"].startswith("/?next=")
    async with await signed_in_client(runtime, "viewer") as client:
        missing = await client.get("/flows/no-such-flow")
        assert missing.status_code == 404 and "no flow “no-such-flow”" in missing.text


async def test_step_counts_and_runs_are_this_workspaces_only(runtime: Runtime) -> None:
    await start_survey(runtime, "+14155550401")
    await start_survey(runtime, "+14155550402")
    async with await signed_in_client(runtime, "viewer") as mine:
        html = (await mine.get(f"/flows/{SURVEY}")).text
        assert cells(html, "score")[3:8] == ["0", "2", "0", "0", "0"]  # passed, waited, timed out, handed off, failed
        assert "2 waited" in html and "<dd>2:" in html and "2 active" in html
        listed = (await mine.get("/flows")).text
        row = re.search(rf'href="/flows/{SURVEY}".*?</tr>', listed, re.S)
        assert row and re.findall(r'<td class="num">(\d+)</td>', row.group(0)) == ["2", "2", "0", "0"]
    async with await signed_in_client(runtime, "admin", workspace_id="ws_other") as theirs:
        html = (await theirs.get(f"/flows/{SURVEY}")).text  # the project's flows are every workspace's
        assert cells(html, "score")[3:8] == ["0", "0", "0", "0", "0"] and "waited" not in html.split("<h2 id=\"steps-title\">")[0].split("<svg")[1]
        assert "<dd>0</dd>" in html
        listed = (await theirs.get("/flows")).text
        row = re.search(rf'href="/flows/{SURVEY}".*?</tr>', listed, re.S)
        assert row and re.findall(r'<td class="num">(\d+)</td>', row.group(0)) == ["0", "0", "0", "0"]


HOSTILE = "<img src=x onerror=alert(1)>"


async def test_a_flows_text_and_problems_are_shown_as_text_with_their_lines(runtime: Runtime, api: httpx.AsyncClient) -> None:
    sub = "flow: helper-sub\nsteps:\n  - send: hi\n"
    main = (
        "flow: main-x\n"
        f"description: \"{HOSTILE}\"\n"
        "steps:\n"
        f"  - send: \"{HOSTILE}\"\n"
        "  - flow: helper-sub\n"
    )
    for name, source in (("helper-sub", sub), ("main-x", main)):
        stored = await api.put(f"/v1/flows/{name}", content=source, headers={"Content-Type": "application/yaml"})
        assert stored.status_code == 201, stored.text
    assert (await api.delete("/v1/flows/helper-sub")).status_code == 204  # main-x now runs a flow that is gone
    async with await signed_in_client(runtime, "viewer") as client:
        html = (await client.get("/flows/main-x")).text
        assert HOSTILE not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
        problems = html.split('<h2 id="problems">')[1].split("<h2")[0]
        assert "1 problem(s)" in problems
        assert re.search(r'<a href="#L1">line 1</a>: runs subflow &#39;helper-sub&#39;, which does not exist', problems), problems
        assert '<li id="L1" class="problem">' in html
        assert "flow · 2" in html and "runs &#39;helper-sub&#39;" in html
        listed = (await client.get("/flows")).text
        assert HOSTILE not in listed and "&lt;img src=x" in listed
    async with await signed_in_client(runtime, "admin", workspace_id="ws_other") as other:
        assert (await other.get("/flows/main-x")).status_code == 404  # stored by the other workspace
        assert "main-x" not in (await other.get("/flows")).text
