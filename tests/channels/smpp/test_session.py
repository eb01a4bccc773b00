"""One ESME bind (channels/smpp/session.py) against the SMSC simulator and a silent peer:
the window is used (not stop-and-wait) and never exceeded, the TPS limit holds, a quiet
line is probed with enquire_link and a peer that stops answering is dropped."""

from __future__ import annotations

import asyncio
import time

from empathic.channels.smpp import pdu as p
from empathic.channels.smpp.session import Session, SessionSettings
from empathic.smsc.server import Smsc, SmscSettings


def settings(port: int, **overrides: object) -> SessionSettings:
    base = {"host": "127.0.0.1", "port": port, "system_id": "acme", "password": "pw"}
    return SessionSettings(**{**base, **overrides})  # type: ignore[arg-type]


def submit(i: int) -> p.SubmitSm:
    return p.SubmitSm(source_addr="18005550100", destination_addr=f"1415555{i:04d}", short_message=f"text {i}".encode())


async def test_the_window_is_filled_and_never_exceeded() -> None:
    async with Smsc(SmscSettings(port=0, latency=0.05, receipts=False)) as smsc:
        session = Session(settings(smsc.port, window=10))
        await session.open()
        outstanding: list[int] = []
        send_request = session.send_request

        def counting(request: p.Pdu, **kw: bool) -> asyncio.Future[p.Pdu]:
            future = send_request(request, **kw)
            outstanding.append(len(session._waiting))
            return future

        session.send_request = counting  # type: ignore[method-assign]
        results = await asyncio.gather(*(session.submit_many([submit(i)]) for i in range(40)))
        await session.close()
    assert all(r[0].command_status == 0 for r in results)  # type: ignore[union-attr]
    assert max(outstanding) == 10  # ten at once: pipelined, and the window holds
    assert smsc.summary()["received"] == 40


async def test_a_window_written_in_one_turn_goes_out_in_one_write_in_order() -> None:
    """Submits written in one turn of the event loop leave in one socket write, not one per
    PDU. They keep their order, and the SMSC reads and answers every one."""
    async with Smsc(SmscSettings(port=0, receipts=False)) as smsc:
        session = Session(settings(smsc.port, window=50))
        await session.open()
        assert session._writer is not None
        writes: list[bytes] = []
        write = session._writer.write

        def counting(data: bytes) -> None:
            writes.append(bytes(data))
            write(data)

        session._writer.write = counting  # type: ignore[method-assign]
        results = await asyncio.gather(*(session.submit_many([submit(i)]) for i in range(50)))
        await session.close()
    assert all(r[0].command_status == 0 for r in results)  # type: ignore[union-attr]
    assert smsc.summary()["received"] == 50
    first = writes[0]
    frames = list(p.FrameReader().feed(first))
    assert len(frames) == 50  # the whole window in the first write
    sent = [p.decode(f) for f in frames]
    assert [x.destination_addr for x in sent] == [f"1415555{i:04d}" for i in range(50)]  # type: ignore[attr-defined]
    assert [x.sequence for x in sent] == sorted(x.sequence for x in sent)


async def test_the_tps_limit_holds() -> None:
    async with Smsc(SmscSettings(port=0, receipts=False)) as smsc:
        session = Session(settings(smsc.port, tps=50.0, window=100))
        await session.open()
        started = time.monotonic()
        await asyncio.gather(*(session.submit_many([submit(i)]) for i in range(30)))
        elapsed = time.monotonic() - started
        await session.close()
    # a burst of 5, then 50 per second: the other 25 take at least half a second
    assert elapsed >= 0.45


async def test_a_peer_that_stops_answering_is_dropped_after_enquire_link() -> None:
    enquiries = 0

    async def silent_smsc(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal enquiries
        frames = p.FrameReader()
        while data := await reader.read(4096):
            for frame in frames.feed(data):
                pdu = p.decode(frame)
                if isinstance(pdu, p.Bind):  # answer the bind, then nothing more
                    writer.write(p.encode(p.response_to(pdu)))
                elif isinstance(pdu, p.EnquireLink):
                    enquiries += 1

    server = await asyncio.start_server(silent_smsc, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        session = Session(settings(port, enquire_link=0.1, response_timeout=0.3))
        await session.open()
        assert session.alive
        await asyncio.wait_for(asyncio.shield(session.closed), 5)
        assert not session.alive and enquiries == 1
        await session.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_a_submit_left_unanswered_drops_the_connection_and_its_outcome_is_unknown() -> None:
    answered = 0

    async def half_deaf_smsc(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal answered
        frames = p.FrameReader()
        while data := await reader.read(4096):
            for frame in frames.feed(data):
                pdu = p.decode(frame)
                if isinstance(pdu, p.Bind) or (isinstance(pdu, p.SubmitSm) and answered < 3):
                    answered += isinstance(pdu, p.SubmitSm)
                    writer.write(p.encode(p.response_to(pdu)))

    server = await asyncio.start_server(half_deaf_smsc, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        session = Session(settings(port, enquire_link=60.0, response_timeout=0.4, window=10))
        await session.open()
        started = time.monotonic()
        results = await asyncio.gather(*(session.submit_many([submit(i)]) for i in range(5)))
        waited = time.monotonic() - started
        assert [type(r[0]).__name__ for r in results] == ["SubmitSmResp"] * 3 + ["OutcomeUnknown"] * 2
        assert 0.4 <= waited < 2.0 and not session.alive  # one watchdog, not one timer per submit
        assert session.window.free == 10  # every slot came back
        await session.close()
    finally:
        server.close()
        await server.wait_closed()
