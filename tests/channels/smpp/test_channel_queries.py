"""The SMPP channel asks an SMSC about overdue receipts (query_sm) over a real loopback
bind, and turns each answer into a final status or into "keep waiting"."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from empathic.channels.base import Outbound, Overdue, ReceiptStatus
from empathic.channels.smpp import status as st
from empathic.channels.smpp.channel import SmppChannel, SmppSettings
from empathic.channels.smpp.pdu import (
    Bind,
    EnquireLink,
    EnquireLinkResp,
    FrameReader,
    GenericNack,
    Pdu,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
    decode,
    encode,
    response_to,
)
from empathic.core.clock import SystemClock
from tests.channels.smpp.test_channel_receipts import Sink

Answer = Callable[[QuerySm], Pdu]


@asynccontextmanager
async def smsc(answer: Answer, ids: Callable[[], str] = lambda: "1") -> AsyncIterator[tuple[int, list[QuerySm]]]:
    """An SMSC that binds anyone, answers each query_sm with `answer(query)` and takes every
    submit_sm, giving it the id `ids()`."""
    asked: list[QuerySm] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = FrameReader()
        while data := await reader.read(65536):
            for frame in frames.feed(data):
                pdu = decode(frame)
                if isinstance(pdu, QuerySm):
                    asked.append(pdu)
                    reply = answer(pdu)
                    reply.sequence = pdu.sequence
                elif isinstance(pdu, SubmitSm):
                    reply = SubmitSmResp(ids(), sequence=pdu.sequence)
                elif isinstance(pdu, Bind):
                    reply = response_to(pdu)
                elif isinstance(pdu, EnquireLink):
                    reply = EnquireLinkResp(sequence=pdu.sequence)
                elif isinstance(pdu, Unbind):
                    reply = UnbindResp(sequence=pdu.sequence)
                else:
                    continue
                writer.write(encode(reply))
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], asked
    finally:
        server.close()


async def bound(port: int, query_tps: float = 1000, **extra: Any) -> SmppChannel:
    settings = SmppSettings.from_config(
        "c", {"host": "127.0.0.1", "port": port, "system_id": "s", "password": "p", "from": "+18005550100",
              "query_after": 60, "query_tps": query_tps, **extra},
    )
    channel = SmppChannel("c", settings, SystemClock())
    await channel.start(Sink())  # type: ignore[arg-type]
    assert await channel.wait_up(5)
    return channel


STATES = {  # carrier id → (message_state, error_code) the SMSC answers
    "en-route": (1, 0), "delivered": (2, 0), "expired": (3, 0), "deleted": (4, 0), "undeliverable": (5, 1),
    "accepted": (6, 0), "unknown": (7, 0), "rejected": (8, 0),
}  # fmt: skip


def by_state(query: QuerySm) -> Pdu:
    if query.message_id == "never-taken":
        return QuerySmResp(command_status=st.ESME_RQUERYFAIL)
    state, error = STATES[query.message_id]
    return QuerySmResp(query.message_id, "260101120000000+" if state != 1 else "", state, error)


async def test_answers_become_final_statuses_or_keep_the_text_waiting() -> None:
    async with smsc(by_state) as (port, asked):
        channel = await bound(port)
        try:
            texts = [Overdue(cid, "+18005550100") for cid in [*STATES, "never-taken"]]
            got = {r.carrier_id: (r.status, r.error_code, r.queried) for r in await channel.query(texts)}
        finally:
            await channel.stop()
    assert got == {
        "delivered": (ReceiptStatus.DELIVERED, None, True),
        "expired": (ReceiptStatus.EXPIRED, None, True),
        "deleted": (ReceiptStatus.FAILED, None, True),
        "undeliverable": (ReceiptStatus.UNDELIVERED, "001", True),
        "rejected": (ReceiptStatus.FAILED, None, True),
    }  # en route, accepted, unknown to the SMSC, never taken: nothing yet
    assert {(q.source_addr_ton, q.source_addr_npi, q.source_addr) for q in asked} == {(1, 1, "18005550100")}


async def test_an_smsc_that_does_not_do_query_sm_is_not_asked_again() -> None:
    async with smsc(lambda query: GenericNack(command_status=st.ESME_RINVCMDID)) as (port, asked):
        channel = await bound(port)
        try:
            assert await channel.query([Overdue("a", ""), Overdue("b", "")]) == []
            assert len(asked) == 2
            assert await channel.query([Overdue("c", "")]) == []
            assert len(asked) == 2 and channel.up
        finally:
            await channel.stop()


async def test_queries_keep_to_query_tps() -> None:
    async with smsc(by_state) as (port, asked):
        channel = await bound(port, query_tps=50)
        try:
            started = asyncio.get_running_loop().time()
            await channel.query([Overdue("delivered", "") for _ in range(30)])
            elapsed = asyncio.get_running_loop().time() - started
        finally:
            await channel.stop()
    assert len(asked) == 30 and elapsed >= 0.4, elapsed  # 5 at once, then 25 at 50 a second


async def test_queries_take_the_binds_tps_tokens_too() -> None:
    """An SMSC counts query_sm against the account's rate as it does submit_sm: with query_tps
    far above the bind's tps, the bind's tps still bounds them."""
    async with smsc(by_state) as (port, asked):
        channel = await bound(port, query_tps=1000, tps=50)
        try:
            started = asyncio.get_running_loop().time()
            await channel.query([Overdue("delivered", "") for _ in range(30)])
            elapsed = asyncio.get_running_loop().time() - started
        finally:
            await channel.stop()
    assert len(asked) == 30 and elapsed >= 0.4, elapsed  # the bind's 5 at once, then 25 at 50 a second


@pytest.mark.parametrize(
    ("mode", "given", "key"),
    [
        ("same", "00AB12", "00AB12"),
        ("hex_to_dec", "00AB12", "ab12"),  # receipts write 43794; they are matched by "ab12"
        ("dec_to_hex", "000123", "123"),  # receipts write 7B; they are matched by "123"
    ],
)
async def test_the_smsc_is_asked_about_the_id_it_gave_not_the_key_receipts_match(
    mode: str, given: str, key: str
) -> None:
    def answer(query: QuerySm) -> Pdu:
        if query.message_id != given:
            return QuerySmResp(command_status=st.ESME_RQUERYFAIL)
        return QuerySmResp(query.message_id, "260101120000000+", 2, 0)

    async with smsc(answer, ids=itertools.repeat(given).__next__) as (port, asked):
        channel = await bound(port, receipt_id=mode)
        try:
            (sent,) = await channel.send([Outbound("msg_1", "+14155550100", "+18005550100", "Hi")])
            assert sent.error is None and sent.carrier_id == key
            assert sent.raw_carrier_id == (None if given == key else given)  # kept only where it differs
            (receipt,) = await channel.query([Overdue(key, "+18005550100", sent.raw_carrier_id)])
        finally:
            await channel.stop()
    assert [q.message_id for q in asked] == [given]
    assert receipt.carrier_id == key and receipt.status is ReceiptStatus.DELIVERED  # as its receipts are matched
