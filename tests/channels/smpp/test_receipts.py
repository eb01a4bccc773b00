"""Delivery receipts: the text format as SMSCs bend it, TLVs winning over text, statuses,
and the hex/decimal id mismatch (seen in real receipts: data/pdus.toml)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from empathic.channels.base import ReceiptStatus
from empathic.channels.smpp import receipts
from empathic.channels.smpp.pdu import DeliverSm, Tag, decode
from empathic.channels.smpp.receipts import (
    DeliveryReport,
    match_key,
    normalise_id,
    parse_receipt_text,
    receipt_status,
    report_from,
)

VECTORS = tomllib.loads((Path(__file__).parent / "data" / "pdus.toml").read_text())["valid"]
RECEIPTS = [vector for vector in VECTORS if "receipt" in vector]


@pytest.mark.parametrize("vector", RECEIPTS, ids=[v["name"] for v in RECEIPTS])
def test_real_receipts(vector: dict) -> None:
    report = report_from(decode(bytes.fromhex(vector["hex"])))
    assert report is not None
    for key, value in vector["receipt"].items():
        assert getattr(report, key) == value, key


# SMPP 3.4 Appendix B's format, as written there.
SPEC = "id:0123456789 sub:001 dlvrd:001 submit date:0610191018 done date:0610191018 stat:DELIVRD err:000 text:Hello"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (SPEC, DeliveryReport("0123456789", "DELIVRD", "000", "0610191018", "0610191018", "Hello")),
        (
            "ID:abc SUB:001 DLVRD:000 SUBMIT DATE:2611231200 DONE DATE:2611231205 STAT:undeliv ERR:034 TEXT:",
            DeliveryReport("abc", "UNDELIV", "034", "2611231200", "2611231205", ""),
        ),
        (
            "id:77 submit_date:261123120001 done_date:261123120502 stat:EXPIRED",
            DeliveryReport("77", "EXPIRED", None, "261123120001", "261123120502", None),
        ),
        (
            "id: 42   sub:1  dlvrd:1 submit date: 2611231200  done date:2611231200 stat: REJECTD  err:1 "
            "text:a: id:9 stat:DELIVRD",
            DeliveryReport("42", "REJECTD", "1", "2611231200", "2611231200", "a: id:9 stat:DELIVRD"),
        ),
        ("id:5 stat:ACCEPTD\x00", DeliveryReport("5", "ACCEPTD", None, None, None, None)),
    ],
)
def test_parse_receipt_text(text: str, expected: DeliveryReport) -> None:
    assert parse_receipt_text(text) == expected


@pytest.mark.parametrize(
    "text", ["", "Hello, see you at 10:30", "id:123 sub:001", "stat:DELIVRD", "paid:4 stat:DELIVRD"]
)
def test_not_receipts(text: str) -> None:
    assert parse_receipt_text(text) is None


def _receipt(**changes) -> DeliverSm:
    fields = {"esm_class": 0x04, "short_message": SPEC.encode()} | changes
    return DeliverSm(source_addr="14155550100", destination_addr="Acme", **fields)


def test_tlvs_win_over_text() -> None:
    tlvs = {Tag.RECEIPTED_MESSAGE_ID: b"75bcd15\x00", Tag.MESSAGE_STATE: b"\x05", Tag.NETWORK_ERROR_CODE: b"\x03\x00\x22"}
    pdu = _receipt(tlvs=tlvs)
    assert report_from(pdu) == DeliveryReport("75bcd15", "UNDELIV", "034", "0610191018", "0610191018", "Hello", id_from_tlv=True)


def test_tlv_only_receipt() -> None:
    pdu = DeliverSm(tlvs={Tag.RECEIPTED_MESSAGE_ID: b"abc\x00", Tag.MESSAGE_STATE: b"\x03"})  # esm_class 0
    assert report_from(pdu) == DeliveryReport("abc", "EXPIRED", None, None, None, None, id_from_tlv=True)


def test_mobile_originated_and_unreadable_are_not_reports() -> None:
    assert report_from(DeliverSm(short_message=SPEC.encode())) is None  # esm_class 0: an MO text
    assert report_from(_receipt(short_message=b"garbage")) is None
    assert report_from(_receipt(short_message=b"")) is None


def test_ucs2_receipt_text() -> None:
    assert report_from(_receipt(data_coding=8, short_message=SPEC.encode("utf-16-be"))).stat == "DELIVRD"


def test_receipt_under_gsm_coding_keeps_ascii_underscore() -> None:
    pdu = _receipt(short_message=b"id:1 submit_date:2611231200 stat:DELIVRD")
    assert report_from(pdu).submitted == "2611231200"


@pytest.mark.parametrize(
    ("stat", "status"),
    [
        ("DELIVRD", ReceiptStatus.DELIVERED),
        ("UNDELIV", ReceiptStatus.UNDELIVERED),
        ("EXPIRED", ReceiptStatus.EXPIRED),
        ("REJECTD", ReceiptStatus.FAILED),
        ("DELETED", ReceiptStatus.FAILED),
        ("UNKNOWN", ReceiptStatus.UNDELIVERED),
        ("ENROUTE", None),
        ("ACCEPTD", None),
        ("delivered", ReceiptStatus.DELIVERED),
        ("WHATEVER", None),
    ],
)
def test_receipt_status(stat: str, status: ReceiptStatus | None) -> None:
    assert receipt_status(DeliveryReport("1", stat, None, None, None, None)) is status


def test_message_state_values() -> None:
    names = ["ENROUTE", "DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD"]
    for state, name in enumerate(names, 1):
        pdu = DeliverSm(esm_class=4, tlvs={Tag.RECEIPTED_MESSAGE_ID: b"1\x00", Tag.MESSAGE_STATE: bytes((state,))})
        assert report_from(pdu).stat == name


def test_real_hex_to_dec_pairs() -> None:
    # The same SMSCs' TLV ids (hex) and text ids (decimal, zero padded), from data/pdus.toml.
    assert normalise_id("0000436949", "hex_to_dec") == "6aad5"
    assert normalise_id("0059113978", "hex_to_dec") == "38601fa"


@pytest.mark.parametrize(
    ("receipt_id", "mode", "resp_form"),
    [
        ("1234567890", "hex_to_dec", "499602d2"),
        ("0", "hex_to_dec", "0"),
        (" 00042 ", "hex_to_dec", "2a"),
        ("not-a-number", "hex_to_dec", "not-a-number"),
        ("499602D2", "dec_to_hex", "1234567890"),
        ("0x1f", "dec_to_hex", "0x1f"),
        ("00ff", "dec_to_hex", "255"),
        ("0042", "same", "0042"),
    ],
)
def test_normalise_id(receipt_id: str, mode: str, resp_form: str) -> None:
    assert normalise_id(receipt_id, mode) == resp_form


def test_unknown_mode() -> None:
    with pytest.raises(ValueError):
        normalise_id("1", "octal")
    with pytest.raises(ValueError):
        match_key("1", "octal")


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**80), st.integers(0, 6), st.booleans())
def test_ids_meet_whatever_the_padding_and_case(number: int, zeros: int, upper: bool) -> None:
    resp_hex = "0" * zeros + (f"{number:X}" if upper else f"{number:x}")
    assert normalise_id("0" * zeros + str(number), "hex_to_dec") == match_key(resp_hex, "hex_to_dec")
    assert normalise_id(resp_hex, "dec_to_hex") == match_key("0" * zeros + str(number), "dec_to_hex")


_TOKEN = st.text(st.sampled_from("0123456789abcdefABCDEF_-.\x00: "), max_size=12)


@settings(max_examples=500)
@given(
    st.lists(_TOKEN, min_size=7, max_size=7),
    st.one_of(st.none(), st.text(max_size=30)),
    st.sampled_from(["DELIVRD", "undeliv", "EXPIRED", "ENROUTE", ""]),
)
def test_the_one_match_reader_agrees_with_the_tolerant_one(values: list[str], body: str | None, stat: str) -> None:
    ident, sub, dlvrd, submitted, done, _, err = values
    text = f"id:{ident} sub:{sub} dlvrd:{dlvrd} submit date:{submitted} done date:{done} stat:{stat} err:{err}"
    if body is not None:
        text += f" text:{body}"
    assert parse_receipt_text(text) == receipts._parse_tolerantly(text)  # noqa: SLF001
