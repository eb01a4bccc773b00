"""Jasmin 0.11.1 against the SMSC simulator, the shape Empathic is measured in.

Creates its own virtualenv (`~/.cache/empathic-bench/jasmin-venv`: `pip install
"jasmin==0.11.1" "setuptools<81"`; without the pin jasmind dies importing pkg_resources)
unless it exists, writes `jasmin.cfg` into a temporary folder (every listener on 127.0.0.1 on
a free port, the AMQP spec txAMQP3 ships, RabbitMQ 127.0.0.1:5672 and Redis 127.0.0.1:6379),
starts the simulator (`harness.Sim`) and jasmind, configures it over jCli (group, user, an
SMPP client connector to the simulator with `submit_throughput 0` (unlimited; the default is
1/s), the default MT route, start the connector), waits 3 s after the bind (texts sent
earlier can be refused after the HTTP API said success), and sends `--messages` texts
through `GET /send`, one per request, `--concurrency` requests in flight. Every body is
unique, so the simulator's `duplicates` proves exactly-once.

Each run uses a connector id of its own, so its RabbitMQ queue starts empty. With
`--receipts`, jasmind also runs its DLR lookup and thrower, requests ask for `dlr=yes`,
`dlr-level=2` with a dlr-url on a local receiver, and the run waits for every DELIVRD
callback (0.11.1 fails to correlate receipts, jookies/jasmin#1218: then it times out after
`--receipt-timeout` and says so).

Jasmin's connector is stop-and-wait (one submit_sm in flight, not configurable), so
`--window` does not exist here. Prints one JSON object (progress on stderr):

    .venv/bin/python bench/peers/jasmin/run.py [--messages 3000] [--latency 0.02] [--receipts]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # bench/

import harness  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import telnetlib  # in the standard library up to 3.12; jCli is a telnet service

VENV = Path(os.environ.get("JASMIN_VENV", Path.home() / ".cache" / "empathic-bench" / "jasmin-venv"))
USER, PASSWORD = "bench", "benchpw"
LOCK = Path("/tmp/jasmind.lock")  # jasmind's own lock (lockfile.FileLock("/tmp/jasmind"))
SECTIONS = ("smpp-server", "smpp-server-pb", "client-management", "router", "http-api", "jcli")


def ensure_jasmin() -> Path:
    python = VENV / "bin" / "python"
    if not (VENV / "bin" / "jasmind.py").exists():
        harness.log("creating", VENV, "with jasmin 0.11.1")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "jasmin==0.11.1", "setuptools<81"], check=True)
    return python


def write_config(root: Path, python: Path) -> tuple[Path, dict[str, int]]:
    spec = subprocess.run(
        [str(python), "-c", "import os, txamqp; print(os.path.join(os.path.dirname(txamqp.__file__),"
                            " 'specs/standard/amqp0-9-1.stripped.xml'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    ports = {section: harness.free_port() for section in SECTIONS}
    lines = []
    for section in SECTIONS:
        lines += [f"[{section}]", "bind = 127.0.0.1", f"port = {ports[section]}", "log_level = WARNING", ""]
    lines += ["[amqp-broker]", "host = 127.0.0.1", "port = 5672", "username = guest", "password = guest",
              f"spec = {spec}", "log_level = WARNING", ""]
    lines += ["[redis-client]", "host = 127.0.0.1", "port = 6379", "dbid = 0", "log_level = WARNING", ""]
    for section in ("sm-listener", "dlr", "dlr-thrower", "deliversm-thrower", "service-smppclient"):
        lines += [f"[{section}]", "log_level = WARNING", ""]
    path = root / "jasmin.cfg"
    path.write_text("\n".join(lines))
    return path, ports


class JCli:
    """jCli over telnet: one command per line, objects ended by `ok`."""

    PROMPTS = [b"jcli : ", b"> "]

    def __init__(self, port: int) -> None:
        self.tn = telnetlib.Telnet("127.0.0.1", port, timeout=10)
        self.tn.read_until(b"Username: ", 10)
        self.tn.write(b"jcliadmin\r\n")
        self.tn.read_until(b"Password: ", 10)
        self.tn.write(b"jclipwd\r\n")
        self.tn.expect(self.PROMPTS, 10)
        self.transcript: list[str] = []

    def run(self, *commands: str) -> str:
        out = []
        for command in commands:
            self.tn.write(command.encode() + b"\r\n")
            _, _, text = self.tn.expect(self.PROMPTS, 15)
            answer = text.decode("latin-1", "replace")
            out.append(answer)
            self.transcript.append(f"{command} => {answer.strip()[:200]}")
        return "".join(out)

    def close(self) -> None:
        try:
            self.tn.write(b"quit\r\n")
        except OSError:
            pass
        self.tn.close()


async def load(url: str, messages: int, concurrency: int, dlr_url: str | None) -> dict[str, Any]:
    errors: dict[str, int] = {}
    latencies: list[float] = []
    accepted = 0
    indexes = iter(range(messages))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def worker() -> None:
            nonlocal accepted
            for i in indexes:
                params = {"username": USER, "password": PASSWORD, "from": "18005550100",
                          "to": f"1415555{i % 5000:04d}", "content": f"jasmin {i}: your order ships today"}
                if dlr_url:
                    params.update({"dlr": "yes", "dlr-level": "2", "dlr-method": "GET", "dlr-url": dlr_url})
                t0 = time.perf_counter()
                try:
                    r = await client.get("/send", params=params)
                    if r.status_code == 200 and r.text.startswith("Success"):
                        accepted += 1
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
        "requests": len(latencies), "per_request": 1, "concurrency": concurrency,
        "accepted": accepted, "seconds": round(elapsed, 3), "accepted_per_s": round(accepted / elapsed, 1),
        "request_ms": {"p50": round(harness.percentile(latencies, 50) or 0, 1),
                       "p99": round(harness.percentile(latencies, 99) or 0, 1)},
        "errors": errors,
    }


def jasmind_running() -> bool:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"jasmind.py" in (entry / "cmdline").read_bytes():
                    return True
            except OSError:
                pass
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50, help="HTTP requests in flight")
    parser.add_argument("--latency", type=float, default=0.0, help="simulator's seconds before each submit_sm_resp")
    parser.add_argument("--receipts", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--timeout", type=float, default=300.0, help="max seconds for the simulator to hold all")
    parser.add_argument("--receipt-timeout", type=float, default=30.0,
                        help="max seconds, after the simulator holds all, for the receipt callbacks")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (config, logs)")
    args = parser.parse_args()

    python = ensure_jasmin()
    if jasmind_running():
        raise SystemExit("a jasmind is already running (it holds /tmp/jasmind.lock); stop it first")
    LOCK.unlink(missing_ok=True)  # stale: no jasmind runs
    root = Path(tempfile.mkdtemp(prefix="jasmin-bench-"))
    for folder in ("log", "store"):
        (root / folder).mkdir()
    sim = harness.Sim(root, latency=args.latency, receipts=args.receipts)
    receiver = harness.ReceiptCounter("message_status") if args.receipts else None
    jasmind = None
    cid = f"sim{uuid.uuid4().hex[:8]}"  # its own RabbitMQ queue, empty
    result: dict[str, Any] = {
        "system": "jasmin", "version": "0.11.1",
        "params": {"messages": args.messages, "concurrency": args.concurrency, "latency_s": args.latency,
                   "receipts": args.receipts, "window": 1},
        "machine": harness.machine(),
    }
    try:
        sim.start()
        config, ports = write_config(root, python)
        env = {**os.environ, "CONFIG_PATH": str(root), "LOG_PATH": str(root / "log"), "STORE_PATH": str(root / "store")}
        command = [str(python), str(VENV / "bin" / "jasmind.py"), "-c", str(config)]
        if args.receipts:
            command += ["--enable-dlr-lookup", "--enable-dlr-thrower"]
        with open(root / "jasmind.out", "wb") as out:
            jasmind = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=root)
        if not harness.wait_port(ports["jcli"], 60, lambda: jasmind.poll() is None) or \
                not harness.wait_port(ports["http-api"], 30, lambda: jasmind.poll() is None):
            raise SystemExit("jasmind did not start:\n" + harness.tail(root / "jasmind.out"))
        time.sleep(1.0)
        jcli = JCli(ports["jcli"])
        jcli.run("group -a", f"gid {USER}", "ok")
        jcli.run("user -a", f"username {USER}", f"password {PASSWORD}", f"gid {USER}", f"uid {USER}", "ok")
        jcli.run("smppccm -a", f"cid {cid}", "host 127.0.0.1", f"port {sim.port}", "username bench",
                 "password bench", "bind transceiver", "submit_throughput 0", "con_fail_delay 1",
                 "con_loss_delay 1", "ok")
        jcli.run("mtrouter -a", "type defaultroute", f"connector smppc({cid})", "rate 0.00", "ok")
        jcli.run(f"smppccm -1 {cid}")
        result["jcli"] = jcli.transcript
        bound, _ = sim.wait(lambda c: c.get("binds", 0) >= 1, timeout=30)
        if bound is None:
            raise SystemExit("jasmind never bound to the simulator:\n" + "\n".join(jcli.transcript)
                             + harness.tail(root / "jasmind.out"))
        time.sleep(3.0)  # texts sent in the first seconds after the bind can be refused after HTTP success
        pid = jasmind.pid

        # Jasmin needs RabbitMQ and Redis (shared local services): their CPU is reported apart.
        brokers = harness.pids_named("beam.smp") + harness.pids_named("redis-server")
        cpu0, sim_cpu0 = harness.cpu_seconds([pid]), sim.figures().get("cpu_seconds", 0)
        broker_cpu0 = harness.cpu_seconds(brokers)
        first = time.monotonic()
        sent = asyncio.run(load(f"http://127.0.0.1:{ports['http-api']}", args.messages, args.concurrency,
                                receiver.url if receiver else None))
        n = sent["accepted"]
        at_sim, counts = sim.wait(lambda c: c.get("received", 0) >= n, args.timeout)
        at_end = at_sim
        if receiver is not None and at_sim is not None:
            deadline = time.monotonic() + args.receipt_timeout
            at_end = None
            while time.monotonic() < deadline:
                if receiver.count("DELIVRD") >= n:
                    at_end = time.monotonic()
                    break
                time.sleep(0.02)
            result["receipt_callbacks"] = dict(receiver.counts)
            result["sim_receipts_acknowledged"] = sim.counts().get("receipts_sent")
            if at_end is None:
                result["receipts_note"] = (f"only {receiver.count('DELIVRD')} of {n} DELIVRD callbacks within "
                                           f"{args.receipt_timeout} s of the simulator holding all")
        cpu1, sim_cpu1 = harness.cpu_seconds([pid]), sim.figures().get("cpu_seconds", 0)
        result["rabbitmq_redis_cpu_s_per_1000"] = harness.per_thousand(harness.cpu_seconds(brokers) - broker_cpu0, n)
        result["load"] = sent
        result["to_smsc_per_s"] = harness.end_to_end(n, first, at_sim)
        result["end_to_end_per_s"] = harness.end_to_end(n, first, at_end)
        result["end_to_end_means"] = ("first request -> all DELIVRD callbacks received" if receiver
                                      else "first request -> simulator holds all")
        result["drain_after_last_accept_s"] = round(at_end - first - sent["seconds"], 3) if at_end else None
        result["timed_out"] = at_end is None
        result["gateway_cpu_s_per_1000"] = harness.per_thousand(cpu1 - cpu0, n)
        result["sim_cpu_s_per_1000"] = harness.per_thousand(sim_cpu1 - sim_cpu0, n)
        figures = harness.proc_figures(pid)
        result["processes"] = {"jasmind": {"peak_rss_mib": figures.get("VmHWM"),
                                           "cpu_seconds": round(figures.get("cpu_seconds", 0), 2)}}
        result["peak_rss_mib"] = figures.get("VmHWM")
        errors = [line for line in harness.tail(root / "jasmind.out", 200_000).splitlines() if "ERROR" in line]
        result["jasmind_errors"] = {"count": len(errors), "last": errors[-3:]}
        for log_file in sorted((root / "log").glob("*.log")):
            found = [line for line in harness.tail(log_file, 2_000_000).splitlines() if "ERROR" in line]
            if found:
                result["jasmind_errors"][log_file.name] = {"count": len(found), "last": found[-2:]}
        try:
            jcli.run(f"smppccm -0 {cid}")
            jcli.close()
        except (OSError, EOFError):
            pass
    finally:
        harness.stop_process(jasmind, timeout=15)
        if receiver is not None:
            receiver.close()
        result["sim_summary"] = sim.stop()
        if args.keep:
            result["folder"] = str(root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    harness.peer_summary(result, f"1 recipient per request, {args.concurrency} in flight", "rabbitmq_redis_cpu_s_per_1000")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
