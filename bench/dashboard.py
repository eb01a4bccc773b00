"""The dashboard of a workspace with 1,000,000 messages: how long each /v1/stats call and the
page take.

1. Makes a migrated database (SQLite in a temporary folder, or `--postgresql URL` in a schema
   of its own) and writes `--messages` messages straight to it, spread over the last
   `--days` days: a realistic mix of triggers, flows (with their trigger), templates, topics,
   statuses (delivered, sent, undelivered and failed with carrier errors, refused at
   hand-off, blocked, expired, deferred and queued), inbound replies to a share of them,
   deferral events, opt-outs in the consent ledger and inbox threads. Raw driver inserts,
   not the engine: the point is the reading.
2. Runs the stats loop (engine/stats.py) until it has caught up: the hourly counts and the
   outcomes of all history (timed: a first start on an existing database does this once).
3. Times each /v1/stats call of the dashboard over 24h, 7d and 30d (through the real ASGI
   app, a signed-in person's session) and the page itself, best of `--repeat`.

One JSON object per line on stdout (`"what": "generate" | "catch_up" | "call" | "dashboard"`);
progress on stderr.

    .venv/bin/python bench/dashboard.py                       # 1,000,000 messages, SQLite
    .venv/bin/python bench/dashboard.py --messages 100000     # quicker
    .venv/bin/python bench/dashboard.py --postgresql postgresql://empathic@127.0.0.1:5432/empathic
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from empathic.api.app import create_app  # noqa: E402
from empathic.core import passwords  # noqa: E402
from empathic.core.ids import new_id  # noqa: E402
from empathic.engine.runtime import Runtime, Settings  # noqa: E402
from empathic.store import users  # noqa: E402
from empathic.web.auth import SESSION_COOKIE  # noqa: E402

TRIGGERS = [("order-dispatched", "order_dispatched", "transactional"), ("order-delivered", "order_delivered", "transactional"),
            ("back-in-stock", "back_in_stock", "watch"), ("weekly-deals", "weekly_deals", "deals"),
            ("otp-login", "otp_login", "otp"), ("rewards-expiring", "rewards_expiring", "rewards")]
FLOWS = [("appointment-reminder", "event:appointment.booked", "conversational"),
         ("support-diagnostics", "keyword:SUPPORT", "support"), ("post-purchase-survey", "event:order.delivered", "surveys"),
         ("fraud-alert", "event:card.suspicious", "security")]
# (status, reason, weight)
OUTCOMES = [("delivered", "carrier_receipt", 860), ("sent", "accepted_by_carrier", 40),
            ("undelivered", "carrier_error_0x0000000B", 20), ("failed", "carrier_error_0x00000045", 15),
            ("failed", "channel_rejected", 8), ("blocked", "opted_out", 20), ("blocked", "duplicate_content", 5),
            ("expired", "no_delivery_receipt", 7), ("expired", "expired", 5), ("deferred", "quiet_hours", 12),
            ("deferred", "daily_cap", 4), ("queued", "accepted", 4)]
REPLY_SHARE = 0.08
OPT_OUT_SHARE = 0.004
HANDOFF_SHARE = 0.004


def log(*parts: Any) -> None:
    print("[bench]", *parts, file=sys.stderr, flush=True)


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


async def generate(rt: Runtime, count: int, days: int, contacts: int, seed: int) -> dict[str, int]:
    """Write the messages and what goes with them, in chunks, through the raw driver (SQLite)
    or one multi-row statement per chunk (PostgreSQL)."""
    rng = random.Random(seed)
    ws = rt.workspace_id
    now = rt.now()
    start = now - timedelta(days=days)
    span = (now - start).total_seconds() * 1000
    statuses = [(s, r) for s, r, w in OUTCOMES for _ in range(w)]
    contact_ids = [f"ct_bench{i:07d}" for i in range(contacts)]
    written = {"messages": 0, "inbound": 0, "events": 0, "ledger": 0, "threads": 0}
    message_cols = ("id", "workspace_id", "direction", "contact_id", "to_addr", "from_addr", "body", "topic", "priority",
                    "status", "reason", "encoding", "segments", "channel", "template", "event_id", "flow", "trigger",
                    "attempts", "created_at", "updated_at")
    chunk = 20_000
    base = _ms(start)
    async with rt.db.transaction() as conn:
        for i in range(0, contacts, chunk):
            await _insert(conn, "contacts", ("id", "workspace_id", "phone", "attributes", "created_at", "updated_at"),
                          [(cid, ws, f"+1415{i + k:07d}", "{}", base, base) for k, cid in enumerate(contact_ids[i : i + chunk])])
    threaded: set[str] = set()
    made = 0
    while made < count:
        rows: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        ledger: list[tuple[Any, ...]] = []
        thread_rows: list[tuple[Any, ...]] = []
        for _ in range(min(chunk, count - made)):
            at = base + int(span * made / count)
            made += 1
            contact = rng.choice(contact_ids)
            status, reason = rng.choice(statuses)
            if rng.random() < 0.6:
                trig, template, topic = rng.choice(TRIGGERS)
                flow = None
            else:
                flow, trig, topic = rng.choice(FLOWS)
                template = None
            mid = new_id("msg", at_ms=at)
            rows.append((mid, ws, "outbound", contact, "+14155550000", "+18005550100", "Your text, about this long." * 3,
                         topic, 2, status, reason, "gsm7", 1, "simulator", template, None, flow, trig, 1, at, at + 2000))
            if status == "deferred":
                events.append((ws, mid, "deferred", reason, at + 50))
            if status in ("delivered", "sent") and rng.random() < REPLY_SHARE and made < count:
                made += 1
                rows.append((new_id("msg", at_ms=at + 60_000), ws, "inbound", contact, "+18005550100", "+14155550000",
                             "yes thanks", None, 0, "received", "received", None, None, "simulator", None, None, None,
                             None, 0, at + 60_000, at + 60_000))
                written["inbound"] += 1
                if rng.random() < OPT_OUT_SHARE / REPLY_SHARE:
                    ledger.append((ws, contact, "*", "sms", "revoked", "keyword", f"contact:{contact}", None, at + 60_000))
                elif rng.random() < HANDOFF_SHARE / REPLY_SHARE and contact not in threaded:
                    threaded.add(contact)
                    thread_rows.append((new_id("th", at_ms=at), ws, contact, "open", at + 60_000, at + 60_000))
        async with rt.db.transaction() as conn:
            await _insert(conn, "messages", message_cols, rows)
            await _insert(conn, "message_events", ("workspace_id", "message_id", "status", "reason", "at"), events)
            await _insert(conn, "consent_ledger", ("workspace_id", "contact_id", "topic", "channel", "action", "source",
                                                   "actor", "evidence", "at"), ledger)
            await _insert(conn, "threads", ("id", "workspace_id", "contact_id", "status", "opened_at", "updated_at"),
                          thread_rows)
        written["messages"] += len(rows)
        written["events"] += len(events)
        written["ledger"] += len(ledger)
        written["threads"] += len(thread_rows)
        if made % 200_000 < chunk:
            log(f"{made:,} messages written")
    return written


async def _insert(conn: Any, table: str, cols: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:  # Any: a connection
    if not rows:
        return
    names = ", ".join(f'"{c}"' for c in cols)
    if conn.dialect.name == "sqlite":
        raw = await conn.get_raw_connection()
        await raw.driver_connection.executemany(
            f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" for _ in cols)})', rows)
        return
    params = ", ".join(f":{c}" for c in cols)
    await conn.execute(text(f'INSERT INTO "{table}" ({names}) VALUES ({params})'),
                       [dict(zip(cols, r, strict=True)) for r in rows])


async def timed(client: httpx.AsyncClient, url: str, repeat: int) -> tuple[float, int]:
    best = float("inf")
    status = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        answer = await client.get(url)
        best = min(best, time.perf_counter() - t0)
        status = answer.status_code
        if status != 200:
            raise SystemExit(f"{url}: {status} {answer.text[:300]}")
    return best, status


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--contacts", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--postgresql", metavar="URL", help="a PostgreSQL database (a schema of its own is made)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="empathic-dashboard-"))
    schema = f"bench_{uuid.uuid4().hex[:8]}" if args.postgresql else None
    settings = Settings(data_dir=folder / "data", database_url=args.postgresql, run_workers=False)
    if schema:
        settings.database_schema = schema
    (folder / "data").mkdir()
    if schema:
        import asyncpg
        made = await asyncpg.connect(args.postgresql)
        await made.execute(f'CREATE SCHEMA "{schema}"')
        await made.close()
    rt = Runtime(settings)
    await rt.start()
    try:
        backend = "postgresql" if args.postgresql else "sqlite"
        t0 = time.perf_counter()
        written = await generate(rt, args.messages, args.days, args.contacts, args.seed)
        emit(what="generate", backend=backend, seconds=round(time.perf_counter() - t0, 1), **written)
        if backend == "postgresql":
            async with rt.db.transaction() as conn:
                for table in ("messages", "message_events", "consent_ledger", "threads", "contacts"):
                    await conn.execute(text(f'ANALYZE "{table}"'))

        t0 = time.perf_counter()
        passes = 1
        while not await rt.stats.run_once():
            passes += 1
        emit(what="catch_up", backend=backend, seconds=round(time.perf_counter() - t0, 1), passes=passes)
        t0 = time.perf_counter()
        await rt.stats.run_once()
        emit(what="steady_pass", backend=backend, seconds=round(time.perf_counter() - t0, 3))

        async with rt.db.transaction() as conn:
            user = await users.create(conn, rt.workspace_id, "bench@example.com", "viewer",
                                      passwords.hash_password("bench-password-123"), rt.now())
            token = await users.open_session(conn, user, rt.now())
        transport = httpx.ASGITransport(app=create_app(rt))
        async with httpx.AsyncClient(transport=transport, base_url="https://empathic.test", timeout=60) as client:
            client.cookies.set(SESSION_COOKIE, token, domain="empathic.test", path="/")
            for period in ("24h", "7d", "30d"):
                calls = ["messages", "throughput", "queue", "deferred"]
                total = 0.0
                for call in calls:
                    seconds, _ = await timed(client, f"/v1/stats/{call}?period={period}", args.repeat)
                    total += seconds
                    emit(what="call", backend=backend, period=period, call=f"/v1/stats/{call}", ms=round(seconds * 1000, 1))
                page, _ = await timed(client, f"/dashboard?period={period}", args.repeat)
                emit(what="dashboard", backend=backend, period=period, messages=written["messages"],
                     page_ms=round(page * 1000, 1), stats_calls_ms=round(total * 1000, 1),
                     all_ms=round((page + total) * 1000, 1))
            report = (await client.get("/v1/stats/messages?period=30d")).json()
            log("30d totals:", json.dumps({k: v for k, v in report["totals"].items() if k != "failures"}))
    finally:
        await rt.stop()
        if schema:
            import asyncpg
            dropping = await asyncpg.connect(args.postgresql)
            await dropping.execute(f'DROP SCHEMA "{schema}" CASCADE')
            await dropping.close()


if __name__ == "__main__":
    asyncio.run(main())
