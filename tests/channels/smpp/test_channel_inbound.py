"""Texts from people over SMPP: a long text one of whose parts cannot be read is refused
whole, at once, instead of its other parts being told to come again until the end of time."""

from __future__ import annotations

import asyncio

from empathic.channels.base import Inbound
from empathic.channels.smpp import status as st
from empathic.channels.smpp.channel import INBOUND_REFUSED, SmppChannel, SmppSettings, _Batch
from empathic.channels.smpp.pdu import DeliverSm, Tag
from empathic.core.clock import SystemClock


class Sink:
    data_dir = None  # no files: no journal

    def __init__(self) -> None:
        self.texts: list[str] = []

    async def on_receipts(self, batch: list) -> None:
        raise AssertionError("no receipts here")

    async def on_inbound(self, inbound: Inbound) -> str:
        self.texts.append(inbound.body)
        return "msg_x"


def unbound(reassembly_timeout: float = 30.0) -> tuple[SmppChannel, Sink]:
    settings = SmppSettings.from_config("in", {"host": "127.0.0.1", "port": 1, "system_id": "s", "password": "p",
                                              "reassembly_timeout": reassembly_timeout})
    channel = SmppChannel("in", settings, SystemClock())
    sink = Sink()
    channel._sink = sink  # noqa: SLF001 - as start() would set, without connecting
    channel._receipts = _Batch(sink, 0.0)  # noqa: SLF001
    return channel, sink


PERSON = {"source_addr_ton": 1, "source_addr_npi": 1, "source_addr": "14155550177",
          "dest_addr_ton": 1, "dest_addr_npi": 1, "destination_addr": "18005550100"}


def udh_part(ref: int, seq: int, body: bytes, total: int = 3, data_coding: int = 0) -> DeliverSm:
    return DeliverSm(**PERSON, esm_class=0x40, data_coding=data_coding,
                     short_message=bytes((5, 0x00, 3, ref, total, seq)) + body)


def sar_part(ref: int, seq: int, body: bytes, total: int = 3, data_coding: int = 0) -> DeliverSm:
    tlvs = {Tag.SAR_MSG_REF_NUM: ref.to_bytes(2, "big"), Tag.SAR_TOTAL_SEGMENTS: bytes((total,)),
            Tag.SAR_SEGMENT_SEQNUM: bytes((seq,))}
    return DeliverSm(**PERSON, data_coding=data_coding, short_message=body, tlvs=tlvs)


def deliver(channel: SmppChannel, pdu: DeliverSm) -> asyncio.Future[int]:
    answered: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    channel._deliver(pdu, answered.set_result)  # noqa: SLF001
    return answered


def refusals(reason: str) -> float:
    return INBOUND_REFUSED.labels("in", reason)._value.get()  # noqa: SLF001


async def test_a_long_text_with_an_undecodable_part_is_refused_whole_at_once() -> None:
    channel, sink = unbound()
    before = refusals("octets")
    first = deliver(channel, udh_part(7, 1, b"Hello "))
    await asyncio.sleep(0.01)
    assert not first.done()  # waiting for the rest
    bad = deliver(channel, udh_part(7, 2, b"th\x80re"))  # unpacked GSM septets over 0x7F
    # both answered now, not after reassembly_timeout (30 s), and not "come again"
    assert await asyncio.wait_for(asyncio.gather(first, bad), 1) == [st.ESME_RX_R_APPN] * 2
    late = deliver(channel, udh_part(7, 3, b"friend"))  # the last part, after the refusal
    assert await asyncio.wait_for(late, 1) == st.ESME_RX_R_APPN
    assert sink.texts == [] and refusals("octets") - before == 3
    # another long text from the same person is not caught by the refusal
    others = [deliver(channel, udh_part(8, seq, f"part {seq} ".encode())) for seq in (1, 2, 3)]
    assert await asyncio.wait_for(asyncio.gather(*others), 1) == [st.ESME_ROK] * 3
    assert sink.texts == ["part 1 part 2 part 3 "]


async def test_a_sar_part_of_a_coding_that_is_not_text_refuses_its_siblings_too() -> None:
    channel, sink = unbound()
    before = refusals("data_coding")
    bad = deliver(channel, sar_part(0x1234, 2, b"\x00\x01", data_coding=0xFF))  # the bad part first
    assert await asyncio.wait_for(bad, 1) == st.ESME_RX_R_APPN
    siblings = [deliver(channel, sar_part(0x1234, seq, b"hi")) for seq in (1, 3)]
    assert await asyncio.wait_for(asyncio.gather(*siblings), 1) == [st.ESME_RX_R_APPN] * 2
    assert sink.texts == [] and refusals("data_coding") - before == 3


async def test_a_refused_long_text_is_forgotten_after_the_reassembly_timeout() -> None:
    channel, sink = unbound(reassembly_timeout=0.1)
    assert await deliver(channel, udh_part(9, 1, b"\xff", total=2)) == st.ESME_RX_R_APPN
    assert await deliver(channel, udh_part(9, 2, b"b", total=2)) == st.ESME_RX_R_APPN
    await asyncio.sleep(0.15)  # a new text may take the same reference later
    parts = [deliver(channel, udh_part(9, seq, body, total=2)) for seq, body in ((1, b"a"), (2, b"b"))]
    assert await asyncio.wait_for(asyncio.gather(*parts), 1) == [st.ESME_ROK] * 2
    assert sink.texts == ["ab"]
