"""/v1/stats: every figure checked against counts made straight from the tables.

Traffic goes through the real API and the carrier simulator: a trigger's texts, a flow's
(by keyword, answered, handed to a person), plain API texts, undelivered ones, an opt-out,
deferred ones. The expected figures are counted here from `messages`, `message_events`,
`consent_ledger` and `threads` with plain Python, apart from store/stats.py.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from empathic.engine import stats
from empathic.engine.runtime import Runtime
from empathic.store.schema import consent_ledger, message_events, messages, threads
from tests.conftest import daytime_zone, eventually

EARLY_ONLY = """
[[rule]]
where = "*"
kinds = ["marketing", "transactional"]
hours = { every_day = "08:00-10:30" }
source = "A test: texts only between 8 and 10:30 in the morning (it is midday here)"
"""
SETTLED = {"delivered", "undelivered", "failed", "blocked", "deferred", "expired"}


async def _contact(api: httpx.AsyncClient, phone: str) -> None:
    made = await api.post("/v1/contacts", json={"phone": phone, "timezone": daytime_zone()})
    assert made.status_code == 201, made.text


async def _settled(api: httpx.AsyncClient, ids: list[str]) -> None:
    async def done() -> bool:
        for i in ids:
            if (await api.get(f"/v1/messages/{i}")).json()["status"] not in SETTLED:
                return False
        return True
    await eventually(done, timeout=15)


async def _from_phone(api: httpx.AsyncClient, phone: str, body: str) -> None:
    sent = await api.post(f"/v1/simulator/phones/{phone}/messages", json={"body": body})
    assert sent.status_code == 202, sent.text


async def _traffic(api: httpx.AsyncClient) -> None:
    a, b, c, d, e = (f"+1415555{n:04d}" for n in (310, 311, 312, 313, 314))
    for phone in (a, b, c, d, e):
        await _contact(api, phone)
    ids: list[str] = []
    # A trigger's text (order-dispatched), then STOP from that phone: replied and opted out.
    event = (await api.post("/v1/events", json={
        "type": "order.dispatched", "contact": {"phone": a},
        "data": {"order_id": "A-1", "expected_date": "Thu", "tracking_url": "https://t.example/1"},
    })).json()
    ids += [m["id"] for m in event["messages"]]
    # Plain texts on two topics.
    for phone, topic in ((c, "orders"), (c, "support"), (b, "orders")):
        sent = await api.post("/v1/messages", json={"to": phone, "body": f"Hello on {topic}", "topic": topic})
        assert sent.status_code == 202, sent.text
        ids.append(sent.json()["id"])
    await _settled(api, ids)
    await _from_phone(api, a, "STOP")
    # A flow by keyword: its question, answered "3" (something else): handed to a person.
    await _from_phone(api, b, "SUPPORT")

    async def asked() -> bool:
        texts = (await api.get(f"/v1/simulator/phones/{b}/messages")).json()["messages"]
        return any("Acme support here" in t["body"] for t in texts)
    await eventually(asked)
    await _from_phone(api, b, "3")

    async def handed() -> bool:
        listed = (await api.get("/v1/inbox")).json()
        return any((t.get("contact") or {}).get("phone") == b for t in listed["data"])
    await eventually(handed)
    # Undelivered: the carrier reports every text failed for a while.
    assert (await api.patch("/v1/simulator", json={"fail_share": 1.0})).status_code == 200
    bad = [(await api.post("/v1/messages", json={"to": d, "body": f"Doomed {i}", "topic": "orders"})).json()["id"]
           for i in range(2)]
    await _settled(api, bad)
    assert (await api.patch("/v1/simulator", json={"fail_share": 0.0})).status_code == 200
    # Deferred: the workspace's own rules allow texts only in the early morning.
    assert (await api.put("/v1/rules", json={"rules": EARLY_ONLY})).status_code == 200
    later = [(await api.post("/v1/messages", json={"to": e, "body": f"Later {i}", "topic": "orders"})).json()["id"]
             for i in range(3)]
    await _settled(api, later)


def _left(row: Any) -> bool:
    status, reason = row.status, row.reason or ""
    return status in ("sent", "delivered", "undelivered", "unknown") or (
        status in ("failed", "expired") and (reason.startswith("carrier_") or reason == "no_delivery_receipt"))


async def _expected(rt: Runtime) -> dict[str, Any]:
    """Every figure, counted here from the tables."""
    async with rt.db.transaction() as conn:
        rows = (await conn.execute(select(messages).where(messages.c.workspace_id == rt.workspace_id))).all()
        ledger = (await conn.execute(select(consent_ledger).where(consent_ledger.c.action == "revoked"))).all()
        open_threads = (await conn.execute(select(threads).where(threads.c.status == "open"))).all()
        deferrals = (await conn.execute(select(message_events).where(message_events.c.status == "deferred"))).all()
    texts: dict[str, list[Any]] = defaultdict(list)  # by contact, in id order
    for r in sorted(rows, key=lambda r: r.id):
        if r.encoding != "email":
            texts[r.contact_id].append(r)
    outcomes: dict[str, set[str]] = defaultdict(set)
    for seq in texts.values():
        for i, r in enumerate(seq):
            if r.direction == "outbound":
                after = seq[i + 1 :]
                nxt = next((x for x in after if x.direction == "outbound"), None)
                if any(x.direction == "inbound" and (nxt is None or x.id < nxt.id) for x in after):
                    outcomes[r.id].add("replied")

    def last_before(contact: str, at: Any) -> Any:
        before = [x for x in texts[contact] if x.direction == "outbound" and x.created_at < at]
        return before[-1] if before else None

    for entry in ledger:
        if (m := last_before(entry.contact_id, entry.at)) is not None:
            outcomes[m.id].add("opted_out")
    for t in open_threads:
        if (m := last_before(t.contact_id, t.updated_at)) is not None:
            outcomes[m.id].add("handed_off")
    figures: dict[str, dict[Any, Counter[str]]] = {d: defaultdict(Counter) for d in ("all", *stats.DIMENSIONS)}
    failures: Counter[str] = Counter()
    for r in rows:
        if r.direction != "outbound":
            continue
        one: Counter[str] = Counter(accepted=1)
        one["sent"] += _left(r)
        one["delivered"] += r.status == "delivered"
        one["failed"] += r.status in ("failed", "undelivered")
        one["blocked"] += r.status == "blocked"
        one["pending"] += r.status in ("queued", "deferred", "sending")
        for o in outcomes.get(r.id, ()):
            one[o] += 1
        if r.status in ("failed", "undelivered"):
            failures[r.reason] += 1
        figures["all"][None].update(one)
        for d in stats.DIMENSIONS:
            figures[d][getattr(r, d)].update(one)
    return {
        "figures": figures, "failures": failures, "received": sum(r.direction == "inbound" for r in rows),
        "deferred_now": Counter(r.reason for r in rows if r.status == "deferred"),
        "deferred_period": {reason: len({e.message_id for e in deferrals if e.reason == reason})
                            for reason in {e.reason for e in deferrals}},
        "outcomes": outcomes,
    }


FIELDS = ("accepted", "sent", "delivered", "failed", "blocked", "pending", "replied", "opted_out", "handed_off")


def _check(report: dict[str, Any], want: dict[str, Any]) -> None:
    figures = want["figures"]
    assert {k: report["totals"][k] for k in FIELDS} == {k: figures["all"][None][k] for k in FIELDS}
    assert {f["reason"]: f["count"] for f in report["totals"]["failures"]} == dict(want["failures"])
    assert report["received"] == want["received"]
    for d in stats.DIMENSIONS:
        got = {g["name"]: {k: g[k] for k in FIELDS} for g in report[f"by_{d}"]}
        assert got == {name: {k: c[k] for k in FIELDS} for name, c in figures[d].items()}, d


async def test_every_figure_matches_the_tables(runtime: Runtime, api: httpx.AsyncClient) -> None:
    await _traffic(api)
    await runtime.stats.run_once()
    want = await _expected(runtime)
    all_ = want["figures"]["all"][None]
    # The scenario did what it meant to (so the comparisons below compare something).
    assert all_["replied"] >= 2 and all_["opted_out"] == 1 and all_["handed_off"] >= 1
    assert all_["failed"] >= 2 and all_["pending"] >= 3 and want["deferred_now"]["quiet_hours"] >= 3
    assert set(want["figures"]["flow"]) == {None, "support-diagnostics"}
    assert {"order-dispatched", "keyword:SUPPORT"} <= set(want["figures"]["trigger"])

    report = (await api.get("/v1/stats/messages", params={"period": "24h"})).json()
    _check(report, want)
    rates = report["totals"]["rates"]
    assert rates["delivered"] == round(all_["delivered"] / all_["sent"], 4)
    assert rates["replied"] == round(all_["replied"] / all_["sent"], 4)

    deferred = (await api.get("/v1/stats/deferred", params={"period": "24h"})).json()
    assert {d["reason"]: d["count"] for d in deferred["now"]} == dict(want["deferred_now"])
    assert {d["reason"]: d["count"] for d in deferred["in_period"]} == want["deferred_period"]

    points = (await api.get("/v1/stats/throughput", params={"period": "1h", "bucket": "minute"})).json()["points"]
    assert len(points) in (60, 61)
    assert sum(p["accepted"] for p in points) == all_["accepted"]
    assert sum(p["sent"] for p in points) == all_["sent"] and sum(p["failed"] for p in points) == all_["failed"]
    assert sum(p["received"] for p in points) == want["received"]

    queue = (await api.get("/v1/stats/queue", params={"period": "1h"})).json()["points"]
    assert queue and queue[-1]["deferred"] == sum(want["deferred_now"].values())  # sampled by the pass above

    # The same figures from the daily and hourly counts: two days later, those days and hours are over.
    now, later = runtime.now(), runtime.now() + timedelta(days=2)
    await runtime.stats.run_once(later)
    for period in (stats.period(later, preset="7d"),  # whole days (stats_days), then hours and a live edge
                   stats.period(later, start=now - timedelta(hours=2), end=now + timedelta(hours=2))):  # hours, live edges
        rolled = (await stats.messages_report(runtime.db, runtime.workspace_id, period, later)).to_json()
        _check(rolled, want)
        series = await stats.throughput(runtime.db, runtime.workspace_id, period, later)
        assert sum(p.accepted for p in series) == all_["accepted"] and sum(p.failed for p in series) == all_["failed"]
        assert sum(p.delivered for p in series) == all_["delivered"] and sum(p.received for p in series) == want["received"]


async def test_another_workspace_sees_none_of_it(runtime: Runtime, api: httpx.AsyncClient) -> None:
    sent = await api.post("/v1/messages", json={"to": "+14155550399", "body": "Hi"})
    assert sent.status_code == 202
    await runtime.stats.run_once()
    async with runtime.db.transaction() as conn:
        from empathic.store import keys
        await keys.ensure_workspace(conn, "ws_other", "Other", runtime.now())
        await keys.add_key(conn, "ws_other", "emp_other_key_0123456789", "other", runtime.now())
    other = await api.get("/v1/stats/messages", headers={"Authorization": "Bearer emp_other_key_0123456789"})
    assert other.status_code == 200 and other.json()["totals"]["accepted"] == 0
    mine = (await api.get("/v1/stats/messages")).json()
    assert mine["totals"]["accepted"] == 1


@pytest.mark.parametrize(("params", "field"), [
    ({"period": "2w"}, "period"),
    ({"period": "24h", "from": "2026-12-01T00:00:00Z"}, "period"),
    ({"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"}, "from"),
    ({"from": "2026-01-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}, "from"),
    ({"from": "yesterday"}, "from"),
    ({"to": "2026-12-01T00:00:00Z"}, "from"),
    ({"period": "30d", "bucket": "minute"}, "bucket"),
    ({"period": "24h", "bucket": "week"}, "bucket"),
])
async def test_a_bad_period_is_a_clear_422(api: httpx.AsyncClient, params: dict[str, str], field: str) -> None:
    for path in ("messages", "throughput", "queue", "deferred"):
        answer = await api.get(f"/v1/stats/{path}", params=params)
        assert answer.status_code == 422, (path, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert any(field in e["field"] for e in answer.json()["errors"]), answer.json()
