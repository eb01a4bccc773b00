"""What SQLite alone costs per text: the rows Empathic writes over a text's life, written
with the raw `sqlite3` driver, with no Python layers (no HTTP, SQLAlchemy, policy gate or SMPP).

The schema is Empathic's own: a migrated database, with every index of the send path. The
statements are the ones the trace of a real run shows, in the same batches and
transactions:
accepted (the text's row and its first event), claimed (`sending` and an event), sent
(`sent`, the carrier id, an event) and, with `--receipts`, delivered (carrier ids looked
up, `delivered` and an event). One JSON object: CPU seconds per 1,000 texts (this process:
the statements run in this thread) and the texts per CPU second that leaves.

Set it beside `bench/throughput.py`'s `server_cpu_s_per_1000`. The difference is what the
Python layers cost, not the database.

    .venv/bin/python bench/floor.py
    .venv/bin/python bench/floor.py --receipts --messages 50000 --batch 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from empathic.core.ids import new_id
from empathic.store.db import SQLITE_PRAGMAS, Database


async def _migrate(path: Path) -> None:
    db = Database(f"sqlite:///{path}")
    await db.migrate()
    await db.engine.dispose()


def run(messages: int, batch: int, receipts: bool) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="empathic-floor-"))
    try:
        path = root / "floor.db"
        asyncio.run(_migrate(path))
        conn = sqlite3.connect(path, isolation_level=None)
        for pragma in SQLITE_PRAGMAS:  # as the engine's own connection has them
            conn.execute(f"PRAGMA {pragma}")
        conn.execute("INSERT INTO workspaces (id, name, created_at) VALUES ('ws', 'floor', 0)")
        columns = [row[1] for row in conn.execute("PRAGMA table_info(messages)")]
        insert = f"INSERT INTO messages ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
        event = "INSERT INTO message_events (workspace_id, message_id, status, reason, at) VALUES (?, ?, ?, ?, ?)"
        now = int(time.time() * 1000)
        fixed = {"workspace_id": "ws", "direction": "outbound", "contact_id": "ct_1", "to_addr": "+14155550100",
                 "from_addr": "+18005550100", "body": "Your order 1234 is out for delivery", "topic": "transactional",
                 "priority": 1, "status": "queued", "reason": "accepted", "encoding": "gsm7", "segments": 1,
                 "channel": "smpp", "attempts": 0, "created_at": now, "updated_at": now}
        cpu0 = time.process_time()
        wall0 = time.perf_counter()
        for _ in range(messages // batch):
            ids = [new_id("msg") for _ in range(batch)]
            conn.execute("BEGIN IMMEDIATE")  # accepted
            conn.executemany(insert, [tuple(i if c == "id" else fixed.get(c) for c in columns) for i in ids])
            conn.executemany(event, [("ws", i, "queued", "accepted", now) for i in ids])
            conn.execute("COMMIT")
            conn.execute("BEGIN IMMEDIATE")  # claimed
            claimed = [row[0] for row in conn.execute(
                "SELECT id FROM messages WHERE status = 'queued' AND channel = 'smpp' ORDER BY priority, id LIMIT ?",
                (batch,))]
            conn.executemany("UPDATE messages SET status = ?, reason = ?, updated_at = ?, channel = ?, attempts = ?,"
                             " shard = ? WHERE id = ?",
                             [("sending", "handed_to_channel", now, "smpp", 1, 0, i) for i in claimed])
            conn.executemany(event, [("ws", i, "sending", "handed_to_channel", now) for i in claimed])
            conn.execute("COMMIT")
            conn.execute("BEGIN IMMEDIATE")  # sent
            conn.executemany("UPDATE messages SET status = ?, reason = ?, updated_at = ?, carrier_id = ? WHERE id = ?",
                             [("sent", "accepted_by_carrier", now, "c" + i, i) for i in claimed])
            conn.executemany(event, [("ws", i, "sent", "accepted_by_carrier", now) for i in claimed])
            conn.executemany("INSERT INTO carrier_ids (channel, carrier_id, message_id) VALUES (?, ?, ?)",
                             [("smpp", "c" + i, i) for i in claimed])
            conn.execute("COMMIT")
            if receipts:
                conn.execute("BEGIN IMMEDIATE")  # delivered
                marks = ", ".join("?" for _ in claimed)
                found = [row[0] for row in conn.execute(
                    f"SELECT message_id FROM carrier_ids WHERE channel = 'smpp' AND carrier_id IN ({marks})",
                    ["c" + i for i in claimed])]
                conn.executemany("UPDATE messages SET status = ?, reason = ?, updated_at = ? WHERE id = ?",
                                 [("delivered", "delivered", now, i) for i in found])
                conn.executemany(event, [("ws", i, "delivered", "delivered", now) for i in found])
                conn.execute("COMMIT")
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        written = conn.execute("SELECT count(*) FROM message_events").fetchone()[0]
        conn.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    done = messages // batch * batch
    return {
        "system": "sqlite-floor",
        "params": {"messages": done, "batch": batch, "receipts": receipts},
        "events_written": written,
        "cpu_s_per_1000": round(cpu / done * 1000, 4),
        "texts_per_cpu_s": round(done / cpu),
        "wall_s": round(wall, 2),
        "sqlite": sqlite3.sqlite_version,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=100, help="texts per transaction (the dispatcher's window)")
    parser.add_argument("--receipts", action=argparse.BooleanOptionalAction, default=False)
    args = parser.parse_args()
    if args.messages < args.batch or args.batch < 1:
        raise SystemExit("--messages must be at least --batch, and --batch at least 1")
    print(json.dumps(run(args.messages, args.batch, args.receipts)))


if __name__ == "__main__":
    main()
