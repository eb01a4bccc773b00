"""Per-step counts of a shipped flow driven through the running engine (SQLite and PostgreSQL):
passed, waited, timed out, handed off, as engine.runs counts them in each run's transaction."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from empathic.engine.runtime import Runtime
from empathic.flows.graph import STEP_OUTCOMES
from empathic.store import flow_steps, keys, timers
from empathic.store import flows as flow_store
from tests.conftest import daytime_zone, eventually

FLOW = "post-purchase-survey"


async def counts(rt: Runtime, workspace_id: str | None = None) -> dict[tuple[str, str], int]:
    async with rt.db.transaction() as conn:
        found = await flow_steps.step_counts(conn, workspace_id or rt.workspace_id, FLOW)
    return {(c.step, c.outcome): c.count for c in found}


async def survey(api: httpx.AsyncClient, phone: str) -> str:
    answer = await api.post("/v1/events", json={
        "type": "survey.requested", "contact": {"phone": phone, "timezone": daytime_zone()},
        "data": {"order_id": "A-1"},
    })
    assert answer.status_code == 202, answer.text
    (run,) = answer.json()["runs"]
    return str(run["id"])


async def run_state(api: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    return dict((await api.get(f"/v1/runs/{run_id}")).json())


async def reply(rt: Runtime, api: httpx.AsyncClient, run_id: str, phone: str, text: str, *, step: str | None) -> None:
    before = await run_state(api, run_id)
    await rt.simulator.phone_sends(phone, text)

    async def moved() -> bool:
        now = await run_state(api, run_id)
        return now["step"] == step and now["updated_at"] != before["updated_at"]

    await eventually(moved)


async def test_a_shipped_flow_counts_what_its_runs_did_at_each_step(runtime: Runtime, api: httpx.AsyncClient) -> None:
    rt = runtime
    happy, unhappy, silent = "+14155550301", "+14155550302", "+14155550303"

    first = await survey(api, happy)
    assert await counts(rt) == {("score", "waited"): 1}
    await reply(rt, api, first, happy, "5", step="comment")
    await reply(rt, api, first, happy, "skip", step=None)
    assert (await run_state(api, first))["outcome"] == "happy"

    second = await survey(api, unhappy)
    await reply(rt, api, second, unhappy, "2", step="comment")
    await reply(rt, api, second, unhappy, "The box arrived crushed", step="11")  # the hand-off (an unnamed step: its number)
    assert (await run_state(api, second))["waiting_for"] == "handoff"

    third = await survey(api, silent)
    async with rt.db.transaction() as conn:  # its question's 2-day timeout falls due
        run = await flow_store.run(conn, rt.workspace_id, third)
        assert run is not None and run.state.wait is not None
        timeout = timers.Timer("flow.timer", third, rt.now(), {"seq": run.state.wait.seq, "purpose": "timeout"}, rt.workspace_id)
        assert await rt.flows.fire(conn, [timeout], rt.now() + timedelta(days=2)) == 1
    assert (await run_state(api, third))["outcome"] == "no_answer"

    # what the flow file says each step is: score, set, comment, set, evaluate, happy, end,
    # neutral, end, unhappy, handoff, no-score, end, no-answer
    got = await counts(rt)
    assert got == {
        ("score", "waited"): 3, ("score", "passed"): 2, ("score", "timed_out"): 1,
        ("2", "passed"): 2,  # the set step
        ("comment", "waited"): 2, ("comment", "passed"): 2,
        ("4", "passed"): 1,  # the comment kept (the skip went straight to evaluate)
        ("evaluate", "passed"): 2,
        ("happy", "passed"): 1, ("7", "passed"): 1,
        ("unhappy", "passed"): 1, ("11", "handed_off"): 1,
        ("no-answer", "passed"): 1,
    }, got
    assert {outcome for _, outcome in got} <= set(STEP_OUTCOMES)

    async with rt.db.transaction() as conn:
        by_flow = await flow_steps.run_counts(conn, rt.workspace_id)
        await keys.ensure_workspace(conn, "ws_other", "Other workspace", rt.now())
        assert await flow_steps.run_counts(conn, "ws_other") == {}
    assert by_flow[FLOW] == {"done": 2, "active": 1}
    assert await counts(rt, "ws_other") == {}  # another workspace's page shows none of it


async def test_counts_add_up_across_shards_and_calls(runtime: Runtime) -> None:
    rt = runtime
    async with rt.db.transaction() as conn:
        for n in range(40):  # runs land in different shards; one run's rows add in place
            await flow_steps.count(conn, rt.workspace_id, f"run_{n}", [("f", "a", "passed"), ("f", "a", "passed"), ("f", "b", "waited")])
        await flow_steps.count(conn, rt.workspace_id, "run_0", [])
    async with rt.db.transaction() as conn:
        found = {(c.step, c.outcome): c.count for c in await flow_steps.step_counts(conn, rt.workspace_id, "f")}
    assert found == {("a", "passed"): 80, ("b", "waited"): 40}
