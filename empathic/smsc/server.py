"""The SMSC simulator's server: SMPP 3.4 over TCP, speaking the SMSC side of our codec.

One asyncio streams server; each connection is read in large chunks, cut into frames
(`FrameReader`) and answered without ever waiting for the ESME: a pipelined window of
submit_sm gets its responses `latency` seconds after each arrived, all of them at once
when they arrived together. Responses due at the same time leave in one write, and the
delays are one timer per queue (the head's), not a task or timer per message.

Faults on purpose, each a share of submit_sm (drawn from `seed`): `reject_share` answers
ESME_RINVDSTADR (permanent), `throttle_share` ESME_RTHROTTLED (the ESME must retry),
`fail_share` accepts but reports UNDELIV in the receipt; `drop_after` closes the
connection on the Nth submit (once, or every Nth): that message counts as received, but
neither its response nor any still owed on that connection is sent, as when a real SMSC
took messages and the link broke.

Receipts (when the submit_sm asked for them: registered_delivery 1, or 2 and it failed)
are deliver_sm with esm_class 0x04, the text format and/or the TLVs receipted_message_id +
message_state (`receipt_format`), sent `receipt_delay` after the response, to a receiver
or transceiver bind of the same system_id, with up to `receipt_window` unacknowledged per
connection. Receipts owed to a connection that went away, unacknowledged ones included,
go out on the next bind. Mobile-originated texts (`Smsc.send_mo`, or `mo_file` lines sent
after the first receiving bind) go the same way; `Smsc.send_deliver_sm` sends one deliver_sm
as given (a malformed one, to see what an ESME makes of it). A deliver_sm the ESME refuses
for good (`ESME_RX_P_APPN`, `ESME_RX_R_APPN`) is dropped and counted (`refused`); any other
refusal is delivered again after `redeliver_delay`.

query_sm is answered from what the simulator remembers of the latest `MAX_STATES` messages
it took, whether or not it sends receipts: ENROUTE until the receipt would be due
(`latency` + `receipt_delay` after the submit), then DELIVERED, or UNDELIVERABLE (error 1)
for a message `fail_share` failed (drawn when its receipt is made, or, without one, when
it is first asked about: a seeded run without queries draws as it always did); an id it
does not know (or with another source address) is `ESME_RQUERYFAIL`. Message ids are
lower-case hex, or upper-case hex of 10 digits with `padded_ids` (as some SMSCs write
them: an ESME must ask about `00AB12CD34` as given, not as its receipts write it).

    settings = SmscSettings(port=0, latency=0.02, receipt_delay=0.1)
    async with Smsc(settings) as smsc:
        ...  # an ESME binds to 127.0.0.1:smsc.port
        print(smsc.summary())

`serve(settings)` runs one until SIGTERM/SIGINT and writes the summary to `summary_path`.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import random
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from empathic.channels.smpp import status as st
from empathic.channels.smpp.coding import CodingOptions, Undecodable, decode_text, parts_for
from empathic.channels.smpp.pdu import (
    Bind,
    BindResp,
    CommandId,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    FrameReader,
    GenericNack,
    ProtocolError,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    Tag,
    Unbind,
    UnbindResp,
    decode,
    encode,
    response_to,
)
from empathic.smsc.ledger import Ledger

__all__ = ["Smsc", "SmscSettings", "serve"]

log = logging.getLogger("empathic.smsc")

RECEIPT_FORMATS = ("text", "tlv", "both")
RECEIPT_ID_MODES = ("same", "hex_to_dec")
_RECEIVES = frozenset({CommandId.BIND_RECEIVER, CommandId.BIND_TRANSCEIVER})
_TRANSMITS = frozenset({CommandId.BIND_TRANSMITTER, CommandId.BIND_TRANSCEIVER})
_READ_SIZE = 256 * 1024
_WRITE_HIGH_WATER = 4 * 1024 * 1024  # stop reading while this much is unsent to a slow ESME
MAX_STATES = 200_000  # messages whose state query_sm can tell (the oldest are forgotten)
_REFUSED_FOR_GOOD = frozenset({st.ESME_RX_P_APPN, st.ESME_RX_R_APPN})
# message_state values (SMPP 3.4 §5.2.28) the simulator's messages go through
_ENROUTE, _DELIVERED, _UNDELIVERABLE = 1, 2, 5


@dataclass
class SmscSettings:
    host: str = "127.0.0.1"
    port: int = 2775  # 0: any free port (Smsc.port says which)
    system_id: str | None = None  # the ESME's system_id to accept; None: any
    password: str | None = None  # None: any
    smsc_system_id: str = "EmpathicSim"  # ours, in bind responses
    latency: float = 0.0  # seconds before each submit_sm_resp
    receipts: bool = True  # send receipts the submit_sm asked for
    receipt_delay: float = 0.0  # seconds from submit_sm_resp to receipt
    receipt_format: str = "both"  # "text", "tlv" or "both"
    receipt_id_mode: str = "same"  # "hex_to_dec": the text's id is the decimal of the resp's hex id
    padded_ids: bool = False  # message ids in upper-case hex of 10 digits (00AB12CD34), as some SMSCs write them
    receipt_window: int = 100  # unacknowledged deliver_sm per connection
    redeliver_delay: float = 1.0  # seconds before a deliver_sm the ESME refused goes again
    gsm_packed: bool = False  # data_coding 0 is packed septets (in submit_sm and MO alike)
    fail_share: float = 0.0  # accepted, then receipt UNDELIV
    reject_share: float = 0.0  # submit_sm_resp ESME_RINVDSTADR
    throttle_share: float = 0.0  # submit_sm_resp ESME_RTHROTTLED
    drop_after: int = 0  # close the connection on this submit_sm (0: never)
    drop_every: bool = False  # every drop_after-th submit_sm, not just the first time
    seed: int | None = None
    mo_file: Path | None = None  # lines "SOURCE DESTINATION TEXT", sent after the first receiving bind
    summary_path: Path | None = None  # summary JSON written here on stop

    def validate(self) -> None:
        shares = (self.fail_share, self.reject_share, self.throttle_share)
        if any(not 0 <= share <= 1 for share in shares) or self.reject_share + self.throttle_share > 1:
            raise ValueError("shares are between 0 and 1, and reject_share + throttle_share at most 1")
        if self.receipt_format not in RECEIPT_FORMATS:
            raise ValueError(f"receipt_format is one of {RECEIPT_FORMATS}")
        if self.receipt_id_mode not in RECEIPT_ID_MODES:
            raise ValueError(f"receipt_id_mode is one of {RECEIPT_ID_MODES}")
        if min(self.latency, self.receipt_delay, self.redeliver_delay) < 0 or self.drop_after < 0:
            raise ValueError("delays and drop_after are not negative")
        if self.receipt_window < 1:
            raise ValueError("receipt_window is at least 1")


_Item = TypeVar("_Item")


class _Later(Generic[_Item]):
    """Items handed to `deliver` in batches, each `delay` seconds after it was added.

    The delay is the same for all, so items fall due in the order they came: one deque
    and one timer for its head, however many are waiting.
    """

    __slots__ = ("_loop", "_delay", "_deliver", "_items", "_handle")

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float, deliver: Callable[[list[_Item]], None]) -> None:
        self._loop = loop
        self._delay = delay
        self._deliver = deliver
        self._items: collections.deque[tuple[float, _Item]] = collections.deque()
        self._handle: asyncio.Handle | None = None

    def add(self, item: _Item) -> None:
        due = self._loop.time() + self._delay if self._delay else 0.0
        self._items.append((due, item))
        if self._handle is None:
            if self._delay:
                self._handle = self._loop.call_at(due, self._fire)
            else:
                self._handle = self._loop.call_soon(self._fire)

    def _fire(self) -> None:
        self._handle = None
        items = self._items
        limit = self._loop.time() + 0.0005
        batch: list[_Item] = []
        while items and items[0][0] <= limit:
            batch.append(items.popleft()[1])
        if items:
            self._handle = self._loop.call_at(items[0][0], self._fire)
        if batch:
            self._deliver(batch)

    def cancel(self) -> list[_Item]:
        """Stop; the items still waiting, in order."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        waiting = [item for _, item in self._items]
        self._items.clear()
        return waiting


