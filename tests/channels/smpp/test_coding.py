"""Text ⇄ short_message: GSM 03.38 codes and packing, long messages in parts, and reading
any part back. The properties tie outbound parts to core.sms's segments (what we bill)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from empathic.channels.smpp.coding import (
    CodingOptions,
    Concat,
    DataCoding,
    Part,
    decode_text,
    gsm7_decode,
    gsm7_encode,
    pack_septets,
    parts_for,
    unpack_septets,
)
from empathic.channels.smpp.pdu import Tag
from empathic.core import sms

OPTIONS = [CodingOptions(), CodingOptions(gsm_packed=True), CodingOptions(latin1=True)]
LONG = ["udh", "sar", "payload"]


def read(part: Part, options: CodingOptions) -> tuple[str, Concat | None]:
    return decode_text(
        part.data_coding,
        part.short_message,
        udhi=bool(part.esm_class & 0x40),
        gsm_packed=options.gsm_packed,
        tlvs=part.tlvs,
    )


# --------------------------------------------------------------------------------------
# GSM 03.38
# --------------------------------------------------------------------------------------

# Codes from 3GPP TS 23.038 table 6.2.1, written out independently of the module.
KNOWN_CODES = {
    "@": b"\x00", "£": b"\x01", "$": b"\x02", "è": b"\x04", "\n": b"\x0a", "\r": b"\x0d",
    "Δ": b"\x10", "_": b"\x11", "Ξ": b"\x1a", "Æ": b"\x1c", "É": b"\x1f", " ": b"\x20",
    "¤": b"\x24", "0": b"\x30", "¡": b"\x40", "A": b"\x41", "§": b"\x5f", "¿": b"\x60",
    "a": b"\x61", "à": b"\x7f",
    "\f": b"\x1b\x0a", "^": b"\x1b\x14", "{": b"\x1b\x28", "}": b"\x1b\x29", "\\": b"\x1b\x2f",
    "[": b"\x1b\x3c", "~": b"\x1b\x3d", "]": b"\x1b\x3e", "|": b"\x1b\x40", "€": b"\x1b\x65",
}  # fmt: skip


@pytest.mark.parametrize(("char", "code"), KNOWN_CODES.items())
def test_gsm_codes(char: str, code: bytes) -> None:
    assert gsm7_encode(char) == code
    assert gsm7_decode(code) == char


def test_every_gsm_character_round_trips() -> None:
    text = "".join(sorted(sms.GSM7_BASIC | sms.GSM7_EXTENSION))
    septets = gsm7_encode(text)
    assert len(septets) == sms.septets(text)  # what we count is what we send
    assert max(septets) < 0x80
    assert gsm7_decode(septets) == text


@pytest.mark.parametrize("text", ["`", "é€ñ\u00e7", "😀", "ü\u0308"])
def test_gsm_encode_refuses_other_text(text: str) -> None:
    if sms.encoding_for(text) is sms.Encoding.UCS2:
        with pytest.raises(ValueError):
            gsm7_encode(text)


def test_gsm_decode_never_raises() -> None:
    assert gsm7_decode(b"\x1b\x41") == "A"  # ESC + undefined: the basic character (§6.2.1.1)
    assert gsm7_decode(b"ab\x1b") == "ab"  # a dangling ESC is nothing
    assert gsm7_decode(b"\x80\xff") == "\ufffd\ufffd"
    assert gsm7_decode(bytes(range(256)))  # no exception


def test_pack_known_vector() -> None:
    # "hellohello": the classic TS 23.038 packing example (E8 32 9B FD 46 97 D9 EC 37).
    assert pack_septets(gsm7_encode("hellohello")) == bytes.fromhex("e8329bfd4697d9ec37")
    assert unpack_septets(bytes.fromhex("e8329bfd4697d9ec37"), 10) == gsm7_encode("hellohello")
    # After a 6-octet UDH one fill bit comes first: 'h' (0x68) << 1.
    assert pack_septets(b"h", 1) == bytes.fromhex("d0")


def test_unpack_too_many() -> None:
    with pytest.raises(ValueError):
        unpack_septets(b"\x00", 2)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200).map(lambda raw: bytes(b & 0x7F for b in raw)), st.integers(0, 6))
def test_packing_round_trips(septets: bytes, fill: int) -> None:
    packed = pack_septets(septets, fill)
    assert len(packed) == (fill + 7 * len(septets) + 7) // 8
    assert unpack_septets(packed, len(septets), fill) == septets
    if fill:
        assert packed[0] & ((1 << fill) - 1) == 0  # the fill bits are zero


# --------------------------------------------------------------------------------------
# parts_for
# --------------------------------------------------------------------------------------


def test_one_segment_is_one_plain_part() -> None:
    for long in LONG:
        assert parts_for("Hi there", options=CodingOptions(), long=long, ref=1) == [
            Part(DataCoding.DEFAULT, b"Hi there", 0, {})
        ]
    assert parts_for("", options=CodingOptions(), long="udh", ref=1) == [Part(0, b"", 0, {})]
    assert parts_for("Grüße 😀", options=CodingOptions(), long="udh", ref=1) == [
        Part(DataCoding.UCS2, "Grüße 😀".encode("utf-16-be"), 0, {})
    ]


def test_udh_parts_layout() -> None:
    text = "a" * 153 + "b" * 10
    parts = parts_for(text, options=CodingOptions(), long="udh", ref=0x1A7)
    assert [part.short_message[:6] for part in parts] == [
        bytes.fromhex("050003a70201"),  # UDHL 5, IE 0x00 length 3, ref (low 8 bits), total, seq
        bytes.fromhex("050003a70202"),
    ]
    assert [part.short_message[6:] for part in parts] == [b"a" * 153, b"b" * 10]
    assert all(part.esm_class == 0x40 and part.tlvs == {} for part in parts)


def test_udh_packed_gsm_starts_on_a_septet_boundary() -> None:
    parts = parts_for("a" * 160 + "b", options=CodingOptions(gsm_packed=True), long="udh", ref=9)
    first = parts[0].short_message
    assert len(first) == 140  # 6 + ceil((1 + 153 * 7) / 8)
    assert unpack_septets(first[6:], 153, 1) == b"a" * 153


def test_sar_parts_carry_tlvs_and_no_udh() -> None:
    parts = parts_for("😀" * 40, options=CodingOptions(), long="sar", ref=0x1234)
    assert len(parts) == sms.count("😀" * 40).segments == 2
    for seq, part in enumerate(parts, 1):
        assert part.esm_class == 0 and part.data_coding == DataCoding.UCS2
        assert part.tlvs == {
            Tag.SAR_MSG_REF_NUM: b"\x12\x34",
            Tag.SAR_TOTAL_SEGMENTS: b"\x02",
            Tag.SAR_SEGMENT_SEQNUM: bytes((seq,)),
        }


def test_payload_is_one_part() -> None:
    text = "x" * 500
    (part,) = parts_for(text, options=CodingOptions(), long="payload", ref=1)
    assert part.short_message == b"" and part.esm_class == 0
    assert part.tlvs == {Tag.MESSAGE_PAYLOAD: b"x" * 500}


def test_latin1_option() -> None:
    text = "café `quoted`"  # backtick is not GSM, é and ` are Latin-1
    (part,) = parts_for(text, options=CodingOptions(latin1=True), long="udh", ref=1)
    assert part == Part(DataCoding.LATIN1, text.encode("latin-1"), 0, {})
    (part,) = parts_for(text + "😀", options=CodingOptions(latin1=True), long="udh", ref=1)
    assert part.data_coding == DataCoding.UCS2  # not Latin-1: UCS-2 after all


def test_packed_cr_padding() -> None:
    # 7 septets leave 7 spare bits: they are CR, and reading drops it.
    (part,) = parts_for("abcdefg", options=CodingOptions(gsm_packed=True), long="udh", ref=1)
    assert len(part.short_message) == 7
    assert unpack_septets(part.short_message, 8)[-1] == 0x0D
    assert read(part, CodingOptions(gsm_packed=True))[0] == "abcdefg"
    # A real CR on an octet boundary gets a second one (TS 23.038 §6.1.2.3.1).
    (part,) = parts_for("abcdefg\r", options=CodingOptions(gsm_packed=True), long="udh", ref=1)
    assert read(part, CodingOptions(gsm_packed=True))[0] == "abcdefg\r\r"


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        parts_for("hi", options=CodingOptions(), long="split", ref=1)
    with pytest.raises(ValueError):
        parts_for("a" * 153 * 256, options=CodingOptions(), long="udh", ref=1)


# --------------------------------------------------------------------------------------
# decode_text
# --------------------------------------------------------------------------------------


def test_udh_with_16_bit_reference_and_other_ies() -> None:
    # UDHL 12: IE 0x05 (application port, 16 bit: 4 octets), IE 0x08 (ref 0xBEEF, 3 of 4)
    data = bytes.fromhex("0c" "050400000000" "0804beef0403") + b"Hi"
    assert decode_text(0, data, udhi=True, gsm_packed=False, tlvs={}) == ("Hi", Concat(0xBEEF, 4, 3))


def test_malformed_udh_is_best_effort() -> None:
    # UDHL 9 overruns 3 octets: no UDH after all, all of it is text (0x09 is Ç).
    assert decode_text(0, b"\x09ab", udhi=True, gsm_packed=False, tlvs={}) == ("Çab", None)
    assert decode_text(0, b"\x03\x00\x05\x01", udhi=True, gsm_packed=False, tlvs={}) == ("", None)
    assert decode_text(0, b"", udhi=True, gsm_packed=True, tlvs={}) == ("", None)


def test_payload_wins_and_sar_tlvs_give_concat() -> None:
    tlvs = {
        Tag.MESSAGE_PAYLOAD: b"long text",
        Tag.SAR_MSG_REF_NUM: b"\x00\x07",
        Tag.SAR_TOTAL_SEGMENTS: b"\x03",
        Tag.SAR_SEGMENT_SEQNUM: b"\x02",
    }
    assert decode_text(0, b"ignored", udhi=False, gsm_packed=False, tlvs=tlvs) == ("long text", Concat(7, 3, 2))


@pytest.mark.parametrize(
    ("data_coding", "data", "text"),
    [
        (1, b"Hello_", "Hello_"),  # IA5: ASCII's underscore, not GSM's §
        (3, "Grüße".encode("latin-1"), "Grüße"),
        (4, b"\xde\xad", "\xde\xad"),
        (6, "Привет".encode("iso8859_5"), "Привет"),
        (8, "héllo 😀".encode("utf-16-be"), "héllo 😀"),
        (8, b"\x00A\x00", "A\ufffd"),  # odd length
        (0x11, b"Flash", "Flash"),  # GSM DCS general group, class 1, GSM alphabet
        (0x18, "Ω".encode("utf-16-be"), "Ω"),  # general group, UCS-2 with class
        (0xF0, b"\x00", "@"),  # data coding / message class group, GSM
        (0xF4, b"\x00", "\x00"),  # same group, 8-bit
        (0x42, b"\xe9", "é"),  # reserved: Latin-1
        (0xFF, b"\x00\xff", "\x00ÿ"),
    ],
)
def test_decode_codings(data_coding: int, data: bytes, text: str) -> None:
    assert decode_text(data_coding, data, udhi=False, gsm_packed=False, tlvs={})[0] == text


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 255), st.binary(max_size=160), st.booleans(), st.booleans())
def test_decode_text_never_raises(data_coding: int, data: bytes, udhi: bool, packed: bool) -> None:
    text, concat = decode_text(data_coding, data, udhi=udhi, gsm_packed=packed, tlvs={})
    assert isinstance(text, str)


# --------------------------------------------------------------------------------------
# The property: what parts_for sends, decode_text reads back; parts are our segments
# --------------------------------------------------------------------------------------

_ALPHABET = st.one_of(
    st.sampled_from(sorted(sms.GSM7_BASIC | sms.GSM7_EXTENSION)),
    st.sampled_from("`éÿ¢©®±µ¶·¼½¾×÷"),  # Latin-1, not GSM
    st.sampled_from(["😀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "e\u0301", "\u0308", "\r\n", "ğ", "中"]),
    st.characters(exclude_categories=["Cs"]),
)
_TEXTS = st.one_of(
    st.text(),
    st.lists(_ALPHABET, max_size=400).map("".join),
    st.lists(st.sampled_from(["a", "€", "\r", " ", "{"]), min_size=150, max_size=480).map("".join),
)


def _expected_reading(segment: str, part: Part, options: CodingOptions, in_payload: bool) -> str:
    """The text a part reads back as: the segment, except for packed GSM's CR ambiguity."""
    if not (options.gsm_packed and part.data_coding == 0 and segment.endswith("\r")):
        return segment
    udh_octets = 6 if part.esm_class & 0x40 else 0
    bits = (7 - udh_octets * 8 % 7) % 7 + 7 * len(gsm7_encode(segment))
    if bits % 8:
        return segment
    return segment + "\r" if in_payload or udh_octets + bits // 8 < 140 else segment[:-1]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXTS, st.sampled_from(OPTIONS), st.sampled_from(LONG), st.integers(0, 0xFFFF))
