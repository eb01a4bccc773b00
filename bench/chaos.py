"""Chaos: kill -9 workers (or the one embedded process) while messages flow over SMPP,
then check that every accepted message reached the SMSC exactly once, or is `unknown`.

Two shapes (`--workers 3`, the default, or `--embedded`):

- `--workers N`: one `empathic serve --role api` and N `--role worker` processes on a fresh
  PostgreSQL schema; a random worker is killed (SIGKILL) and started again;
- `--embedded`: one `empathic serve` (API and workers) on SQLite, killed and started again;
  batches that fail meanwhile are sent again with the same idempotency keys, as a client would.

The carrier is `empathic smsc-sim` (run by `harness.Sim`, receipts on, faults as asked:
`--throttle-share`, `--latency`, `--drop-after`/`--drop-every`), which records the text of
every message it counts `received`. Each body carries its message's number (`chaos 17 ...`)
and goes to one of 5,000 numbers, so the simulator's `unique`/`duplicates` are exact.

`--messages` (20,000) go through POST /v1/messages/batch, 100 per request with an idempotency
key each, paced over the kill schedule (`--rate`); meanwhile every `--every A B` seconds
(seeded) a process is killed, and started again after `--pause`. Then it waits until every
accepted message is final, stops everything, and checks (`check`):

- `missing`: accepted but never final, or `sent`/`delivered` in the database and not at the SMSC;
- `duplicates`: the SMSC's own duplicates, texts it received twice, and API doubles (two rows
  for one body, or one idempotency key answered with two ids);
- `unknown`: handed over when a process died and maybe written (reconcile: an SMPP SMSC cannot
  be asked what it holds), or written to a connection that fell before the answer: never sent
  again, each at the SMSC once or not at all (`unknown_at_smsc` / `unknown_not_at_smsc`);
- `never_written`: handed over when a process died, and never written to the SMSC by its
  journal (channels/smpp/journal.py): queued again by reconcile, so each must be at the SMSC
  exactly once (`never_written_doubled`: those there twice, which would be the journal's error).

Prints one JSON object; progress goes to stderr.

    python bench/chaos.py --workers 3 --messages 20000 --kills 10
    python bench/chaos.py --embedded --messages 20000 --kills 5
    python bench/chaos.py --workers 3 --throttle-share 0.3 --latency 0.02 --drop-after 3000 --drop-every
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Collection
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for path in (str(HERE), str(REPO)):  # harness and throughput; tests.e2e.server (also when imported as bench.chaos)
    if path not in sys.path:
        sys.path.insert(0, path)

import httpx  # noqa: E402

import harness  # noqa: E402
from empathic.core.messages import FINAL  # noqa: E402
from tests.e2e.server import API_KEY, Server  # noqa: E402
from throughput import make_smpp_project  # noqa: E402

TERMINAL = sorted(s.value for s in FINAL if s.value != "received")
AT_SMSC = {"sent", "delivered", "undelivered"}  # the SMSC took these (a receipt said so, or its answer)
CHANNEL = "channel:sim"
BATCH = 100
PHONES = 5000
POSTGRES_URL = os.environ.get("EMPATHIC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
log = harness.log


@dataclass
class Config:
    messages: int = 20_000
    workers: int = 3  # 0: --embedded
    kills: int = 10
    every: tuple[float, float] = (2.0, 6.0)  # seconds between kills, uniform
    pause: float = 1.0  # seconds a killed process stays down
    target: str = "random"  # random | holder (the worker holding the channel)
    rate: float = 0.0  # messages/s offered; 0: spread over the kill schedule
    concurrency: int = 2  # batch requests in flight
    window: int = 100
    lease_ttl: float = 2.0
    latency: float = 0.0
    throttle_share: float = 0.0
    drop_after: int = 0
    drop_every: bool = False
    seed: int = 7
    drain_timeout: float = 180.0
    # What the texts' topic does with an unknown outcome. `hold`: the check's "no double text"
    # holds; `resend` (transactional's default): none left `unknown`, doubles are possible.
    on_unknown: str = "hold"

    @property
    def mode(self) -> str:
        return f"{self.workers} workers, PostgreSQL" if self.workers else "embedded, SQLite"


def phone(i: int) -> str:
    k = i % PHONES
    return f"+1415{555 + k // 10_000:03d}{k % 10_000:04d}"


def body(i: int) -> str:
    return f"chaos {i} your order is on its way"


def key(i: int) -> str:
    return f"chaos-{i}"


def number_of(text: str) -> int | None:
    m = re.match(r"chaos (\d+) ", text)
    return int(m.group(1)) if m else None


class Reader:
    """The database, read directly: SQLite read-only, or the PostgreSQL schema (asyncpg)."""

    def __init__(self, db_path: Path | None, schema: str | None) -> None:
        self.db_path, self.schema = db_path, schema
        self._pg: Any = None

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self.schema is None:
            with closing(sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)) as conn:
                return [tuple(r) for r in conn.execute(sql).fetchall()]
        if self._pg is None:
            import asyncpg

            self._pg = await asyncpg.connect(POSTGRES_URL, server_settings={"search_path": self.schema})
        return [tuple(r) for r in await self._pg.fetch(sql)]

    async def statuses(self) -> Counter[str]:
        try:
            return Counter(dict(await self.rows(
                "SELECT status, COUNT(*) FROM messages WHERE direction = 'outbound' GROUP BY status")))
        except Exception:  # noqa: BLE001 - not migrated yet, or locked: ask again
            return Counter()

    async def holder_pid(self) -> int | None:
        try:
            rows = await self.rows(f"SELECT owner FROM leases WHERE name = '{CHANNEL}'")
        except Exception:  # noqa: BLE001
            return None
        return int(rows[0][0].split(":")[1]) if rows else None

    async def close(self) -> None:
        if self._pg is not None:
            await self._pg.close()


# ---- the load: batches of 100, sent again with the same keys until accepted


@dataclass
class Load:
    accepted: dict[str, str]  # idempotency key -> message id (first answer)
    doubled_keys: int  # keys answered with another id on a later attempt
    rejected: int  # messages in batches refused with a 4xx: never accepted
    retries: int  # batch requests sent again after an error or a 5xx
    errors: Counter[str]
    seconds: float


async def send_load(url: str, config: Config, rate: float) -> Load:
    accepted: dict[str, str] = {}
    doubled = rejected = retries = 0
    errors: Counter[str] = Counter()
    starts = iter(range(0, config.messages, BATCH))
    t0 = time.monotonic()
    limits = httpx.Limits(max_connections=config.concurrency, max_keepalive_connections=config.concurrency)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30,
                                 limits=limits) as client:

        async def one(start: int) -> None:
            nonlocal doubled, rejected, retries
            numbers = range(start, min(start + BATCH, config.messages))
            payload = {"messages": [{"to": phone(i), "body": body(i), "idempotency_key": key(i)} for i in numbers]}
            while True:
                try:
                    r = await client.post("/v1/messages/batch", json=payload)
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] += 1
                else:
                    if r.status_code == 202:
                        for i, m in zip(numbers, r.json()["messages"], strict=True):
                            if accepted.setdefault(key(i), m["id"]) != m["id"]:
                                doubled += 1
                        return
                    errors[str(r.status_code)] += 1
                    if r.status_code < 500 and r.status_code != 429:
                        rejected += len(numbers)
                        log("batch refused:", r.status_code, r.text[:300])
                        return
                retries += 1
                await asyncio.sleep(0.2)  # the process is down or restarting: the same batch again

        async def sender() -> None:
            for start in starts:
                due = t0 + start / rate
                if due > time.monotonic():
                    await asyncio.sleep(due - time.monotonic())
                await one(start)

        await asyncio.gather(*(sender() for _ in range(config.concurrency)))
    return Load(accepted, doubled, rejected, retries, errors, round(time.monotonic() - t0, 2))


# ---- the kills


async def killer(config: Config, rng: random.Random, procs: list[Server], reader: Reader) -> list[dict[str, Any]]:
    """Kill -9 one process every `every` seconds, start it again after `pause`; `kills` times."""
    done: list[dict[str, Any]] = []
    t0 = time.monotonic()
    for n in range(config.kills):
        await asyncio.sleep(rng.uniform(*config.every))
        holder = await reader.holder_pid()
        victim = rng.choice(procs)
        if config.target == "holder":
            victim = next((p for p in procs if p.pid == holder), victim)
        # While messages flow: with a batch in flight if one comes within 2 s.
        until = time.monotonic() + 2.0
        while not (in_flight := (await reader.statuses()).get("sending", 0)) and time.monotonic() < until:
            await asyncio.sleep(0.002)
        await asyncio.to_thread(victim.kill)
        done.append({"at_s": round(time.monotonic() - t0, 1), "name": victim.name,
                     "held_channel": victim.pid == holder, "sending_at_kill": in_flight})
        log(f"kill {n + 1}/{config.kills}: {victim.name} (channel holder: {victim.pid == holder}, "
            f"{in_flight} sending)")
        await asyncio.sleep(config.pause)
        victim.launch()
        await asyncio.to_thread(victim.wait_ready, 60.0)
    return done


# ---- the check


def check(config: Config, load: Load, db_rows: list[tuple[str, str, str, str | None]], texts: list[str],
          sim_summary: dict[str, Any], never_written: Collection[str] = ()) -> dict[str, Any]:
    """Every accepted message final, at the SMSC exactly once or `unknown` (there at most once).
    `db_rows`: (id, idempotency key, status, body) of every outbound message; `texts`: what
    the SMSC counted `received`; `never_written`: the ids reconcile queued again as never written."""
    at_smsc = Counter(number_of(t) for t in texts)
    rows_by_key: dict[str, list[tuple[str, str, str | None]]] = {}
    bodies = Counter(b for _, _, _, b in db_rows)
    for message_id, k, status, b in db_rows:
        rows_by_key.setdefault(k, []).append((message_id, status, b))
    statuses: Counter[str] = Counter()
    not_in_db = not_final = sent_not_at_smsc = wrong_id = 0
    unknown_at = unknown_not_at = never_doubled = 0
    examples: list[str] = []
    for i in range(config.messages):
        k = key(i)
        if k not in load.accepted:
            continue
        rows = rows_by_key.get(k, [])
        if not rows:
            not_in_db += 1
            examples.append(f"{k}: accepted, not in the database")
            continue
        message_id, status, _ = rows[0]
        wrong_id += message_id != load.accepted[k]
        if message_id in never_written and at_smsc[i] > 1:
            never_doubled += 1
            examples.append(f"{k} {message_id}: never written by the journal, at the SMSC {at_smsc[i]} times")
        statuses[status] += 1
        if status not in TERMINAL:
            not_final += 1
            examples.append(f"{k} {message_id}: still {status}")
        elif status in AT_SMSC and at_smsc[i] == 0:
            sent_not_at_smsc += 1
            examples.append(f"{k} {message_id}: {status}, never at the SMSC")
        elif status == "unknown":
            if at_smsc[i]:
                unknown_at += 1
            else:
                unknown_not_at += 1
    twice = {n: c for n, c in at_smsc.items() if c > 1}
    api_doubles = sum(c - 1 for c in bodies.values() if c > 1) + load.doubled_keys + wrong_id
    not_accepted_at_smsc = sum(1 for n in at_smsc if n is None or key(n) not in load.accepted)
    missing = not_in_db + not_final + sent_not_at_smsc
    duplicates = max(sim_summary.get("duplicates", 0), sum(c - 1 for c in twice.values())) + api_doubles
    return {
        "accepted": len(load.accepted),
        "terminal": sum(statuses[s] for s in TERMINAL),
        "delivered": statuses["delivered"],
        "unknown": statuses["unknown"],
        "unknown_at_smsc": unknown_at,
        "unknown_not_at_smsc": unknown_not_at,
        "never_written": len(never_written),
        "never_written_doubled": never_doubled,
        "missing": missing,
        "duplicates": duplicates,
        "statuses": dict(statuses),
        "missing_detail": {"accepted_not_in_db": not_in_db, "not_final": not_final,
                           "sent_or_delivered_not_at_smsc": sent_not_at_smsc},
        "duplicate_detail": {"smsc_duplicates": sim_summary.get("duplicates"), "texts_at_smsc_twice": len(twice),
                             "api_doubles": api_doubles},
        "at_smsc_not_accepted": not_accepted_at_smsc,
        "examples": examples[:10] + [f"chaos-{n} at the SMSC {c} times" for n, c in list(twice.items())[:10]],
    }


def timeline(sent_at: list[int], bucket_s: float = 5.0) -> list[float]:
    """Messages recorded `sent` per second, in `bucket_s` windows from the first to the last."""
    if not sent_at:
        return []
    first = min(sent_at)
    counts = Counter(int((at - first) / 1000 // bucket_s) for at in sent_at)
    return [round(counts.get(b, 0) / bucket_s, 1) for b in range(max(counts) + 1)]


def reconciled(procs: list[Server]) -> dict[str, int]:
    """What each start's reconcile settled, from every log of every process (engine/dispatcher.py)."""
    never = unknown = resent = passes = 0
    for proc in procs:
        for n in range(1, proc.starts + 1):
            text = (proc.logs / f"{proc.name}-{n}.err").read_text(errors="replace")
            for m in re.finditer(r"interrupted hand-offs on \S+: (\d+) never written, queued again; \d+ have an unknown "
                                 r"outcome .*?: (\d+) resent, (\d+) `unknown`", text):
                never += int(m.group(1))
                resent += int(m.group(2))
                unknown += int(m.group(3))
                passes += 1
    return {"reconcile_passes": passes, "requeued_never_written_by_reconcile": never,
            "marked_unknown_by_reconcile": unknown, "resent_by_reconcile": resent}


