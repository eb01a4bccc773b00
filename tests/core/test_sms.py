"""Tests for empathic.core.sms: GSM 03.38 / UCS-2 encoding and SMS segmentation.

The reference tables and unit costs below are written independently of the module
(GSM table by Unicode character name, in 3GPP TS 23.038 code order) so that a typo
in the module's table or cost logic shows up as a failure rather than agreeing
with itself.
"""

from __future__ import annotations

import dataclasses
import unicodedata

import pytest
import regex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from empathic.core import sms
from empathic.core.sms import Encoding, SegmentCount

# --------------------------------------------------------------------------------------
# Independent reference data
# --------------------------------------------------------------------------------------

# 3GPP TS 23.038 default alphabet, codes 0x00..0x1F (None = ESC, not a user character).
_LOW_ROWS: list[str | None] = [
    "COMMERCIAL AT", "POUND SIGN", "DOLLAR SIGN", "YEN SIGN",
    "LATIN SMALL LETTER E WITH GRAVE", "LATIN SMALL LETTER E WITH ACUTE",
    "LATIN SMALL LETTER U WITH GRAVE", "LATIN SMALL LETTER I WITH GRAVE",
    "LATIN SMALL LETTER O WITH GRAVE", "LATIN CAPITAL LETTER C WITH CEDILLA",
    "LINE FEED", "LATIN CAPITAL LETTER O WITH STROKE",
    "LATIN SMALL LETTER O WITH STROKE", "CARRIAGE RETURN",
    "LATIN CAPITAL LETTER A WITH RING ABOVE", "LATIN SMALL LETTER A WITH RING ABOVE",
    "GREEK CAPITAL LETTER DELTA", "LOW LINE", "GREEK CAPITAL LETTER PHI",
    "GREEK CAPITAL LETTER GAMMA", "GREEK CAPITAL LETTER LAMDA",
    "GREEK CAPITAL LETTER OMEGA", "GREEK CAPITAL LETTER PI", "GREEK CAPITAL LETTER PSI",
    "GREEK CAPITAL LETTER SIGMA", "GREEK CAPITAL LETTER THETA", "GREEK CAPITAL LETTER XI",
    None,
    "LATIN CAPITAL LETTER AE", "LATIN SMALL LETTER AE", "LATIN SMALL LETTER SHARP S",
    "LATIN CAPITAL LETTER E WITH ACUTE",
]
# Codes 0x20..0x7F where GSM differs from ASCII.
_HIGH_OVERRIDES: dict[int, str] = {
    0x24: "CURRENCY SIGN",
    0x40: "INVERTED EXCLAMATION MARK",
    0x5B: "LATIN CAPITAL LETTER A WITH DIAERESIS",
    0x5C: "LATIN CAPITAL LETTER O WITH DIAERESIS",
    0x5D: "LATIN CAPITAL LETTER N WITH TILDE",
    0x5E: "LATIN CAPITAL LETTER U WITH DIAERESIS",
    0x5F: "SECTION SIGN",
    0x60: "INVERTED QUESTION MARK",
    0x7B: "LATIN SMALL LETTER A WITH DIAERESIS",
    0x7C: "LATIN SMALL LETTER O WITH DIAERESIS",
    0x7D: "LATIN SMALL LETTER N WITH TILDE",
    0x7E: "LATIN SMALL LETTER U WITH DIAERESIS",
    0x7F: "LATIN SMALL LETTER A WITH GRAVE",
}


def _reference_basic() -> dict[int, str]:
    table = {code: unicodedata.lookup(name) for code, name in enumerate(_LOW_ROWS) if name}
    for code in range(0x20, 0x80):
        name = _HIGH_OVERRIDES.get(code)
        table[code] = unicodedata.lookup(name) if name else chr(code)
    return table


