"""The SMPP channel turns receipts into our carrier ids: a TLV id is the submit_sm_resp's
own form; only the text form's id may be in another base."""

from __future__ import annotations

import asyncio

import pytest

from empathic.channels.base import Inbound, Receipt, ReceiptStatus
from empathic.channels.smpp import receipts
from empathic.channels.smpp.channel import SmppChannel, SmppSettings
from empathic.channels.smpp.pdu import DeliverSm, Tag
from empathic.core.clock import SystemClock


class Sink:
    data_dir = None  # no files: no journal

    def __init__(self) -> None:
        self.receipts: list[Receipt] = []

    async def on_receipts(self, batch: list[Receipt]) -> None:
        self.receipts.extend(batch)

    async def on_inbound(self, inbound: Inbound) -> str:
        return "msg_x"


async def channel(mode: str) -> tuple[SmppChannel, Sink]:
    settings = SmppSettings.from_config("c", {"host": "127.0.0.1", "port": 1, "system_id": "s", "password": "p",
                                             "receipt_id": mode})
    ch = SmppChannel("c", settings, SystemClock())
    sink = Sink()
    ch._sink = sink  # as start() would set, without connecting
    ch._receipts = __import__("empathic.channels.smpp.channel", fromlist=["_Batch"])._Batch(sink, 0.0)
    return ch, sink


@pytest.mark.parametrize("resp_id", ["11018836", "a82274", "00FF10"])
@pytest.mark.parametrize("form", ["tlv", "text"])
async def test_a_receipt_finds_the_id_the_resp_gave(resp_id: str, form: str) -> None:
    ch, sink = await channel("hex_to_dec")
    text_id = str(int(resp_id, 16))  # such SMSCs write the decimal in the text
    body = f"id:{text_id} sub:001 dlvrd:001 submit date:2611231200 done date:2611231201 stat:DELIVRD err:000 text:hi"
    tlvs = {Tag.RECEIPTED_MESSAGE_ID: resp_id.encode() + b"\0", Tag.MESSAGE_STATE: bytes([2])} if form == "tlv" else {}
    answered: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    ch._deliver(DeliverSm(esm_class=0x04, short_message=body.encode(), tlvs=tlvs), answered.set_result)
    status = await answered
    assert status == 0
    (got,) = sink.receipts
    assert got.carrier_id == receipts.match_key(resp_id, "hex_to_dec")
    assert got.status is ReceiptStatus.DELIVERED


async def test_receipts_are_answered_together_and_told_to_come_again_if_not_stored() -> None:
    ch, sink = await channel("same")
    answers: list[int] = []
    body = "id:{} sub:001 dlvrd:001 submit date:2611231200 done date:2611231201 stat:DELIVRD err:000 text:hi"
    for i in range(3):
        ch._deliver(DeliverSm(esm_class=0x04, short_message=body.format(i).encode()), answers.append)
    assert answers == []  # nothing answered before the batch is stored
    await asyncio.sleep(0.05)
    assert answers == [0, 0, 0] and len(sink.receipts) == 3

    async def broken(batch: list[Receipt]) -> None:
        raise OSError("disk full")

    sink.on_receipts = broken  # type: ignore[method-assign]
    ch._deliver(DeliverSm(esm_class=0x04, short_message=body.format(9).encode()), answers.append)
    await asyncio.sleep(0.05)
    assert answers[3:] == [0x64]  # ESME_RX_T_APPN: the SMSC delivers it again
