"""Throughput benchmark of the embedded pipeline: `empathic serve` + SQLite + a carrier.

Two carriers (`--channel`):

- `simulator` (default): the built-in carrier simulator, as below;
- `smpp`: an SMPP channel bound to the SMSC simulator (`empathic smsc-sim`, run by
  `harness.Sim`), the shape the peers in `bench/peers/` are measured with (see
  `run_smpp` and bench/README.md).

Starts a real server subprocess on a free port with a temporary data dir and a copy of the
example project whose simulator takes (practically) unlimited messages per second, then:

1. sends `--single` messages one per `POST /v1/messages`, `--concurrency` requests in flight,
   and waits until they are all delivered;
2. sends `--messages` messages through `POST /v1/messages/batch` (1000 per request, one
   request at a time), and waits until they are all delivered;
3. reads the figures (statuses, per-message latencies) straight from the SQLite file,
   read-only, and the server's peak RSS from /proc.

Prints one JSON object to stdout; progress goes to stderr.

    python bench/throughput.py [--messages 20000] [--single 2000] [--concurrency 32]
    python bench/throughput.py --channel smpp [--latency 0.02] [--receipts] [--window 100]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

import harness

API_KEY = "emp_bench_key_0123456789"
BATCH = 1000
PHONES = 5000  # distinct recipients (`--phones`); each gets a contact row
REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "empathic" / "examples" / "acme"
FINAL = ("delivered", "undelivered", "failed", "blocked", "expired")


def log(*parts: Any) -> None:
    print("[bench]", *parts, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def phone(i: int) -> str:
    k = i % PHONES  # exchanges 555, 556, … each give 10,000 valid US numbers
    return f"+1415{555 + k // 10_000:03d}{k % 10_000:04d}"


def make_project(root: Path) -> Path:
    project = root / "project"
    shutil.copytree(EXAMPLE, project)
    toml = project / "empathic.toml"
    text = toml.read_text()
    text, n = re.subn(r"(?m)^tps\s*=\s*[0-9.]+", "tps = 1000000", text)
    if n != 1:
        raise SystemExit(f"could not set tps in {toml}")
    text = re.sub(r"(?m)^receipt_delay\s*=\s*[0-9.]+", "receipt_delay = 0.0", text)
    toml.write_text(text)
    return project


class Server:
    """`empathic serve` on a temporary data dir: one process (`workers` 0), or an API process
    (`--role api`) and `workers` worker processes (`--role worker`) on the same database:
    the data dir's SQLite file, or what `env` names (EMPATHIC_DATABASE_URL and _SCHEMA)."""

    def __init__(self, root: Path, project: Path, workers: int = 0, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.db_path = self.data_dir / "empathic.sqlite3"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.project = project
        self.workers = workers
        self.env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None  # the one serving HTTP
        self.worker_procs: list[subprocess.Popen[bytes]] = []

    def _spawn(self, role: str, err_path: Path) -> subprocess.Popen[bytes]:
        env = {**os.environ, "EMPATHIC_BOOTSTRAP_API_KEY": API_KEY, "PYTHONUNBUFFERED": "1"}
        for name in ("EMPATHIC_DATABASE_URL", "EMPATHIC_DATABASE_SCHEMA", "EMPATHIC_PROJECT", "EMPATHIC_DATA_DIR",
                     "EMPATHIC_PORT", "EMPATHIC_ROLE"):
            env.pop(name, None)
        env.update(self.env)
        with open(err_path, "wb") as err:
            return subprocess.Popen(
                [sys.executable, "-m", "empathic.cli", "serve", "--port", str(self.port), "--role", role,
                 "--data-dir", str(self.data_dir), "--project", str(self.project), "--log-level", "warning"],
                env=env, stdout=subprocess.DEVNULL, stderr=err,
            )

    def start(self, timeout: float = 60.0) -> None:
        self.err_path = self.root / "server.err"
        self.proc = self._spawn("api" if self.workers else "all", self.err_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited ({self.proc.returncode}):\n{self.stderr()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        else:
            raise SystemExit(f"server not healthy within {timeout}s:\n{self.stderr()}")
        # Workers start once the API process has migrated the database.
        self.worker_procs = [self._spawn("worker", self.root / f"worker-{i}.err") for i in range(self.workers)]

    def stderr(self) -> str:
        try:
            return self.err_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def mean_batches(self) -> dict[str, float | None]:
        """Mean messages per outbox transaction and per dispatcher claim, from /metrics."""
        sums: dict[str, float] = {}
        try:
            text = httpx.get(f"{self.url}/metrics", timeout=5).text
        except httpx.HTTPError:
            return {}
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            base = name.split("{")[0]
            if base.endswith(("_sum", "_count")) and base.startswith(("empathic_outbox_commit", "empathic_dispatch_batch")):
                sums[base] = sums.get(base, 0.0) + float(value)

        def mean(prefix: str) -> float | None:
            count = sums.get(f"{prefix}_count", 0.0)
            return round(sums.get(f"{prefix}_sum", 0.0) / count, 1) if count else None

        return {"per_outbox_commit": mean("empathic_outbox_commit_messages"),
                "per_dispatch_claim": mean("empathic_dispatch_batch_messages")}

    def proc_status(self) -> dict[str, Any]:
        """Peak and current RSS (MiB, summed over the processes) and their CPU seconds, from /proc."""
        assert self.proc is not None
        out: dict[str, Any] = {}
        for proc in [self.proc, *self.worker_procs]:
            try:
                for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                    key, _, value = line.partition(":")
                    if key in ("VmHWM", "VmRSS"):
                        out[key] = round(out.get(key, 0) + int(value.split()[0]) / 1024, 1)
                fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks = os.sysconf("SC_CLK_TCK")
                out["cpu_seconds"] = round(out.get("cpu_seconds", 0) + (int(fields[11]) + int(fields[12])) / ticks, 2)
            except (OSError, ValueError, IndexError):
                pass
        return out

    def stop(self) -> int | None:
        for worker in self.worker_procs:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in self.worker_procs:
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return None


class Store:
    """Read-only look at the server's SQLite file (WAL readers never block the writer), or
    with `url` at a PostgreSQL schema (asyncpg on a loop of its own)."""

    def __init__(self, path: Path | None = None, *, url: str | None = None, schema: str | None = None) -> None:
        self.pg = None
        if url is None:
            self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
            return
        import asyncpg

        self.loop = asyncio.new_event_loop()
        self.pg = self.loop.run_until_complete(
            asyncpg.connect(url, server_settings={"search_path": schema} if schema else None))

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """`sql` with `?` placeholders, on either backend."""
        if self.pg is None:
            return self.conn.execute(sql, params).fetchall()
        numbers = itertools.count(1)
        sql = re.sub(r"\?", lambda _: f"${next(numbers)}", sql)
        return [tuple(r) for r in self.loop.run_until_complete(self.pg.fetch(sql, *params))]

    def counts(self) -> dict[str, int]:
        rows = self.rows("SELECT status, count(*) FROM messages WHERE direction = 'outbound' GROUP BY status")
        return dict(rows)

    def latencies(self, prefix: str) -> dict[str, Any]:
        """Accept (first `queued` event) to first `sent` / `delivered` event, in ms, per message."""
        rows = self.rows(
            """
            SELECT min(CASE WHEN e.status = 'queued' THEN e.at END),
                   min(CASE WHEN e.status = 'sent' THEN e.at END),
                   min(CASE WHEN e.status = 'delivered' THEN e.at END)
            FROM messages m JOIN message_events e ON e.message_id = m.id
            WHERE m.direction = 'outbound' AND m.body LIKE ?
            GROUP BY m.id
            """,
            prefix + "%",
        )
        sent = sorted(s - q for q, s, _ in rows if q is not None and s is not None)
        delivered = sorted(d - q for q, _, d in rows if q is not None and d is not None)
        ends = [d for _, _, d in rows if d is not None]
        starts = [q for q, _, _ in rows if q is not None]
        return {
            "messages": len(rows),
            "accept_to_sent_ms": summary(sent),
            "accept_to_delivered_ms": summary(delivered),
            "first_accept_to_last_delivered_s": round((max(ends) - min(starts)) / 1000, 3) if ends and starts else None,
            # receipts turned into `delivered` per second, first to last of this set
            "receipts_per_s": round(len(ends) / ((max(ends) - min(ends)) / 1000), 1)
            if len(ends) > 1 and max(ends) > min(ends) else None,
        }

    def close(self) -> None:
        if self.pg is None:
            self.conn.close()
        else:
            self.loop.run_until_complete(self.pg.close())
            self.loop.close()


def percentile(values: list[int], q: float) -> float | None:
    if not values:
        return None
    k = min(len(values) - 1, max(0, int(round(q / 100 * (len(values) - 1)))))
    return values[k]


def summary(values: list[int]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "max": values[-1] if values else None,
    }


def wait_delivered(store: Store, target: int, timeout: float) -> tuple[float | None, dict[str, int]]:
    """Poll until `target` outbound messages are final; returns (monotonic time, counts)."""
    deadline = time.monotonic() + timeout
    counts: dict[str, int] = {}
    last_log = 0.0
    while time.monotonic() < deadline:
        counts = store.counts()
        if sum(counts.get(s, 0) for s in FINAL) >= target:
            return time.monotonic(), counts
        if time.monotonic() - last_log > 5:
            log("waiting:", counts)
            last_log = time.monotonic()
        time.sleep(0.05)
    return None, counts


async def send_singles(url: str, n: int, concurrency: int) -> dict[str, Any]:
    errors: dict[str, int] = {}
    latencies: list[float] = []
    next_index = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60, limits=limits
    ) as client:

        async def worker() -> None:
            nonlocal next_index
            while next_index < n:
                i = next_index
                next_index += 1
                started = time.perf_counter()
                try:
                    r = await client.post("/v1/messages", json={"to": phone(i), "body": f"single {i}: your code is {i % 997}"})
                    if r.status_code != 202:
                        errors[str(r.status_code)] = errors.get(str(r.status_code), 0) + 1
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": n,
        "seconds": round(elapsed, 3),
        "accepted": n - sum(errors.values()),
        "accepted_per_s": round((n - sum(errors.values())) / elapsed, 1),
        "request_ms": {"p50": round(percentile(latencies, 50) or 0, 1), "p99": round(percentile(latencies, 99) or 0, 1)},
        "errors": errors,
    }


# ---- SMPP mode: `empathic serve` with one smpp channel bound to the SMSC simulator


def make_smpp_project(root: Path, port: int, window: int, receipts: bool, shards: int = 1) -> Path:
    project = root / "project"
    project.mkdir()
    (project / "empathic.toml").write_text(
        '[sender]\nname = "Bench"\nnumber = "+18005550100"\n\n'
        '[[channels]]\ntype = "smpp"\nname = "sim"\nhost = "127.0.0.1"\n'
        f'port = {port}\nsystem_id = "bench"\npassword = "bench"\n'
        f"window = {window}\ntps = 1000000\nreceipts = {'true' if receipts else 'false'}\n"
        "enquire_link = 30\nresponse_timeout = 30\n" + (f"shards = {shards}\n" if shards != 1 else ""),
        encoding="utf-8",
    )
    return project


async def send_batches_async(url: str, n: int, size: int, concurrency: int, prefix: str) -> dict[str, Any]:
    """`n` messages through POST /v1/messages/batch, `size` per request, `concurrency` requests in flight."""
    errors: dict[str, int] = {}
    latencies: list[float] = []
    accepted = 0
    starts = iter(range(0, n, size))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120, limits=limits
    ) as client:

        async def worker() -> None:
            nonlocal accepted
            for start in starts:
                batch = [{"to": phone(i), "body": f"{prefix} {i}: your order ships today"}
                         for i in range(start, min(n, start + size))]
                t0 = time.perf_counter()
                try:
                    r = await client.post("/v1/messages/batch", json={"messages": batch})
                    if r.status_code == 202:
                        accepted += len(r.json()["messages"])
                    else:
                        errors[str(r.status_code)] = errors.get(str(r.status_code), 0) + 1
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                latencies.append((time.perf_counter() - t0) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "batch_size": size,
        "concurrency": concurrency,
        "accepted": accepted,
        "seconds": round(elapsed, 3),
        "accepted_per_s": round(accepted / elapsed, 1),
        "request_ms": {"p50": round(percentile(latencies, 50) or 0, 1), "p99": round(percentile(latencies, 99) or 0, 1)},
        "errors": errors,
    }