REF_BASIC_BY_CODE = _reference_basic()
REF_BASIC = frozenset(REF_BASIC_BY_CODE.values())
REF_EXTENSION = frozenset(
    unicodedata.lookup(name)
    for name in (
        "FORM FEED", "CIRCUMFLEX ACCENT", "LEFT CURLY BRACKET", "RIGHT CURLY BRACKET",
        "REVERSE SOLIDUS", "LEFT SQUARE BRACKET", "TILDE", "RIGHT SQUARE BRACKET",
        "VERTICAL LINE", "EURO SIGN",
    )
)
REF_GSM = REF_BASIC | REF_EXTENSION

SINGLE = {Encoding.GSM7: 160, Encoding.UCS2: 70}
MULTI = {Encoding.GSM7: 153, Encoding.UCS2: 67}


def ref_cost(text: str, encoding: Encoding) -> int:
    """Units a text costs, computed char by char from the reference tables."""
    if encoding is Encoding.GSM7:
        return sum(2 if ch in REF_EXTENSION else 1 for ch in text)
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def ref_encoding(text: str) -> Encoding:
    return Encoding.GSM7 if all(ch in REF_GSM for ch in text) else Encoding.UCS2


def boundaries(segments: list[str]) -> list[int]:
    """Offsets into the joined text where one segment ends and the next begins."""
    out, pos = [], 0
    for seg in segments[:-1]:
        pos += len(seg)
        out.append(pos)
    return out


FLAG_FR = "\U0001F1EB\U0001F1F7"  # 🇫🇷: two regional indicators, 4 UTF-16 units
THUMB_MEDIUM = "\U0001F44D\U0001F3FD"  # 👍🏽: thumbs up + skin tone, 4 units
FAMILY = "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466"  # 👨‍👩‍👧‍👦, 11 units
E_ACUTE_COMBINING = "e\u0301"  # e + combining acute, 2 units, one cluster
GRINNING = "\U0001F600"  # 😀, 2 units
ZHE = "\u0436"  # ж: Cyrillic, not GSM, 1 UTF-16 unit

# --------------------------------------------------------------------------------------
# Alphabet tables
# --------------------------------------------------------------------------------------


def test_basic_table_matches_3gpp_23_038_exactly() -> None:
    assert len(REF_BASIC) == 127  # 128 codes minus ESC
    assert sms.GSM7_BASIC == REF_BASIC


def test_extension_table_matches_3gpp_23_038_exactly() -> None:
    assert sms.GSM7_EXTENSION == REF_EXTENSION
    assert not sms.GSM7_BASIC & sms.GSM7_EXTENSION
    assert "\x1b" not in sms.GSM7_BASIC | sms.GSM7_EXTENSION


