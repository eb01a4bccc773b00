"""One SMPP 3.4 connection (a bind) from Empathic, the ESME, to an SMSC.

Requests are pipelined: up to `window` submit_sm wait for their response at once (never
stop-and-wait), each answered future found by sequence number; a response frees its window
slot as it is read. The socket has TCP_NODELAY (a small PDU must not wait for a delayed
ACK). A per-bind token bucket keeps submits (and queries) under the carrier's TPS.
enquire_link goes out when the line has been quiet `enquire_link` seconds. One watchdog per
connection, not a timer per request: when the oldest request has waited
`response_timeout`, the connection is dead.

deliver_sm (receipts and texts from people) go to `on_deliver` with a `reply` to call with
the deliver_sm_resp's status once the engine has stored what it was given (not before: a
crash then makes the SMSC deliver it again rather than lose it). No task per deliver_sm:
receipts are answered a batch at a time.

When the connection ends, every request still waiting raises `ConnectionLost`. One whose
bytes never reached the socket (still queued for this turn's write, or in the transport's
buffer, which is then dropped) raises `NotWritten`: the SMSC cannot have it, so it is safe
to send again. Whether the SMSC took one written to the socket is unknown.

A request may carry a `tag` (the SMPP channel's journal key of its text): the tags of each
write go to `on_write` just before its bytes go to the transport, so a text whose tag was
never given there was certainly never written (the write-ahead journal, channels.smpp.journal).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from empathic.channels.smpp import pdu as p
from empathic.channels.smpp import status as st
from empathic.channels.window import PriorityWindow
from empathic.core.ratelimit import TokenBucket

log = logging.getLogger(__name__)

BIND_MODES = {
    "transceiver": p.CommandId.BIND_TRANSCEIVER,
    "transmitter": p.CommandId.BIND_TRANSMITTER,
    "receiver": p.CommandId.BIND_RECEIVER,
}


class ConnectionLost(ConnectionError):
    """The connection ended while a request waited for its response."""


class OutcomeUnknown(ConnectionLost):
    """Written, then the connection ended before the SMSC answered: it may hold the message."""


class NotWritten(ConnectionLost):
    """The connection ended before the request's bytes reached the socket: the SMSC never saw it."""


class BindRefused(ConnectionError):
    def __init__(self, status: int) -> None:
        super().__init__(f"bind refused: {st.name(status)}")
        self.status = status


@dataclass(frozen=True)
class SessionSettings:
    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    mode: str = "transceiver"
    window: int = 50
    tps: float = 0.0  # 0: no limit of our own
    enquire_link: float = 30.0
    response_timeout: float = 30.0
    connect_timeout: float = 10.0

    def __repr__(self) -> str:  # the password never reaches a log
        return f"SessionSettings({self.system_id}@{self.host}:{self.port}, {self.mode}, window={self.window})"


Reply = Callable[[int], None]
OnDeliver = Callable[[p.DeliverSm, Reply], None]
OnWrite = Callable[[list[str]], None]