# ---- one run


async def run(config: Config, root: Path, schema: str | None = None) -> dict[str, Any]:
    """One chaos run in `root` (the PostgreSQL `schema` must exist and be empty in workers mode)."""
    rng = random.Random(config.seed)
    faults = {"throttle_share": config.throttle_share, "drop_after": config.drop_after,
              "drop_every": config.drop_every, "seed": config.seed}
    sim = harness.Sim(root, latency=config.latency, receipts=True, faults=faults, record=True)
    data_dir, logs = root / "data", root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {"EMPATHIC_LEASE_TTL": str(config.lease_ttl)}
    if config.workers:
        assert schema is not None, "workers mode runs on PostgreSQL: give a schema"
        env.update({"EMPATHIC_DATABASE_URL": POSTGRES_URL, "EMPATHIC_DATABASE_SCHEMA": schema})
    reader = Reader(data_dir / "empathic.sqlite3", schema if config.workers else None)
    result: dict[str, Any] = {"config": {**asdict(config), "mode": config.mode}, "machine": harness.machine()}
    procs: list[Server] = []  # the ones killed
    everyone: list[Server] = []
    try:
        sim.start()
        project = make_smpp_project(root, sim.port, config.window, receipts=True)
        with (project / "empathic.toml").open("a", encoding="utf-8") as toml:
            toml.write(f'\n[topics]\ntransactional = {{ kind = "transactional", on_unknown = "{config.on_unknown}" }}\n')
        if config.workers:
            api = Server(data_dir, logs, project, role="api", env=env, name="api")
            procs = [Server(data_dir, logs, project, role="worker", env=env, name=f"worker-{n}")
                     for n in range(1, config.workers + 1)]
            everyone = [api, *procs]
            api.start(60.0)
            for proc in procs:
                proc.launch()
            for proc in procs:
                proc.wait_ready(60.0)
        else:
            api = Server(data_dir, logs, project, env=env, name="embedded")
            procs = everyone = [api]
            api.start(60.0)
        bound, _ = sim.wait(lambda c: c.get("binds", 0) >= 1, timeout=30)
        if bound is None:
            raise RuntimeError(f"nothing bound to the simulator:\n{procs[0].stderr()}")

        schedule = config.kills * (sum(config.every) / 2 + config.pause + 2.0)  # + ~2 s to start again
        rate = config.rate or max(100.0, config.messages / max(schedule, 1.0))
        result["config"]["rate"] = round(rate, 1)
        log(f"{config.mode}: {config.messages} messages at {rate:.0f}/s, {config.kills} kills")
        t0 = time.monotonic()
        load_task = asyncio.create_task(send_load(api.url, config, rate))
        kills = await killer(config, rng, procs, reader)
        load = await load_task
        log(f"load done in {load.seconds}s: {len(load.accepted)} accepted, {load.retries} retries; draining")

        deadline = time.monotonic() + config.drain_timeout
        last_log = 0.0
        while time.monotonic() < deadline:
            counts = await reader.statuses()
            if sum(counts[s] for s in TERMINAL) >= len(load.accepted):
                break
            if time.monotonic() - last_log > 5:
                log("waiting:", dict(counts), {k: sim.counts().get(k) for k in ("received", "receipts_sent")})
                last_log = time.monotonic()
            await asyncio.sleep(0.2)
        drained = time.monotonic() - t0

        db_rows = await reader.rows(
            "SELECT id, idempotency_key, status, body FROM messages WHERE direction = 'outbound'")
        sent_at = [at for (at,) in await reader.rows("SELECT at FROM message_events WHERE status = 'sent'")]
        ((resent,),) = await reader.rows("SELECT COUNT(*) FROM message_events WHERE reason = 'resent_after_unknown'")
        never_written = {i for (i,) in await reader.rows(
            "SELECT message_id FROM message_events WHERE reason = 'reconciled_never_written'")}
        for proc in reversed(everyone):
            proc.terminate(15.0)
        sim_summary = sim.stop()
        result["check"] = check(config, load, db_rows, sim.texts(), sim_summary, never_written)
        result["kills"] = {"survived": len(kills), "of_channel_holder": sum(k["held_channel"] for k in kills),
                           **reconciled(procs), "each": kills}
        result["load"] = {"accepted": len(load.accepted), "rejected": load.rejected, "batch_retries": load.retries,
                          "errors": dict(load.errors), "seconds": load.seconds,
                          "accepted_per_s": round(len(load.accepted) / load.seconds, 1)}
        result["duration_s"] = round(drained, 1)
        result["sent_per_s_by_5s"] = timeline(sent_at)
        result["sim_summary"] = sim_summary
        result["stderr_errors"] = [line for proc in everyone for line in proc.log().splitlines()
                                   if "ERROR" in line or "Traceback" in line][-10:]
        c = result["check"]
        result["summary"] = {
            "mode": config.mode, "kills_survived": len(kills), "messages_checked": c["accepted"],
            "delivered": c["delivered"], "unknown": c["unknown"], "never_written": c["never_written"],
            "missing": c["missing"],
            "duplicates": c["duplicates"], "resent_after_unknown": resent, "duration_s": result["duration_s"],
            # a resent text may be at the SMSC twice (it took the first, its answer was lost)
            "ok": c["missing"] == 0 and c["duplicates"] <= resent and c["terminal"] == c["accepted"]
            and c["never_written_doubled"] == 0,
        }
        return result
    finally:
        for proc in reversed(everyone):
            proc.terminate(15.0)
        if sim.proc is not None and sim.proc.poll() is None:
            sim.stop()
        await reader.close()


