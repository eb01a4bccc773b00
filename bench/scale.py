"""Throughput with 1, 2, 4 ... worker processes on PostgreSQL, over SMPP to the SMSC simulator.

For each N in `--workers` (1,2,4), each of receipts off/on (`--receipts both`) and each
carrier latency in `--latencies` (0,0.02): a fresh PostgreSQL schema (dropped after), one
`empathic serve --role api` and N `--role worker` processes (`throughput.Server`), a
project with one SMPP channel to `empathic smsc-sim` (`harness.Sim`) with `shards = N`
(or `--shards`), `--window` 100. Once every shard's lease is held and shared out (no worker
above ceil(shards / N)), it sends `--messages` (20,000) through /v1/messages/batch, 100 per
request, `--batch-concurrency` (4) in flight (`throughput.send_batches_async`), and waits
until the simulator holds them all (receipts off) or all are `delivered` (on). Beside each
cell, the embedded figure with the same load: one `empathic serve` on SQLite (what
`throughput.py --channel smpp` runs) and one on PostgreSQL (role all), one shard.

Per run: accepted and end-to-end msg/s, exactly once (the simulator's received, unique,
duplicates), CPU seconds per 1,000 messages of Empathic's processes and of PostgreSQL (every
postgres process of the cluster from /proc, exited backends through the postmaster's
cutime/cstime: other users of the cluster count too, see `other_busy_cores`), peak RSS summed,
which process held which shard at the start and the end (leases table), messages per shard
(messages.shard), and on PostgreSQL the WAL bytes, table + index bytes and rows per message.

    .venv/bin/python bench/scale.py --table                     # 4 cells x (2 embedded + 3) runs
    .venv/bin/python bench/scale.py --workers 2 --receipts off --latencies 0 --no-embedded
    .venv/bin/python bench/scale.py --workers 4 --shards 4 --profile /tmp/scale-prof

Prints one JSON object (`runs`, `table`); `--table` also prints a markdown table to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import harness
import throughput
from throughput import Server, Store

POSTGRES_URL = os.environ.get("EMPATHIC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BATCH = 100


def postgres_cpu() -> float:
    """CPU seconds of the whole PostgreSQL cluster so far: every live postgres process, plus
    what its exited children (backends whose connection closed) used, from the postmaster's
    cutime + cstime."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    pids = set(harness.pids_named("postgres"))
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
        if int(fields[1]) not in pids:  # the postmaster: its parent is not postgres
            total += (int(fields[13]) + int(fields[14])) / ticks
    return total


def admin(sql: str) -> list[tuple[Any, ...]]:
    import asyncpg

    async def go() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(go())


def wal_lsn() -> int:
    return int(admin("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')")[0][0])


def leases(store: Store, roles: dict[int, str]) -> dict[str, str]:
    """Each channel lease in force -> the process holding it (`api`, `all`, `worker-K`)."""
    now = int(time.time() * 1000)
    rows = store.rows("SELECT name, owner FROM leases WHERE name LIKE 'channel:%' AND expires_at > ?", now)
    return {name: roles.get(int(owner.split(":")[-2]), owner) for name, owner in sorted(rows)}


