"""Flood the SMSC simulator to show it is not the bottleneck of an SMPP benchmark.

Starts `empathic.smsc.serve` in a child process (its own core), then a bare asyncio ESME,
built only on `empathic.channels.smpp.pdu`, binds and keeps `--window` submit_sm in flight
until `--messages` are answered: every body is unique, so the simulator's summary must say
duplicates 0. With `--receipts` each submit asks for a receipt and the ESME (a transceiver)
acknowledges them; the run ends when all have arrived.

Prints one JSON object: submits answered per second (wall clock, client included), the
simulator's CPU seconds and the rate that makes per core of simulator, and its summary.

    python bench/smsc_flood.py [--messages 200000] [--window 1000] [--latency 0] [--receipts]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import signal
import struct
import sys
import tempfile
import time
from pathlib import Path

from empathic.channels.smpp.pdu import Bind, CommandId, DeliverSmResp, FrameReader, SubmitSm, encode

_HEADER = struct.Struct(">IIII")
_SUBMIT_SM_RESP = 0x80000004
_DELIVER_SM = 0x00000005


def _run_simulator(port_queue, summary_path: str, latency: float) -> None:
    from empathic.smsc import SmscSettings, serve

    settings = SmscSettings(port=0, latency=latency, summary_path=Path(summary_path))
    asyncio.run(serve(settings, started=lambda smsc: port_queue.put(smsc.port)))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def flood(port: int, messages: int, window: int, receipts: bool) -> dict:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    command = CommandId.BIND_TRANSCEIVER if receipts else CommandId.BIND_TRANSMITTER
    writer.write(encode(Bind(command, "flood", "flood", sequence=1)))
    frames = FrameReader()
    while not (bound := frames.feed(await reader.read(4096))):
        pass
    assert _HEADER.unpack_from(bound[0])[2] == 0, "bind refused"
    # Encoded before the clock starts: the figure is the simulator's, not our encoder's.
    submits = [
        encode(
            SubmitSm(
                source_addr="Acme",
                destination_addr=f"1415{n % 10_000_000:07d}",
                registered_delivery=1 if receipts else 0,
                short_message=f"Flood message {n}: your code is {n * 7919 % 1_000_000:06d}".encode(),
                sequence=n + 2,
            )
        )
        for n in range(messages)
    ]
    started = time.perf_counter()
    sent = min(window, messages)
    writer.write(b"".join(submits[:sent]))
    answered = errors = receipts_seen = 0
    while answered < messages or (receipts and receipts_seen < messages):
        data = await reader.read(1 << 18)
        if not data:
            raise ConnectionError("the simulator closed the connection")
        acks = []
        for frame in frames.feed(data):
            _, command_id, status, sequence = _HEADER.unpack_from(frame)
            if command_id == _SUBMIT_SM_RESP:
                answered += 1
                errors += status != 0
            elif command_id == _DELIVER_SM:
                receipts_seen += 1
                acks.append(encode(DeliverSmResp(sequence=sequence)))
        more = min(messages, answered + window) - sent
        if more > 0 or acks:
            writer.write(b"".join(acks) + b"".join(submits[sent : sent + max(more, 0)]))
            sent += max(more, 0)
    elapsed = time.perf_counter() - started
    writer.close()
    return {"seconds": round(elapsed, 3), "answered": answered, "errors": errors, "receipts": receipts_seen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--receipts", action="store_true")
    args = parser.parse_args()
    summary_path = Path(tempfile.mkdtemp(prefix="smsc-flood-")) / "summary.json"
    ports = multiprocessing.Queue()
    simulator = multiprocessing.Process(target=_run_simulator, args=(ports, str(summary_path), args.latency))
    simulator.start()
    try:
        port = ports.get(timeout=30)
        cpu_before = _cpu_seconds(simulator.pid)
        result = asyncio.run(flood(port, args.messages, args.window, args.receipts))
        cpu = _cpu_seconds(simulator.pid) - cpu_before
    finally:
        os.kill(simulator.pid, signal.SIGTERM)
        simulator.join(10)
    summary = json.loads(summary_path.read_text())
    print(
        json.dumps(
            {
                "messages": args.messages,
                "window": args.window,
                "latency_s": args.latency,
                "receipts": args.receipts,
                "submit_per_s": round(args.messages / result["seconds"]),
                "simulator_cpu_s": round(cpu, 2),
                "simulator_submit_per_cpu_s": round(args.messages / cpu) if cpu else None,
                "client": result,
                "simulator": summary,
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            },
            indent=2,
        )
    )
    if summary["duplicates"] or summary["received"] != args.messages:
        sys.exit("the simulator did not count every message exactly once")


if __name__ == "__main__":
    main()
