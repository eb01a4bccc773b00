"""Kannel 1.4.5 (bearerbox + smsbox) against the SMSC simulator, the shape Empathic is measured in.

Installs Debian's `kannel` if /usr/sbin/bearerbox is missing (needs root), writes one
kannel.conf (`kannel.conf.in` here, filled in) into a temporary folder, starts the
simulator (`harness.Sim`: `empathic smsc-sim` with a live count), then bearerbox, then
smsbox, waits for the bind, and sends `--messages` texts through `GET /cgi-bin/sendsms`,
`--per-request` recipients per request (Kannel's batch send: `to` takes several numbers
separated by spaces), `--concurrency` requests in flight. Every (destination, text) is
unique, so the simulator's `duplicates` proves exactly-once.

With `--receipts`, each request asks for dlr-mask=3 with a dlr-url on a small local HTTP
receiver (`harness.ReceiptCounter`), and the run ends when it has counted every
`type=1` (delivered) callback; without, when the simulator holds every message.

Prints one JSON object (progress on stderr):

    .venv/bin/python bench/peers/kannel/run.py [--messages 20000] [--latency 0.02] [--receipts] [--window 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # bench/

import harness  # noqa: E402

BEARERBOX = Path("/usr/sbin/bearerbox")
SMSBOX = Path("/usr/sbin/smsbox")
USER, PASSWORD = "bench", "benchpw"


def ensure_kannel() -> str:
    if not BEARERBOX.exists() or not SMSBOX.exists():
        harness.log("installing Debian's kannel")
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "kannel"], check=True,
                       stdout=subprocess.DEVNULL)
    out = subprocess.run([str(BEARERBOX), "--version"], capture_output=True, text=True)
    first = (out.stdout + out.stderr).splitlines()
    return first[0] if first else "?"


def write_config(root: Path, sim_port: int, window: int) -> tuple[Path, dict[str, int]]:
    ports = {"admin": harness.free_port(), "smsbox": harness.free_port(), "sendsms": harness.free_port()}
    (root / "store").mkdir()
    text = (HERE / "kannel.conf.in").read_text().format(
        root=root, sim_port=sim_port, window=window, user=USER, password=PASSWORD,
        admin_port=ports["admin"], smsbox_port=ports["smsbox"], sendsms_port=ports["sendsms"],
    )
    path = root / "kannel.conf"
    path.write_text(text)
    return path, ports


async def load(url: str, messages: int, per_request: int, concurrency: int, dlr_url: str | None) -> dict[str, Any]:
    errors: dict[str, int] = {}
    latencies: list[float] = []
    accepted = 0
    starts = iter(range(0, messages, per_request))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def worker() -> None:
            nonlocal accepted
            for start in starts:
                end = min(messages, start + per_request)
                params = {
                    "username": USER, "password": PASSWORD, "from": "18005550100",
                    # distinct numbers within a request, a text unique to the request
                    "to": " ".join(harness_phone(i) for i in range(start, end)),
                    "text": f"kannel {start}: your order ships today",
                }
                if dlr_url:
                    params.update({"dlr-mask": "3", "dlr-url": dlr_url + "?type=%d"})
                t0 = time.perf_counter()
                try:
                    r = await client.get("/cgi-bin/sendsms", params=params)
                    if r.status_code in (200, 202):
                        accepted += end - start
                    else:
                        key = f"{r.status_code} {r.text.strip()[:60]}"
                        errors[key] = errors.get(key, 0) + 1
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                latencies.append((time.perf_counter() - t0) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies), "per_request": per_request, "concurrency": concurrency,
        "accepted": accepted, "seconds": round(elapsed, 3), "accepted_per_s": round(accepted / elapsed, 1),
        "request_ms": {"p50": round(harness.percentile(latencies, 50) or 0, 1),
                       "p99": round(harness.percentile(latencies, 99) or 0, 1)},
        "errors": errors,
    }


def harness_phone(i: int) -> str:
    return f"1415555{i % 5000:04d}"  # the numbers Empathic's run uses, without the +


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--per-request", type=int, default=100, help="recipients per sendsms request")
    parser.add_argument("--concurrency", type=int, default=4, help="sendsms requests in flight")
    parser.add_argument("--latency", type=float, default=0.0, help="simulator's seconds before each submit_sm_resp")
    parser.add_argument("--receipts", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--window", type=int, default=100, help="max-pending-submits")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (configs, logs)")
    args = parser.parse_args()

    version = ensure_kannel()
    root = Path(tempfile.mkdtemp(prefix="kannel-bench-"))
    sim = harness.Sim(root, latency=args.latency, receipts=args.receipts)
    receiver = harness.ReceiptCounter("type") if args.receipts else None
    bearerbox = smsbox = None
    result: dict[str, Any] = {
        "system": "kannel", "version": version,
        "params": {"messages": args.messages, "per_request": args.per_request, "concurrency": args.concurrency,
                   "latency_s": args.latency, "receipts": args.receipts, "window": args.window},
        "machine": harness.machine(),
    }
    try:
        sim.start()
        config, ports = write_config(root, sim.port, args.window)
        bearerbox = subprocess.Popen([str(BEARERBOX), str(config)], stdout=subprocess.DEVNULL,
                                     stderr=open(root / "bearerbox.err", "wb"), cwd=root)
        if not harness.wait_port(ports["smsbox"], 20, lambda: bearerbox.poll() is None):
            raise SystemExit("bearerbox did not start:\n" + harness.tail(root / "bearerbox.log")
                             + harness.tail(root / "bearerbox.err"))
        smsbox = subprocess.Popen([str(SMSBOX), str(config)], stdout=subprocess.DEVNULL,
                                  stderr=open(root / "smsbox.err", "wb"), cwd=root)
        if not harness.wait_port(ports["sendsms"], 20, lambda: smsbox.poll() is None):
            raise SystemExit("smsbox did not start:\n" + harness.tail(root / "smsbox.log")
                             + harness.tail(root / "smsbox.err"))
        bound, _ = sim.wait(lambda c: c.get("binds", 0) >= 1, timeout=30)
        if bound is None:
            raise SystemExit("bearerbox never bound to the simulator:\n" + harness.tail(root / "bearerbox.log"))
        time.sleep(0.5)
        pids = [bearerbox.pid, smsbox.pid]

        cpu0, sim_cpu0 = harness.cpu_seconds(pids), sim.figures().get("cpu_seconds", 0)
        first = time.monotonic()
        sent = asyncio.run(load(f"http://127.0.0.1:{ports['sendsms']}", args.messages, args.per_request,
                                args.concurrency, receiver.url if receiver else None))
        n = sent["accepted"]
        at_sim, counts = sim.wait(lambda c: c.get("received", 0) >= n, args.timeout)
        at_end = at_sim
        if receiver is not None and at_sim is not None:
            deadline = time.monotonic() + args.timeout
            last_log = time.monotonic()
            at_end = None
            while time.monotonic() < deadline:
                if receiver.count("1") >= n:
                    at_end = time.monotonic()
                    break
                if time.monotonic() - last_log > 5:
                    harness.log("waiting for receipts:", receiver.counts, "sim:", sim.counts().get("receipts_sent"))
                    last_log = time.monotonic()
                time.sleep(0.02)
        cpu1, sim_cpu1 = harness.cpu_seconds(pids), sim.figures().get("cpu_seconds", 0)
        result["load"] = sent
        result["to_smsc_per_s"] = harness.end_to_end(n, first, at_sim)
        result["end_to_end_per_s"] = harness.end_to_end(n, first, at_end)
        result["end_to_end_means"] = ("first request -> all delivered callbacks (type=1) received" if receiver
                                      else "first request -> simulator holds all")
        result["drain_after_last_accept_s"] = round(at_end - first - sent["seconds"], 3) if at_end else None
        result["timed_out"] = at_end is None
        if receiver is not None:
            result["receipt_callbacks"] = dict(receiver.counts)
        result["gateway_cpu_s_per_1000"] = harness.per_thousand(cpu1 - cpu0, n)
        result["sim_cpu_s_per_1000"] = harness.per_thousand(sim_cpu1 - sim_cpu0, n)
        figures = {"bearerbox": harness.proc_figures(bearerbox.pid), "smsbox": harness.proc_figures(smsbox.pid)}
        result["processes"] = {name: {"peak_rss_mib": f.get("VmHWM"), "cpu_seconds": round(f.get("cpu_seconds", 0), 2)}
                               for name, f in figures.items()}
        result["peak_rss_mib"] = round(sum(f.get("VmHWM", 0) for f in figures.values()), 1)
        if result["timed_out"]:
            result["bearerbox_log_tail"] = harness.tail(root / "bearerbox.log")
    finally:
        harness.stop_process(smsbox, timeout=10)
        harness.stop_process(bearerbox, timeout=15)
        if receiver is not None:
            receiver.close()
        result["sim_summary"] = sim.stop()
        if args.keep:
            result["folder"] = str(root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    harness.peer_summary(result, f"{args.per_request} recipients per request, {args.concurrency} in flight")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