def wait_smpp(
    sim: harness.Sim, store: Store, sim_base: int, db_target: int, sim_target: int, receipts: bool, timeout: float,
    poll: float = 0.02,
) -> dict[str, Any]:
    """Until the simulator holds `sim_target` more messages than `sim_base` and the database
    has `db_target` outbound messages settled (`delivered`... with receipts, `sent` too without);
    the monotonic instants of both (None on time-out)."""
    settled = FINAL + ("unknown",) + (() if receipts else ("sent",))
    deadline = time.monotonic() + timeout
    at_sim = at_db = None
    counts: dict[str, int] = {}
    sim_counts: dict[str, int] = {}
    last_log = time.monotonic()
    while time.monotonic() < deadline:
        sim_counts = sim.counts()
        if at_sim is None and sim_counts.get("received", 0) - sim_base >= sim_target:
            at_sim = time.monotonic()
        counts = store.counts()
        if at_db is None and sum(counts.get(s, 0) for s in settled) >= db_target:
            at_db = time.monotonic()
        if at_sim is not None and at_db is not None:
            break
        if time.monotonic() - last_log > 5:
            log("waiting: db", counts, "sim received", sim_counts.get("received"))
            last_log = time.monotonic()
        time.sleep(poll)
    return {"at_sim": at_sim, "at_db": at_db, "statuses": counts, "sim": sim_counts}


