"""Priority lanes under a marketing backlog: how long does a one-time code wait?

The requirement: "a backlog of a million marketing messages never delays an OTP by more
than one batch". Measured the way tests/integration/test_priority_lanes.py checks it, at
scale: one process, one event loop, holding

- an in-process SMSC simulator (`empathic.smsc.server.Smsc`) on 127.0.0.1, whose
  `submit` is wrapped to record every destination in the order it read them;
- an in-process `Runtime` on a temporary SQLite data dir, whose project has one SMPP
  `[[channels]]` entry bound to that SMSC, and a fixed clock (2026-11-23 20:00 UTC, noon
  in San Francisco: marketing hours for +1 415 numbers).

Then:

1. marketing consent is granted to `--backlog` distinct +1 415 contacts, through the store
   (`contacts.ensure_by_phone`, `consent.append`), 10,000 contacts per transaction;
2. the backlog, one marketing text per contact, is accepted through `rt.outbox.submit` in
   chunks of 1000 (`numbered=True`). With `--hold` (default) the engine's workers (the
   dispatcher...) are started only once it is all queued, so the codes really are behind
   the whole backlog; with `--no-hold` they run from the start and drain while it is accepted;
3. once the backlog flows (the SMSC has read 3 windows of it and every dispatcher batch is
   in flight), `--codes` one-time codes (topic `otp`), one at a time, `--spacing` apart, each
   to a number of its own, while the backlog keeps flowing;
4. per code: `ahead`, the texts the SMSC read between the code's acceptance
   (`outbox.submit` returned) and the code itself, and `ms`, acceptance to the SMSC reading it;
5. with `--drain` (default) it waits until the SMSC holds the whole backlog, so its
   summary can show every text arrived exactly once.

One JSON document goes to stdout, progress to stderr.

    python bench/lanes.py                                   # --backlog 100000 --codes 20
    python bench/lanes.py --latency 0.02 --backlog 20000    # an SMSC answering in 20 ms
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import harness
from empathic.core.consent import ConsentAction
from empathic.engine.dispatcher import DispatchSettings
from empathic.engine.outbox import MessageRequest
from empathic.engine.runtime import Runtime, Settings
from empathic.smsc.server import Smsc, SmscSettings
from empathic.store import consent as consent_store
from empathic.store import contacts as contact_store

CHANNEL = "carrier"
SUBMIT_CHUNK = 1000  # marketing texts per rt.outbox.submit
CONSENT_CHUNK = 10_000  # contacts per consent transaction


def log(*parts: Any) -> None:
    print("[lanes]", *parts, file=sys.stderr, flush=True)


class NoonInSanFrancisco:
    """A fixed clock: Monday 2026-11-23 12:00 in Los Angeles, marketing hours for +1 415."""

    def now(self) -> datetime:
        return datetime(2026, 11, 23, 20, tzinfo=UTC)


def phone(k: int) -> str:
    """The k-th number: exchanges 555, 556, ... of area code 415, 10,000 numbers each."""
    return f"+1415{555 + k // 10_000:03d}{k % 10_000:04d}"


def write_project(folder: Path, port: int, args: argparse.Namespace) -> Path:
    folder.mkdir(parents=True)
    (folder / "empathic.toml").write_text(
        '[sender]\nname = "Bench"\nnumber = "+18005550100"\n\n'
        f'[[channels]]\ntype = "smpp"\nname = "{CHANNEL}"\nhost = "127.0.0.1"\nport = {port}\n'
        'system_id = "bench"\npassword = "bench"\n'
        f"window = {args.window}\ntps = {args.tps}\nreceipts = {'true' if args.receipts else 'false'}\n"
        "enquire_link = 30\nresponse_timeout = 30\n",
        encoding="utf-8",
    )
    return folder


def figures(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    return {"max": ordered[-1] if ordered else None, "p50": harness.percentile(ordered, 50),
            "p99": harness.percentile(ordered, 99)}


class Recorder:
    """Wraps `Smsc.submit`: every destination, in the order the SMSC read them; an awaitable
    per watched destination (a code), resolved with (its index, the instant it was read)."""

    def __init__(self, smsc: Smsc) -> None:
        self.order: list[str] = []
        self.watched: dict[str, asyncio.Future[tuple[int, float]]] = {}
        original = smsc.submit

        def recording(connection: Any, pdu: Any) -> None:
            self.order.append(pdu.destination_addr)
            waiter = self.watched.get(pdu.destination_addr)
            if waiter is not None and not waiter.done():
                waiter.set_result((len(self.order) - 1, time.monotonic()))
            original(connection, pdu)

        smsc.submit = recording  # type: ignore[method-assign]

    def watch(self, destination: str) -> asyncio.Future[tuple[int, float]]:
        self.watched[destination] = asyncio.get_running_loop().create_future()
        return self.watched[destination]


def queued_in_db(db_path: Path) -> int | None:
    """Messages still `queued`, read from the SQLite file read-only (a WAL reader never
    blocks the engine's writer; run in a thread)."""
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute("SELECT count(*) FROM messages WHERE status = 'queued'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        log("could not count queued messages:", exc)
        return None


async def grant_consent(rt: Runtime, phones: list[str]) -> None:
    for start in range(0, len(phones), CONSENT_CHUNK):
        async with rt.db.transaction() as conn:
            people = await contact_store.ensure_by_phone(conn, rt.workspace_id, phones[start:start + CONSENT_CHUNK], rt.now())
            for person in people.values():
                await consent_store.append(
                    conn, rt.workspace_id, person.id, topic="marketing", channel="sms",
                    action=ConsentAction.GRANTED, source="api", actor="bench", evidence=None, at=rt.now(),
                )
        if (start // CONSENT_CHUNK) % 10 == 9:
            log(f"consent: {start + CONSENT_CHUNK} contacts")


async def accept_backlog(rt: Runtime, phones: list[str]) -> None:
    for start in range(0, len(phones), SUBMIT_CHUNK):
        await rt.outbox.submit(
            rt.workspace_id,
            [MessageRequest(to=to, body=f"Deal {start + i}: 20% off everything today", topic="marketing")
             for i, to in enumerate(phones[start:start + SUBMIT_CHUNK])],
            numbered=True,
        )
        if (start // SUBMIT_CHUNK) % 10 == 9:
            log(f"accepted {start + SUBMIT_CHUNK} marketing texts")


async def start_workers(rt: Runtime) -> None:
    """What `Runtime.start` does when `run_workers` is on, done later (`--hold`)."""
    for dispatcher in rt.dispatchers.values():
        await dispatcher.start()
    await rt.scheduler.start()
    await rt.webhooks.start()
    await rt.calls.start()
    await rt.retention.start()
    rt.settings.run_workers = True  # so that rt.stop() stops them


async def until(check: Any, timeout: float, what: str, interval: float = 0.001, state: Any = None) -> float:
    """Poll `check()` until true; the monotonic instant. TimeoutError on time-out; `state()`
    is logged every 5 s while waiting."""
    deadline = time.monotonic() + timeout
    next_log = time.monotonic() + 5
    while not check():
        now = time.monotonic()
        if now > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}" + (f" ({state()})" if state else ""))
        if state is not None and now > next_log:
            log(f"waiting for {what}: {state()}")
            next_log = now + 5
        await asyncio.sleep(interval)
    return time.monotonic()


class Codes:
    """Sends one-time codes one at a time and measures each against the SMSC's read order."""

    def __init__(self, rt: Runtime, recorder: Recorder, args: argparse.Namespace) -> None:
        self.rt = rt
        self.recorder = recorder
        self.args = args
        self.dispatcher = rt.dispatchers[CHANNEL]
        self.sent = 0  # codes sent so far (each to a number of its own)

    def in_flight(self) -> int:
        return len(self.dispatcher._in_flight)  # noqa: SLF001

    async def one(self, to: str) -> dict[str, Any]:
        """Submit one code to `to`, wait until the SMSC reads it; its figures."""
        order = self.recorder.order
        read = self.recorder.watch(to.lstrip("+"))  # the SMSC sees E.164 without the plus
        batches_in_flight = self.in_flight()
        started = time.monotonic()
        await self.rt.outbox.submit(self.rt.workspace_id, [
            MessageRequest(to=to, body=f"Your code is {100000 + self.sent * 7919 % 900000}", topic="otp")
        ])
        accepted_at = time.monotonic()
        on_the_wire = len(order)  # read by the SMSC when the code was accepted
        self.sent += 1
        try:
            index, read_at = await asyncio.wait_for(read, timeout=self.args.code_timeout)
        except TimeoutError:
            log(f"code to {to}: not read by the SMSC within {self.args.code_timeout}s")
            return {"to": to, "ahead": None, "ms": None, "timed_out": True,
                    "submit_ms": round((accepted_at - started) * 1000, 2)}
        return {
            "to": to,
            "ahead": index - on_the_wire,
            "ms": round((read_at - accepted_at) * 1000, 2),
            "submit_ms": round((accepted_at - started) * 1000, 2),
            "submit_to_read_ms": round((read_at - started) * 1000, 2),
            "batches_in_flight_at_submit": batches_in_flight,
            "read_by_smsc_at_accept": on_the_wire,
        }


def summarise(per_code: list[dict[str, Any]]) -> dict[str, Any]:
    measured = [c for c in per_code if c.get("ahead") is not None]
    return {
        "sent": len(per_code),
        "read_by_smsc": len(measured),
        "ahead": figures([c["ahead"] for c in measured]),
        "ms": figures([c["ms"] for c in measured]),
        "submit_ms": figures([c["submit_ms"] for c in measured]),
        "submit_to_read_ms": figures([c["submit_to_read_ms"] for c in measured]),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="empathic-bench-lanes-"))
    result: dict[str, Any] = {
        "params": {"backlog": args.backlog, "codes": args.codes, "window": args.window, "batch_size": args.batch_size,
                   "in_flight": args.in_flight, "latency_s": args.latency, "tps": args.tps, "spacing_s": args.spacing,
                   "hold": args.hold, "receipts": args.receipts, "drain": args.drain, "idle_codes": args.idle_codes,
                   "database": "sqlite"},
        "machine": {**harness.machine(), "sqlite": sqlite3.sqlite_version},
    }
    phones = [phone(k) for k in range(args.backlog)]
    code_phones = iter(phone(args.backlog + i) for i in range(args.codes + args.idle_codes))  # numbers of their own
    try:
        async with Smsc(SmscSettings(host="127.0.0.1", port=0, latency=args.latency, receipts=args.receipts,
                                     receipt_delay=0.0)) as smsc:
            recorder = Recorder(smsc)
            order = recorder.order
            settings = Settings(
                data_dir=root / "data", database_url=None, database_schema=None, bootstrap_api_key=None,
                project_dir=write_project(root / "project", smsc.port, args),
                dispatch=DispatchSettings(batch_size=args.batch_size, batches_in_flight=args.in_flight),
                run_workers=not args.hold,
            )
            rt = Runtime(settings, clock=NoonInSanFrancisco())
            await rt.start()
            codes = Codes(rt, recorder, args)
            try:
                # 1. consent, 2. the backlog
                t0 = time.monotonic()
                await grant_consent(rt, phones)
                consent_s = time.monotonic() - t0
                log(f"consent to {args.backlog} contacts: {consent_s:.1f}s")
                t0 = time.monotonic()
                await accept_backlog(rt, phones)
                accept_s = time.monotonic() - t0
                log(f"accepted {args.backlog} marketing texts in {accept_s:.1f}s; the SMSC has read {len(order)}")
                result["setup"] = {
                    "consent_s": round(consent_s, 2),
                    "accept_s": round(accept_s, 2),
                    "accepted_per_s": round(args.backlog / accept_s, 1) if accept_s else None,
                    "read_by_smsc_while_accepting": len(order),
                }
                if args.hold:
                    await start_workers(rt)

                # 3. wait until it flows with every batch in flight
                def state() -> str:
                    return f"the SMSC has read {len(order)}, {codes.in_flight()} batches in flight"

                try:
                    await until(lambda: len(order) >= 3 * args.window and codes.in_flight() >= args.in_flight,
                                args.flow_wait, "every batch in flight", state=state)
                    result["all_batches_in_flight_at_start"] = True
                except TimeoutError:
                    # The SMSC answers faster than batches are claimed and recorded: the
                    # dispatcher never has them all out at once. Go once the backlog moves.
                    log(f"never saw all {args.in_flight} batches in flight in {args.flow_wait}s; going on")
                    result["all_batches_in_flight_at_start"] = False
                    await until(lambda: len(order) >= 3 * args.window and codes.in_flight() >= 1, 60,
                                "the backlog to flow", state=state)
                log(f"flowing: {state()}")
                samples: collections.Counter[int] = collections.Counter()

                async def sample() -> None:  # batches in flight during the codes, every 5 ms
                    while True:
                        samples[codes.in_flight()] += 1
                        await asyncio.sleep(0.005)

                sampler = asyncio.create_task(sample())
                flow_at, flow_read = time.monotonic(), len(order)

                # 4. the codes, one at a time, while the backlog flows
                per_code: list[dict[str, Any]] = []
                for i in range(args.codes):
                    started = time.monotonic()
                    if len(order) - i >= args.backlog:
                        log(f"the whole backlog is at the SMSC after {i} codes: stopping there")
                        result["backlog_ran_out_after_codes"] = i
                        break
                    one = {"code": i, **await codes.one(next(code_phones))}
                    if one["ahead"] is None:
                        per_code.append(one)
                        break
                    one["backlog_not_at_smsc_at_accept"] = args.backlog - (one["read_by_smsc_at_accept"] - i)
                    per_code.append(one)
                    log(f"code {i}: {one['ahead']} ahead, {one['ms']} ms after acceptance "
                        f"(submit {one['submit_ms']} ms); {one['backlog_not_at_smsc_at_accept']} "
                        "marketing texts not yet at the SMSC")
                    await asyncio.sleep(max(0.0, started + args.spacing - time.monotonic()))
                last_code_at = time.monotonic()
                sampler.cancel()
                read = sum(1 for c in per_code if c["ahead"] is not None)
                marketing_read = len(order) - flow_read - read
                queued = await asyncio.to_thread(queued_in_db, settings.data_dir / "empathic.sqlite3")
                log(f"after the last code: {queued} messages still queued in the database")
                measured = [c for c in per_code if c["ahead"] is not None]
                rate = marketing_read / (last_code_at - flow_at) if last_code_at > flow_at else None
                result["codes"] = {**summarise(per_code), "per_code": per_code}
                result["backlog"] = {
                    "queued_in_db_after_last_code": queued,
                    "not_at_smsc_at_last_code_accept": measured[-1]["backlog_not_at_smsc_at_accept"] if measured else None,
                    "marketing_to_smsc_per_s_during_codes": round(rate, 1) if rate else None,
                    # how long one batch of marketing takes to reach the SMSC at that rate
                    "one_batch_ms_at_that_rate": round(args.batch_size / rate * 1000, 1) if rate else None,
                }
                total_samples = sum(samples.values()) or 1
                result["batches_in_flight_during_codes"] = {
                    str(k): round(v / total_samples, 3) for k, v in sorted(samples.items())}
                result["within_one_batch"] = (bool(measured) and len(measured) == len(per_code)
                                              and max(c["ahead"] for c in measured) <= args.batch_size)

                # 5. drain, then the same codes with nothing queued: the baseline
                if args.drain:
                    total = args.backlog + read
                    log(f"draining: waiting until the SMSC holds {total}")
                    t0 = time.monotonic()
                    try:
                        await until(lambda: len(order) >= total, args.drain_timeout, "the backlog to drain",
                                    interval=0.05, state=state)
                        result["backlog"]["drain_after_last_code_s"] = round(time.monotonic() - t0, 2)
                    except TimeoutError as exc:
                        log(str(exc))
                        result["backlog"]["drain_after_last_code_s"] = None
                    else:
                        idle: list[dict[str, Any]] = []
                        for _ in range(args.idle_codes):
                            started = time.monotonic()
                            idle.append(await codes.one(next(code_phones)))
                            await asyncio.sleep(max(0.0, started + args.spacing - time.monotonic()))
                        if idle:
                            result["idle_codes"] = summarise(idle)
                            log("idle codes:", result["idle_codes"])
            finally:
                await rt.stop()
            summary = smsc.summary()
        result["smsc_summary"] = summary
        expected = args.backlog + codes.sent
        result["exactly_once"] = (summary.get("duplicates") == 0
                                  and (summary.get("received") == expected if args.drain else None))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backlog", type=int, default=100_000, help="marketing texts queued before the codes")
    parser.add_argument("--codes", type=int, default=20, help="one-time codes sent while the backlog flows")
    parser.add_argument("--spacing", type=float, default=0.2, help="seconds from one code's submit to the next")
    parser.add_argument("--window", type=int, default=100, help="the SMPP channel's submit_sm in flight")
    parser.add_argument("--batch-size", type=int, default=500, help="DispatchSettings.batch_size")
    parser.add_argument("--in-flight", type=int, default=4, help="DispatchSettings.batches_in_flight")
    parser.add_argument("--latency", type=float, default=0.0, help="the SMSC's seconds before each submit_sm_resp")
    parser.add_argument("--tps", type=float, default=100_000, help="the channel's tps (high: claims are full batches)")
    parser.add_argument("--hold", action=argparse.BooleanOptionalAction, default=True,
                        help="start the engine's workers only once the whole backlog is queued")
    parser.add_argument("--receipts", action=argparse.BooleanOptionalAction, default=False,
                        help="ask for delivery receipts (the SMSC sends them at once)")
    parser.add_argument("--drain", action=argparse.BooleanOptionalAction, default=True,
                        help="wait until the SMSC holds the whole backlog before stopping")
    parser.add_argument("--flow-wait", type=float, default=3.0,
                        help="max seconds to wait for every dispatcher batch in flight before the codes "
                             "(then they go as soon as the backlog flows, and the JSON says so)")
    parser.add_argument("--idle-codes", type=int, default=5,
                        help="codes sent after the drain, with nothing queued: the baseline (needs --drain)")
    parser.add_argument("--code-timeout", type=float, default=60.0, help="max seconds for one code to reach the SMSC")
    parser.add_argument("--drain-timeout", type=float, default=1800.0, help="max seconds to drain the backlog")
    args = parser.parse_args()
    if not 1 <= args.backlog <= 2_000_000 or args.codes < 1:
        parser.error("--backlog must be 1 to 2,000,000 and --codes at least 1")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = asyncio.run(run(args))
    except TimeoutError as exc:
        raise SystemExit(str(exc)) from None
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