@pytest.mark.parametrize(
    "char",
    list("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ÄÖÑÜ§¿äöñüà\n\r")
    + [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    + [chr(c) for c in range(ord("a"), ord("z") + 1)],
)
def test_basic_characters_cost_one_septet(char: str) -> None:
    assert char in sms.GSM7_BASIC
    assert sms.encoding_for(char) is Encoding.GSM7
    assert sms.septets(char) == 1


@pytest.mark.parametrize("char", list("^{}\\[~]|€\f"))
def test_extension_characters_cost_two_septets(char: str) -> None:
    assert sms.encoding_for(char) is Encoding.GSM7
    assert sms.septets(char) == 2
    assert sms.septets("a" + char + "a") == 4


@pytest.mark.parametrize(
    "char",
    [
        "`",  # backtick: ASCII but not GSM
        "\u00e7",  # ç: only capital Ç is in the table
        "\u2206",  # INCREMENT, a look-alike of GSM Δ (U+0394)
        "\u2126",  # OHM SIGN, a look-alike of GSM Ω (U+03A9)
        "\u00b5",  # µ
        "\t",
        "\x1b",  # ESC is framing, not a user character
        "\u00a0",  # no-break space
        "\u2019",  # curly apostrophe (a classic cause of surprise UCS-2 bills)
        ZHE,
        GRINNING,
    ],
)
def test_non_gsm_characters_force_ucs2(char: str) -> None:
    assert sms.encoding_for("hello " + char) is Encoding.UCS2
    with pytest.raises(ValueError):
        sms.septets("hello " + char)


def test_gsm_fast_path_assumption_only_crlf_joins_gsm_characters() -> None:
    # split() skips grapheme segmentation for GSM text without CR LF; that is only
    # sound if no other pair of GSM characters forms a single grapheme cluster.
    chars = sorted(REF_GSM)
    joined = [a + b for a in chars for b in chars if len(regex.findall(r"\X", a + b)) != 2]
    assert joined == ["\r\n"]


# --------------------------------------------------------------------------------------
# Known values
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding", "segments", "units", "unit_limit"),
    [
        ("a" * 160, Encoding.GSM7, 1, 160, 160),
        ("a" * 161, Encoding.GSM7, 2, 161, 153),
        ("a" * 306, Encoding.GSM7, 2, 306, 153),
        ("a" * 307, Encoding.GSM7, 3, 307, 153),
        ("€" * 80, Encoding.GSM7, 1, 160, 160),
        ("€" * 81, Encoding.GSM7, 2, 162, 153),
        ("a" * 159 + "€", Encoding.GSM7, 2, 161, 153),
        (ZHE * 70, Encoding.UCS2, 1, 70, 70),
        (ZHE * 71, Encoding.UCS2, 2, 71, 67),
        (ZHE * 134, Encoding.UCS2, 2, 134, 67),
        (ZHE * 135, Encoding.UCS2, 3, 135, 67),
        ("a" * 69 + GRINNING, Encoding.UCS2, 2, 71, 67),
        (GRINNING * 35, Encoding.UCS2, 1, 70, 70),
        (GRINNING * 36, Encoding.UCS2, 2, 72, 67),
        ("é" * 160, Encoding.GSM7, 1, 160, 160),  # é is GSM basic, not UCS-2
        ("a" * 100 + "`", Encoding.UCS2, 2, 101, 67),  # one backtick forces UCS-2
        ("a" * 101, Encoding.GSM7, 1, 101, 160),
        ("", Encoding.GSM7, 1, 0, 160),  # empty: one SMS, GSM-7, no units
        # Whole characters cost a segment more than units/capacity arithmetic says:
        ("a" * 152 + "€" + "a" * 152, Encoding.GSM7, 3, 306, 153),  # 2 * 153 == 306
        (ZHE * 66 + GRINNING + ZHE * 66, Encoding.UCS2, 3, 134, 67),  # 2 * 67 == 134
        (ZHE * 65 + THUMB_MEDIUM + ZHE * 65, Encoding.UCS2, 3, 134, 67),
    ],
)
def test_known_counts(
    text: str, encoding: Encoding, segments: int, units: int, unit_limit: int
) -> None:
    assert sms.count(text) == SegmentCount(encoding, segments, units, unit_limit)
    assert len(sms.split(text)) == segments


def test_161_a_splits_153_then_8() -> None:
    assert [len(s) for s in sms.split("a" * 161)] == [153, 8]


def test_empty_text_is_one_empty_segment() -> None:
    assert sms.split("") == [""]
    assert sms.split("", encoding=Encoding.UCS2) == [""]


def test_unit_counters() -> None:
    assert sms.septets("") == 0
    assert sms.septets("Hi {name}!") == 12  # { and } cost two each
    assert sms.utf16_units("") == 0
    assert sms.utf16_units("abc") == 3
    assert sms.utf16_units(ZHE + GRINNING) == 3
    assert sms.utf16_units(FAMILY) == 11
    assert sms.utf16_units("\ud83d") == 1  # a lone surrogate is still one unit


def test_segment_count_is_frozen() -> None:
    result = sms.count("hi")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.segments = 2  # type: ignore[misc]


# --------------------------------------------------------------------------------------
# Boundaries: escape pairs, surrogate pairs and grapheme clusters stay whole
# --------------------------------------------------------------------------------------