class _Delivery:
    """A deliver_sm owed to a system_id (a receipt or a part of a mobile-originated text)."""

    __slots__ = ("pdu", "group")

    def __init__(self, pdu: DeliverSm, group: list[int] | None) -> None:
        self.pdu = pdu
        self.group = group  # MO: [parts not yet acknowledged], shared by its parts; receipt: None


class _Mailbox:
    """Deliveries owed to one system_id, and its connections that can receive them."""

    def __init__(self, smsc: Smsc) -> None:
        self._smsc = smsc
        self.queue: collections.deque[_Delivery] = collections.deque()
        self.receivers: list[_Connection] = []
        self._turn = 0

    def put(self, deliveries: list[_Delivery], *, front: bool = False) -> None:
        if front:
            self.queue.extendleft(reversed(deliveries))
        else:
            self.queue.extend(deliveries)
        self.pump()

    def pump(self) -> None:
        queue, receivers = self.queue, self.receivers
        while queue and receivers:
            ready = [connection for connection in receivers if connection.window_free]
            if not ready:
                return
            # Round robin over the binds with room, each filling up to its window.
            self._turn = (self._turn + 1) % len(ready)
            connection = ready[self._turn]
            while queue and connection.window_free:
                connection.deliver(queue.popleft())  # written with whatever else is due this turn


