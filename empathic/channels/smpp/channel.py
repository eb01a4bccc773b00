"""The SMPP channel: Empathic as an ESME bound to a carrier's or aggregator's SMSC.

A `[[channels]]` entry of type `smpp` (see docs/channels.md) gives the SMSC, the bind
(`transceiver`, or `transmitter+receiver`: two connections), the window, the TPS limit,
the data codings and how long texts go (`udh`, `sar` or `payload`). A supervisor per
connection binds, and binds again with backoff after a loss; the channel is `up` while a
connection that can submit is bound.

Sending: every part of one text is written back to back inside the window. A part the SMSC
answers `ESME_RTHROTTLED` or `ESME_RMSGQFUL` is sent again after a pause that grows with
repeats (and every submit on the bind pauses with it); other refusals fail the text with
the error kind of `status.classify`. A text none of whose parts was written to the socket
when the connection fell (waiting for a slot, or queued for a write that never happened:
`NotWritten`) is `connection`, retried by the dispatcher; one written but not answered is
`unknown` (the SMSC may hold it; its topic says whether it is sent again). The carrier id
of a text is its last part's message id, in the form receipts use (`receipt_id`); only the
last part asks for a receipt.

Journal: every batch handed to `send`, and every write of submit_sm before its bytes go,
is recorded in a write-ahead journal (channels.smpp.journal, in `journal_dir` or the data
dir), so after a crash reconcile tells the texts certainly never written (`never_written`,
queued again) from those that may be at the SMSC (their topic's policy).

Asking: with `query_after` set, `query` asks the SMSC (query_sm, at most `query_tps` a
second, each in a window slot behind every text waiting for one) about texts whose
receipts are overdue (engine.overdue chooses them); final answers come back as receipts.

Receiving: receipts are collected for a few milliseconds and handed to the engine as one
batch; every deliver_sm is answered only after the engine has stored it, so a crash makes
the SMSC deliver it again. A long text from a person is answered part by part once it is
whole (or `ESME_RX_T_APPN`, to be delivered again, if its other parts do not come within
`reassembly_timeout`). A text that cannot be read as what it claims (a binary or reserved
data_coding, a broken UDH, octets its coding does not define) is refused with
`ESME_RX_R_APPN` for good, logged and counted, and nothing of it is stored. A long text
one of whose parts is refused so is refused whole: its parts waiting for the rest are
refused with it, and those that come later (for `reassembly_timeout`) at once, rather than
each told to come again, and again, for a text that can never be whole.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import Counter as Metric

from empathic.channels.base import (
    ChannelError,
    ChannelSink,
    ErrorKind,
    Inbound,
    Outbound,
    Overdue,
    Receipt,
    ReceiptStatus,
    SendResult,
)
from empathic.channels.smpp import coding, journal, receipts
from empathic.channels.smpp import pdu as p
from empathic.channels.smpp import status as st
from empathic.channels.smpp.session import (
    BindRefused,
    ConnectionLost,
    OutcomeUnknown,
    Reply,
    Session,
    SessionSettings,
)
from empathic.core.clock import Clock
from empathic.core.ratelimit import TokenBucket

log = logging.getLogger(__name__)

BINDS = ("transceiver", "transmitter+receiver")
_RETRY_LATER = st.ESME_RX_T_APPN
_QUERY_PRIORITY = 1 << 30  # window slots go to every text waiting before any query_sm
_STATE_UNKNOWN = 7  # message_state UNKNOWN: in a query's answer, the SMSC does not know
# A text whose octets are not what they claim (coding.Undecodable): the same octets would
# come again, so it is refused for good ("reject message"), not "come again".
_REFUSED = st.ESME_RX_R_APPN
INBOUND_REFUSED = Metric(
    "empathic_smpp_inbound_refused", "deliver_sm texts refused as undecodable, by why (coding.REFUSALS)",
    ["channel", "reason"],
)


@dataclass(frozen=True)
class SmppSettings:
    host: str
    port: int
    system_id: str
    password: str = field(repr=False)
    system_type: str = ""
    bind: str = "transceiver"
    window: int = 50
    tps: float = 1000.0  # per bind; the dispatcher claims no faster either
    sender: str | None = None  # `from`
    source_ton: int | None = None  # else from the sender's form (+E.164, short code, name)
    source_npi: int | None = None
    dest_ton: int = 1
    dest_npi: int = 1
    long: str = "udh"
    gsm_packed: bool = False
    latin1: bool = False
    receipts: bool = True
    receipt_id: str = "same"
    enquire_link: float = 30.0
    response_timeout: float = 30.0
    reconnect_max: float = 30.0
    throttle_pause: float = 0.5  # pause after a throttling answer; doubles while nothing is taken, up to 10 s
    throttle_retries: int = 8
    reassembly_timeout: float = 60.0
    receipt_linger: float = 0.002  # seconds receipts wait to share one batch
    query_after: float = 0.0  # seconds `sent` without a receipt before query_sm asks the SMSC; 0: never
    query_tps: float = 5.0  # query_sm per second at most (they share the window, after every submit)
    query_batch: int = 100  # texts asked about in one pass
    journal_dir: str | None = None  # the write-ahead journal's folder; None: `smpp-journal` in the data dir

    @classmethod
    def from_config(cls, name: str, raw: dict[str, Any]) -> SmppSettings:
        raw = dict(raw)
        if "password_env" in raw:
            var = raw.pop("password_env")
            if var not in os.environ:
                raise ValueError(f"password_env names {var}, which is not set")
            raw["password"] = os.environ[var]
        if "from" in raw:
            raw["sender"] = raw.pop("from")
        known = set(cls.__dataclass_fields__)
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown keys {', '.join(sorted(unknown))}")
        missing = {"host", "port", "system_id", "password"} - set(raw)
        if missing:
            raise ValueError(f"missing {', '.join(sorted(missing))} (password may come from password_env)")
        try:
            settings = cls(**raw)
        except TypeError as exc:
            raise ValueError(str(exc)) from None
        settings.check()
        return settings

    def check(self) -> None:
        if self.bind not in BINDS:
            raise ValueError(f"bind must be one of {', '.join(BINDS)}")
        if self.long not in ("udh", "sar", "payload"):
            raise ValueError("long must be udh, sar or payload")
        if self.receipt_id not in receipts.ID_MODES:
            raise ValueError(f"receipt_id must be one of {', '.join(receipts.ID_MODES)}")
        if not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise ValueError("port must be 1..65535")
        if not isinstance(self.window, int) or not 1 <= self.window <= 10_000:
            raise ValueError("window must be 1..10000")
        if not self.tps > 0:
            raise ValueError("tps must be positive")
        if isinstance(self.query_after, bool) or not isinstance(self.query_after, int | float) or self.query_after < 0:
            raise ValueError("query_after must be a number of seconds (0: never ask)")
        if isinstance(self.query_tps, bool) or not isinstance(self.query_tps, int | float) or not self.query_tps > 0:
            raise ValueError("query_tps must be a number above 0")
        if isinstance(self.query_batch, bool) or not isinstance(self.query_batch, int) or not 1 <= self.query_batch <= 10_000:
            raise ValueError("query_batch must be 1..10000")
        if self.journal_dir is not None and (not isinstance(self.journal_dir, str) or not self.journal_dir):
            raise ValueError("journal_dir must be a folder's path")
        for key in ("system_id", "password"):
            if not isinstance(getattr(self, key), str) or len(getattr(self, key)) > (15 if key == "system_id" else 8):
                raise ValueError(f"{key} must be text of at most {15 if key == 'system_id' else 8} characters")


def _address(number: str, ton: int | None, npi: int | None) -> tuple[int, int, str]:
    """(ton, npi, address) of a number as SMPP wants it."""
    if number.startswith("+") and number[1:].isdigit():
        found = (1, 1, number[1:])  # international, ISDN
    elif number.isdigit():
        found = (3, 0, number) if len(number) <= 8 else (1, 1, number)  # short code, network specific
    else:
        found = (5, 0, number)  # alphanumeric
    return (found[0] if ton is None else ton, found[1] if npi is None else npi, found[2])


class _Batch:
    """Receipts gathered for a moment, handed to the sink together; each deliver_sm is
    answered when its batch is stored (or told to come again if that failed)."""

    def __init__(self, sink: ChannelSink, linger: float) -> None:
        self.sink = sink
        self.linger = linger
        self.items: list[tuple[Receipt, Reply]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task[None]] = set()

    def add(self, receipt: Receipt, reply: Reply) -> None:
        self.items.append((receipt, reply))
        if len(self.items) >= 500:
            self._kick()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.linger, self._kick)

    def _kick(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        items, self.items = self.items, []
        if items:
            task = asyncio.create_task(self._flush(items))
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)

    async def _flush(self, items: list[tuple[Receipt, Reply]]) -> None:
        status = _RETRY_LATER
        try:
            await self.sink.on_receipts([receipt for receipt, _ in items])
            status = st.ESME_ROK
        except Exception:  # noqa: BLE001 - every deliver_sm of the batch comes again
            log.exception("storing %d receipts failed; the SMSC will deliver them again", len(items))
        for _, reply in items:
            reply(status)


class SmppChannel:
    # SMPP has no way to ask by our id: an interrupted hand-off is `unknown`, unless the
    # journal shows it was never written (channels.base.HandOffJournal).
    answers_lookup = False

    def __init__(self, name: str, settings: SmppSettings, clock: Clock) -> None:
        self.name = name
        self.settings = settings
        self.clock = clock
        self.sender = settings.sender or ""
        self.tps = settings.tps
        self.options = coding.CodingOptions(gsm_packed=settings.gsm_packed, latin1=settings.latin1)
        self._sink: ChannelSink | None = None
        self._sessions: dict[str, Session | None] = {}
        self._supervisors: list[asyncio.Task[None]] = []
        self._stopping = False
        self._refs = itertools.count(random.randrange(1 << 16))
        self._paused_until = 0.0
        self._throttles = 0  # pauses in a row with nothing taken in between
        self._taken_since_pause = False
        self.pauses: collections.deque[float] = collections.deque(maxlen=100)  # the latest, in seconds
        self._receipts: _Batch | None = None
        self._texts: set[asyncio.Task[None]] = set()  # texts from people being stored
        self._parts: dict[tuple[str, str, int, int], dict[int, str]] = {}
        self._whole: dict[tuple[str, str, int, int], asyncio.Future[int]] = {}
        # Long texts refused whole (a part undecodable): their key -> (monotonic time the
        # refusal is forgotten, why), so parts still to come are refused at once.
        self._refused: dict[tuple[str, str, int, int], tuple[float, str]] = {}
        self._up = asyncio.Event()
        self.binds = 0  # successful binds so far (a reconnect adds one)
        # Asking about overdue receipts (channels.base.ReceiptQueries; engine.overdue drives it).
        self.query_after = settings.query_after
        self.query_batch = settings.query_batch
        self._query_bucket = TokenBucket(settings.query_tps, max(1.0, settings.query_tps / 10))
        self._queries_refused = False  # the SMSC does not do query_sm: asked no more
        self._journal_dir: Path | None = None
        self._journal: journal.Journal | None = None  # this start's writer; None: journaling nothing
        self._started = False  # between start and stop

    def __repr__(self) -> str:
        return f"SmppChannel({self.name!r}, {self.settings.system_id}@{self.settings.host}:{self.settings.port})"

    # -- life ------------------------------------------------------------------------------

    @property
    def up(self) -> bool:
        session = self._submitter()
        return session is not None and session.alive

    def _submitter(self) -> Session | None:
        return self._sessions.get("transceiver" if self.settings.bind == "transceiver" else "transmitter")

    async def start(self, sink: ChannelSink) -> None:
        if self._started:  # one set of binds and one journal writer per start
            return
        self._started = True
        self._sink = sink
        self._stopping = False  # it may be started again after a stop (a worker regains it)
        self._supervisors = []
        self._receipts = _Batch(sink, self.settings.receipt_linger)
        await self._open_journal(sink)
        modes = ["transceiver"] if self.settings.bind == "transceiver" else ["transmitter", "receiver"]
        for mode in modes:
            self._sessions[mode] = None
            self._supervisors.append(asyncio.create_task(self._supervise(mode), name=f"smpp-{self.name}-{mode}"))

    async def wait_up(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._up.wait(), timeout)
        except TimeoutError:
            return False
        return self.up

    async def stop(self) -> None:
        self._stopping = True
        for task in self._supervisors:
            task.cancel()
        for task in self._supervisors:
            try:
                await task
            except BaseException:  # noqa: BLE001 - cancelled
                pass
        for session in self._sessions.values():
            if session is not None:
                await session.close()
        # The dispatcher's batches ended before its channel stops (engine.runtime), and the
        # binds are closed: this writer appends no more, and readers may trust it.
        if self._journal is not None:
            writer, self._journal = self._journal, None
            await asyncio.to_thread(writer.close)
        self._started = False

    async def _open_journal(self, sink: ChannelSink) -> None:
        if self.settings.journal_dir is not None:
            self._journal_dir = Path(self.settings.journal_dir)
        elif sink.data_dir is not None:
            self._journal_dir = sink.data_dir / "smpp-journal"
        else:  # a sink without files (tests): no journal
            return
        writer = journal.Journal(self._journal_dir, self.name)
        try:
            await asyncio.to_thread(writer.open)  # it may wait for a reader's lock, and it prunes
        except OSError as exc:
            log.warning("smpp %s: no journal in %s (%s): texts a crash leaves `sending` keep their topic's "
                        "policy", self.name, self._journal_dir, exc)
            return
        self._journal = writer

    async def _supervise(self, mode: str) -> None:
        s = self.settings
        delay = 0.5
        on_deliver = None if mode == "transmitter" else self._deliver
        on_write = None if self._journal is None or mode == "receiver" else self._journal.written
        while not self._stopping:
            session = Session(
                SessionSettings(
                    s.host, s.port, s.system_id, s.password, s.system_type, mode, s.window, s.tps,
                    s.enquire_link, s.response_timeout,
                ),
                on_deliver,
                on_write,
            )
            try:
                await session.open()
            except BindRefused as exc:
                log.error("smpp %s: %s; binding again in %.0fs", self.name, exc, s.reconnect_max)
                await asyncio.sleep(s.reconnect_max)
                continue
            except (OSError, TimeoutError, ConnectionError) as exc:
                log.warning("smpp %s: cannot connect to %s:%s (%s); again in %.1fs",
                            self.name, s.host, s.port, type(exc).__name__, delay)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(s.reconnect_max, delay * 2)
                continue
            delay = 0.5
            self.binds += 1
            self._sessions[mode] = session
            log.info("smpp %s: bound %s to %s:%s", self.name, mode, s.host, s.port)
            if self.up:
                self._up.set()
            try:
                await session.closed
            finally:
                self._sessions[mode] = None
                if not self.up:
                    self._up.clear()
            if not self._stopping:
                log.warning("smpp %s: %s connection lost; binding again", self.name, mode)

    # -- sending ------------------------------------------------------------------------------

    async def send(self, batch: list[Outbound]) -> list[SendResult]:
        """Write every text of the batch into the window in one pass, then read the answers;
        a text that needs more (a throttled part, a pause, no bind) finishes on its own."""
        if self._journal is not None:
            self._journal.handed([journal.key(out.message_id, out.attempt) for out in batch])
        results: list[SendResult | None] = [None] * len(batch)
        written: list[tuple[int, list[p.SubmitSm], list[asyncio.Future[p.Pdu]], Session]] = []
        rest: list[tuple[int, list[p.SubmitSm]]] = []
        for i, out in enumerate(batch):
            try:
                pending = self._submits(out)
            except ValueError as exc:  # too many segments, an address too long
                results[i] = SendResult(out.message_id, error=ChannelError(ErrorKind.BAD_CONTENT, str(exc)))
                continue
            session = self._submitter()
            if rest or session is None or not session.alive or time.monotonic() < self._paused_until:
                rest.append((i, pending))
                continue
            try:
                futures = await session.write_parts(pending, out.priority, journal.key(out.message_id, out.attempt))
                written.append((i, pending, futures, session))
            except ConnectionLost:
                rest.append((i, pending))
        later: list[tuple[int, Any]] = []
        for i, pending, futures, session in written:
            answers = [await session.answer(future) for future in futures]
            accepted: dict[int, str] = {}
            verdict = self._judge(batch[i], range(len(pending)), answers, accepted)
            if isinstance(verdict, SendResult):
                results[i] = verdict
            elif verdict:
                later.append((i, self._finish(batch[i], pending, accepted, verdict, tries=1)))
            else:
                results[i] = self._accepted(batch[i], pending, accepted)
        later.extend((i, self._finish(batch[i], pending, {}, list(range(len(pending))))) for i, pending in rest)
        if later:
            for (i, _), result in zip(later, await asyncio.gather(*(work for _, work in later)), strict=True):
                results[i] = result
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    async def lookup(self, message_ids: list[str]) -> dict[str, str]:
        return {}

    async def never_written(self, claims: dict[str, int]) -> set[str]:
        """Of `claims` (message id -> attempt), those a process that is gone was handed and
        never wrote to an SMSC (channels.smpp.journal)."""
        if self._journal_dir is None:
            return set()
        try:
            return await asyncio.to_thread(journal.never_written, self._journal_dir, self.name, claims)
        except OSError as exc:  # a part unread could hold a W record: nothing is sure
            log.warning("smpp %s: the journal in %s cannot be read (%s): interrupted hand-offs keep their topic's "
                        "policy", self.name, self._journal_dir, exc)
            return set()

    # -- asking about overdue receipts ---------------------------------------------------------

    async def query(self, texts: list[Overdue]) -> list[Receipt]:
        """Ask the SMSC (query_sm, at most `query_tps` a second, each in a window slot
        behind every text waiting for one) about texts whose receipts are overdue: a
        receipt for each it says reached a final state. Still on its way (ENROUTE,
        ACCEPTED), UNKNOWN to it (an SMSC that lost its records says so), an error or no
        answer: nothing, so the text waits for its receipt time-out. An SMSC that does not
        do query_sm (ESME_RINVCMDID) is not asked again."""
        session = self._submitter()
        if self._queries_refused or session is None or not session.alive:
            return []
        answers = await asyncio.gather(*(self._ask(session, text) for text in texts))
        return [receipt for receipt in answers if receipt is not None]

    async def _ask(self, session: Session, text: Overdue) -> Receipt | None:
        s = self.settings
        # Asked by the id as the SMSC gave it (00AB12), not the key receipts match (ab12).
        query = p.QuerySm(text.raw_carrier_id or text.carrier_id,
                          *_address(text.sender or self.sender, s.source_ton, s.source_npi))
        try:
            p.encode(query)
        except ValueError:  # an id or address that does not fit query_sm's fields: nothing to ask
            return None
        while (wait := self._query_bucket.wait_for(1, time.monotonic())) > 0:
            await asyncio.sleep(wait)
        self._query_bucket.take(1, time.monotonic())
        await session.window.acquire(_QUERY_PRIORITY)
        try:
            await session.take_token()  # a query counts toward the bind's tps, as a submit does
            future = session.send_request(query, slot=True)
        except BaseException as exc:  # ConnectionLost, or cancelled while waiting for a token
            session.window.release()
            if isinstance(exc, ConnectionLost):
                return None
            raise
        try:
            resp = await future
        except ConnectionLost:
            return None
        if resp.command_status in (st.ESME_RINVCMDID, st.ESME_RPROHIBITED):
            if not self._queries_refused:
                log.warning("smpp %s: the SMSC does not answer query_sm (%s); overdue receipts wait for their "
                            "time-out", self.name, st.name(resp.command_status))
            self._queries_refused = True
            return None
        if not isinstance(resp, p.QuerySmResp) or resp.command_status != st.ESME_ROK:
            return None
        status = receipts.state_status(resp.message_state) if resp.message_state != _STATE_UNKNOWN else None
        if status is None:
            return None
        error = None if status is ReceiptStatus.DELIVERED or not resp.error_code else f"{resp.error_code:03d}"
        return Receipt(self.name, text.carrier_id, status, error, self.clock.now(), queried=True)

    def _submits(self, out: Outbound) -> list[p.SubmitSm]:
        s = self.settings
        parts = coding.parts_for(out.body, options=self.options, long=s.long, ref=next(self._refs))
        source_ton, source_npi, source = _address(out.sender or self.sender, s.source_ton, s.source_npi)
        _, _, destination = _address(out.to, s.dest_ton, s.dest_npi)
        return [
            p.SubmitSm(
                source_addr_ton=source_ton,
                source_addr_npi=source_npi,
                source_addr=source,
                dest_addr_ton=s.dest_ton,
                dest_addr_npi=s.dest_npi,
                destination_addr=destination,
                esm_class=part.esm_class,
                registered_delivery=1 if s.receipts and i == len(parts) - 1 else 0,
                data_coding=part.data_coding,
                short_message=part.short_message,
                tlvs=dict(part.tlvs),
            )
            for i, part in enumerate(parts)
        ]

    async def _finish(
        self, out: Outbound, pending: list[p.SubmitSm], accepted: dict[int, str], todo: list[int], tries: int = 0
    ) -> SendResult:
        """Submit the parts `todo` (the others are `accepted`), waiting out pauses and
        sending throttled parts again, until the text is taken or refused."""
        while True:
            if tries > self.settings.throttle_retries:
                if accepted:
                    return self._unknown(out, "parts still throttled after retries")
                return SendResult(out.message_id, error=ChannelError(ErrorKind.THROTTLED, "still throttled"))
            await self._wait_unpaused()
            session = self._submitter()
            if session is None or not session.alive:
                if accepted:
                    return self._unknown(out, "connection lost between the parts of a long text")
                return SendResult(out.message_id, error=ChannelError(ErrorKind.CONNECTION, "not bound"))
            results = await session.submit_many([pending[i] for i in todo], out.priority,
                                                journal.key(out.message_id, out.attempt))
            verdict = self._judge(out, todo, results, accepted)
            if isinstance(verdict, SendResult):
                return verdict
            if not verdict:
                return self._accepted(out, pending, accepted)
            todo = verdict
            tries += 1

    def _judge(
        self, out: Outbound, todo: Any, results: list[Any], accepted: dict[int, str]
    ) -> SendResult | list[int]:
        """One round of answers for the parts `todo`: the text's final failure, or the parts
        to send again (none: all taken). Taken parts are added to `accepted`."""
        again: list[int] = []
        for index, result in zip(todo, results, strict=True):
            if isinstance(result, OutcomeUnknown):
                return self._unknown(out, "connection lost before the SMSC answered")
            if isinstance(result, BaseException):  # ConnectionLost, NotWritten: never reached the socket
                again.append(index)
                continue
            kind = st.classify(result.command_status)
            if kind is None:
                accepted[index] = result.message_id
            elif kind is ErrorKind.THROTTLED:
                again.append(index)
                self._throttled()
            else:
                if accepted:
                    log.warning("smpp %s: part refused (%s) after others were taken", self.name,
                                st.name(result.command_status))
                return SendResult(out.message_id, error=ChannelError(kind, st.name(result.command_status)))
        return again

    def _accepted(self, out: Outbound, pending: list[p.SubmitSm], accepted: dict[int, str]) -> SendResult:
        self._taken_since_pause = True
        given = accepted[len(pending) - 1]
        carrier_id = receipts.match_key(given, self.settings.receipt_id)
        # The id as given, kept where it differs from the key receipts match (query_sm asks by it).
        return SendResult(out.message_id, carrier_id, raw_carrier_id=given if given != carrier_id else None)

    def _unknown(self, out: Outbound, why: str) -> SendResult:
        return SendResult(out.message_id, error=ChannelError(ErrorKind.UNKNOWN, why))

    def _throttled(self) -> None:
        """The SMSC asks us to slow down: pause the bind. The answers to one window arrive
        together, so throttles during a pause are the same news, not more of it; the pause
        doubles only when the SMSC took nothing since the last one (it is still too much)."""
        now = time.monotonic()
        if now < self._paused_until:
            return
        self._throttles = 1 if self._taken_since_pause else self._throttles + 1
        self._taken_since_pause = False
        pause = min(10.0, self.settings.throttle_pause * 2 ** min(self._throttles - 1, 8))
        self._paused_until = now + pause
        self.pauses.append(pause)

    async def _wait_unpaused(self) -> None:
        wait = self._paused_until - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    # -- receiving ----------------------------------------------------------------------------

    def _deliver(self, pdu: p.DeliverSm, reply: Reply) -> None:
        """A deliver_sm: a receipt joins the batch being gathered; a text from a person is
        handled in a task of its own. `reply` answers it once the engine stored it."""
        assert self._sink is not None and self._receipts is not None
        report = receipts.report_from(pdu)
        if report is None:
            task = asyncio.create_task(self._text_in(pdu, reply))
            self._texts.add(task)
            task.add_done_callback(self._texts.discard)
            return
        status = receipts.receipt_status(report)
        if status is None:
            reply(st.ESME_ROK)  # en route, accepted: not news we keep
            return
        mode = self.settings.receipt_id
        carrier_id = (
            receipts.match_key(report.message_id, mode) if report.id_from_tlv
            else receipts.normalise_id(report.message_id, mode)
        )
        error = None if status is ReceiptStatus.DELIVERED else (report.err or report.stat)
        self._receipts.add(Receipt(self.name, carrier_id, status, error, self.clock.now()), reply)

    async def _text_in(self, pdu: p.DeliverSm, reply: Reply) -> None:
        status = _RETRY_LATER
        try:
            status = await self._text(pdu)
        except coding.Undecodable as refusal:  # nothing is stored: garbage is nobody's words
            status = _REFUSED
            INBOUND_REFUSED.labels(self.name, refusal.reason).inc()
            log.warning("smpp %s: refused a text from %s (%s): %s", self.name, pdu.source_addr, refusal.reason, refusal)
            if refusal.concat is not None and refusal.concat.total > 1:
                self._refuse_whole(self._long_key(pdu, refusal.concat), refusal.reason)
        except Exception:  # noqa: BLE001 - the SMSC will deliver it again
            log.exception("smpp %s: storing a text from %s failed", self.name, pdu.source_addr)
        reply(status)

    async def _text(self, pdu: p.DeliverSm) -> int:
        text, concat = coding.decode_text(
            pdu.data_coding, pdu.short_message, udhi=bool(pdu.esm_class & 0x40),
            gsm_packed=self.settings.gsm_packed, tlvs=pdu.tlvs,
        )
        if concat is None or concat.total <= 1:
            sender = self._number(pdu.source_addr, pdu.source_addr_ton)
            await self._inbound(sender, self._number(pdu.destination_addr, pdu.dest_addr_ton), text)
            return st.ESME_ROK
        return await self._part(self._long_key(pdu, concat), concat, text)

    def _long_key(self, pdu: p.DeliverSm, concat: coding.Concat) -> tuple[str, str, int, int]:
        """Which long text a part belongs to: (from, to, reference, number of parts)."""
        sender = self._number(pdu.source_addr, pdu.source_addr_ton)
        return (sender, self._number(pdu.destination_addr, pdu.dest_addr_ton), concat.ref, concat.total)

    def _refuse_whole(self, key: tuple[str, str, int, int], reason: str) -> None:
        """A part of this long text was refused: so is the text. Its parts waiting for the
        rest are answered with the refusal now, and parts still to come are refused as they
        arrive, for `reassembly_timeout` (they would only wait for a part that never comes)."""
        now = time.monotonic()
        refused = self._refused
        while refused and next(iter(refused.values()))[0] <= now:  # the oldest first: forgotten
            del refused[next(iter(refused))]
        refused.pop(key, None)  # re-inserted last, so the oldest stay first
        refused[key] = (now + self.settings.reassembly_timeout, reason)
        waiting = self._parts.pop(key, {})
        whole = self._whole.pop(key, None)
        if waiting:
            INBOUND_REFUSED.labels(self.name, reason).inc(len(waiting))
        if whole is not None and not whole.done():
            whole.set_result(_REFUSED)

    def _refused_part(self, key: tuple[str, str, int, int]) -> bool:
        """Whether this part's long text was refused whole a moment ago (counted if so)."""
        refusal = self._refused.get(key)
        if refusal is None:
            return False
        if refusal[0] <= time.monotonic():
            del self._refused[key]
            return False
        INBOUND_REFUSED.labels(self.name, refusal[1]).inc()
        return True

    async def _part(self, key: tuple[str, str, int, int], concat: coding.Concat, text: str) -> int:
        if self._refused_part(key):
            return _REFUSED
        sender, to = key[0], key[1]
        parts = self._parts.setdefault(key, {})
        whole = self._whole.get(key)
        if whole is None or whole.done():
            whole = self._whole[key] = asyncio.get_running_loop().create_future()
        parts[concat.seq] = text
        if len(parts) == concat.total and all(i in parts for i in range(1, concat.total + 1)):
            del self._parts[key], self._whole[key]
            try:
                await self._inbound(sender, to, "".join(parts[i] for i in range(1, concat.total + 1)))
            except Exception:
                whole.set_result(_RETRY_LATER)
                raise
            whole.set_result(st.ESME_ROK)
            return st.ESME_ROK
        try:
            return await asyncio.wait_for(asyncio.shield(whole), self.settings.reassembly_timeout)
        except TimeoutError:
            parts.pop(concat.seq, None)
            if not parts:
                self._parts.pop(key, None)
                self._whole.pop(key, None)
            return _RETRY_LATER

    async def _inbound(self, sender: str, to: str, body: str) -> None:
        assert self._sink is not None
        # deliver_sm carries no id of its own; a redelivery after a crash is a new message.
        await self._sink.on_inbound(Inbound(self.name, f"mo-{uuid.uuid4().hex}", sender, to, body, self.clock.now()))

    @staticmethod
    def _number(address: str, ton: int) -> str:
        return f"+{address}" if ton == 1 and address.isdigit() else address
