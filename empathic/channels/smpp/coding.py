"""Text ⇄ short_message: data codings, GSM 03.38 septets, and long messages in parts.

Outbound, `parts_for` turns a text into the submit_sm bodies that carry it. It cuts the
text with `empathic.core.sms.split`, so the parts are exactly the segments we counted
(and billed): an escape pair, a surrogate pair or a grapheme cluster is never cut. A
text that is one segment is one plain part; a longer one is sent in one of three ways
carriers support:

* ``"udh"``: each part starts with a User Data Header holding the concatenation IE
  (0x00: 8-bit reference, total, sequence; 6 octets with its length), esm_class 0x40;
* ``"sar"``: no UDH; the SAR TLVs (sar_msg_ref_num 16 bits, sar_total_segments,
  sar_segment_seqnum) tell the SMSC, which adds the UDH itself;
* ``"payload"``: one submit_sm, an empty short_message, the whole text in the
  message_payload TLV; the SMSC cuts it.

GSM text goes as data_coding 0 (the SMSC's default alphabet, which this module takes to
be GSM 03.38, one septet per octet unless `CodingOptions.gsm_packed`), other text as UCS-2
(UTF-16BE: an emoji is a surrogate pair, as handsets send it), or as Latin-1 when
`CodingOptions.latin1` allows and the text fits.

Inbound, `decode_text` reads a part back with the concatenation details from a UDH (IE
0x00 or 0x08) or SAR TLVs, or raises `Undecodable` (never anything else) for what is not
text as it claims: a binary or reserved data_coding, a UDH that does not fit, octets its
coding does not define. Nothing is guessed, so nothing but a person's words is stored,
with one exception: data_coding 1 (IA5, 7-bit ASCII) holding an octet over 0x7F is read
as Latin-1, which some SMSCs send under it; refusing it would lose the text for good, and
the Latin-1 reading of a real text is better than none.

Packed GSM has one ambiguity no encoder can remove (3GPP TS 23.038 §6.1.2.3.1): the
octets do not say how many septets they hold, so 7 spare bits at the end are padded with
CR, and a decoder drops a final CR that fills the last octet exactly. A part whose own
last character is CR on an octet boundary is therefore sent with a second CR, and is read
back with both ("identical to <CR><CR>", the standard says); when the part is full (140
octets) there is no room for it, and that final CR is lost instead.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from empathic.channels.smpp.pdu import Tag
from empathic.core import sms
from empathic.core.sms import GSM7_BASIC, GSM7_EXTENSION

__all__ = [
    "Concat",
    "CodingOptions",
    "DataCoding",
    "Part",
    "REFUSALS",
    "Undecodable",
    "decode_text",
    "gsm7_decode",
    "gsm7_encode",
    "pack_septets",
    "parts_for",
    "unpack_septets",
]


class DataCoding(enum.IntEnum):
    DEFAULT = 0  # the SMSC's default alphabet; GSM 03.38 here
    IA5 = 1  # IA5 (CCITT T.50) / ASCII
    LATIN1 = 3  # ISO-8859-1
    BINARY = 4  # 8-bit data
    UCS2 = 8  # ISO/IEC 10646 (UTF-16BE on the wire)


@dataclass(frozen=True, slots=True)
class CodingOptions:
    gsm_packed: bool = False  # GSM septets packed 8 in 7 octets (most SMSCs want them unpacked)
    latin1: bool = False  # non-GSM text that is Latin-1 goes as data_coding 3 instead of UCS-2


@dataclass(frozen=True, slots=True)
class Part:
    data_coding: int
    short_message: bytes
    esm_class: int  # 0x40 (UDHI) when short_message starts with a UDH, else 0
    tlvs: dict[int, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Concat:
    """Where a part belongs: message reference, number of parts, this part's number (from 1)."""

    ref: int
    total: int
    seq: int


# --------------------------------------------------------------------------------------
# GSM 03.38 septets
# --------------------------------------------------------------------------------------

