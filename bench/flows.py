"""Flow benchmark: what a conversation costs, in the interpreter and through the engine.

1. `interpreter`: median and p99 of one `advance` of the pure interpreter on the shipped
   appointment-reminder flow (start, then a reply that is understood and routed), per call.
2. `engine`: an embedded Empathic (SQLite in a temporary folder, the simulator, the real loops,
   no HTTP) with a one-question flow: `--contacts` events each start a run (its question goes
   out), then every contact answers and the run sends its last text and ends. Reports
   events/s started, replies/s routed into runs, the runs' median/p99 reply-to-answer-queued
   latency, and peak RSS. Baseline in the same run: the same number of events firing a plain
   template trigger (no flow), so the flow's cost per event is visible.

    python bench/flows.py [--contacts 2000] [--repeat 2000]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from empathic.channels.base import Inbound  # noqa: E402
from empathic.engine.events import ContactInput, EventInput, ingest  # noqa: E402
from empathic.engine.runtime import Runtime, Settings  # noqa: E402
from empathic.flows import interpreter as fi  # noqa: E402
from empathic.flows.loader import parse  # noqa: E402
from empathic.flows.state import RunState  # noqa: E402

CONFIG = """\
[sender]
name = "Bench"
number = "+18005550100"

[simulator]
receipt_delay = 0.0
tps = 1000000

[[triggers]]
name = "plain"
event = "plain.happened"
template = "plain"
"""
FLOW = """\
flow: question
trigger: {event: question.asked}
steps:
  - ask: "Order {{ event.data.ref }}: reply A to keep it, B to cancel"
    expect:
      - {option: A, goto: keep}
      - {option: B, goto: cancel}
  - {id: keep, send: "Kept {{ event.data.ref }}", next: fin}
  - {id: cancel, send: "Cancelled {{ event.data.ref }}"}
  - {id: fin, end: answered}
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_interpreter(repeat: int) -> dict[str, Any]:
    flow = parse((REPO / "empathic/examples/acme/flows/appointment-reminder.yaml").read_text())
    library = fi.StaticLibrary({flow.name: flow})
    ctx = fi.Context(datetime(2026, 3, 3, 18, tzinfo=UTC), {"attributes": {"first_name": "Ana"}}, "America/New_York")
    event = {"data": {"start": "2026-03-05T15:00:00", "service": "haircut", "appointment_id": "a1"}}
    waiting = fi.advance(library, RunState.start(flow.name, event), fi.Start(), ctx).state
    asked = fi.advance(library, waiting, fi.Timer(waiting.seq, "wake"), ctx).state
    starts, replies = [], []
    for i in range(repeat):
        t0 = time.perf_counter()
        fi.advance(library, RunState.start(flow.name, event), fi.Start(), ctx)
        t1 = time.perf_counter()
        fi.advance(library, asked, fi.Reply(("a", "can we do thurs 4 instead", "yep c u then", "B")[i % 4]), ctx)
        t2 = time.perf_counter()
        starts.append((t1 - t0) * 1000)
        replies.append((t2 - t1) * 1000)
    return {
        "start_ms": {"median": round(statistics.median(starts), 3), "p99": round(percentile(starts, 0.99), 3)},
        "reply_ms": {"median": round(statistics.median(replies), 3), "p99": round(percentile(replies, 0.99), 3)},
    }


async def bench_engine(contacts: int, flow: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="empathic-bench-flows-") as tmp:
        root = Path(tmp) / "project"
        (root / "templates").mkdir(parents=True)
        (root / "empathic.toml").write_text(CONFIG)
        (root / "templates" / "plain.txt").write_text("Order {{ event.data.ref }} noted")
        if flow:
            (root / "flows").mkdir()
            (root / "flows" / "question.yaml").write_text(FLOW)
        rt = Runtime(Settings(data_dir=Path(tmp) / "data", database_url=None, project_dir=root, retention_days=0))
        await rt.start()
        try:
            phones = [f"+1415555{i:04d}" for i in range(contacts)]
            kind = "question.asked" if flow else "plain.happened"
            t0 = time.perf_counter()
            for i, phone in enumerate(phones):
                async with rt.db.transaction() as conn:
                    await ingest(conn, rt.workspace_id, EventInput(kind, ContactInput(phone, timezone="UTC"), {"ref": f"R{i}"}),
                                 rt.catalog, rt.acceptance, rt.now(), rt.flows)
                rt.flows_moved()
            events_s = contacts / (time.perf_counter() - t0)
            result: dict[str, Any] = {"events_per_s": round(events_s, 1)}
            if flow:
                latencies = []
                t1 = time.perf_counter()
                for i, phone in enumerate(phones):
                    s = time.perf_counter()
                    await rt.on_inbound(Inbound("simulator", f"mo{i}", phone, "+18005550100", "A" if i % 2 else "b", rt.now()))
                    latencies.append((time.perf_counter() - s) * 1000)
                replies_s = contacts / (time.perf_counter() - t1)
                result |= {
                    "replies_per_s": round(replies_s, 1),
                    "reply_to_answer_queued_ms": {"median": round(statistics.median(latencies), 2),
                                                  "p99": round(percentile(latencies, 0.99), 2)},
                }
                from sqlalchemy import func, select

                from empathic.store.schema import flow_runs
                async with rt.db.transaction() as conn:
                    done = (await conn.execute(select(func.count()).where(flow_runs.c.status == "done"))).scalar_one()
                result["runs_done"] = done
        finally:
            await rt.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    out = {
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "interpreter": bench_interpreter(args.repeat),
        "engine_flow": asyncio.run(bench_engine(args.contacts, flow=True)),
        "engine_baseline_trigger": asyncio.run(bench_engine(args.contacts, flow=False)),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
