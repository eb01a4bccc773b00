"""What the SMPP benchmarks share: the SMSC simulator with a live count, process figures,
a receipt counter, percentiles.

Every system under test (Empathic, Kannel, Jasmin) sends to the same simulator,
`empathic.smsc.serve` with the same `SmscSettings` that `empathic smsc-sim` builds. The
simulator has no query API, so this module runs it as `python bench/harness.py sim ...`,
which is `empathic smsc-sim` plus one thing: every 50 ms it writes `Smsc.summary()` to a
file (atomically). The harness reads that file to know the instant the simulator holds every
message, whichever gateway sent them; the simulator's code is untouched.

    sim = Sim(root, latency=0.02, receipts=True); sim.start()
    ... load a gateway bound to 127.0.0.1:sim.port ...
    at, counts = sim.wait(lambda c: c["received"] >= n, timeout=300)
    final = sim.stop()  # the summary written on exit: received, unique, duplicates, ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent
PYTHON = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists() else sys.executable


def log(*parts: Any) -> None:
    print("[bench]", *parts, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float, alive: Callable[[], bool] = lambda: True) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    k = min(len(values) - 1, max(0, int(round(q / 100 * (len(values) - 1)))))
    return values[k]


def proc_figures(pid: int) -> dict[str, float]:
    """CPU seconds (utime + stime), peak and current RSS (MiB) of one process, from /proc."""
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = round(int(value.split()[0]) / 1024, 1)
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        out["cpu_seconds"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    return out


def cpu_seconds(pids: list[int]) -> float:
    return sum(proc_figures(pid).get("cpu_seconds", 0.0) for pid in pids)


def per_thousand(seconds: float, messages: int) -> float | None:
    return round(seconds / messages * 1000, 3) if messages else None


def machine() -> dict[str, Any]:
    """The machine, and its load average when the run started: other work on it moves the figures."""
    return {"cpu_count": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}


def cpu_busy_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def busy_cores(before: tuple[int, int], after: tuple[int, int]) -> float:
    """Cores busy on average between two `cpu_busy_jiffies()` readings (everything running)."""
    total = after[1] - before[1]
    return round((after[0] - before[0]) / total * (os.cpu_count() or 1), 2) if total else 0.0


def wait_quiet(max_wait: float, threshold: float = 0.5) -> float:
    """Wait (at most `max_wait` s) until other work keeps fewer than `threshold` cores busy;
    the cores busy at the end. Other sessions' test runs on the same machine skew every figure."""
    deadline = time.monotonic() + max_wait
    while True:
        before = cpu_busy_jiffies()
        time.sleep(1.0)
        busy = busy_cores(before, cpu_busy_jiffies())
        if busy < threshold or time.monotonic() >= deadline:
            return busy
        log(f"machine busy ({busy} cores); waiting")


def pids_named(name: str) -> list[int]:
    """Pids whose command name (/proc/PID/comm) is `name`: to read, never to signal."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def stop_process(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
    """Stop one child we started: `sig`, then SIGKILL after `timeout`."""
    if proc is None:
        return None
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        return None


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


class Sim:
    """`empathic smsc-sim` in a subprocess, with its summary readable while it runs."""

    def __init__(self, root: Path, *, latency: float, receipts: bool, receipt_delay: float = 0.0,
                 faults: dict[str, Any] | None = None, record: bool = False) -> None:
        self.root = root
        self.latency = latency
        self.receipts = receipts
        self.receipt_delay = receipt_delay
        # smsc-sim's fault options by their flag names: throttle_share, drop_after, drop_every, seed ...
        self.faults = dict(faults or {})
        self.port = free_port()
        self.live_path = root / "sim-live.json"
        self.summary_path = root / "sim-summary.json"
        self.record_path = root / "sim-texts.json" if record else None
        self.log_path = root / "sim.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20) -> None:
        command = [
            PYTHON, str(HERE), "sim", "--port", str(self.port), "--latency", str(self.latency),
            "--receipts" if self.receipts else "--no-receipts", "--receipt-delay", str(self.receipt_delay),
            "--summary", str(self.summary_path), "--live", str(self.live_path),
        ]
        for name, value in self.faults.items():
            flag = "--" + name.replace("_", "-")
            command += [flag if value else "--no-" + flag[2:]] if isinstance(value, bool) else [flag, str(value)]
        if self.record_path is not None:
            command += ["--record", str(self.record_path)]
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"simulator exited ({self.proc.returncode}):\n{tail(self.log_path)}")
            if self.live_path.exists():
                return
            time.sleep(0.05)
        raise SystemExit(f"simulator did not start:\n{tail(self.log_path)}")

    def counts(self) -> dict[str, int]:
        try:
            return json.loads(self.live_path.read_text())
        except (OSError, ValueError):
            return {}

    def wait(
        self, done: Callable[[dict[str, int]], bool], timeout: float, progress: Callable[[], Any] | None = None
    ) -> tuple[float | None, dict[str, int]]:
        """Poll the live count until `done(counts)`; (monotonic instant or None on time-out, counts)."""
        deadline = time.monotonic() + timeout
        last_log = time.monotonic()
        counts: dict[str, int] = {}
        while time.monotonic() < deadline:
            counts = self.counts()
            if counts and done(counts):
                return time.monotonic(), counts
            if time.monotonic() - last_log > 5:
                log("waiting; sim:", {k: counts.get(k) for k in ("received", "receipts_sent", "duplicates")},
                    progress() if progress else "")
                last_log = time.monotonic()
            time.sleep(0.02)
        return None, counts

    def figures(self) -> dict[str, float]:
        return proc_figures(self.proc.pid) if self.proc is not None else {}

    def stop(self) -> dict[str, Any]:
        stop_process(self.proc, signal.SIGTERM)
        try:
            return json.loads(self.summary_path.read_text())
        except (OSError, ValueError):
            return {"error": "no summary", "log": tail(self.log_path)}

    def texts(self) -> list[str]:
        """With `record`, after stop(): the text of every message the simulator counted
        `received`, once per time it was received."""
        assert self.record_path is not None
        return json.loads(self.record_path.read_text())


class ReceiptCounter:
    """A tiny HTTP server counting the receipt callbacks a gateway makes (GET or POST),
    by the value of one query/form parameter (Kannel's `type`, Jasmin's `message_status`)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()
        counter = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _count(self, body: str) -> None:
                params = parse_qs(urlsplit(self.path).query)
                params.update(parse_qs(body))
                value = (params.get(counter.key) or ["?"])[0]
                with counter.lock:
                    counter.counts[value] = counter.counts.get(value, 0) + 1
                self.send_response(200)
                self.send_header("Content-Length", "10")
                self.end_headers()
                self.wfile.write(b"ACK/Jasmin")  # Jasmin throws the receipt again without it; Kannel ignores it

            def do_GET(self) -> None:  # noqa: N802
                self._count("")

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                self._count(self.rfile.read(length).decode("latin-1"))

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 1024  # the default backlog of 5 refuses bursts of callbacks

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/dlr"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self, value: str) -> int:
        with self.lock:
            return self.counts.get(value, 0)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def end_to_end(messages: int, first: float, end: float | None) -> float | None:
    return round(messages / (end - first), 1) if end else None