_ESC = 0x1B
_MAX_USER_DATA = 140  # octets of user data in one SMS on the air, UDH included
# The basic table's code order is core.sms's (its set is what segment counting uses); the
# table there leaves out ESC at 0x1B, so codes from 0x1C on sit one place later.
_BASIC_CODES: dict[str, int] = {
    ch: index if index < _ESC else index + 1 for index, ch in enumerate(sms._GSM7_BASIC_TABLE)
}
# Extension table (3GPP TS 23.038 §6.2.1.1), each sent as ESC + code.
_EXTENSION_CODES: dict[str, int] = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
if frozenset(_BASIC_CODES) != GSM7_BASIC or frozenset(_EXTENSION_CODES) != GSM7_EXTENSION:
    raise ImportError("GSM 03.38 code tables disagree with empathic.core.sms")  # pragma: no cover
_GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION

_ENCODE_TABLE: dict[int, str] = {ord(ch): chr(code) for ch, code in _BASIC_CODES.items()}
_ENCODE_TABLE.update({ord(ch): f"\x1b{chr(code)}" for ch, code in _EXTENSION_CODES.items()})
# Decoding indexes by octet: 0x80..0xFF are not septets and read as U+FFFD; a lone ESC as nothing.
_DECODE_TABLE: list[str] = ["\ufffd"] * 256
for _ch, _code in _BASIC_CODES.items():
    _DECODE_TABLE[_code] = _ch
_DECODE_TABLE[_ESC] = ""
_EXTENSION_DECODE: dict[int, str] = {code: ch for ch, code in _EXTENSION_CODES.items()}


def gsm7_encode(text: str) -> bytes:
    """One septet per octet; extension characters as ESC (0x1B) + code. ValueError if not GSM."""
    if not _GSM7_ALL.issuperset(text):
        bad = next(ch for ch in text if ch not in _GSM7_ALL)
        raise ValueError(f"not GSM-7 encodable: {bad!r} (U+{ord(bad):04X})")
    return text.translate(_ENCODE_TABLE).encode("latin-1")


def gsm7_decode(data: bytes) -> str:
    """Septets (one per octet) to text. Never raises: ESC + an undefined code reads as the
    basic character (as the standard asks), octets over 0x7F as U+FFFD."""
    if _ESC not in data:
        return data.decode("latin-1").translate(_DECODE_TABLE)
    pieces = data.split(b"\x1b")
    out = [pieces[0].decode("latin-1").translate(_DECODE_TABLE)]
    for piece in pieces[1:]:
        if piece:
            out.append(_EXTENSION_DECODE.get(piece[0]) or _DECODE_TABLE[piece[0]])
            out.append(piece[1:].decode("latin-1").translate(_DECODE_TABLE))
    return "".join(out)


