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
    REFUSALS,
    Undecodable,
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


def refused(data_coding: int, data: bytes, *, udhi: bool = False, packed: bool = False, tlvs: dict | None = None) -> str:
    """The reason decode_text refuses these octets (it must)."""
    with pytest.raises(Undecodable) as caught:
        decode_text(data_coding, data, udhi=udhi, gsm_packed=packed, tlvs=tlvs or {})
    assert caught.value.reason in REFUSALS and str(caught.value)
    return caught.value.reason


@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize(
    "data",
    [
        b"\x05\x00\x03",  # the probe's 'é@¥': UDHL 5 with 2 octets after it
        b"\x09ab",  # UDHL 9 overruns
        b"",  # UDHI set, nothing at all
        b"\x03\x00\x05\x01",  # IE 0x00 claims 5 octets, 1 left in the UDH
        b"\x01\x00hi",  # a stray octet where an IE's length should be
        b"\x04\x00\x02\x01\x01hi",  # concatenation IE of 2 octets (it has 3)
        b"\x05\x00\x03\x07\x02\x03hi",  # part 3 of 2
        b"\x05\x00\x03\x07\x00\x00hi",  # part 0 of 0
    ],
)
def test_a_broken_udh_is_refused_not_read_as_text(data: bytes, packed: bool) -> None:
    assert refused(0, data, udhi=True, packed=packed) in ("udh", "concat")


def test_impossible_sar_tlvs_are_refused() -> None:
    ref, total, seq = Tag.SAR_MSG_REF_NUM, Tag.SAR_TOTAL_SEGMENTS, Tag.SAR_SEGMENT_SEQNUM
    for tlvs in ({ref: b"\x00\x07", total: b"\x02"}, {ref: b"\x07", total: b"\x02", seq: b"\x01"},
                 {ref: b"\x00\x07", total: b"\x02", seq: b"\x03"}, {ref: b"\x00\x07", total: b"\x00\x02", seq: b"\x01"}):
        assert refused(0, b"hi", tlvs=tlvs) == "concat"


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
        (1, b"caf\xe9", "caf\xe9"),  # IA5 is 7 bits, but SMSCs send Latin-1 under it: read, not lost
        (3, "Grüße".encode("latin-1"), "Grüße"),
        (6, "Привет".encode("iso8859_5"), "Привет"),
        (8, "héllo 😀".encode("utf-16-be"), "héllo 😀"),
        (8, b"\x00A\x00", "A"),  # one NUL of C-string padding after the UCS-2
        (0x11, b"Flash", "Flash"),  # GSM DCS general group, class 1, GSM alphabet
        (0x18, "Ω".encode("utf-16-be"), "Ω"),  # general group, UCS-2 with class
        (0xF0, b"\x00", "@"),  # data coding / message class group, GSM
        (0x42, b"Hi", "Hi"),  # general group marked for automatic deletion, GSM
        (0xC8, b"Voicemail", "Voicemail"),  # message waiting, GSM
        (0xE8, "Ω".encode("utf-16-be"), "Ω"),  # message waiting, UCS-2
    ],
)
def test_decode_codings(data_coding: int, data: bytes, text: str) -> None:
    assert decode_text(data_coding, data, udhi=False, gsm_packed=False, tlvs={})[0] == text


@pytest.mark.parametrize(
    "data_coding",
    [2, 4, 9, 11, 12, 15, 0x14, 0x1C, 0x20, 0x3F, 0x80, 0xBF, 0xF4, 0xF7, 0xF8, 0xFF],
    ids=lambda value: f"0x{value:02X}",
)
def test_codings_that_are_not_text_are_refused_not_guessed(data_coding: int) -> None:
    # binary (2, 4, 0x14: 8-bit with a class, 0xF4-0xF7), pictograms (9), compressed
    # (0x20-0x3F), reserved (11, 12, 15, 0x1C's alphabet, 0x80-0xBF, 0xF8-0xFF)
    assert refused(data_coding, b"Hello") == "data_coding"