class Session:
    def __init__(
        self, settings: SessionSettings, on_deliver: OnDeliver | None = None, on_write: OnWrite | None = None
    ) -> None:
        self.settings = settings
        self.on_deliver = on_deliver
        self.on_write = on_write
        self.window = PriorityWindow(max(1, settings.window))
        self.bucket = TokenBucket(settings.tps, max(1.0, settings.tps / 10)) if settings.tps > 0 else None
        self._sequence = itertools.count(1)
        # sequence -> (its response, when it was written, whether it holds a window slot, the
        # offset in the byte stream where it ends); in the order written, so the first is the oldest.
        self._waiting: dict[int, tuple[asyncio.Future[p.Pdu], float, bool, int]] = {}
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._out: list[bytes] = []  # PDUs written in this turn of the event loop, sent together
        self._tags: list[str | None] = []  # the tag of each of them
        self._out_size = 0
        self._handed = 0  # bytes given to the transport so far
        self._tasks: list[asyncio.Task[None]] = []
        self._last_read = time.monotonic()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.bound = False

    # -- life ---------------------------------------------------------------------------

    async def open(self) -> p.BindResp:
        """Connect and bind; raises OSError, TimeoutError or BindRefused."""
        s = self.settings
        self._reader, writer = await asyncio.wait_for(asyncio.open_connection(s.host, s.port), s.connect_timeout)
        self._writer = writer
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._tasks.append(asyncio.create_task(self._read_loop(), name=f"smpp-read-{s.system_id}"))
        bind = p.Bind(BIND_MODES[s.mode], s.system_id, s.password, s.system_type)
        try:
            resp = await asyncio.wait_for(self.request(bind), s.response_timeout)
        except BaseException:
            await self.close(graceful=False)
            raise
        if resp.command_status != st.ESME_ROK:
            await self.close(graceful=False)
            raise BindRefused(resp.command_status)
        self.bound = True
        self._tasks.append(asyncio.create_task(self._keep_alive(), name=f"smpp-link-{s.system_id}"))
        self._tasks.append(asyncio.create_task(self._watch(), name=f"smpp-watch-{s.system_id}"))
        assert isinstance(resp, p.BindResp)
        return resp

    async def close(self, *, graceful: bool = True) -> None:
        """Unbind (when `graceful` and still connected) and close; waiting requests fail."""
        if graceful and self.bound and not self.closed.done():
            try:
                await asyncio.wait_for(self.request(p.Unbind()), min(5.0, self.settings.response_timeout))
            except (ConnectionError, TimeoutError, OSError):
                pass
        self._lost("closed")
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        for task in self._tasks:
            if task is not current:
                try:
                    await task
                except BaseException:  # noqa: BLE001 - cancelled or already failed
                    pass

    def _lost(self, why: str) -> None:
        self.bound = False
        waiting, self._waiting = self._waiting, {}
        reached = self._reached()
        unsent = {entry[3] for entry in waiting.values() if entry[3] > reached}
        if self._writer is not None:
            if any(end <= self._handed for end in unsent):
                # Requests the transport still buffers: dropped with it, or close() would
                # send them after they were called never written.
                self._out, self._tags, self._out_size = [], [], 0
                self._writer.transport.abort()
            else:
                self._flush(drop=unsent)  # what else was written before the loss still goes (a generic_nack, an unbind)
                self._writer.close()
        for future, _, slot, end in waiting.values():
            if slot:
                self.window.release()
            if not future.done():
                future.set_exception(NotWritten(why) if end in unsent else ConnectionLost(why))
        if not self.closed.done():
            self.closed.set_result(None)

    def _reached(self) -> int:
        """How much of the byte stream the socket may have taken: what was handed to the
        transport, less what it still buffers. A transport already closing may have dropped
        its buffer unseen, so then all of it (unknown, never wrongly "not written")."""
        if self._writer is None or self._writer.transport.is_closing():
            return self._handed
        return self._handed - self._writer.transport.get_write_buffer_size()

    @property
    def alive(self) -> bool:
        return self.bound and not self.closed.done()

    # -- requests -------------------------------------------------------------------------

    def send_request(self, request: p.Pdu, *, slot: bool = False, tag: str | None = None) -> asyncio.Future[p.Pdu]:
        """Write a request now; the future gets its response (or ConnectionLost). `slot`: it
        holds a window slot, freed when its response is read or the connection ends; `tag`:
        given to `on_write` before its bytes go."""
        if self.closed.done() or self._writer is None:
            raise ConnectionLost("not connected")
        sequence = next(self._sequence)
        if sequence >= 0x7FFFFFFF:  # sequence numbers wrap within 1..0x7FFFFFFF
            self._sequence = itertools.count(1)
            sequence = next(self._sequence)
        request.sequence = sequence
        future: asyncio.Future[p.Pdu] = asyncio.get_running_loop().create_future()
        data = p.encode(request)
        self._waiting[sequence] = (future, time.monotonic(), slot, self._handed + self._out_size + len(data))
        self._send(data, tag)
        return future

    async def request(self, request: p.Pdu) -> p.Pdu:
        return await self.send_request(request)

    async def submit_many(
        self, pdus: list[p.SubmitSm], priority: int = 0, tag: str | None = None
    ) -> list[p.SubmitSmResp | BaseException]:
        """Submit the parts of one message back to back and wait for their answers: a
        result per part (see `write_parts` and `answer`)."""
        try:
            futures = await self.write_parts(pdus, priority, tag)
        except ConnectionLost as exc:
            return [exc for _ in pdus]
        return [await self.answer(future) for future in futures]

    async def write_parts(
        self, pdus: list[p.SubmitSm], priority: int = 0, tag: str | None = None
    ) -> list[asyncio.Future[p.Pdu]]:
        """Write the parts of one message back to back, each in a window slot (all slots
        first, so a connection loss finds either none of them written or all; slots go to
        the lowest `priority` first); the futures of their responses. Raises
        `ConnectionLost` when none was written (safe to retry)."""
        taken = 0
        try:
            for _ in pdus:
                await self.window.acquire(priority)
                taken += 1
            for _ in pdus:
                await self.take_token()
            if self.closed.done() or self._writer is None:
                raise ConnectionLost("not connected")
        except BaseException:
            for _ in range(taken):
                self.window.release()
            raise
        futures = [self.send_request(x, slot=True, tag=tag) for x in pdus]  # nothing awaited since the check
        await self._flow_control()
        return futures

    async def answer(self, future: asyncio.Future[p.Pdu]) -> p.SubmitSmResp | OutcomeUnknown | NotWritten:
        """A written submit_sm's response, or `OutcomeUnknown` if the connection ended first
        (`NotWritten` if it ended before the submit_sm reached the socket)."""
        try:
            resp = await future
        except NotWritten as exc:
            return exc
        except ConnectionLost as exc:
            return OutcomeUnknown(str(exc))
        if isinstance(resp, p.GenericNack):
            return p.SubmitSmResp(command_status=resp.command_status or st.ESME_RSYSERR, sequence=resp.sequence)
        assert isinstance(resp, p.SubmitSmResp)
        return resp

    async def take_token(self) -> None:
        """Wait for a token of the bind's `tps` bucket and take it (every submit_sm and
        query_sm takes one: an SMSC counts both against the account's rate)."""
        if self.bucket is None:
            return
        while True:
            wait = self.bucket.wait_for(1, time.monotonic())
            if wait <= 0:
                self.bucket.take(1, time.monotonic())
                return
            await asyncio.sleep(wait)

    async def _flow_control(self) -> None:
        writer = self._writer
        if writer is not None and writer.transport.get_write_buffer_size() + self._out_size > 256 * 1024:
            self._flush()
            try:
                await writer.drain()
            except ConnectionError:
                self._lost("write failed")

    def _write(self, pdu: p.Pdu) -> None:
        if self._writer is not None and not self.closed.done():
            self._send(p.encode(pdu))

    def _send(self, data: bytes, tag: str | None = None) -> None:
        """Queue a PDU's bytes for the socket. Everything written in one turn of the event
        loop (a window of submit_sm, the responses to a read's deliver_sm) goes out in one
        write at the end of the turn: one system call, and fewer reads at the peer, instead
        of one per PDU. The order of PDUs is kept."""
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(data)
        self._tags.append(tag)
        self._out_size += len(data)

    def _flush(self, drop: set[int] | None = None) -> None:
        """Write what this turn queued; `drop`: leave out the PDUs ending at these offsets."""
        out, tags = self._out, self._tags
        self._out, self._tags, self._out_size = [], [], 0
        if drop:
            kept, kept_tags, end = [], [], self._handed
            for data, tag in zip(out, tags, strict=True):
                end += len(data)
                if end not in drop:
                    kept.append(data)
                    kept_tags.append(tag)
            out, tags = kept, kept_tags
        if out and self._writer is not None and not self._writer.is_closing():
            if self.on_write is not None and (written := [t for t in dict.fromkeys(tags) if t is not None]):
                self.on_write(written)  # write-ahead: before the bytes can reach the socket
            data = b"".join(out)
            self._writer.write(data)
            self._handed += len(data)

    # -- reading ----------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        assert self._reader is not None
        frames = p.FrameReader()
        why = "connection closed by the SMSC"
        try:
            while True:
                data = await self._reader.read(65536)
                if not data:
                    break
                self._last_read = time.monotonic()
                for frame in frames.feed(data):
                    self._handle(frame)
        except p.ProtocolError as exc:  # the stream cannot be re-synchronised
            self._write(p.GenericNack(command_status=exc.status, sequence=exc.sequence or 0))
            why = f"protocol error: {exc}"
        except (ConnectionError, OSError) as exc:
            why = f"connection error: {type(exc).__name__}"
        except asyncio.CancelledError:
            why = "closed"
            raise
        finally:
            if not self.closed.done():
                log.info("smpp %s: %s", self.settings.system_id, why)
            self._lost(why)

    def _handle(self, frame: bytes) -> None:
        try:
            pdu = p.decode(frame)
        except p.ProtocolError as exc:
            sequence = exc.sequence or 0
            future = self._settle(sequence)
            if future is not None and not future.done():  # an answer we could not read
                future.set_result(p.GenericNack(command_status=exc.status, sequence=sequence))
            else:
                self._write(p.GenericNack(command_status=exc.status, sequence=sequence))
            return
        command_id = pdu.command_id
        if command_id & p.RESPONSE_BIT:
            future = self._settle(pdu.sequence)
            if future is not None and not future.done():
                future.set_result(pdu)
            return
        if isinstance(pdu, p.DeliverSm):
            self._deliver(pdu)
        elif isinstance(pdu, p.EnquireLink):
            self._write(p.EnquireLinkResp(sequence=pdu.sequence))
        elif isinstance(pdu, p.Unbind):
            self._write(p.UnbindResp(sequence=pdu.sequence))
            self._lost("unbound by the SMSC")
        else:
            self._write(p.response_to(pdu, st.ESME_RINVCMDID))

    def _settle(self, sequence: int) -> asyncio.Future[p.Pdu] | None:
        """A response for `sequence` was read: forget the request, free its window slot."""
        entry = self._waiting.pop(sequence, None)
        if entry is None:
            return None
        future, _, slot, _ = entry
        if slot:
            self.window.release()
        return future

    def _deliver(self, pdu: p.DeliverSm) -> None:
        sequence = pdu.sequence

        def reply(status: int) -> None:
            self._write(p.DeliverSmResp(command_status=status, sequence=sequence))

        if self.on_deliver is None:
            reply(st.ESME_ROK)
            return
        try:
            self.on_deliver(pdu, reply)
        except Exception:  # noqa: BLE001 - the SMSC will deliver it again
            log.exception("smpp %s: handling deliver_sm failed", self.settings.system_id)
            reply(st.ESME_RX_T_APPN)

    async def _keep_alive(self) -> None:
        interval = self.settings.enquire_link
        while not self.closed.done():
            quiet = time.monotonic() - self._last_read
            if quiet < interval:
                await asyncio.sleep(interval - quiet)
                continue
            try:
                await asyncio.wait_for(self.request(p.EnquireLink()), self.settings.response_timeout)
            except (TimeoutError, ConnectionError):
                log.warning("smpp %s: enquire_link unanswered; dropping the connection", self.settings.system_id)
                self._lost("enquire_link timeout")
                return
            self._last_read = time.monotonic()

    async def _watch(self) -> None:
        """Drop the connection when its oldest request has waited `response_timeout`."""
        limit = self.settings.response_timeout
        tick = min(1.0, limit / 4)
        while not self.closed.done():
            await asyncio.sleep(tick)
            oldest = next(iter(self._waiting.values()), None)
            if oldest is not None and time.monotonic() - oldest[1] > limit:
                log.warning("smpp %s: no response within %.0fs; dropping the connection",
                            self.settings.system_id, limit)
                self._lost("response timeout")
                return