def pack_septets(septets: bytes, fill_bits: int = 0) -> bytes:
    """Pack 7-bit values 8 into 7 octets, least significant bit first (TS 23.038 §6.1.2.1),
    after `fill_bits` zero bits (0..6, to start on a septet boundary after a UDH)."""
    value = 0
    shift = fill_bits
    count = len(septets)
    # Eight septets make a 56-bit int: build those small, then place each chunk once.
    for start in range(0, count, 8):
        chunk = 0
        for offset, septet in enumerate(septets[start : start + 8]):
            chunk |= (septet & 0x7F) << (7 * offset)
        value |= chunk << shift
        shift += 56
    bits = fill_bits + 7 * count
    return value.to_bytes((bits + 7) // 8, "little")


def unpack_septets(data: bytes, count: int, fill_bits: int = 0) -> bytes:
    """The first `count` septets after `fill_bits` bits; ValueError if data is too short."""
    if fill_bits + 7 * count > 8 * len(data):
        raise ValueError(f"{len(data)} octets cannot hold {count} septets after {fill_bits} fill bits")
    value = int.from_bytes(data, "little") >> fill_bits
    out = bytearray(count)
    for index in range(count):
        out[index] = value & 0x7F
        value >>= 7
    return bytes(out)


def _fill_bits(udh_octets: int) -> int:
    """Bits between a UDH and the next septet boundary (1 for the 6-octet concatenation UDH)."""
    return (7 - (udh_octets * 8) % 7) % 7


def _pack_text(septets: bytes, udh_octets: int, *, in_payload: bool) -> bytes:
    fill = _fill_bits(udh_octets)
    bits = fill + 7 * len(septets)
    if bits % 8 == 1:
        septets += b"\r"  # 7 spare bits: CR, never zeros that would read as '@'
    elif bits % 8 == 0 and septets.endswith(b"\r"):
        # A real CR ending on an octet boundary would be taken for padding: add another,
        # if there is room (a payload has; a full SMS of 140 octets has not).
        if in_payload or udh_octets + bits // 8 < _MAX_USER_DATA:
            septets += b"\r"
    return pack_septets(septets, fill)


def _unpack_text(data: bytes, udh_octets: int) -> bytes:
    fill = _fill_bits(udh_octets)
    available = 8 * len(data) - fill
    if available <= 0:
        return b""
    count = available // 7
    septets = unpack_septets(data, count, fill)
    if available == 7 * count and septets.endswith(b"\r"):
        septets = septets[:-1]  # CR padding of 7 spare bits
    return septets


# --------------------------------------------------------------------------------------
# Outbound
# --------------------------------------------------------------------------------------

_LONG_MODES = ("udh", "sar", "payload")


def _coding_for(text: str, options: CodingOptions) -> int:
    if sms.encoding_for(text) is sms.Encoding.GSM7:
        return DataCoding.DEFAULT
    if options.latin1:
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            return DataCoding.UCS2
        return DataCoding.LATIN1
    return DataCoding.UCS2


def _encode(
    text: str, data_coding: int, options: CodingOptions, udh_octets: int, *, in_payload: bool = False
) -> bytes:
    if data_coding == DataCoding.DEFAULT:
        septets = gsm7_encode(text)
        return _pack_text(septets, udh_octets, in_payload=in_payload) if options.gsm_packed else septets
    if data_coding == DataCoding.LATIN1:
        return text.encode("latin-1")
    return text.encode("utf-16-be", "surrogatepass")


def parts_for(text: str, *, options: CodingOptions, long: str, ref: int) -> list[Part]:
    """The parts that carry `text`: one per `core.sms` segment for "udh" and "sar", one for
    "payload" (or for any one-segment text). `ref` is the concatenation reference (the low
    8 bits go in a UDH, 16 bits in SAR). ValueError for more than 255 segments."""
    if long not in _LONG_MODES:
        raise ValueError(f"long must be one of {_LONG_MODES}, not {long!r}")
    data_coding = _coding_for(text, options)
    segments = sms.split(text)
    if len(segments) == 1:
        return [Part(data_coding, _encode(text, data_coding, options, 0), 0, {})]
    if long == "payload":
        payload = _encode(text, data_coding, options, 0, in_payload=True)
        return [Part(data_coding, b"", 0, {Tag.MESSAGE_PAYLOAD: payload})]
    total = len(segments)
    if total > 255:
        raise ValueError(f"{total} segments: concatenation counts to 255")
    parts = []
    if long == "udh":
        for seq, segment in enumerate(segments, 1):
            udh = bytes((5, 0x00, 3, ref & 0xFF, total, seq))
            parts.append(Part(data_coding, udh + _encode(segment, data_coding, options, 6), 0x40, {}))
        return parts
    ref_octets = (ref & 0xFFFF).to_bytes(2, "big")
    for seq, segment in enumerate(segments, 1):
        tlvs: dict[int, bytes] = {
            Tag.SAR_MSG_REF_NUM: ref_octets,
            Tag.SAR_TOTAL_SEGMENTS: bytes((total,)),
            Tag.SAR_SEGMENT_SEQNUM: bytes((seq,)),
        }
        parts.append(Part(data_coding, _encode(segment, data_coding, options, 0), 0, tlvs))
    return parts


# --------------------------------------------------------------------------------------
# Inbound
# --------------------------------------------------------------------------------------

class Undecodable(ValueError):
    """Octets that cannot be read as the text they claim to be; `reason` is one of
    `REFUSALS` (a closed set, for metrics), the message says what exactly. `concat`: the
    long message the part belongs to, when its UDH or SAR TLVs could be read (the rest of
    it cannot be whole without this part, so it is refused with it)."""

    def __init__(self, reason: str, detail: str, concat: Concat | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.concat = concat


# Why a part was refused: its data_coding is not text we read (binary, reserved,
# compressed), its UDH does not hold together, its concatenation details are impossible,
# or its octets are not valid in its coding.
REFUSALS = ("data_coding", "udh", "concat", "octets")

# data_coding values with a fixed character set other than GSM / UCS-2 (SMPP 3.4 §5.2.19),
# read strictly: an octet the character set does not define refuses the part.
_CODECS = {1: "ia5", 3: "latin-1", 5: "shift_jis", 6: "iso8859_5", 7: "iso8859_8", 10: "iso2022_jp",
           13: "euc_jp", 14: "euc_kr"}  # fmt: skip
_NOT_TEXT = {2: "8-bit binary", 4: "8-bit binary", 9: "pictograms", 11: "reserved", 12: "reserved", 15: "reserved"}


def _alphabet(data_coding: int) -> str:
    """"gsm", "ucs2", "ia5" or a Python codec; `Undecodable` for a coding that is not text we read.

    0x00-0x0F are SMPP's own (§5.2.19): GSM (the SMSC default, 0), IA5 as ASCII (1; see
    `_read`), Latin-1 (3), the Japanese, Cyrillic, Hebrew and Korean sets, UCS-2 (8); binary (2, 4),
    pictograms (9) and reserved values are refused. From 0x10, SMSCs pass on the GSM data
    coding scheme (TS 23.038 §4), which SMPP 3.4 leaves to it: the general groups 0x10-0x7F
    (bit 5 compressed: refused; bits 3-2 GSM, 8-bit: refused, UCS-2, reserved: refused),
    message waiting 0xC0-0xDF (GSM) and 0xE0-0xEF (UCS-2), message class 0xF0-0xF3 (GSM;
    0xF4-0xF7 are 8-bit data, 0xF8-0xFF have the reserved bit 3 set: refused). 0x80-0xBF
    are reserved in both.
    """
    if data_coding == 0:
        return "gsm"
    if data_coding == 8:
        return "ucs2"
    codec = _CODECS.get(data_coding)
    if codec is not None:
        return codec
    kind = _NOT_TEXT.get(data_coding)
    if kind is None:
        group = data_coding >> 4
        if group <= 0x7:
            alphabet = (data_coding >> 2) & 3
            if data_coding & 0x20:
                kind = "compressed"
            elif alphabet in (0, 2):
                return "gsm" if alphabet == 0 else "ucs2"
            else:
                kind = "8-bit data" if alphabet == 1 else "reserved alphabet"
        elif group in (0xC, 0xD):  # message waiting indication, GSM
            return "gsm"
        elif group == 0xE:  # message waiting indication, UCS-2
            return "ucs2"
        elif group == 0xF and data_coding <= 0xF3:
            return "gsm"
        else:
            kind = "8-bit data" if 0xF4 <= data_coding <= 0xF7 else "reserved"
    raise Undecodable("data_coding", f"data_coding 0x{data_coding:02X} ({kind}) is not text we read")


def _concat(ref: int, total: int, seq: int) -> Concat:
    if not 1 <= seq <= total:
        raise Undecodable("concat", f"part {seq} of {total}")
    return Concat(ref, total, seq)


def _concat_from_udh(udh: bytes) -> Concat | None:
    """The concatenation IE of a UDH (its length octet left off); every IE must fit."""
    found = None
    pos = 0
    while pos < len(udh):
        if pos + 2 > len(udh):
            raise Undecodable("udh", f"a stray octet at the end of the UDH ({len(udh)} octets)")
        iei, length = udh[pos], udh[pos + 1]
        value = udh[pos + 2 : pos + 2 + length]
        if len(value) < length:
            raise Undecodable("udh", f"IE 0x{iei:02X} claims {length} octets, {len(value)} left in the UDH")
        if iei == 0x00 or iei == 0x08:
            if length != (3 if iei == 0x00 else 4):
                raise Undecodable("udh", f"concatenation IE 0x{iei:02X} of {length} octets")
            ref = value[0] if iei == 0x00 else (value[0] << 8) | value[1]
            found = _concat(ref, value[-2], value[-1])
        pos += 2 + length
    return found


def _concat_from_sar(tlvs: dict[int, bytes]) -> Concat | None:
    ref = tlvs.get(Tag.SAR_MSG_REF_NUM)
    total = tlvs.get(Tag.SAR_TOTAL_SEGMENTS)
    seq = tlvs.get(Tag.SAR_SEGMENT_SEQNUM)
    if ref is None and total is None and seq is None:
        return None
    if ref is None or total is None or seq is None or len(ref) != 2 or len(total) != 1 or len(seq) != 1:
        raise Undecodable("concat", "SAR TLVs incomplete or of the wrong size (2, 1 and 1 octets)")
    return _concat(int.from_bytes(ref, "big"), total[0], seq[0])


def decode_text(
    data_coding: int, short_message: bytes, *, udhi: bool, gsm_packed: bool, tlvs: dict[int, bytes]
) -> tuple[str, Concat | None]:
    """The text of one submit_sm/deliver_sm and where it belongs in a long message.

    message_payload, when present, is read instead of short_message. A UDH (when `udhi`)
    is skipped and its concatenation IE read, or else the SAR TLVs. What cannot be read as
    text raises `Undecodable` (and nothing else does): a coding that is not text, a UDH
    that does not fit (its length, or any IE's), impossible part numbers, octets the
    coding does not define (GSM over 0x7F, UCS-2 of odd length or a lone surrogate). A
    single NUL after UCS-2 of otherwise even length is C-string padding, and dropped. The
    concatenation details are read first, so a refusal of a part's coding or octets says
    which long message it belongs to (`Undecodable.concat`).
    """
    payload = tlvs.get(Tag.MESSAGE_PAYLOAD)
    data = payload if payload is not None else short_message
    concat = None
    udh_octets = 0
    if udhi:
        if not data or 1 + data[0] > len(data):
            size = data[0] if data else "no"
            raise Undecodable("udh", f"UDHI is set but a UDH of {size} octets does not fit {len(data)}")
        udh_octets = 1 + data[0]
        concat = _concat_from_udh(data[1:udh_octets])
    if concat is None:
        concat = _concat_from_sar(tlvs)
    try:
        return _read(data_coding, data[udh_octets:], udh_octets, gsm_packed), concat
    except Undecodable as refusal:
        refusal.concat = concat
        raise


def _read(data_coding: int, body: bytes, udh_octets: int, gsm_packed: bool) -> str:
    """The text of a part's octets after its UDH, or `Undecodable`.

    IA5 (data_coding 1) is read as ASCII, and a text with an octet over 0x7F as Latin-1
    instead: IA5 is 7 bits, yet SMSCs send Latin-1 under data_coding 1, and every octet
    has a Latin-1 reading (an ASCII text reads the same in both). Refusing such a text
    would lose a person's words for good; its Latin-1 reading is, at worst, a wrong accent.
    """
    alphabet = _alphabet(data_coding)
    if alphabet == "ia5":
        return body.decode("ascii" if body.isascii() else "latin-1")
    if alphabet == "gsm":
        if gsm_packed:
            return gsm7_decode(_unpack_text(body, udh_octets))
        if not body.isascii():  # an octet over 0x7F
            raise Undecodable("octets", "an octet over 0x7F in unpacked GSM septets")
        return gsm7_decode(body)
    if alphabet == "ucs2":
        if len(body) % 2 and body[-1] == 0:
            body = body[:-1]
        alphabet = "utf-16-be"  # strict: an odd length or a lone surrogate is refused
    try:
        return body.decode(alphabet)
    except UnicodeDecodeError as error:
        raise Undecodable("octets", f"not {alphabet}: {error.reason} at octet {error.start}") from None