def ensure_py_spy() -> str:
    """py-spy in the benchmarks' own tool venv (never the project's dependencies)."""
    found = shutil.which("py-spy")
    if found:
        return found
    venv = Path.home() / ".cache" / "empathic-bench" / "tools-venv"
    exe = venv / "bin" / "py-spy"
    if not exe.exists():
        log("installing py-spy into", venv)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "py-spy"], check=True)
    return str(exe)


def top_functions(speedscope: Path, n: int = 15) -> list[dict[str, Any]]:
    """The `n` functions with the most own time (leaf of the sampled stack), all threads
    together; py-spy names a frame per line, so frames are summed by (function, file)."""
    doc = json.loads(speedscope.read_text())
    frames = doc["shared"]["frames"]

    def key(index: int) -> tuple[str, str]:
        where = frames[index].get("file", "")
        return frames[index].get("name", "?"), where.split("site-packages/")[-1].split(str(REPO) + "/")[-1]

    own: dict[tuple[str, str], float] = {}
    inclusive: dict[tuple[str, str], float] = {}
    total = 0.0
    for profile in doc["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"]):
            if not stack:
                continue
            own[key(stack[-1])] = own.get(key(stack[-1]), 0.0) + weight
            total += weight
            for function in {key(index) for index in stack}:
                inclusive[function] = inclusive.get(function, 0.0) + weight
    top = sorted(own.items(), key=lambda item: -item[1])[:n]
    return [
        {"function": name, "file": where, "own_share": round(weight / total, 3),
         "inclusive_share": round(inclusive[(name, where)] / total, 3)}
        for (name, where), weight in top
    ]