async def with_schema(config: Config, root: Path) -> dict[str, Any]:
    """`run` on a PostgreSQL schema of its own (dropped afterwards), or on SQLite."""
    if not config.workers:
        return await run(config, root)
    import asyncpg

    schema = f"chaos_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        return await run(config, root, schema)
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = Config()
    parser.add_argument("--messages", type=int, default=d.messages)
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument("--workers", type=int, default=d.workers, help="worker processes beside one API process")
    shape.add_argument("--embedded", action="store_true", help="one `empathic serve` on SQLite instead")
    parser.add_argument("--kills", type=int, default=d.kills)
    parser.add_argument("--every", type=float, nargs=2, default=d.every, metavar=("MIN", "MAX"),
                        help="seconds between kills (uniform)")
    parser.add_argument("--pause", type=float, default=d.pause, help="seconds a killed process stays down")
    parser.add_argument("--target", choices=("random", "holder"), default=d.target,
                        help="kill a random worker, or the one holding the channel")
    parser.add_argument("--rate", type=float, default=d.rate, help="messages/s offered (0: over the kill schedule)")
    parser.add_argument("--concurrency", type=int, default=d.concurrency, help="batch requests in flight")
    parser.add_argument("--window", type=int, default=d.window, help="the SMPP channel's window")
    parser.add_argument("--lease-ttl", type=float, default=d.lease_ttl, help="EMPATHIC_LEASE_TTL of every process")
    parser.add_argument("--latency", type=float, default=d.latency, help="the SMSC's seconds before each answer")
    parser.add_argument("--throttle-share", type=float, default=d.throttle_share,
                        help="share of submits the SMSC answers ESME_RTHROTTLED")
    parser.add_argument("--drop-after", type=int, default=d.drop_after, help="the SMSC drops the connection here")
    parser.add_argument("--drop-every", action="store_true", help="... at every --drop-after-th submit")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--drain-timeout", type=float, default=d.drain_timeout)
    parser.add_argument("--on-unknown", choices=("hold", "resend"), default=d.on_unknown,
                        help="the texts' topic policy for unknown outcomes (hold: never doubled)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    args = parser.parse_args()
    config = Config(
        messages=args.messages, workers=0 if args.embedded else args.workers, kills=args.kills,
        every=tuple(args.every), pause=args.pause, target=args.target, rate=args.rate,
        concurrency=args.concurrency, window=args.window, lease_ttl=args.lease_ttl, latency=args.latency,
        throttle_share=args.throttle_share, drop_after=args.drop_after, drop_every=args.drop_every,
        seed=args.seed, drain_timeout=args.drain_timeout, on_unknown=args.on_unknown,
    )
    root = Path(tempfile.mkdtemp(prefix="empathic-chaos-"))
    try:
        result = asyncio.run(with_schema(config, root))
    finally:
        if args.keep:
            log("kept", root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