# ---- the simulator process: `python bench/harness.py sim ...`


def peer_summary(result: dict[str, Any], shape: str, *extra: str) -> None:
    """A peer run's verdict and summary (kannel/run.py, jasmin/run.py), from its `result`
    after `sim_summary` is in: exactly once, and the figures compare.py reads (plus `extra`)."""
    summary = result["sim_summary"]
    n = result.get("load", {}).get("accepted", 0)
    result["exactly_once"] = summary.get("received") == n and summary.get("duplicates") == 0
    figures = ("end_to_end_per_s", "to_smsc_per_s", "gateway_cpu_s_per_1000", *extra, "peak_rss_mib")
    result["summary"] = {
        "shape": shape,
        "accepted_per_s": result.get("load", {}).get("accepted_per_s"),
        **{k: result.get(k) for k in figures},
        "sim": {k: summary.get(k) for k in ("received", "unique", "duplicates", "receipts_sent")},
        "sent_total": n,
        "exactly_once": result["exactly_once"],
    }


def _sim_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="harness.py sim")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--receipts", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--receipt-delay", type=float, default=0.0)
    parser.add_argument("--summary", type=Path, required=True)
    parser.add_argument("--live", type=Path, required=True)
    parser.add_argument("--throttle-share", type=float, default=0.0)
    parser.add_argument("--drop-after", type=int, default=0)
    parser.add_argument("--drop-every", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--record", type=Path, default=None,
                        help="write every received message's text here (JSON list) on exit")
    args = parser.parse_args(argv)

    from empathic.smsc.server import SmscSettings, serve

    settings = SmscSettings(
        host="127.0.0.1", port=args.port, latency=args.latency, receipts=args.receipts,
        receipt_delay=args.receipt_delay, summary_path=args.summary, throttle_share=args.throttle_share,
        drop_after=args.drop_after, drop_every=args.drop_every, seed=args.seed,
    )
    settings.validate()

    async def publish(smsc: Any) -> None:
        temp = args.live.with_suffix(".tmp")
        while True:
            temp.write_text(json.dumps(smsc.summary()))
            os.replace(temp, args.live)
            await asyncio.sleep(0.05)

    tasks: list[asyncio.Task] = []

    texts: list[str] = []

    def started(smsc: Any) -> None:
        print(f"SMSC simulator listening on 127.0.0.1:{smsc.port}", flush=True)
        tasks.append(asyncio.get_running_loop().create_task(publish(smsc)))
        if args.record is not None:  # what the ledger counts `received`, text by text
            count = smsc.ledger._count

            def recording(source: str, destination: str, text: str) -> None:
                texts.append(text)
                count(source, destination, text)

            smsc.ledger._count = recording

    summary = asyncio.run(serve(settings, started=started))
    if args.record is not None:
        args.record.write_text(json.dumps(texts))
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] != ["sim"]:
        raise SystemExit("usage: python bench/harness.py sim --port P --summary FILE --live FILE [...]")
    _sim_main(sys.argv[2:])