def run_smpp(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="empathic-bench-smpp-"))
    sim = harness.Sim(root, latency=args.latency, receipts=args.receipts)
    result: dict[str, Any] = {
        "system": "empathic",
        "params": {"channel": "smpp", "latency_s": args.latency, "receipts": args.receipts, "window": args.window,
                   "single": args.single, "concurrency": args.concurrency, "messages": args.messages,
                   "messages100": args.messages100, "batch_concurrency": args.batch_concurrency, "phones": args.phones,
                   "workers": args.workers},
        "machine": {**harness.machine(), "sqlite": sqlite3.sqlite_version},
    }
    server: Server | None = None
    store: Store | None = None
    spy: subprocess.Popen[bytes] | None = None
    try:
        sim.start()
        server = Server(root, make_smpp_project(root, sim.port, args.window, args.receipts), workers=args.workers)
        t0 = time.monotonic()
        server.start()
        result["server_start_s"] = round(time.monotonic() - t0, 2)
        # The channel binds in the background: wait for the bind before loading.
        bound, _ = sim.wait(lambda c: c.get("binds", 0) >= 1, timeout=30)
        if bound is None:
            raise SystemExit(f"empathic never bound to the simulator:\n{server.stderr()}")
        store = Store(server.db_path)
        if args.profile:
            spy = subprocess.Popen(
                [ensure_py_spy(), "record", "-p", str(server.proc.pid), "-o", str(args.profile),
                 "--format", "speedscope", "--rate", "100"],
                stdout=subprocess.DEVNULL, stderr=open(root / "py-spy.err", "wb"),
            )
            time.sleep(1.0)

        phases = [
            ("single", args.single, lambda: asyncio.run(send_singles(server.url, args.single, args.concurrency))),
            ("batch", args.messages, lambda: asyncio.run(
                send_batches_async(server.url, args.messages, BATCH, args.batch_concurrency, "batch"))),
            ("batch100", args.messages100, lambda: asyncio.run(
                send_batches_async(server.url, args.messages100, 100, args.batch_concurrency, "b100"))),
        ]
        prefixes = {"single": "single ", "batch": "batch ", "batch100": "b100 "}
        done_before = 0
        for name, n, load in phases:
            if not n:
                continue
            log(f"{name}: {n} messages")
            sim_base = sim.counts().get("received", 0)
            cpu0, sim_cpu0 = server.proc_status().get("cpu_seconds", 0), sim.figures().get("cpu_seconds", 0)
            first = time.monotonic()
            phase = load()
            waited = wait_smpp(sim, store, sim_base, done_before + phase["accepted"], phase["accepted"],
                               args.receipts, args.timeout)
            cpu1, sim_cpu1 = server.proc_status().get("cpu_seconds", 0), sim.figures().get("cpu_seconds", 0)
            done_before += phase["accepted"]
            end = waited["at_db"] if args.receipts else waited["at_sim"]
            phase["to_smsc_per_s"] = harness.end_to_end(phase["accepted"], first, waited["at_sim"])
            phase["end_to_end_per_s"] = harness.end_to_end(phase["accepted"], first, end)
            phase["end_to_end_means"] = "first request -> all delivered" if args.receipts else "first request -> simulator holds all"
            phase["drain_after_last_accept_s"] = round(end - first - phase["seconds"], 3) if end else None
            phase["server_cpu_s_per_1000"] = harness.per_thousand(cpu1 - cpu0, phase["accepted"])
            phase["sim_cpu_s_per_1000"] = harness.per_thousand(sim_cpu1 - sim_cpu0, phase["accepted"])
            phase["statuses"] = waited["statuses"]
            phase["timed_out"] = end is None
            lat = store.latencies(prefixes[name])
            phase["accept_to_sent_ms"] = {q: lat["accept_to_sent_ms"][q] for q in ("p50", "p99", "max")}
            if args.receipts:
                phase["accept_to_delivered_ms"] = {q: lat["accept_to_delivered_ms"][q] for q in ("p50", "p99", "max")}
                phase["receipts_per_s"] = lat["receipts_per_s"]
            result[name] = phase
            log(f"{name}:", {k: phase.get(k) for k in ("accepted_per_s", "to_smsc_per_s", "end_to_end_per_s",
                                                          "server_cpu_s_per_1000", "timed_out")})
            if end is None:
                log("timed out; server stderr tail:\n" + server.stderr())
                result["server_stderr_tail"] = server.stderr()
                break
        status = server.proc_status()
        result["server"] = {"peak_rss_mib": status.get("VmHWM"), "cpu_seconds": round(status.get("cpu_seconds", 0), 2),
                            "mean_batch": server.mean_batches()}
        result["sim_process"] = {"peak_rss_mib": sim.figures().get("VmHWM")}
    finally:
        if spy is not None:
            harness.stop_process(spy, signal.SIGINT, timeout=60)
        if store is not None:
            store.close()
        if server is not None:
            result.setdefault("server", {})["exit_code"] = server.stop()
            errors = [line for line in server.stderr().splitlines() if "ERROR" in line or "Traceback" in line]
            result["server"]["stderr_errors"] = errors[-10:]
        result["sim_summary"] = sim.stop()
        shutil.rmtree(root, ignore_errors=True)
    if args.profile and Path(args.profile).exists():
        result["profile"] = {"file": str(args.profile), "top_own_time": top_functions(Path(args.profile))}
    total = sum(result.get(name, {}).get("accepted", 0) for name in ("single", "batch", "batch100"))
    summary_ = result["sim_summary"]
    result["exactly_once"] = summary_.get("received") == total and summary_.get("duplicates") == 0
    result["summary"] = {
        "accepted_per_s_single": result.get("single", {}).get("accepted_per_s"),
        "accepted_per_s_batch": result.get("batch", {}).get("accepted_per_s"),
        "accepted_per_s_batch100": result.get("batch100", {}).get("accepted_per_s"),
        "end_to_end_per_s_single": result.get("single", {}).get("end_to_end_per_s"),
        "end_to_end_per_s_batch": result.get("batch", {}).get("end_to_end_per_s"),
        "end_to_end_per_s_batch100": result.get("batch100", {}).get("end_to_end_per_s"),
        "server_cpu_s_per_1000_batch100": result.get("batch100", {}).get("server_cpu_s_per_1000"),
        "peak_rss_mib": result.get("server", {}).get("peak_rss_mib"),
        "sim": {k: summary_.get(k) for k in ("received", "unique", "duplicates", "receipts_sent")},
        "sent_total": total,
        "exactly_once": result["exactly_once"],
    }
    return result