@pytest.mark.parametrize(
    ("data_coding", "data"),
    [
        (0, b"Hi\x80"),  # unpacked GSM septets are 7 bits
        (8, b"\x00A\x00B\x01"),  # UCS-2 of odd length (not a NUL's padding)
        (8, b"\xd8\x00\x00A"),  # a lone high surrogate
        (7, b"\xa1"),  # not defined in ISO-8859-8
        (0x18, b"\xdc\x00"),  # a lone low surrogate under a GSM DCS group's UCS-2
    ],
)
def test_octets_their_coding_does_not_define_are_refused(data_coding: int, data: bytes) -> None:
    assert refused(data_coding, data) == "octets"


_SAR = st.fixed_dictionaries(
    {},
    optional={
        Tag.SAR_MSG_REF_NUM: st.binary(min_size=1, max_size=3),
        Tag.SAR_TOTAL_SEGMENTS: st.binary(min_size=1, max_size=2),
        Tag.SAR_SEGMENT_SEQNUM: st.binary(min_size=1, max_size=2),
        Tag.MESSAGE_PAYLOAD: st.binary(max_size=300),
    },
)


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 255), st.binary(max_size=160), st.booleans(), st.booleans(), _SAR)
def test_decode_text_reads_or_refuses_never_anything_else(
    data_coding: int, data: bytes, udhi: bool, packed: bool, tlvs: dict[int, bytes]
) -> None:
    try:
        text, concat = decode_text(data_coding, data, udhi=udhi, gsm_packed=packed, tlvs=tlvs)
    except Undecodable as refusal:
        assert refusal.reason in REFUSALS
        return
    text.encode("utf-8")  # no lone surrogate: storable, JSON-able
    assert concat is None or 1 <= concat.seq <= concat.total


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=160))
def test_ia5_is_ascii_and_any_octet_over_0x7f_makes_it_latin1_never_a_refusal(data: bytes) -> None:
    # ASCII reads the same in both; a text with an octet over 0x7F is Latin-1 as a whole
    assert decode_text(1, data, udhi=False, gsm_packed=False, tlvs={}) == (data.decode("latin-1"), None)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 255), st.binary(max_size=40), st.integers(0, 255), st.integers(2, 255), st.data(), st.booleans())
def test_a_part_refused_for_its_coding_or_octets_says_which_long_text_it_belongs_to(
    data_coding: int, body: bytes, ref: int, total: int, data: st.DataObject, sar: bool
) -> None:
    seq = data.draw(st.integers(1, total))
    if sar:
        tlvs = {Tag.SAR_MSG_REF_NUM: ref.to_bytes(2, "big"), Tag.SAR_TOTAL_SEGMENTS: bytes((total,)),
                Tag.SAR_SEGMENT_SEQNUM: bytes((seq,))}
        short_message = body
    else:
        tlvs, short_message = {}, bytes((5, 0x00, 3, ref, total, seq)) + body
    try:
        decode_text(data_coding, short_message, udhi=not sar, gsm_packed=False, tlvs=tlvs)
    except Undecodable as refusal:
        assert refusal.reason in ("data_coding", "octets")  # its UDH or SAR held together
        assert refusal.concat == Concat(ref, total, seq)


def test_a_refusal_of_a_broken_udh_knows_no_long_text() -> None:
    with pytest.raises(Undecodable) as caught:
        decode_text(0, b"\x05\x00\x03\x07\x02\x03hi", udhi=True, gsm_packed=False, tlvs={})  # part 3 of 2
    assert caught.value.concat is None


_IES = st.lists(st.tuples(st.integers(0x01, 0x07) | st.integers(0x09, 0xFF), st.binary(max_size=6)), max_size=3)


@settings(max_examples=200, deadline=None)
@given(_IES, st.integers(0, 255), st.integers(1, 255), st.data(), st.text(st.sampled_from("abc €@{"), max_size=40))
def test_a_udh_that_holds_together_is_read_whatever_else_it_carries(
    ies: list[tuple[int, bytes]], ref: int, total: int, data: st.DataObject, text: str
) -> None:
    seq = data.draw(st.integers(1, total))
    body = b"".join(bytes((iei, len(value))) + value for iei, value in ies) + bytes((0x00, 3, ref, total, seq))
    udh = bytes((len(body),)) + body
    assert decode_text(0, udh + gsm7_encode(text), udhi=True, gsm_packed=False, tlvs={}) == (text, Concat(ref, total, seq))


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