def balanced(held: dict[str, str], shards: int, workers: int) -> bool:
    """Every shard held, and no process above its fair share (by workers when there are any)."""
    if len(held) < shards:
        return False
    per: dict[str, int] = {}
    for holder in held.values():
        per[holder] = per.get(holder, 0) + 1
    return max(per.values()) <= -(-shards // max(1, workers)) and (not workers or "api" not in per)


def table_sizes(store: Store, schema: str) -> dict[str, dict[str, int]]:
    """Bytes (table + indexes + TOAST; of them, indexes) and rows of every table of the schema with rows."""
    out: dict[str, dict[str, int]] = {}
    for name, size, indexes in store.rows(
        "SELECT c.relname, pg_total_relation_size(c.oid), pg_indexes_size(c.oid) FROM pg_class c JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE n.nspname = ? AND c.relkind = 'r' ORDER BY 1", schema
    ):
        rows = store.rows(f'SELECT count(*) FROM "{name}"')[0][0]
        if rows:
            out[name] = {"bytes": size, "index_bytes": indexes, "rows": rows}
    return out


def compacted(store: Store, schema: str, messages: int) -> int | None:
    for name in ("messages", "message_events", "contacts"):
        store.rows(f'VACUUM FULL "{name}"')
    total = sum(t["bytes"] for t in table_sizes(store, schema).values())
    return round(total / messages) if messages else None


def profile(pids: dict[str, int], root: Path, seconds: int) -> list[subprocess.Popen[bytes]]:
    exe = throughput.ensure_py_spy()
    return [subprocess.Popen([exe, "record", "-d", str(seconds), "-o", str(root / f"{name}.speedscope"),
                              "-f", "speedscope", "--rate", "100", "--pid", str(pid)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name, pid in pids.items()]


def run(args: argparse.Namespace, *, database: str, workers: int, shards: int, receipts: bool,
        latency: float) -> dict[str, Any]:
    """One cell: `database` sqlite or postgres, `workers` 0 for one `empathic serve` (role all)."""
    busy_before = harness.wait_quiet(args.quiet_wait) if args.quiet_wait else None
    root = Path(tempfile.mkdtemp(prefix="empathic-bench-scale-"))
    sim = harness.Sim(root, latency=latency, receipts=receipts)
    schema = f"bench_scale_{uuid.uuid4().hex[:10]}" if database == "postgres" else None
    result: dict[str, Any] = {
        "params": {"database": database, "workers": workers, "shards": shards, "receipts": receipts,
                   "latency_s": latency, "window": args.window, "messages": args.messages, "batch_size": BATCH,
                   "batch_concurrency": args.batch_concurrency, "lease_ttl_s": args.lease_ttl},
        "machine": harness.machine(),
        "machine_busy_cores_before_run": busy_before,
    }
    harness.log(f"run: {database} workers={workers} shards={shards} receipts={receipts} latency={latency}")
    server: Server | None = None
    store: Store | None = None
    try:
        sim.start()
        env = {"EMPATHIC_LEASE_TTL": str(args.lease_ttl)}
        if schema:
            admin(f'CREATE SCHEMA "{schema}"')
            env.update({"EMPATHIC_DATABASE_URL": POSTGRES_URL, "EMPATHIC_DATABASE_SCHEMA": schema})
        project = throughput.make_smpp_project(root, sim.port, args.window, receipts, shards=shards)
        server = Server(root, project, workers=workers, env=env)
        server.start()
        procs = {"api" if workers else "all": server.proc, **{f"worker-{k}": p for k, p in enumerate(server.worker_procs)}}
        roles = {p.pid: name for name, p in procs.items()}
        store = Store(server.db_path) if schema is None else Store(url=POSTGRES_URL, schema=schema)
        # Every shard bound and its lease shared out before the load (a worker started first
        # takes more than its share, and hands the surplus over at its next renewal).
        t0 = time.monotonic()
        held: dict[str, str] = {}
        while time.monotonic() - t0 < args.balance_timeout:
            held = leases(store, roles)
            if balanced(held, shards, workers) and sim.counts().get("binds", 0) >= shards:
                break
            time.sleep(0.2)
        else:
            harness.log("shards not shared out:", held)
        result["balance"] = {"seconds": round(time.monotonic() - t0, 1), "ok": balanced(held, shards, workers),
                             "binds": sim.counts().get("binds")}
        result["leases_at_start"] = held
        time.sleep(0.5)  # let a bind after the hand-over settle

        wal0 = wal_lsn() if schema else None
        status0, sim0, pg0 = server.proc_status(), sim.figures(), postgres_cpu()
        each0 = {name: harness.proc_figures(p.pid).get("cpu_seconds", 0) for name, p in procs.items()}
        self0 = resource.getrusage(resource.RUSAGE_SELF)
        jiffies = harness.cpu_busy_jiffies()
        spies = profile({n: p.pid for n, p in procs.items()}, root, args.profile_seconds) if args.profile else []
        first = time.monotonic()
        load = asyncio.run(throughput.send_batches_async(server.url, args.messages, BATCH, args.batch_concurrency,
                                                         "scale"))
        waited = throughput.wait_smpp(sim, store, 0, load["accepted"], load["accepted"], receipts, args.timeout,
                                      poll=0.1)
        end = waited["at_db"] if receipts else waited["at_sim"]
        status1, sim1, pg1 = server.proc_status(), sim.figures(), postgres_cpu()
        each1 = {name: harness.proc_figures(p.pid).get("cpu_seconds", 0) for name, p in procs.items()}
        self1 = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.monotonic() - first
        busy = harness.busy_cores(jiffies, harness.cpu_busy_jiffies())
        wal1 = wal_lsn() if schema else None
        n = load["accepted"]
        empathic_cpu = status1.get("cpu_seconds", 0) - status0.get("cpu_seconds", 0)
        pg_cpu = pg1 - pg0
        own = (empathic_cpu + pg_cpu + sim1.get("cpu_seconds", 0) - sim0.get("cpu_seconds", 0)
               + self1.ru_utime + self1.ru_stime - self0.ru_utime - self0.ru_stime)
        result["load"] = load
        result["accepted_per_s"] = load["accepted_per_s"]
        result["to_smsc_per_s"] = harness.end_to_end(n, first, waited["at_sim"])
        result["end_to_end_per_s"] = harness.end_to_end(n, first, end)
        result["end_to_end_means"] = "first request -> all delivered" if receipts else "first request -> simulator holds all"
        result["timed_out"] = end is None
        result["statuses"] = waited["statuses"]
        result["cpu_s_per_1000"] = {"empathic": harness.per_thousand(empathic_cpu, n),
                                    "postgres": harness.per_thousand(pg_cpu, n) if schema else None,
                                    "sim": harness.per_thousand(sim1.get("cpu_seconds", 0) - sim0.get("cpu_seconds", 0), n)}
        result["cores"] = {"empathic": round(empathic_cpu / wall, 2), "postgres": round(pg_cpu / wall, 2) if schema else None,
                           "machine_busy": busy, "other_busy": round(max(0.0, busy - own / wall), 2),
                           "by_process": {name: round((each1[name] - each0[name]) / wall, 2) for name in procs}}
        result["peak_rss_mib"] = status1.get("VmHWM")
        result["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        result["leases_at_end"] = leases(store, roles)
        result["per_shard"] = {str(k): c for k, c in store.rows(
            "SELECT shard, count(*) FROM messages WHERE direction = 'outbound' GROUP BY shard ORDER BY shard")}
        if schema:
            sizes = table_sizes(store, schema)
            result["postgres"] = {
                "wal_bytes_per_message": round((wal1 - wal0) / n) if n else None,
                "bytes_per_message": round(sum(t["bytes"] for t in sizes.values()) / n) if n else None,
                "tables": sizes,
                # Updates leave dead row versions (autovacuum reuses their space later): the
                # live rows alone, rewritten by VACUUM FULL once the figures above are taken.
                "bytes_per_message_compacted": compacted(store, schema, n),
                "events_by_status": dict(store.rows("SELECT status, count(*) FROM message_events GROUP BY status")),
            }
        for spy in spies:
            harness.stop_process(spy, signal.SIGINT, timeout=60)
        if spies:
            result["profile"] = {name: {"file": str(args.profile / f"{result_name(result)}-{name}.speedscope"),
                                        "top_own_time": throughput.top_functions(root / f"{name}.speedscope", 12)}
                                 for name in procs if (root / f"{name}.speedscope").exists()}
            args.profile.mkdir(parents=True, exist_ok=True)
            for name, entry in result["profile"].items():
                shutil.copy(root / f"{name}.speedscope", entry["file"])
    finally:
        if store is not None:
            store.close()
        if server is not None:
            result["exit_code"] = server.stop()
            errors = []
            for err in sorted(root.glob("*.err")):
                errors += [f"{err.stem}: {line}" for line in err.read_text(errors="replace").splitlines()
                           if "ERROR" in line or "Traceback" in line]
            result["stderr_errors"] = errors[-10:]
        result["sim_summary"] = sim.stop()
        if schema:
            if "postgres" in result:  # row writes per table, flushed by the backends as they exited
                time.sleep(1.0)
                result["postgres"]["row_writes"] = {
                    name: {"inserts": i, "updates": u, "hot_updates": h, "deletes": d}
                    for name, i, u, h, d in admin(
                        "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del FROM pg_stat_user_tables "
                        f"WHERE schemaname = '{schema}' AND n_tup_ins + n_tup_upd + n_tup_del > 0 ORDER BY 1")}
            admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        shutil.rmtree(root, ignore_errors=True)
    summary = result["sim_summary"]
    accepted = result.get("load", {}).get("accepted", 0)
    result["exactly_once"] = summary.get("received") == accepted and summary.get("duplicates") == 0
    harness.log("done:", row(result))
    return result


def result_name(r: dict[str, Any]) -> str:
    p = r["params"]
    return f"{p['database']}-w{p['workers']}-s{p['shards']}-r{int(p['receipts'])}-l{p['latency_s']}"


def row(r: dict[str, Any]) -> dict[str, Any]:
    p, s = r["params"], r.get("sim_summary", {})
    per_holder: dict[str, list[str]] = {}
    for name, holder in r.get("leases_at_end", {}).items():
        per_holder.setdefault(holder, []).append(name.split(":", 1)[1].partition("/")[2] or "0")
    return {
        "setup": f"{p['database']}, " + (f"api + {p['workers']} workers" if p["workers"] else "one serve"),
        "workers": p["workers"], "shards": p["shards"], "receipts": p["receipts"], "latency_s": p["latency_s"],
        "accepted_per_s": r.get("accepted_per_s"), "end_to_end_per_s": r.get("end_to_end_per_s"),
        "exactly_once": r.get("exactly_once"), "duplicates": s.get("duplicates"), "unique": s.get("unique"),
        "empathic_cpu_s_per_1000": r.get("cpu_s_per_1000", {}).get("empathic"),
        "postgres_cpu_s_per_1000": r.get("cpu_s_per_1000", {}).get("postgres"),
        "cores": r.get("cores"), "peak_rss_mib": r.get("peak_rss_mib"),
        "per_shard": r.get("per_shard"), "shards_held": {k: sorted(v) for k, v in sorted(per_holder.items())},
        "balanced": r.get("balance", {}).get("ok"),
        "loadavg_at_start": r["machine"]["loadavg_at_start"], "timed_out": r.get("timed_out"),
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    head = ("| setup | shards | receipts | latency s | accepted/s | end-to-end/s | dup / unique | "
            "Empathic CPU s/1k | PG CPU s/1k | cores Emp/PG/other | peak RSS MiB | msgs per shard | shards held | load avg |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for x in rows:
        c = x.get("cores") or {}
        lines.append(
            f"| {x['setup']} | {x['shards']} | {'on' if x['receipts'] else 'off'} | {x['latency_s']} | "
            f"{x['accepted_per_s']} | {x['end_to_end_per_s']}{' (timed out)' if x['timed_out'] else ''} | "
            f"{x['duplicates']} / {x['unique']} | {x['empathic_cpu_s_per_1000']} | {x['postgres_cpu_s_per_1000'] or '-'} | "
            f"{c.get('empathic')}/{c.get('postgres') or '-'}/{c.get('other_busy')} | {x['peak_rss_mib']} | "
            f"{' '.join(f'{k}:{v}' for k, v in (x['per_shard'] or {}).items())} | "
            f"{'; '.join(k + ': ' + ','.join(v) for k, v in x['shards_held'].items())} | "
            f"{' '.join(str(v) for v in x['loadavg_at_start'])} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,2,4", help="worker process counts, comma-separated")
    parser.add_argument("--shards", type=int, default=None, help="shards of the channel (default: the worker count)")
    parser.add_argument("--receipts", choices=("off", "on", "both"), default="both")
    parser.add_argument("--latencies", default="0,0.02", help="the simulator's seconds before each submit_sm_resp")
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--batch-concurrency", type=int, default=4, help="batch requests in flight")
    parser.add_argument("--embedded", action=argparse.BooleanOptionalAction, default=True,
                        help="per cell, also one `empathic serve` on SQLite and one on PostgreSQL")
    parser.add_argument("--lease-ttl", type=float, default=6.0, help="EMPATHIC_LEASE_TTL: renewal every third of it")
    parser.add_argument("--balance-timeout", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=300.0, help="max seconds to wait for a run to deliver")
    parser.add_argument("--quiet-wait", type=float, default=60.0,
                        help="before each run, wait up to this long for other work to leave the cores")
    parser.add_argument("--profile", type=Path, default=None,
                        help="directory: py-spy speedscope of every process for --profile-seconds of each run's load")
    parser.add_argument("--profile-seconds", type=int, default=10)
    parser.add_argument("--table", action="store_true", help="also print a markdown table (stderr)")
    args = parser.parse_args()
    counts = [int(x) for x in args.workers.split(",") if x]
    receipts = {"off": [False], "on": [True], "both": [False, True]}[args.receipts]
    runs: list[dict[str, Any]] = []
    for receipt in receipts:
        for latency in (float(x) for x in args.latencies.split(",") if x):
            cell = dict(receipts=receipt, latency=latency)
            if args.embedded:
                runs.append(run(args, database="sqlite", workers=0, shards=1, **cell))
                runs.append(run(args, database="postgres", workers=0, shards=1, **cell))
            for n in counts:
                runs.append(run(args, database="postgres", workers=n, shards=args.shards or n, **cell))
    rows = [row(r) for r in runs]
    print(json.dumps({"table": rows, "runs": runs}, indent=2))
    if args.table:
        print(markdown(rows), file=sys.stderr)


if __name__ == "__main__":
    main()