def test_escape_pair_moves_whole_to_next_segment() -> None:
    text = "a" * 152 + "€" + "a" * 10  # € would occupy septets 153 and 154
    parts = sms.split(text)
    assert parts == ["a" * 152, "€" + "a" * 10]


def test_crlf_stays_together_in_gsm() -> None:
    text = "a" * 152 + "\r\n" + "a" * 10  # CR LF is one grapheme cluster
    assert sms.split(text) == ["a" * 152, "\r\n" + "a" * 10]
    assert sms.count(text).encoding is Encoding.GSM7


def test_surrogate_pair_moves_whole_to_next_segment() -> None:
    text = ZHE * 66 + GRINNING + ZHE * 10  # 😀 would occupy units 67 and 68
    assert sms.split(text) == [ZHE * 66, GRINNING + ZHE * 10]


@pytest.mark.parametrize(
    ("prefix_units", "cluster"),
    [
        (65, FLAG_FR),  # 1st regional indicator fills the segment exactly
        (64, FLAG_FR),  # 1st indicator fits with a unit spare, 2nd does not
        (65, THUMB_MEDIUM),  # 👍 fills the segment exactly, its skin tone would not fit
        (62, FAMILY),  # 👨 ZWJ 👩 fills the segment exactly
        (60, FAMILY),  # 👨 ZWJ 👩 ZWJ fits, 👧 would not
        (66, E_ACUTE_COMBINING),  # boundary between e and the combining accent
    ],
)
def test_grapheme_cluster_on_boundary_moves_whole(prefix_units: int, cluster: str) -> None:
    text = ZHE * prefix_units + cluster + ZHE * 10
    # Sanity: a code-point-level packer would really cut this cluster in two.
    head = next(i for i in range(1, len(cluster) + 1)
                if prefix_units + sms.utf16_units(cluster[:i]) > 67)
    assert head > 1, "the cut would fall inside the cluster, not before it"
    parts = sms.split(text)
    assert parts[0] == ZHE * prefix_units
    assert parts[1].startswith(cluster)
    assert "".join(parts) == text
    assert sms.count(text).segments == len(parts) == 2


def test_flag_then_flag_splits_between_flags_not_inside() -> None:
    de = "\U0001F1E9\U0001F1EA"
    text = ZHE * 63 + FLAG_FR + de + ZHE  # FR ends at unit 67 exactly; DE starts seg 2
    assert sms.split(text) == [ZHE * 63 + FLAG_FR, de + ZHE]


def test_oversized_cluster_falls_back_to_code_points() -> None:
    zalgo = "e" + "\u0301" * 100  # one cluster of 101 units > 67
    text = ZHE * 10 + zalgo
    parts = sms.split(text)
    assert "".join(parts) == text
    assert [sms.utf16_units(p) for p in parts] == [67, 44]  # greedy fill, no waste


def test_oversized_emoji_cluster_never_splits_a_surrogate_pair() -> None:
    chain = "\u200d".join([GRINNING] * 30)  # 30*2 + 29 = 89 units, one cluster
    assert len(regex.findall(r"\X", chain)) == 1
    parts = sms.split(chain)
    assert "".join(parts) == chain
    assert all(sms.utf16_units(p) <= 67 for p in parts)
    # Each part is still valid UTF-16 on its own (no half surrogate pair).
    for p in parts:
        p.encode("utf-16-le")  # raises on a lone surrogate
    assert len(parts) == 2


def test_escape_pairs_leave_a_septet_unused_rather_than_split() -> None:
    # 81 euros = 162 septets: 76 fill 152 of 153 septets, the 77th cannot be halved.
    assert [len(p) for p in sms.split("€" * 81)] == [76, 5]
    # With one 1-septet char in front the first segment is filled exactly.
    assert [len(p) for p in sms.split("a" + "€" * 80)] == [77, 4]