def main() -> None:
    global PHONES
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20000, help="messages sent through /v1/messages/batch")
    parser.add_argument("--single", type=int, default=2000, help="messages sent one per POST /v1/messages")
    parser.add_argument("--concurrency", type=int, default=32, help="single POSTs in flight")
    parser.add_argument("--timeout", type=float, default=300.0, help="max seconds to wait for each phase to deliver")
    parser.add_argument("--channel", choices=("simulator", "smpp"), default="simulator",
                        help="the built-in carrier simulator, or SMPP to the SMSC simulator")
    smpp = parser.add_argument_group("smpp mode")
    smpp.add_argument("--messages100", type=int, default=None,
                      help="messages sent through /v1/messages/batch 100 per request (default: --messages)")
    smpp.add_argument("--batch-concurrency", type=int, default=4, help="batch requests in flight")
    smpp.add_argument("--latency", type=float, default=0.0, help="simulator's seconds before each submit_sm_resp")
    smpp.add_argument("--receipts", action=argparse.BooleanOptionalAction, default=False,
                      help="ask for and send delivery receipts")
    smpp.add_argument("--window", type=int, default=100, help="the channel's submit_sm in flight")
    smpp.add_argument("--profile", type=Path, default=None, help="py-spy speedscope file of the server")
    parser.add_argument("--workers", type=int, default=0,
                        help="0: one `empathic serve` process; N: an API process and N worker processes")
    parser.add_argument("--phones", type=int, default=PHONES,
                        help="distinct recipients, cycled (a number and contact seen before costs less; "
                             "at least the message count: every message to someone new)")
    args = parser.parse_args()
    if not 1 <= args.phones <= 4_000_000:
        parser.error("--phones must be 1 to 4,000,000")
    PHONES = args.phones
    if args.channel == "smpp":
        if args.messages100 is None:
            args.messages100 = args.messages
        print(json.dumps(run_smpp(args), indent=2))
        return

    root = Path(tempfile.mkdtemp(prefix="empathic-bench-"))
    server = Server(root, make_project(root))
    result: dict[str, Any] = {
        "params": {"messages": args.messages, "single": args.single, "concurrency": args.concurrency,
                   "batch_size": BATCH, "phones": args.phones},
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "implementation": platform.python_implementation(), "platform": platform.platform(),
                    "sqlite": sqlite3.sqlite_version},
    }
    store: Store | None = None
    try:
        t0 = time.monotonic()
        server.start()
        result["server_start_s"] = round(time.monotonic() - t0, 2)
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {API_KEY}"}) as api:
            config = api.patch("/v1/simulator", json={"receipt_delay": 0, "fail_share": 0})
            config.raise_for_status()
            result["simulator"] = config.json()
        store = Store(server.db_path)

        # Phase 1: one message per request.
        done_before = 0
        if args.single:
            log(f"single: {args.single} POST /v1/messages, concurrency {args.concurrency}")
            first = time.monotonic()
            single = asyncio.run(send_singles(server.url, args.single, args.concurrency))
            # Wait for what was accepted: a request that failed (its error is counted) left nothing.
            end, counts = wait_delivered(store, single["accepted"], args.timeout)
            single["delivered_per_s"] = round(single["accepted"] / (end - first), 1) if end else None
            single["statuses"] = counts
            result["single"] = single
            done_before = single["accepted"]
            log("single:", single)

        # Phase 2: batches of 1000.
        if args.messages:
            log(f"batch: {args.messages} messages in batches of {BATCH}")
            first = time.monotonic()
            batch = asyncio.run(send_batches_async(server.url, args.messages, BATCH, 1, "batch"))
            end, counts = wait_delivered(store, done_before + batch["accepted"], args.timeout)
            batch["delivered_per_s"] = round(batch["accepted"] / (end - first), 1) if end else None
            batch["drain_after_last_accept_s"] = round(end - first - batch["seconds"], 3) if end else None
            batch["statuses"] = counts
            result["batch"] = batch
            log("batch:", batch)

        result["latency"] = {
            "all": store.latencies(""),
            "single": store.latencies("single "),
            "batch": store.latencies("batch "),
        }
        status = server.proc_status()
        result["server"] = {
            "peak_rss_mib": status.get("VmHWM"),
            "rss_at_end_mib": status.get("VmRSS"),
            "cpu_seconds": status.get("cpu_seconds"),
        }
        result["server"]["db_mib"] = round(
            sum(p.stat().st_size for p in server.data_dir.glob("empathic.sqlite3*")) / 2**20, 1
        )
        result["timed_out"] = any(
            result.get(phase, {}).get("delivered_per_s", 0) is None for phase in ("single", "batch")
        )
        lat = result["latency"]
        result["summary"] = {
            "accepted_per_s_single": result.get("single", {}).get("accepted_per_s"),
            "accepted_per_s_batch": result.get("batch", {}).get("accepted_per_s"),
            "delivered_per_s": result.get("batch", result.get("single", {})).get("delivered_per_s"),
            "accept_to_sent_ms": {
                phase: {q: lat[phase]["accept_to_sent_ms"][q] for q in ("p50", "p99")}
                for phase in ("all", "single", "batch")
            },
            "peak_rss_mib": result["server"]["peak_rss_mib"],
        }
    finally:
        if store is not None:
            store.close()
        code = server.stop()
        result.setdefault("server", {})["exit_code"] = code
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