def test_parts_read_back_as_the_text(text: str, options: CodingOptions, long: str, ref: int) -> None:
    count = sms.count(text)
    parts = parts_for(text, options=options, long=long, ref=ref)
    segments = sms.split(text)
    if long != "payload" or count.segments == 1:
        assert len(parts) == count.segments == len(segments)
    else:
        assert len(parts) == 1 and parts[0].short_message == b""
        segments = [text]
    readings = [read(part, options) for part in parts]
    if len(parts) > 1:
        assert [concat for _, concat in readings] == [
            Concat(ref & (0xFF if long == "udh" else 0xFFFF), len(parts), seq) for seq in range(1, len(parts) + 1)
        ]
    in_payload = long == "payload" and count.segments > 1
    expected = [_expected_reading(segment, part, options, in_payload) for segment, part in zip(segments, parts)]
    assert [text for text, _ in readings] == expected
    if not options.gsm_packed or count.encoding is sms.Encoding.UCS2:
        assert "".join(text for text, _ in readings) == text
    for part in parts:
        if in_payload:
            break
        udh = 6 if part.esm_class & 0x40 else 0
        air = part.short_message
        if part.data_coding == 0 and not options.gsm_packed:  # the SMSC packs these septets
            assert len(air) <= 160
            air_octets = udh + ((1 if udh else 0) + 7 * (len(air) - udh) + 7) // 8
        else:
            air_octets = len(air)
            assert len(air) <= 140
        assert air_octets <= 140