class _Connection:
    """One ESME's TCP connection: its bind, its answers owed, its deliver_sm window."""

    def __init__(self, smsc: Smsc, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.smsc = smsc
        self.reader = reader
        self.writer = writer
        self.transport = writer.transport
        self.bind: CommandId | None = None
        self.system_id = ""
        self.closing = False
        self._out: list[bytes] = []
        self._flush_handle: asyncio.Handle | None = None
        self._responses = _Later(smsc.loop, smsc.settings.latency, self._respond)
        self._outstanding: dict[int, _Delivery] = {}
        self._sequence = 0
        self._window = smsc.settings.receipt_window

    # ---- output

    def send(self, frame: bytes) -> None:
        self._out.append(frame)
        if self._flush_handle is None:
            self._flush_handle = self.smsc.loop.call_soon(self.flush)

    def flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._out and not self.transport.is_closing():
            self.transport.write(b"".join(self._out))
        self._out.clear()

    def close(self) -> None:
        """Close after what is written so far has been sent."""
        self.closing = True
        self.flush()
        self.transport.close()

    # ---- deliver_sm window

    @property
    def window_free(self) -> bool:
        return not self.closing and len(self._outstanding) < self._window

    def deliver(self, delivery: _Delivery) -> None:
        self._sequence = self._sequence % 0x7FFFFFFF + 1
        delivery.pdu.sequence = self._sequence
        self._outstanding[self._sequence] = delivery
        self.send(encode(delivery.pdu))

    def _acknowledged(self, sequence: int, status: int) -> None:
        delivery = self._outstanding.pop(sequence, None)
        if delivery is None:
            return
        smsc = self.smsc
        if status == st.ESME_ROK:
            if delivery.group is None:
                smsc.ledger.receipts_sent += 1
            else:
                delivery.group[0] -= 1
                if delivery.group[0] == 0:
                    smsc.ledger.mo_sent += 1
        elif status in _REFUSED_FOR_GOOD:  # as an SMSC does: the ESME will never take it
            smsc.ledger.refused += 1
        else:
            mailbox = smsc.mailbox(self.system_id)
            smsc.loop.call_later(smsc.settings.redeliver_delay, mailbox.put, [delivery])
        smsc.mailbox(self.system_id).pump()

    def owed(self) -> list[_Delivery]:
        """Deliveries sent and not acknowledged, oldest first (to go again elsewhere)."""
        owed = list(self._outstanding.values())
        self._outstanding.clear()
        return owed

    # ---- input

    async def run(self) -> None:
        frames = FrameReader()
        reader = self.reader
        while not self.closing:
            data = await reader.read(_READ_SIZE)
            if not data:
                return
            try:
                chunk = frames.feed(data)
            except ProtocolError as error:  # framing is lost: answer and hang up
                self.send(encode(GenericNack(command_status=error.status, sequence=error.sequence or 0)))
                self.close()
                return
            for frame in chunk:
                try:
                    pdu = decode(frame)
                except ProtocolError as error:
                    self.send(encode(GenericNack(command_status=error.status, sequence=error.sequence or 0)))
                    continue
                self.handle(pdu)
                if self.closing:
                    return
            if self.transport.get_write_buffer_size() > _WRITE_HIGH_WATER:
                self.flush()
                await self.writer.drain()

    def handle(self, pdu: Any) -> None:  # Any: dispatched on type(pdu), which mypy does not narrow through `kind`
        kind = type(pdu)
        if kind is SubmitSm:
            self.smsc.submit(self, pdu)
        elif kind is QuerySm:
            self.smsc.query(self, pdu)
        elif kind is DeliverSmResp or kind is GenericNack:
            self._acknowledged(pdu.sequence, pdu.command_status)
        elif kind is EnquireLink:
            self.send(encode(EnquireLinkResp(sequence=pdu.sequence)))
        elif kind is Bind:
            self.smsc.bind(self, pdu)
        elif kind is Unbind:
            self.send(encode(UnbindResp(sequence=pdu.sequence)))
            self.close()
        elif kind in (EnquireLinkResp, UnbindResp, SubmitSmResp, BindResp, QuerySmResp):
            pass  # nothing was asked that these answer
        else:  # a deliver_sm from an ESME: not an operation an ESME may send
            self.send(encode(response_to(pdu, st.ESME_RINVCMDID)))

    def respond_later(self, frame: bytes, receipt: DeliverSm | None) -> None:
        self._responses.add((frame, receipt))

    def _respond(self, batch: list[tuple[bytes, DeliverSm | None]]) -> None:
        receipts = []
        for frame, receipt in batch:
            self._out.append(frame)
            if receipt is not None:
                receipts.append(receipt)
        self.flush()
        if receipts:
            self.smsc.receipts_later(self.system_id, receipts)

    def lost(self) -> None:
        """The connection is gone: responses still owed are lost, deliveries go again."""
        self.closing = True
        self._responses.cancel()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None


class Smsc:
    """The simulated SMSC: start, let ESMEs bind and submit, read `summary()`, stop."""

    def __init__(self, settings: SmscSettings) -> None:
        settings.validate()
        self.settings = settings
        self.ledger = Ledger()
        self._random = random.Random(settings.seed)
        self._next_id = self._random.randrange(1 << 28, 1 << 31)
        # message_id -> (loop time its receipt is due, whether it failed, its source_addr)
        # (failed is None: not drawn yet, see submit)
        self._states: dict[str, tuple[float, bool | None, str]] = {}
        self._mailboxes: dict[str, _Mailbox] = {}
        self._connections: set[_Connection] = set()
        self._tasks: set[asyncio.Task] = set()
        self._server: asyncio.Server | None = None
        self._receipts: _Later[tuple[str, list[DeliverSm]]] | None = None
        self._mo_lines: list[str] | None = None
        self._last_receiver: str | None = None
        self._pending_mo: list[list[_Delivery]] = []  # MO waiting for any receiving bind
        self._minute, self._minute_text = -1, ""
        self.loop: asyncio.AbstractEventLoop
        self.port = settings.port

    # ---- life

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._receipts = _Later(self.loop, self.settings.receipt_delay, self._receipts_due)
        if self.settings.mo_file is not None:
            lines = Path(self.settings.mo_file).read_text(encoding="utf-8").splitlines()
            self._mo_lines = [line for line in lines if line.strip() and not line.startswith("#")]
        self._server = await asyncio.start_server(
            self._accept, self.settings.host, self.settings.port, limit=_READ_SIZE
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("SMSC simulator listening on %s:%d", self.settings.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self._receipts is not None:
            self._receipts.cancel()
        if self.settings.summary_path is not None:
            Path(self.settings.summary_path).write_text(json.dumps(self.summary(), indent=2) + "\n")

    async def __aenter__(self) -> Smsc:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def summary(self) -> dict[str, int]:
        """Counts so far: received, unique, duplicates, rejected, throttled, receipts_sent,
        mo_sent, binds, drops, refused, queries (and submits, partial)."""
        return self.ledger.summary()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = _Connection(self, reader, writer)
        self._connections.add(connection)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await connection.run()
        except (ConnectionError, OSError):
            pass
        finally:
            connection.flush()
            connection.lost()
            self._connections.discard(connection)
            if connection.bind in _RECEIVES:
                mailbox = self.mailbox(connection.system_id)
                mailbox.receivers.remove(connection)
                mailbox.put(connection.owed(), front=True)
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    # ---- binds

    def mailbox(self, system_id: str) -> _Mailbox:
        mailbox = self._mailboxes.get(system_id)
        if mailbox is None:
            mailbox = self._mailboxes[system_id] = _Mailbox(self)
        return mailbox

    def bind(self, connection: _Connection, pdu: Bind) -> None:
        settings = self.settings
        status = st.ESME_ROK
        if connection.bind is not None:
            status = st.ESME_RALYBND
        elif settings.system_id is not None and pdu.system_id != settings.system_id:
            status = st.ESME_RINVSYSID
        elif settings.password is not None and pdu.password != settings.password:
            status = st.ESME_RINVPASWD
        response = response_to(pdu, status)
        if status != st.ESME_ROK:
            connection.send(encode(response))
            if connection.bind is None:
                connection.close()  # as most SMSCs do after a refused bind
            return
        response.system_id = settings.smsc_system_id
        response.tlvs = {Tag.SC_INTERFACE_VERSION: b"\x34"}
        connection.send(encode(response))
        connection.bind = pdu.command_id
        connection.system_id = pdu.system_id
        self.ledger.binds += 1
        if pdu.command_id in _RECEIVES:
            self._last_receiver = pdu.system_id
            connection.flush()  # the bind_resp goes before any deliver_sm
            mailbox = self.mailbox(pdu.system_id)
            mailbox.receivers.append(connection)
            for deliveries in self._pending_mo:
                mailbox.put(deliveries)
            self._pending_mo.clear()
            if self._mo_lines:
                lines, self._mo_lines = self._mo_lines, None
                for line in lines:
                    source, destination, text = (line.split(None, 2) + ["", ""])[:3]
                    self._enqueue_mo(source, destination, text, "udh", pdu.system_id)
            mailbox.pump()

    # ---- submit_sm

    def _message_id(self) -> str:
        self._next_id += 1
        return f"{self._next_id:010X}" if self.settings.padded_ids else f"{self._next_id:x}"

    def submit(self, connection: _Connection, pdu: SubmitSm) -> None:
        ledger = self.ledger
        settings = self.settings
        ledger.submits += 1
        if connection.bind not in _TRANSMITS:
            frame = encode(SubmitSmResp(command_status=st.ESME_RINVBNDSTS, sequence=pdu.sequence))
            connection.respond_later(frame, None)
            return
        draw = self._random.random()
        if draw < settings.reject_share:
            ledger.rejected += 1
            frame = encode(SubmitSmResp(command_status=st.ESME_RINVDSTADR, sequence=pdu.sequence))
            connection.respond_later(frame, None)
            return
        if draw < settings.reject_share + settings.throttle_share:
            ledger.throttled += 1
            frame = encode(SubmitSmResp(command_status=st.ESME_RTHROTTLED, sequence=pdu.sequence))
            connection.respond_later(frame, None)
            return
        udhi = bool(pdu.esm_class & 0x40)
        try:
            text, concat = decode_text(
                pdu.data_coding, pdu.short_message, udhi=udhi, gsm_packed=settings.gsm_packed, tlvs=pdu.tlvs
            )
        except Undecodable as refusal:  # not text as it claims: refused as a real SMSC would
            ledger.rejected += 1
            status = st.ESME_RINVESMCLASS if refusal.reason in ("udh", "concat") else st.ESME_RINVDCS
            connection.respond_later(encode(SubmitSmResp(command_status=status, sequence=pdu.sequence)), None)
            return
        ledger.accept(connection.system_id, pdu.source_addr, pdu.destination_addr, text, concat)
        message_id = self._message_id()
        wanted = pdu.registered_delivery & 0x03
        dropped = settings.drop_after and (
            ledger.submits == settings.drop_after
            or (settings.drop_every and ledger.submits % settings.drop_after == 0)
        )
        # Whether it failed is drawn when its receipt is made, else when it is first asked
        # about (query), never for nothing: a seeded run draws what it drew before query_sm.
        failed = (self._fails() if settings.receipts and not dropped else None) if wanted else False
        self._remember(message_id, failed, pdu.source_addr)
        if dropped:
            ledger.drops += 1
            connection.close()  # this response and any still owed are never sent
            return
        receipt = None
        if settings.receipts and (wanted == 1 or (wanted and failed)):
            receipt = self._receipt(pdu, message_id, text, bool(failed))
        connection.respond_later(encode(SubmitSmResp(message_id, sequence=pdu.sequence)), receipt)

    def _fails(self) -> bool:
        return self.settings.fail_share > 0 and self._random.random() < self.settings.fail_share

    def _remember(self, message_id: str, failed: bool | None, source: str) -> None:
        states = self._states
        if len(states) >= MAX_STATES:
            del states[next(iter(states))]
        due = self.loop.time() + self.settings.latency + self.settings.receipt_delay
        states[message_id] = (due, failed, source)

    # ---- query_sm

    def query(self, connection: _Connection, pdu: QuerySm) -> None:
        """Answer a query_sm from what is remembered of the message (after `latency`, as a
        submit_sm is answered)."""
        self.ledger.queries += 1
        state = self._states.get(pdu.message_id)
        if connection.bind not in _TRANSMITS:
            resp = QuerySmResp(command_status=st.ESME_RINVBNDSTS, sequence=pdu.sequence)
        elif state is None or (pdu.source_addr and pdu.source_addr != state[2]):
            resp = QuerySmResp(command_status=st.ESME_RQUERYFAIL, sequence=pdu.sequence)
        elif self.loop.time() < state[0]:
            resp = QuerySmResp(pdu.message_id, "", _ENROUTE, 0, sequence=pdu.sequence)
        else:
            final = time.strftime("%y%m%d%H%M%S", time.gmtime()) + "000+"  # YYMMDDhhmmsstnnp, UTC
            failed = state[1]
            if failed is None:  # no receipt drew it: drawn now, once
                failed = self._fails()
                self._states[pdu.message_id] = (state[0], failed, state[2])
            resp = QuerySmResp(pdu.message_id, final, _UNDELIVERABLE if failed else _DELIVERED, 1 if failed else 0,
                               sequence=pdu.sequence)
        connection.respond_later(encode(resp), None)

    # ---- deliver_sm: receipts and mobile-originated texts

    def _receipt(self, submit: SubmitSm, message_id: str, text: str, failed: bool) -> DeliverSm:
        settings = self.settings
        stat, state, err = ("UNDELIV", 5, 1) if failed else ("DELIVRD", 2, 0)
        tlvs: dict[int, bytes] = {}
        short_message = b""
        if settings.receipt_format != "tlv":
            receipt_id = message_id if settings.receipt_id_mode == "same" else f"{int(message_id, 16):010d}"
            now = self._receipt_time()
            short_message = (
                f"id:{receipt_id} sub:001 dlvrd:{0 if failed else 1:03d} submit date:{now} done date:{now}"
                f" stat:{stat} err:{err:03d} text:{text[:20]}"
            ).encode("latin-1", "replace")
        if settings.receipt_format != "text":
            tlvs[Tag.RECEIPTED_MESSAGE_ID] = message_id.encode() + b"\0"
            tlvs[Tag.MESSAGE_STATE] = bytes((state,))
            if failed:
                tlvs[Tag.NETWORK_ERROR_CODE] = b"\x03" + err.to_bytes(2, "big")  # GSM
        return DeliverSm(
            source_addr_ton=submit.dest_addr_ton,
            source_addr_npi=submit.dest_addr_npi,
            source_addr=submit.destination_addr,
            dest_addr_ton=submit.source_addr_ton,
            dest_addr_npi=submit.source_addr_npi,
            destination_addr=submit.source_addr,
            esm_class=0x04,
            short_message=short_message,
            tlvs=tlvs,
        )

    def _receipt_time(self) -> str:
        """Now as YYMMDDhhmm (UTC), formatted once a minute rather than once a receipt."""
        minute = int(time.time()) // 60
        if minute != self._minute:
            self._minute, self._minute_text = minute, time.strftime("%y%m%d%H%M", time.gmtime(minute * 60))
        return self._minute_text

    def receipts_later(self, system_id: str, receipts: list[DeliverSm]) -> None:
        assert self._receipts is not None
        self._receipts.add((system_id, receipts))

    def _receipts_due(self, batch: list[tuple[str, list[DeliverSm]]]) -> None:
        for system_id, receipts in batch:
            self.mailbox(system_id).put([_Delivery(receipt, None) for receipt in receipts])

    async def send_deliver_sm(self, pdu: DeliverSm, *, system_id: str | None = None) -> None:
        """Send one deliver_sm exactly as given (its sequence number is the connection's) to a
        receiving bind of `system_id`, as `send_mo` does; counted in `mo_sent` once
        acknowledged, or in `refused` if the ESME refuses it for good."""
        target = system_id or self.settings.system_id or self._last_receiver
        deliveries = [_Delivery(pdu, [1])]
        if target is None:
            self._pending_mo.append(deliveries)
        else:
            self.mailbox(target).put(deliveries)

    async def send_mo(
        self, source: str, destination: str, text: str, *, long: str = "udh", system_id: str | None = None
    ) -> None:
        """Send a mobile-originated text (deliver_sm, in parts as `long` says) to a receiving
        bind of `system_id`: by default the configured one, else the last that bound. It
        waits in the simulator until such a bind exists; `summary()["mo_sent"]` counts it once
        the ESME acknowledged every part."""
        target = system_id or self.settings.system_id or self._last_receiver
        self._enqueue_mo(source, destination, text, long, target)

    def _enqueue_mo(self, source: str, destination: str, text: str, long: str, system_id: str | None) -> None:
        options = CodingOptions(gsm_packed=self.settings.gsm_packed)
        parts = parts_for(text, options=options, long=long, ref=self._random.randrange(1, 256))
        group = [len(parts)]
        deliveries = [
            _Delivery(
                DeliverSm(
                    source_addr_ton=1,
                    source_addr_npi=1,
                    source_addr=source,
                    dest_addr_ton=1,
                    dest_addr_npi=1,
                    destination_addr=destination,
                    esm_class=part.esm_class,
                    data_coding=part.data_coding,
                    short_message=part.short_message,
                    tlvs=dict(part.tlvs),
                ),
                group,
            )
            for part in parts
        ]
        if system_id is None:
            self._pending_mo.append(deliveries)
        else:
            self.mailbox(system_id).put(deliveries)


async def serve(settings: SmscSettings, *, started: Callable[[Smsc], None] | None = None) -> dict[str, int]:
    """Run the simulator until SIGTERM or SIGINT; write the summary (to `summary_path`) and
    return it. `started` is called once it listens (with the Smsc, whose `port` is bound)."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    smsc = Smsc(settings)
    installed = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, stopping.set)
            installed.append(signum)
        except (NotImplementedError, RuntimeError):  # not the main thread, or not Unix
            pass
    try:
        await smsc.start()
        if started is not None:
            started(smsc)
        await stopping.wait()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        await smsc.stop()
    return smsc.summary()
