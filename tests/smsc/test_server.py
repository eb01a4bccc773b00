"""The SMSC simulator over real loopback sockets, driven by a bare ESME built on our codec."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from empathic.channels.smpp import status as st
from empathic.channels.smpp.coding import CodingOptions, decode_text, parts_for
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
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    Tag,
    Unbind,
    UnbindResp,
    decode,
    encode,
)
from empathic.channels.smpp.receipts import normalise_id, parse_receipt_text, report_from
from empathic.smsc import Smsc, SmscSettings, serve

TIMEOUT = 5
OPEN: list[Esme] = []  # closed when their simulator stops


class Esme:
    """Just enough ESME to poke the simulator: write PDUs, read PDUs."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.frames = FrameReader()
        self.pending: list[bytes] = []
        self.sequence = 0

    @classmethod
    async def connect(cls, smsc: Smsc) -> Esme:
        esme = cls(*await asyncio.open_connection("127.0.0.1", smsc.port))
        OPEN.append(esme)
        return esme

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence

    def write(self, *pdus: object) -> None:
        self.writer.write(b"".join(encode(pdu) for pdu in pdus))

    async def read(self) -> object:
        while not self.pending:
            data = await asyncio.wait_for(self.reader.read(65536), TIMEOUT)
            if not data:
                raise ConnectionError("closed by the SMSC")
            self.pending.extend(self.frames.feed(data))
        return decode(self.pending.pop(0))

    async def bind(self, command_id: CommandId = CommandId.BIND_TRANSCEIVER, password: str = "secret") -> BindResp:
        self.write(Bind(command_id, "acme", password, sequence=self.next_sequence()))
        return await self.read()

    async def submit(self, text: str, *, destination: str = "14155550100", **fields: object) -> SubmitSmResp:
        self.write(self.submit_sm(text, destination=destination, **fields))
        return await self.read()

    def submit_sm(self, text: str, *, destination: str = "14155550100", **fields: object) -> SubmitSm:
        fields.setdefault("short_message", text.encode())
        return SubmitSm(source_addr="Acme", destination_addr=destination, sequence=self.next_sequence(), **fields)

    async def closed(self) -> bool:
        try:
            while True:
                data = await asyncio.wait_for(self.reader.read(65536), TIMEOUT)
                if not data:
                    return True
        except ConnectionError:
            return True

    def close(self) -> None:
        self.writer.close()


@asynccontextmanager
async def running(**overrides: object) -> AsyncIterator[Smsc]:
    settings = SmscSettings(port=0, password="secret", seed=1, redeliver_delay=0.05)
    for name, value in overrides.items():
        setattr(settings, name, value)
    smsc = Smsc(settings)
    await smsc.start()
    try:
        yield smsc
    finally:
        await smsc.stop()
        while OPEN:
            OPEN.pop().close()


