"""One of every resource a workspace holds, made through the API: for the fuzzers (real ids to
aim at) and the workspace isolation test (what another workspace must never reach)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import daytime_zone

FLOW = """flow: {name}
steps:
  - id: ask
    ask: "Is the delivery still welcome today?"
    expect:
      - intent: confirm
        goto: thanks
    timeout: 48h
  - id: thanks
    send: "Thank you!"
"""
RULES = """[[rule]]
where = "*"
kinds = ["marketing"]
hours = { every_day = "09:00-20:00" }
source = "Our own policy"
"""


async def _ok(response: Any, *statuses: int) -> dict[str, Any]:
    answer = await response
    assert answer.status_code in statuses, (answer.request.method, answer.request.url, answer.status_code, answer.text)
    return answer.json() if answer.content else {}


async def seed_workspace(api: httpx.AsyncClient, phone: str, tag: str, *, inbox_phone: str | None = None) -> dict[str, str]:
    """Every resource in the workspace of `api`'s key; the ids and names by path parameter.
    `inbox_phone` texts in through the simulator (whose replies reach the default workspace
    only) to open an inbox thread."""
    contact = await _ok(api.post("/v1/contacts", json={
        "phone": phone, "email": f"{tag}@example.com", "timezone": daytime_zone(), "attributes": {"tag": tag}}), 201)
    cid = contact["id"]
    await _ok(api.post(f"/v1/contacts/{cid}/consents", json={
        "topic": "deals", "action": "granted", "source": "web_form", "evidence": f"{tag} form"}), 201)
    await _ok(api.put(f"/v1/contacts/{cid}/preferences", json={"language": "fr", "max_marketing_per_week": 2}), 200)
    message = await _ok(api.post("/v1/messages", json={
        "to": phone, "body": f"Hello from {tag}", "idempotency_key": f"{tag}-message"}), 202)
    webhook = await _ok(api.post("/v1/webhooks", json={
        "url": f"http://127.0.0.1:9/{tag}", "events": ["message.status"]}), 201)
    name = f"{tag}-own"
    await _ok(api.put(f"/v1/templates/{name}", json={"body": f"{tag}: {{{{ event.data.n }}}}"}), 200)
    await _ok(api.put(f"/v1/triggers/{name}", json={"event": f"{tag}.happened", "template": name}), 200)
    await _ok(api.post("/v1/events", json={  # its trigger texts the template
        "type": f"{tag}.happened", "contact": {"phone": phone}, "data": {"n": 1}, "idempotency_key": f"{tag}-event"}), 202)
    await _ok(api.put(f"/v1/flows/{name}", json={"source": FLOW.format(name=name)}), 201)
    run = await _ok(api.post(f"/v1/flows/{name}/runs", json={"contact": {"phone": phone}}), 201)
    await _ok(api.put("/v1/rules", json={"rules": RULES}), 200)
    ids = {"contact_id": cid, "message_id": message["id"], "webhook_id": webhook["id"], "run_id": run["id"],
           "name": name, "phone": phone}
    if inbox_phone:
        await _ok(api.post(f"/v1/simulator/phones/{inbox_phone}/messages",
                           json={"body": "Is there parking near the store?"}), 202)
        threads = (await _ok(api.get("/v1/inbox"), 200))["data"]
        ids["thread_id"] = next(t["id"] for t in threads if t["contact"]["phone"] == inbox_phone)
    return ids