# --------------------------------------------------------------------------------------
# Forced encodings
# --------------------------------------------------------------------------------------


def test_forcing_ucs2_on_gsm_text() -> None:
    text = "a" * 71
    assert sms.count(text).segments == 1
    parts = sms.split(text, encoding=Encoding.UCS2)
    assert [len(p) for p in parts] == [67, 4]
    assert sms.count(text, encoding=Encoding.UCS2) == SegmentCount(Encoding.UCS2, 2, 71, 67)


def test_forcing_ucs2_accepts_plain_string_value() -> None:
    assert len(sms.split("a" * 71, encoding="ucs2")) == 2  # type: ignore[arg-type]


def test_forcing_gsm7_on_non_gsm_text_raises() -> None:
    with pytest.raises(ValueError):
        sms.split("hello " + ZHE, encoding=Encoding.GSM7)
    with pytest.raises(ValueError):
        sms.count("`", encoding=Encoding.GSM7)


def test_forcing_gsm7_on_gsm_text_is_the_default() -> None:
    text = "x{}" * 60
    assert sms.split(text, encoding=Encoding.GSM7) == sms.split(text)


def test_unknown_encoding_is_rejected() -> None:
    with pytest.raises(ValueError):
        sms.split("hi", encoding="latin1")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------

_gsm_char = st.sampled_from(sorted(REF_GSM))
_ext_char = st.sampled_from(sorted(REF_EXTENSION))
_cyrillic = st.characters(min_codepoint=0x0410, max_codepoint=0x044F)
_emoji = st.sampled_from(["\U0001F600", "\U0001F44D", "\U0001F468", "\U0001F469", "\u2764"])
_modifier = st.characters(min_codepoint=0x1F3FB, max_codepoint=0x1F3FF)
_regional = st.characters(min_codepoint=0x1F1E6, max_codepoint=0x1F1FF)
_combining = st.characters(min_codepoint=0x0300, max_codepoint=0x036F)
_joiners = st.sampled_from(["\u200d", "\ufe0f", "\u20e3"])
_whole_clusters = st.sampled_from(
    [FLAG_FR, THUMB_MEDIUM, FAMILY, E_ACUTE_COMBINING, "\r\n", "1\ufe0f\u20e3"]
)
_oversized = st.integers(min_value=60, max_value=170).map(lambda n: "a" + "\u0301" * n)

_gsm_atom = st.one_of(_gsm_char, _ext_char, st.just("\r\n"))
_mixed_atom = st.one_of(
    _gsm_char, _ext_char, _cyrillic, _emoji, _modifier, _regional,
    _combining, _joiners, _whole_clusters,
)


def _padded(atoms: st.SearchStrategy[str], fillers: list[str]) -> st.SearchStrategy[str]:
    """Runs of filler of drawn length, each followed by a few random atoms.

    Plain lists of atoms stay short (hypothesis favours small lists), so texts would
    rarely need more than one segment; the filler runs push them past one or more
    segment boundaries and let hypothesis slide the interesting atoms across them.
    """
    chunk = st.tuples(
        st.integers(min_value=0, max_value=170),
        st.sampled_from(fillers),
        st.lists(atoms, max_size=12).map("".join),
    ).map(lambda t: t[1] * t[0] + t[2])
    return st.lists(chunk, min_size=1, max_size=4).map("".join)


# Mostly-GSM text, extension chars and CR LF frequent.
gsm_text = _padded(_gsm_atom, ["a", "€", "é", "{}"])
# Mixed alphabets: mostly UCS-2, with odd clusters everywhere.
mixed_text = _padded(_mixed_atom, ["a", "€", ZHE, GRINNING, "e\u0301"])
# Occasionally include a cluster bigger than a whole segment.
with_oversized = st.tuples(mixed_text, _oversized, mixed_text).map("".join)
any_text = st.one_of(gsm_text, mixed_text, with_oversized)