async def until(condition, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def test_bind_and_pipelined_window_takes_one_latency() -> None:
    async with running(latency=0.02) as smsc:
        esme = await Esme.connect(smsc)
        response = await esme.bind()
        assert response.command_status == 0 and response.system_id == "EmpathicSim"
        assert response.tlvs == {Tag.SC_INTERFACE_VERSION: b"\x34"}
        started = time.monotonic()
        esme.write(*(esme.submit_sm(f"message {n}") for n in range(50)))
        responses = [await esme.read() for _ in range(50)]
        elapsed = time.monotonic() - started
        assert [r.sequence for r in responses] == list(range(2, 52))
        assert all(r.command_status == 0 and r.message_id for r in responses)
        assert len({r.message_id for r in responses}) == 50
        assert all(int(r.message_id, 16) for r in responses)  # hex ids
        # Stop-and-wait would take 50 × 20 ms = 1 s; pipelined it is one latency.
        assert 0.02 <= elapsed < 0.3, elapsed
        assert smsc.summary()["received"] == 50
        esme.close()


@pytest.mark.parametrize("receipt_format", ["text", "tlv", "both"])
async def test_receipts_arrive_and_parse(receipt_format: str) -> None:
    async with running(receipt_format=receipt_format, receipt_delay=0.01) as smsc:
        esme = await Esme.connect(smsc)
        await esme.bind()
        response = await esme.submit("Your code is 1234", registered_delivery=1)
        receipt = await esme.read()
        assert isinstance(receipt, DeliverSm) and receipt.esm_class == 0x04
        assert (receipt.source_addr, receipt.destination_addr) == ("14155550100", "Acme")
        report = report_from(receipt)
        assert report.message_id == response.message_id and report.stat == "DELIVRD"
        if receipt_format != "tlv":
            parsed = parse_receipt_text(receipt.short_message.decode())
            assert parsed.message_id == response.message_id and parsed.text == "Your code is 1234"
        else:
            assert receipt.short_message == b""
        if receipt_format != "text":
            assert receipt.tlvs[Tag.MESSAGE_STATE] == b"\x02"
        esme.write(DeliverSmResp(sequence=receipt.sequence))
        await until(lambda: smsc.summary()["receipts_sent"] == 1)
        esme.close()


async def test_receipt_ids_in_decimal_and_failures() -> None:
    async with running(receipt_format="text", receipt_id_mode="hex_to_dec", fail_share=1.0) as smsc:
        esme = await Esme.connect(smsc)
        await esme.bind()
        response = await esme.submit("hello", registered_delivery=2)  # receipts on failure only
        report = report_from(await esme.read())
        assert report.message_id == f"{int(response.message_id, 16):010d}"
        assert normalise_id(report.message_id, "hex_to_dec") == response.message_id
        assert (report.stat, report.err) == ("UNDELIV", "001")
        esme.close()


async def test_no_receipt_unless_asked() -> None:
    async with running() as smsc:
        esme = await Esme.connect(smsc)
        await esme.bind()
        await esme.submit("no receipt please")  # registered_delivery 0
        await esme.submit("on failure only", registered_delivery=2)  # and it did not fail
        esme.write(EnquireLink(sequence=99))
        assert await esme.read() == EnquireLinkResp(sequence=99)  # nothing came before it
        esme.close()


async def test_throttle_and_reject_shares() -> None:
    async with running(throttle_share=1.0) as smsc:
        esme = await Esme.connect(smsc)
        await esme.bind()
        response = await esme.submit("slow down")
        assert response.command_status == st.ESME_RTHROTTLED
        assert smsc.summary()["throttled"] == 1 and smsc.summary()["received"] == 0
    async with running(reject_share=1.0) as smsc:
        esme = await Esme.connect(smsc)
        await esme.bind()
        assert (await esme.submit("nope")).command_status == st.ESME_RINVDSTADR
        assert smsc.summary()["rejected"] == 1


async def test_shares_split_a_load() -> None:
    async with running(throttle_share=0.3, reject_share=0.1, seed=5) as smsc:
        esme = await Esme.connect(smsc)
        await esme.bind()
        esme.write(*(esme.submit_sm(f"m{n}") for n in range(1000)))
        statuses = [(await esme.read()).command_status for _ in range(1000)]
        assert 200 < statuses.count(st.ESME_RTHROTTLED) < 400
        assert 50 < statuses.count(st.ESME_RINVDSTADR) < 150
        summary = smsc.summary()
        assert summary["received"] == statuses.count(0)
        assert summary["throttled"] + summary["rejected"] + summary["received"] == 1000
        esme.close()


async def test_drop_after_closes_the_connection_once() -> None:
    async with running(drop_after=3) as smsc:
        esme = await Esme.connect(smsc)
        await esme.bind()
        assert (await esme.submit("one")).command_status == 0
        assert (await esme.submit("two")).command_status == 0
        esme.write(esme.submit_sm("three"))
        assert await esme.closed()
        summary = smsc.summary()
        assert (summary["drops"], summary["received"]) == (1, 3)  # the SMSC took "three"
        again = await Esme.connect(smsc)
        await again.bind()
        for n in range(5):
            assert (await again.submit(f"after {n}")).command_status == 0
        assert smsc.summary()["drops"] == 1
        again.close()


async def test_drop_every() -> None:
    async with running(drop_after=2, drop_every=True) as smsc:
        for _ in range(3):
            esme = await Esme.connect(smsc)
            await esme.bind()
            assert (await esme.submit("first")).command_status == 0
            esme.write(esme.submit_sm("second"))
            assert await esme.closed()
        assert smsc.summary()["drops"] == 3


@pytest.mark.parametrize("long", ["udh", "sar", "payload"])
async def test_long_message_counts_once(long: str) -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 9  # 405 characters: 3 segments
    parts = parts_for(text, options=CodingOptions(), long=long, ref=77)
    assert len(parts) == (1 if long == "payload" else 3)
    async with running() as smsc:
        esme = await Esme.connect(smsc)
        await esme.bind()
        for part in reversed(parts):  # in any order
            pdu = esme.submit_sm("", esm_class=part.esm_class, data_coding=part.data_coding,
                                 short_message=part.short_message, tlvs=part.tlvs)  # fmt: skip
            esme.write(pdu)
            assert (await esme.read()).command_status == 0
        summary = smsc.summary()
        assert (summary["received"], summary["unique"], summary["partial"]) == (1, 1, 0)
        esme.close()


async def test_duplicates_are_counted() -> None:
    async with running() as smsc:
        esme = await Esme.connect(smsc)
        await esme.bind()
        for text in ("same", "same", "other", "same"):
            await esme.submit(text)
        await esme.submit("same", destination="14155550199")  # another person: not a duplicate
        summary = smsc.summary()
        assert (summary["received"], summary["unique"], summary["duplicates"]) == (5, 3, 2)
        esme.close()


async def test_wrong_credentials_are_refused() -> None:
    async with running() as smsc:
        esme = await Esme.connect(smsc)
        response = await esme.bind(password="wrong")
        assert response.command_status == st.ESME_RINVPASWD
        assert await esme.closed()
    async with running(system_id="other") as smsc:
        esme = await Esme.connect(smsc)
        assert (await esme.bind()).command_status == st.ESME_RINVSYSID
        assert smsc.summary()["binds"] == 0


async def test_any_password_when_none_is_set() -> None:
    async with running(password=None) as smsc:
        esme = await Esme.connect(smsc)
        assert (await esme.bind(password="whatever")).command_status == 0
        assert (await esme.bind()).command_status == st.ESME_RALYBND
        esme.close()


async def test_bind_state_is_enforced() -> None:
    async with running() as smsc:
        esme = await Esme.connect(smsc)
        assert (await esme.submit("not bound")).command_status == st.ESME_RINVBNDSTS
        await esme.bind(CommandId.BIND_RECEIVER)
        assert (await esme.submit("receiver")).command_status == st.ESME_RINVBNDSTS
        esme.write(DeliverSm(sequence=5))  # not for an ESME to send
        assert await esme.read() == DeliverSmResp(command_status=st.ESME_RINVCMDID, sequence=5)
        esme.close()


async def test_garbage_gets_generic_nack_and_the_link_survives() -> None:
    async with running() as smsc:
        esme = await Esme.connect(smsc)
        await esme.bind()
        # A readable header with an operation we do not speak (data_sm) …
        esme.writer.write(bytes.fromhex("00000014" "00000103" "00000000" "0000002a") + b"abc\0")
        assert await esme.read() == GenericNack(command_status=st.ESME_RINVCMDID, sequence=42)
        # … and a submit_sm whose body lies about sm_length.
        frame = bytearray(encode(esme.submit_sm("hello")))
        frame[-6] = 200  # sm_length
        esme.writer.write(bytes(frame))
        assert await esme.read() == GenericNack(command_status=st.ESME_RINVMSGLEN, sequence=esme.sequence)
        assert (await esme.submit("still fine")).command_status == 0
        # A length no PDU can have loses the framing: nack, then hang up.
        esme.writer.write(bytes.fromhex("00000004" "00000015" "00000000" "00000007"))
        assert await esme.read() == GenericNack(command_status=st.ESME_RINVCMDLEN, sequence=7)
        assert await esme.closed()


async def test_query_sm_is_answered_from_the_ledger_even_without_receipts() -> None:
    async with running(receipts=False, receipt_delay=0.3) as smsc:
        esme = await Esme.connect(smsc)
        await esme.bind()
        taken = await esme.submit("hello", registered_delivery=1)

        async def ask(message_id: str, source: str = "Acme") -> QuerySmResp:
            esme.write(QuerySm(message_id, 5, 0, source, sequence=esme.next_sequence()))
            return await esme.read()

        assert await ask(taken.message_id) == QuerySmResp(taken.message_id, "", 1, 0, sequence=esme.sequence)
        await asyncio.sleep(0.35)
        answer = await ask(taken.message_id)
        assert (answer.command_status, answer.message_state, answer.error_code) == (0, 2, 0)  # DELIVERED
        assert len(answer.final_date) == 16 and answer.final_date.endswith("000+")
        assert (await ask("ffffffff")).command_status == st.ESME_RQUERYFAIL  # never taken
        assert (await ask(taken.message_id, source="Other")).command_status == st.ESME_RQUERYFAIL
        assert smsc.summary()["receipts_sent"] == 0 and smsc.summary()["queries"] == 4


async def test_query_sm_tells_a_failed_message_undeliverable() -> None:
    async with running(receipts=False, fail_share=1.0) as smsc:
        esme = await Esme.connect(smsc)
        await esme.bind()
        taken = await esme.submit("hello", registered_delivery=1)
        esme.write(QuerySm(taken.message_id, 5, 0, "Acme", sequence=esme.next_sequence()))
        answer = await esme.read()
        assert (answer.command_status, answer.message_state, answer.error_code) == (0, 5, 1)  # UNDELIVERABLE


async def test_fail_share_is_drawn_only_when_used_so_seeded_runs_draw_as_before() -> None:
    """Without receipts, whether a message failed is drawn when a query first asks about it,
    not at every submit: the seeded draws of rejections and throttling (benchmark figures)
    are what they were before query_sm, whatever fail_share is."""
    runs = []
    for fail_share in (0.0, 0.5):
        async with running(receipts=False, fail_share=fail_share, reject_share=0.2, throttle_share=0.2, seed=5) as smsc:
            esme = await Esme.connect(smsc)
            await esme.bind()
            esme.write(*(esme.submit_sm(f"m{n}", registered_delivery=1) for n in range(200)))
            runs.append([(await esme.read()).command_status for _ in range(200)])
            taken = [i for i, status in enumerate(runs[-1]) if status == 0]
            assert len(taken) > 50
    assert runs[0] == runs[1]
    async with running(receipts=False, fail_share=0.5, seed=5) as smsc:  # drawn once, when first asked
        esme = await Esme.connect(smsc)
        await esme.bind()
        ids = [(await esme.submit(f"m{n}", registered_delivery=1)).message_id for n in range(40)]
        answers = []
        for _ in range(2):
            esme.write(*(QuerySm(i, 5, 0, "Acme", sequence=esme.next_sequence()) for i in ids))
            answers.append([(await esme.read()).message_state for _ in ids])
    assert answers[0] == answers[1] and set(answers[0]) == {2, 5}  # DELIVERED, UNDELIVERABLE


async def test_padded_ids_are_asked_about_as_given() -> None:
    async with running(padded_ids=True, receipt_format="text", receipt_id_mode="hex_to_dec") as smsc:
        esme = await Esme.connect(smsc)
        await esme.bind()
        taken = await esme.submit("hello", registered_delivery=1)
        assert len(taken.message_id) == 10 and taken.message_id.startswith("00") and taken.message_id.isupper()
        receipt = await esme.read()
        assert isinstance(receipt, DeliverSm)
        esme.write(DeliverSmResp(sequence=receipt.sequence))
        assert report_from(receipt).message_id == f"{int(taken.message_id, 16):010d}"  # type: ignore[union-attr]
        for asked, status in ((taken.message_id, 0), (taken.message_id.lstrip("0").lower(), st.ESME_RQUERYFAIL)):
            esme.write(QuerySm(asked, 5, 0, "Acme", sequence=esme.next_sequence()))
            assert (await esme.read()).command_status == status


async def test_a_submit_that_is_not_text_as_it_claims_is_refused() -> None:
    async with running() as smsc:
        esme = await Esme.connect(smsc)
        await esme.bind()
        assert (await esme.submit("x", data_coding=0xFF)).command_status == st.ESME_RINVDCS
        assert (await esme.submit("x", short_message=b"\x05\x00\x03", esm_class=0x40)).command_status == (
            st.ESME_RINVESMCLASS
        )
        assert smsc.summary()["received"] == 0 and smsc.summary()["rejected"] == 2


async def test_a_deliver_sm_refused_for_good_is_dropped_and_one_refused_for_now_comes_again() -> None:
    async with running() as smsc:
        esme = await Esme.connect(smsc)
        await esme.bind(CommandId.BIND_RECEIVER)
        await smsc.send_deliver_sm(DeliverSm(source_addr="14155550100", short_message=b"\xff", data_coding=0xFF))
        first = await esme.read()
        esme.write(DeliverSmResp(command_status=st.ESME_RX_T_APPN, sequence=first.sequence))
        again = await esme.read()  # after redeliver_delay
        assert again.short_message == b"\xff"
        esme.write(DeliverSmResp(command_status=st.ESME_RX_R_APPN, sequence=again.sequence))
        await until(lambda: smsc.summary()["refused"] == 1)
        with pytest.raises(TimeoutError):  # 3 × redeliver_delay: nothing comes a third time
            await asyncio.wait_for(esme.read(), 0.15)
        assert smsc.summary()["mo_sent"] == 0


async def test_enquire_link_and_unbind() -> None:
    async with running() as smsc:
        esme = await Esme.connect(smsc)
        esme.write(EnquireLink(sequence=3))
        assert await esme.read() == EnquireLinkResp(sequence=3)
        await esme.bind()
        esme.write(Unbind(sequence=8))
        assert await esme.read() == UnbindResp(sequence=8)
        assert await esme.closed()


async def test_receipts_wait_for_a_receiver_and_survive_a_dropped_one() -> None:
    async with running(receipt_delay=0) as smsc:
        transmitter = await Esme.connect(smsc)
        await transmitter.bind(CommandId.BIND_TRANSMITTER)
        response = await transmitter.submit("hi", registered_delivery=1)
        await asyncio.sleep(0.05)  # the receipt is due but nobody can take it
        first = await Esme.connect(smsc)
        await first.bind(CommandId.BIND_RECEIVER)
        receipt = await first.read()
        assert report_from(receipt).message_id == response.message_id
        first.close()  # without answering: the receipt is still owed
        second = await Esme.connect(smsc)
        await second.bind(CommandId.BIND_RECEIVER)
        again = await second.read()
        assert report_from(again).message_id == response.message_id
        second.write(DeliverSmResp(sequence=again.sequence))
        await until(lambda: smsc.summary()["receipts_sent"] == 1)
        transmitter.close()
        second.close()


async def test_refused_deliver_sm_goes_again() -> None:
    async with running() as smsc:
        esme = await Esme.connect(smsc)
        await esme.bind()
        await esme.submit("hi", registered_delivery=1)
        receipt = await esme.read()
        esme.write(DeliverSmResp(command_status=st.ESME_RX_T_APPN, sequence=receipt.sequence))
        again = await esme.read()
        assert again.tlvs == receipt.tlvs
        esme.write(DeliverSmResp(sequence=again.sequence))
        await until(lambda: smsc.summary()["receipts_sent"] == 1)
        esme.close()


async def test_deliver_sm_window() -> None:
    async with running(receipt_window=10) as smsc:
        esme = await Esme.connect(smsc)
        await esme.bind()
        esme.write(*(esme.submit_sm(f"m{n}", registered_delivery=1) for n in range(30)))
        got = [await esme.read() for _ in range(40)]  # 30 responses, 10 receipts: the window
        receipts = [pdu for pdu in got if isinstance(pdu, DeliverSm)]
        assert len(receipts) == 10
        esme.write(EnquireLink(sequence=1000))
        assert await esme.read() == EnquireLinkResp(sequence=1000)  # no 11th receipt came
        for _ in range(2):  # each acknowledged window lets the next one go
            esme.write(*(DeliverSmResp(sequence=r.sequence) for r in receipts))
            receipts = [await esme.read() for _ in range(10)]
        esme.write(*(DeliverSmResp(sequence=r.sequence) for r in receipts))
        await until(lambda: smsc.summary()["receipts_sent"] == 30)
        esme.close()


async def test_mobile_originated_long_text() -> None:
    text = "Can I move my appointment to Friday afternoon? " * 5  # 235 characters: 2 segments
    async with running() as smsc:
        await smsc.send_mo("14155550100", "Acme", text)  # waits for a receiving bind
        esme = await Esme.connect(smsc)
        await esme.bind(CommandId.BIND_RECEIVER)
        pieces = []
        for _ in range(2):
            pdu = await esme.read()
            assert isinstance(pdu, DeliverSm) and pdu.esm_class == 0x40
            pieces.append(decode_text(pdu.data_coding, pdu.short_message, udhi=True, gsm_packed=False, tlvs=pdu.tlvs))
            esme.write(DeliverSmResp(sequence=pdu.sequence))
        assert "".join(piece for piece, _ in sorted(pieces, key=lambda p: p[1].seq)) == text
        await until(lambda: smsc.summary()["mo_sent"] == 1)
        await smsc.send_mo("14155550101", "Acme", "Yes 😀", long="sar")
        pdu = await esme.read()
        assert decode_text(pdu.data_coding, pdu.short_message, udhi=False, gsm_packed=False, tlvs=pdu.tlvs)[0] == "Yes 😀"
        esme.close()


async def test_mo_file(tmp_path: Path) -> None:
    mo_file = tmp_path / "mo.txt"
    mo_file.write_text("# source destination text\n14155550100 Acme STOP\n14155550101 Acme See you then\n")
    async with running(mo_file=mo_file) as smsc:
        esme = await Esme.connect(smsc)
        await esme.bind()
        first, second = await esme.read(), await esme.read()
        assert (first.source_addr, first.short_message) == ("14155550100", b"STOP")
        assert (second.source_addr, second.short_message) == ("14155550101", b"See you then")
        esme.close()


async def test_serve_writes_the_summary_on_sigterm(tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    ready: asyncio.Future[Smsc] = asyncio.get_running_loop().create_future()
    settings = SmscSettings(port=0, summary_path=summary_path)
    task = asyncio.create_task(serve(settings, started=ready.set_result))
    smsc = await asyncio.wait_for(ready, TIMEOUT)
    esme = await Esme.connect(smsc)
    await esme.bind()
    await esme.submit("counted")
    os.kill(os.getpid(), signal.SIGTERM)  # serve's handler is installed before `started`
    summary = await asyncio.wait_for(task, TIMEOUT)
    assert summary["received"] == 1
    assert json.loads(summary_path.read_text()) == summary
    OPEN.remove(esme)
    esme.close()


def test_settings_are_checked() -> None:
    for bad in ({"reject_share": 0.6, "throttle_share": 0.6}, {"receipt_format": "xml"}, {"latency": -1},
                {"receipt_id_mode": "octal"}, {"receipt_window": 0}):  # fmt: skip
        with pytest.raises(ValueError):
            Smsc(SmscSettings(**bad))
