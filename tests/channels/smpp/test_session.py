"""One ESME bind (channels/smpp/session.py) against the SMSC simulator and a silent peer:
the window is used (not stop-and-wait) and never exceeded, the TPS limit holds, a quiet
line is probed with enquire_link and a peer that stops answering is dropped."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

from empathic.channels.smpp import pdu as p
from empathic.channels.smpp.session import NotWritten, OutcomeUnknown, Session, SessionSettings
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


async def test_a_submit_queued_in_the_turn_the_connection_ends_is_never_written_and_says_so() -> None:
    """PDUs written in one turn go out together at its end. The SMSC unbinds in the turn a
    submit_sm was queued (here by the deliver_sm read just before the unbind): that submit
    never reaches the socket, so it is `NotWritten` (safe to send again), not unknown, and
    the SMSC never sees it; the one written before is `OutcomeUnknown`. The answers that
    were due (deliver_sm_resp, unbind_resp) still go."""
    read: list[p.Pdu] = []
    late: list[asyncio.Future[p.Pdu]] = []

    async def unbinding_smsc(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = p.FrameReader()
        while data := await reader.read(4096):
            for frame in frames.feed(data):
                pdu = p.decode(frame)
                read.append(pdu)
                if isinstance(pdu, p.Bind):
                    writer.write(p.encode(p.response_to(pdu)))
                elif isinstance(pdu, p.SubmitSm):  # unanswered; a text from a person, then unbind
                    deliver = p.DeliverSm(source_addr="14155550123", destination_addr="18005550100",
                                          short_message=b"hi", sequence=7)
                    writer.write(p.encode(deliver) + p.encode(p.Unbind(sequence=8)))
        writer.close()

    session: Session

    def on_deliver(pdu: p.DeliverSm, reply: Callable[[int], None]) -> None:
        late.append(session.send_request(submit(1)))  # queued in the turn that ends it
        reply(0)

    server = await asyncio.start_server(unbinding_smsc, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        session = Session(settings(port, enquire_link=60.0), on_deliver)
        await session.open()
        await session.window.acquire(0)
        first = session.send_request(submit(0), slot=True)
        assert isinstance(await session.answer(first), OutcomeUnknown)
        (second,) = late
        assert isinstance(await session.answer(second), NotWritten)
        assert session.window.free == session.settings.window
        await session.close()
        await asyncio.sleep(0.05)
    finally:
        server.close()
        await server.wait_closed()
    submits = [x.destination_addr for x in read if isinstance(x, p.SubmitSm)]  # type: ignore[attr-defined]
    assert submits == ["14155550000"]  # the late one never left
    assert [type(x).__name__ for x in read[-2:]] == ["DeliverSmResp", "UnbindResp"]


async def test_submits_the_transport_still_buffers_when_the_connection_is_dropped_never_go() -> None:
    """An SMSC that stops reading: the socket's buffers fill and later submit_sm wait in the
    transport's buffer. When the watchdog drops the connection, those are `NotWritten` and
    the buffer is thrown away with the connection (a plain close would still send them after
    they were called unsent); only those the socket took are `OutcomeUnknown`. The SMSC,
    reading again, finds none of the unwritten ones."""
    read: list[str] = []
    stalled = asyncio.Event()
    go_on = asyncio.Event()
    ended = asyncio.Event()

    async def stalling_smsc(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        frames = p.FrameReader()
        try:
            while data := await reader.read(1024):
                for frame in frames.feed(data):
                    pdu = p.decode(frame)
                    if isinstance(pdu, p.Bind):
                        writer.write(p.encode(p.response_to(pdu)))
                    elif isinstance(pdu, p.SubmitSm):
                        read.append(pdu.destination_addr)
                        if not stalled.is_set():  # hung: nothing more is read until the ESME gave up
                            stalled.set()
                            await go_on.wait()
        except ConnectionError:
            pass
        finally:
            ended.set()
        writer.close()

    server = await asyncio.start_server(stalling_smsc, "127.0.0.1", 0, limit=1024)
    port = server.sockets[0].getsockname()[1]
    try:
        session = Session(settings(port, enquire_link=60.0, response_timeout=0.3, window=4000))
        await session.open()
        assert session._writer is not None  # noqa: SLF001 - a small send buffer, so the transport's fills
        session._writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # noqa: SLF001
        futures = []
        for i in range(4000):
            futures += await session.write_parts([submit(i)])
        results = [await session.answer(f) for f in futures]
        go_on.set()
        await session.close()
        await asyncio.wait_for(ended.wait(), 20)  # it read all it was ever sent
    finally:
        go_on.set()
        server.close()
        await server.wait_closed()
    unknown = [i for i, r in enumerate(results) if isinstance(r, OutcomeUnknown)]
    unwritten = [i for i, r in enumerate(results) if isinstance(r, NotWritten)]
    assert len(unknown) + len(unwritten) == 4000 and len(unwritten) >= 1000, (len(unknown), len(unwritten))
    assert unknown == list(range(len(unknown)))  # the socket took a head of the stream, in order
    assert set(read) <= {f"1415555{i:04d}" for i in unknown}  # none unwritten reached the SMSC
