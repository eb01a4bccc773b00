"""Empathic, Kannel 1.4.5 and Jasmin 0.11.1 side by side: same machine, same SMSC simulator
settings, same load, one run.

For each cell of the matrix (carrier latency `--latencies` × receipts off/on) it runs, one
after the other, each in its own subprocess with a fresh simulator:

- `bench/throughput.py --channel smpp` (Empathic: single POSTs, batches of 1000, batches of 100);
- `bench/peers/kannel/run.py` (sendsms, 100 recipients per request);
- `bench/peers/jasmin/run.py` (HTTP /send, one message per request; fewer messages: it is slow).

Then prints one JSON document: every run's own JSON under `runs`, and a `table` per cell
with msg/s end to end, the ratios Empathic/Kannel and Empathic/Jasmin, what turning receipts
on costs each, CPU seconds per 1,000 messages, peak RSS and the simulator's duplicates
(which must be 0). `--profile FILE` adds one more Empathic run (latency 0, receipts off)
under py-spy and reports the 15 functions with the most own time.

    .venv/bin/python bench/compare.py                   # about 10-15 minutes on 2 cores
    .venv/bin/python bench/compare.py --messages 5000 --jasmin-messages 1000 --latencies 0
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import harness

BENCH = Path(__file__).resolve().parent


def run(name: str, command: list[str], timeout: float, logs: Path, quiet_wait: float = 0) -> dict[str, Any]:
    busy_before = harness.wait_quiet(quiet_wait) if quiet_wait else None
    harness.log(f"{name}: {' '.join(command[1:])}")
    err = logs / f"{name}.err"
    started = time.monotonic()
    jiffies = harness.cpu_busy_jiffies()
    ours = resource.getrusage(resource.RUSAGE_CHILDREN)  # every process of the run is waited for
    try:
        with open(err, "wb") as stderr:
            done = subprocess.run(command, stdout=subprocess.PIPE, stderr=stderr, timeout=timeout, cwd=harness.REPO)
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {timeout} s", "stderr_tail": harness.tail(err)}
    seconds = round(time.monotonic() - started, 1)
    try:
        result = json.loads(done.stdout)
    except ValueError:
        return {"error": f"exit {done.returncode}, no JSON", "stderr_tail": harness.tail(err), "seconds": seconds}
    result["wall_seconds"] = seconds
    # Everything that ran meanwhile, this run included: well above what the run's own
    # processes use means other work on the machine competed with it.
    result["machine_busy_cores_during_run"] = harness.busy_cores(jiffies, harness.cpu_busy_jiffies())
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (after.ru_utime - ours.ru_utime) + (after.ru_stime - ours.ru_stime)
    # what the machine did besides this run's own processes (RabbitMQ and Redis count here)
    result["other_busy_cores_during_run"] = round(max(0.0, result["machine_busy_cores_during_run"] - own / seconds), 2)
    result["machine_busy_cores_before_run"] = busy_before
    return result


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def cost(on: float | None, off: float | None) -> float | None:
    """Share of throughput lost by turning receipts on, in %."""
    return round((1 - on / off) * 100, 1) if on and off else None


def empathic_row(r: dict[str, Any]) -> dict[str, Any]:
    if "error" in r:
        return {"error": r["error"]}
    s = r.get("summary", {})
    b100, b1000, single = r.get("batch100", {}), r.get("batch", {}), r.get("single", {})
    return {
        "end_to_end_per_s": {"batch100": s.get("end_to_end_per_s_batch100"), "batch1000": s.get("end_to_end_per_s_batch"),
                             "single": s.get("end_to_end_per_s_single")},
        "accepted_per_s": {"batch100": s.get("accepted_per_s_batch100"), "batch1000": s.get("accepted_per_s_batch"),
                           "single": s.get("accepted_per_s_single")},
        "receipts_per_s": {k: v.get("receipts_per_s") for k, v in (("batch100", b100), ("batch1000", b1000))
                           if v.get("receipts_per_s") is not None} or None,
        "accept_to_sent_ms_batch100": b100.get("accept_to_sent_ms"),
        "accept_to_sent_ms_single": single.get("accept_to_sent_ms"),
        "cpu_s_per_1000": {"server_batch100": b100.get("server_cpu_s_per_1000"),
                           "server_batch1000": b1000.get("server_cpu_s_per_1000"),
                           "server_single": single.get("server_cpu_s_per_1000"),
                           "sim_batch100": b100.get("sim_cpu_s_per_1000")},
        "peak_rss_mib": s.get("peak_rss_mib"),
        "duplicates": s.get("sim", {}).get("duplicates"),
        "exactly_once": s.get("exactly_once"),
        "timed_out": any(r.get(p, {}).get("timed_out") for p in ("single", "batch", "batch100")),
        "machine_busy_cores": r.get("machine_busy_cores_during_run"),
        "other_busy_cores": r.get("other_busy_cores_during_run"),
    }


def peer_row(r: dict[str, Any]) -> dict[str, Any]:
    if "error" in r:
        return {"error": r["error"]}
    s = r.get("summary", {})
    row = {
        "shape": s.get("shape"),
        "end_to_end_per_s": s.get("end_to_end_per_s"),
        "to_smsc_per_s": s.get("to_smsc_per_s"),
        "accepted_per_s": s.get("accepted_per_s"),
        "cpu_s_per_1000": s.get("gateway_cpu_s_per_1000"),
        "sim_cpu_s_per_1000": r.get("sim_cpu_s_per_1000"),
        "peak_rss_mib": s.get("peak_rss_mib"),
        "messages": s.get("sent_total"),
        "duplicates": s.get("sim", {}).get("duplicates"),
        "exactly_once": s.get("exactly_once"),
        "timed_out": r.get("timed_out"),
        "machine_busy_cores": r.get("machine_busy_cores_during_run"),
        "other_busy_cores": r.get("other_busy_cores_during_run"),
    }
    if s.get("rabbitmq_redis_cpu_s_per_1000") is not None:
        row["rabbitmq_redis_cpu_s_per_1000"] = s["rabbitmq_redis_cpu_s_per_1000"]
    if r.get("receipts_note"):
        row["note"] = r["receipts_note"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20000,
                        help="Empathic's batch phases (each) and Kannel's run")
    parser.add_argument("--single", type=int, default=1000, help="Empathic's single-POST phase")
    parser.add_argument("--concurrency", type=int, default=50,
                        help="single POSTs in flight for Empathic, HTTP requests for Jasmin")
    parser.add_argument("--batch-concurrency", type=int, default=4, help="batch/sendsms requests in flight")
    parser.add_argument("--jasmin-messages", type=int, default=3000, help="Jasmin at 0 ms, receipts off")
    parser.add_argument("--jasmin-slow-messages", type=int, default=800,
                        help="Jasmin with carrier latency or receipts (stop-and-wait: tens of msg/s)")
    parser.add_argument("--latencies", default="0,0.02", help="carrier latencies in seconds, comma-separated")
    parser.add_argument("--receipts", default="off,on", help="off, on or off,on")
    parser.add_argument("--window", type=int, default=100, help="Empathic's window and Kannel's max-pending-submits")
    parser.add_argument("--systems", default="empathic,kannel,jasmin")
    parser.add_argument("--workers", type=int, default=0,
                        help="Empathic as one process (0) or an API process and N worker processes")
    parser.add_argument("--no-jasmin-receipts", action="store_true", help="skip Jasmin's receipts-on cells")
    parser.add_argument("--profile", type=Path, default=None,
                        help="also profile Empathic (0 ms, receipts off) with py-spy into this speedscope file")
    parser.add_argument("--timeout", type=float, default=900, help="max seconds of one run")
    parser.add_argument("--quiet-wait", type=float, default=60,
                        help="before each run, wait up to this many seconds for other work on the machine to stop")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()

    python = harness.PYTHON
    systems = args.systems.split(",")
    latencies = [float(x) for x in args.latencies.split(",")]
    receipt_modes = [mode == "on" for mode in args.receipts.split(",")]
    logs = Path(tempfile.mkdtemp(prefix="empathic-compare-"))
    started = time.monotonic()
    document: dict[str, Any] = {
        "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": harness.machine(),
        "simulator": "empathic.smsc (the code of `empathic smsc-sim`) via bench/harness.py; TCP_NODELAY, no TCP_QUICKACK",
        "logs": str(logs),
        "runs": {},
        "table": {},
    }
    for latency in latencies:
        for receipts in receipt_modes:
            cell = f"latency_{int(latency * 1000)}ms_receipts_{'on' if receipts else 'off'}"
            flag = "--receipts" if receipts else "--no-receipts"
            runs: dict[str, Any] = {}
            if "empathic" in systems:
                runs["empathic"] = run(f"{cell}-empathic", [
                    python, str(BENCH / "throughput.py"), "--channel", "smpp", "--latency", str(latency), flag,
                    "--window", str(args.window), "--single", str(args.single), "--concurrency", str(args.concurrency),
                    "--messages", str(args.messages), "--batch-concurrency", str(args.batch_concurrency),
                    "--workers", str(args.workers),
                ], args.timeout, logs, args.quiet_wait)
            if "kannel" in systems:
                runs["kannel"] = run(f"{cell}-kannel", [
                    python, str(BENCH / "peers" / "kannel" / "run.py"), "--latency", str(latency), flag,
                    "--window", str(args.window), "--messages", str(args.messages),
                    "--concurrency", str(args.batch_concurrency),
                ], args.timeout, logs, args.quiet_wait)
            if "jasmin" in systems and not (receipts and args.no_jasmin_receipts):
                n = args.jasmin_messages if latency == 0 and not receipts else args.jasmin_slow_messages
                runs["jasmin"] = run(f"{cell}-jasmin", [
                    python, str(BENCH / "peers" / "jasmin" / "run.py"), "--latency", str(latency), flag,
                    "--messages", str(n), "--concurrency", str(args.concurrency),
                ], args.timeout, logs, args.quiet_wait)
            document["runs"][cell] = runs
            table: dict[str, Any] = {}
            if "empathic" in runs:
                table["empathic"] = empathic_row(runs["empathic"])
            for peer in ("kannel", "jasmin"):
                if peer in runs:
                    table[peer] = peer_row(runs[peer])
            emp = table.get("empathic", {}).get("end_to_end_per_s", {})
            kannel = table.get("kannel", {})
            jasmin = table.get("jasmin", {})
            # Jasmin with receipts: 0.11.1 never reports them (#1218); its figure is then to the SMSC.
            jasmin_rate = jasmin.get("end_to_end_per_s") or jasmin.get("to_smsc_per_s")
            table["ratios"] = {
                "empathic_batch100_over_kannel": ratio(emp.get("batch100"), kannel.get("end_to_end_per_s")),
                "empathic_single_over_jasmin": ratio(emp.get("single"), jasmin_rate),
                "empathic_batch100_over_jasmin": ratio(emp.get("batch100"), jasmin_rate),
            }
            document["table"][cell] = table
            harness.log(cell, json.dumps(table))
    # What receipts cost each system, per latency.
    costs: dict[str, Any] = {}
    for latency in latencies:
        off = document["table"].get(f"latency_{int(latency * 1000)}ms_receipts_off", {})
        on = document["table"].get(f"latency_{int(latency * 1000)}ms_receipts_on", {})
        if not off or not on:
            continue
        entry: dict[str, Any] = {}
        if "empathic" in off and "empathic" in on:
            for shape in ("batch100", "batch1000", "single"):
                entry[f"empathic_{shape}_pct_lost"] = cost(
                    on["empathic"].get("end_to_end_per_s", {}).get(shape),
                    off["empathic"].get("end_to_end_per_s", {}).get(shape))
        if "kannel" in off and "kannel" in on:
            entry["kannel_pct_lost"] = cost(on["kannel"].get("end_to_end_per_s"), off["kannel"].get("end_to_end_per_s"))
        if "jasmin" in off and "jasmin" in on:
            entry["jasmin_pct_lost_to_smsc"] = cost(on["jasmin"].get("to_smsc_per_s"), off["jasmin"].get("to_smsc_per_s"))
        costs[f"latency_{int(latency * 1000)}ms"] = entry
    document["receipts_cost"] = costs
    document["all_exactly_once"] = all(
        row.get("exactly_once") for cell in document["table"].values()
        for name, row in cell.items() if name != "ratios"
    )

    if args.profile is not None and "empathic" in systems:
        profiled = run("profile-empathic", [
            python, str(BENCH / "throughput.py"), "--channel", "smpp", "--latency", "0", "--no-receipts",
            "--window", str(args.window), "--single", str(args.single), "--concurrency", str(args.concurrency),
            "--messages", str(args.messages), "--batch-concurrency", str(args.batch_concurrency),
            "--profile", str(args.profile.resolve()),
        ], args.timeout, logs, args.quiet_wait)
        document["profile"] = {
            "file": str(args.profile),
            "note": "a separate run under py-spy (100 Hz), so the table's figures are not perturbed; "
                    "own time = leaf of each sampled stack, all threads, idle excluded by py-spy's heuristic",
            "end_to_end_per_s_under_profiler": profiled.get("summary", {}).get("end_to_end_per_s_batch100"),
            "top_own_time": profiled.get("profile", {}).get("top_own_time"),
            "error": profiled.get("error"),
        }
    document["wall_seconds"] = round(time.monotonic() - started, 1)
    text = json.dumps(document, indent=2)
    if args.out is not None:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    sys.exit(main())
