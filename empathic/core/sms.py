"""SMS character encoding and segmentation (GSM 03.38 / 3GPP TS 23.038 and UCS-2).

This module owns the answer to two questions asked about every outbound message:
which encoding a carrier will use for a text (GSM-7 or UCS-2), and how the text is
cut into concatenated SMS segments (which is what carriers bill for). It is pure:
no I/O, no configuration, no clock.

Counting rules (as carriers and Twilio's open-source segment calculator apply them):

* GSM-7: a single message holds 160 septets; a concatenated message holds 153
  septets per segment because the 6-octet User Data Header costs 7 septets.
  Extension-table characters (``^ { } \\ [ ~ ] | €`` and form feed) cost two septets
  (ESC + char), and an escape pair is never split across segments.
* UCS-2: a single message holds 70 UTF-16 code units; a concatenated one 67 per
  segment. Characters outside the BMP (most emoji) cost two units (a surrogate
  pair), and a pair is never split.
* Segment boundaries never fall inside an extended grapheme cluster (skin-tone
  emoji, ZWJ sequences, flags, base + combining mark, CR LF), so a handset never
  renders half a glyph. Only a cluster that alone exceeds a segment's capacity is
  split, between code points.
* Empty text is one segment, GSM-7, 0 units: carriers still send (and bill) one
  SMS for an empty body, and every character of "" is trivially GSM-encodable.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import regex

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "Encoding",
    "SegmentCount",
    "count",
    "encoding_for",
    "septets",
    "split",
    "utf16_units",
]


class Encoding(enum.StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"


@dataclass(frozen=True, slots=True)
class SegmentCount:
    encoding: Encoding
    # Number of SMS parts; 1 for empty text (carriers send one empty SMS).
    segments: int
    # Septets for GSM7 (extension chars count 2), UTF-16 code units for UCS2.
    units: int
    # Per-segment capacity used: 160 or 153 for GSM7, 70 or 67 for UCS2.
    unit_limit: int


# GSM 03.38 default alphabet in code order 0x00..0x7F, one row of 16 per line.
# 0x1B is ESC (the escape to the extension table), not a user character, so it is
# left out: the set has 127 members.
_GSM7_BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"  # 0x00
    "Δ_ΦΓΛΩΠΨΣΘΞ" "ÆæßÉ"  # 0x10 (ESC at 0x1B omitted)
    " !\"#¤%&'()*+,-./"  # 0x20  (0x24 is ¤, not $)
    "0123456789:;<=>?"  # 0x30
    "¡ABCDEFGHIJKLMNO"  # 0x40  (0x40 is ¡, not @)
    "PQRSTUVWXYZÄÖÑÜ§"  # 0x50
    "¿abcdefghijklmno"  # 0x60  (0x60 is ¿: backtick is not GSM)
    "pqrstuvwxyzäöñüà"  # 0x70
)
GSM7_BASIC: frozenset[str] = frozenset(_GSM7_BASIC_TABLE)

# Extension table (reached via ESC): each costs two septets on the air.
GSM7_EXTENSION: frozenset[str] = frozenset("\f^{}\\[~]|€")

_GSM7_ALL: frozenset[str] = GSM7_BASIC | GSM7_EXTENSION
# Counting with str.count (C speed) beats a Python-level loop over long texts.
_GSM7_EXTENSION_CHARS: tuple[str, ...] = tuple(sorted(GSM7_EXTENSION))

_GSM7_SINGLE, _GSM7_MULTI = 160, 153
_UCS2_SINGLE, _UCS2_MULTI = 70, 67

# Extended grapheme clusters (UAX #29), as the `regex` module implements them.
_GRAPHEME = regex.compile(r"\X")


def encoding_for(text: str) -> Encoding:
    """GSM7 iff every character is in the basic or extension table, else UCS2."""
    return Encoding.GSM7 if _GSM7_ALL.issuperset(text) else Encoding.UCS2


def septets(text: str) -> int:
    """GSM-7 length in septets; extension characters cost two.

    Raises ValueError if the text is not GSM-encodable.
    """
    if not _GSM7_ALL.issuperset(text):
        bad = next(ch for ch in text if ch not in _GSM7_ALL)
        raise ValueError(f"not GSM-7 encodable: {bad!r} (U+{ord(bad):04X})")
    if GSM7_EXTENSION.isdisjoint(text):  # most texts: one pass in C
        return len(text)
    return len(text) + sum(text.count(ch) for ch in _GSM7_EXTENSION_CHARS)


def utf16_units(text: str) -> int:
    """Length in UTF-16 code units; characters outside the BMP cost two."""
    if text.isascii():
        return len(text)
    # surrogatepass: a lone surrogate in a Python str still counts as one unit.
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _gsm7_char_cost(ch: str) -> int:
    return 2 if ch in GSM7_EXTENSION else 1


def _ucs2_char_cost(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def _resolve(text: str, encoding: Encoding | None) -> tuple[Encoding, int]:
    """Pick the encoding (validating a forced GSM7) and measure the text in its units."""
    # Encoding(...) also accepts the plain strings "gsm7"/"ucs2" and rejects others.
    encoding = encoding_for(text) if encoding is None else Encoding(encoding)
    if encoding is Encoding.GSM7:
        return encoding, septets(text)  # raises for forced GSM7 on non-GSM text
    return encoding, utf16_units(text)


def _clusters(text: str, encoding: Encoding) -> Iterable[str]:
    # Fast path: in GSM text the only multi-character grapheme cluster is CR LF
    # (no GSM character is a combining mark or joiner), so if there is none the
    # characters themselves are the clusters and the regex pass can be skipped.
    if encoding is Encoding.GSM7 and "\r\n" not in text:
        return text
    return _GRAPHEME.findall(text)


def _pack(
    clusters: Iterable[str], char_cost: Callable[[str], int], capacity: int
) -> list[str]:
    """Greedily fill segments of `capacity` units with whole grapheme clusters.

    Characters are the atoms, so escape pairs and surrogate pairs (each one Python
    character) can never be split. A cluster larger than `capacity` cannot fit any
    segment whole, so only then is it spread across segments character by character.
    """
    segments: list[str] = []
    current: list[str] = []
    used = 0
    for cluster in clusters:
        cost = char_cost(cluster) if len(cluster) == 1 else sum(map(char_cost, cluster))
        if used + cost <= capacity:
            current.append(cluster)
            used += cost
        elif cost <= capacity:
            segments.append("".join(current))
            current, used = [cluster], cost
        else:
            for ch in cluster:
                ch_cost = char_cost(ch)
                if used + ch_cost > capacity:
                    segments.append("".join(current))
                    current, used = [], 0
                current.append(ch)
                used += ch_cost
    segments.append("".join(current))
    return segments


def _split_resolved(text: str, encoding: Encoding, units: int) -> list[str]:
    if encoding is Encoding.GSM7:
        single, multi, char_cost = _GSM7_SINGLE, _GSM7_MULTI, _gsm7_char_cost
    else:
        single, multi, char_cost = _UCS2_SINGLE, _UCS2_MULTI, _ucs2_char_cost
    if units <= single:
        return [text]  # includes "" -> [""]: one (empty) SMS
    if encoding is Encoding.GSM7 and units == len(text) and "\r\n" not in text:
        # Common case (long plain text): every char is one septet and its own
        # cluster, so fixed-width slicing is exactly what greedy packing would do.
        return [text[i : i + multi] for i in range(0, len(text), multi)]
    return _pack(_clusters(text, encoding), char_cost, multi)


def split(text: str, *, encoding: Encoding | None = None) -> list[str]:
    """Cut text into the SMS segments a carrier would send; "".join(result) == text.

    `encoding=None` auto-detects. Forcing UCS2 is always allowed (e.g. for a channel
    that cannot send GSM-7); forcing GSM7 on non-GSM text raises ValueError.
    """
    resolved, units = _resolve(text, encoding)
    return _split_resolved(text, resolved, units)


def count(text: str, *, encoding: Encoding | None = None) -> SegmentCount:
    """Segment count and size; always consistent with split(): segments == len(split(text))."""
    resolved, units = _resolve(text, encoding)
    if resolved is Encoding.GSM7:
        single, multi = _GSM7_SINGLE, _GSM7_MULTI
    else:
        single, multi = _UCS2_SINGLE, _UCS2_MULTI
    if units <= single:
        return SegmentCount(resolved, 1, units, single)
    # Whole-cluster packing can need more than ceil(units / multi) segments, so
    # the count comes from the real split rather than from arithmetic.
    segments = len(_split_resolved(text, resolved, units))
    return SegmentCount(resolved, segments, units, multi)