_fast = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _capacity(encoding: Encoding, segments: int) -> int:
    return SINGLE[encoding] if segments == 1 else MULTI[encoding]


def _cluster_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in regex.finditer(r"\X", text)]


@_fast
@given(any_text)
def test_join_of_split_is_identity(text: str) -> None:
    assert "".join(sms.split(text)) == text
    assert "".join(sms.split(text, encoding=Encoding.UCS2)) == text


@_fast
@given(any_text, st.booleans())
def test_every_segment_fits_its_capacity(text: str, force_ucs2: bool) -> None:
    forced = Encoding.UCS2 if force_ucs2 else None
    encoding = Encoding.UCS2 if force_ucs2 else ref_encoding(text)
    parts = sms.split(text, encoding=forced)
    cap = _capacity(encoding, len(parts))
    assert all(ref_cost(p, encoding) <= cap for p in parts)
    if len(parts) > 1:
        assert all(parts), "no empty segment in a multipart message"


@_fast
@given(any_text, st.booleans())
def test_count_agrees_with_split(text: str, force_ucs2: bool) -> None:
    forced = Encoding.UCS2 if force_ucs2 else None
    encoding = Encoding.UCS2 if force_ucs2 else ref_encoding(text)
    result = sms.count(text, encoding=forced)
    parts = sms.split(text, encoding=forced)
    assert result.segments == len(parts)
    assert result.encoding is encoding
    assert result.units == ref_cost(text, encoding)
    assert result.unit_limit == _capacity(encoding, len(parts))


@_fast
@given(any_text)
def test_encoding_is_gsm7_iff_every_char_is_in_the_tables(text: str) -> None:
    expected = all(ch in REF_GSM for ch in text)
    assert (sms.encoding_for(text) is Encoding.GSM7) == expected
    assert (sms.count(text).encoding is Encoding.GSM7) == expected
    if expected:
        assert sms.septets(text) == ref_cost(text, Encoding.GSM7)
    else:
        with pytest.raises(ValueError):
            sms.septets(text)
    assert sms.utf16_units(text) == ref_cost(text, Encoding.UCS2)


@_fast
@given(any_text, st.booleans())
def test_boundaries_never_fall_inside_a_cluster_that_fits(text: str, force_ucs2: bool) -> None:
    encoding = Encoding.UCS2 if force_ucs2 else ref_encoding(text)
    parts = sms.split(text, encoding=encoding)
    cap = MULTI[encoding]
    spans = _cluster_spans(text)
    for b in boundaries(parts):
        for start, end in spans:
            if start < b < end:
                assert ref_cost(text[start:end], encoding) > cap, (b, text[start:end])


@_fast
@given(any_text, st.booleans())
def test_segments_are_not_more_than_necessary(text: str, force_ucs2: bool) -> None:
    encoding = Encoding.UCS2 if force_ucs2 else ref_encoding(text)
    parts = sms.split(text, encoding=encoding)
    units = ref_cost(text, encoding)
    cap = _capacity(encoding, len(parts))
    # Trivial bound.
    assert len(parts) * cap >= units
    # Greedy maximality: every non-final segment was closed only because the next
    # indivisible piece (a cluster that fits a segment, else one code point) did not fit.
    starts = {start: end for start, end in _cluster_spans(text)}
    for part, b in zip(parts, boundaries(parts)):
        end = starts.get(b)
        if end is not None and ref_cost(text[b:end], encoding) <= cap:
            piece = text[b:end]
        else:
            piece = text[b]
        assert ref_cost(part, encoding) + ref_cost(piece, encoding) > cap, (part, piece)


@_fast
@given(any_text)
def test_single_segment_iff_units_fit_single_capacity(text: str) -> None:
    encoding = ref_encoding(text)
    units = ref_cost(text, encoding)
    assert (len(sms.split(text)) == 1) == (units <= SINGLE[encoding])
    assert (sms.count(text).segments == 1) == (units <= SINGLE[encoding])
