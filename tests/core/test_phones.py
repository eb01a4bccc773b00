"""Tests for empathic.core.phones: E.164 normalisation and what a number tells us."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from empathic.core.phones import InvalidPhoneNumber, normalize, region_of, timezone_for


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        # US national formats
        ("(415) 555-0100", "US", "+14155550100"),
        ("415-555-0100", "US", "+14155550100"),
        ("415.555.0100", "US", "+14155550100"),
        ("415 555 0100", "US", "+14155550100"),
        ("4155550100", "US", "+14155550100"),
        ("1 (415) 555-0100", "US", "+14155550100"),
        ("  415-555-0100  ", "US", "+14155550100"),
        ("(212) 555-0123", "us", "+12125550123"),  # region is case-insensitive
        # international formats, with or without a region
        ("+1 415 555 0100", None, "+14155550100"),
        ("+1-415-555-0100", None, "+14155550100"),
        ("+1 (415) 555-0100", "GB", "+14155550100"),
        ("+14155550100", None, "+14155550100"),
        ("+33 6 12 34 56 78", None, "+33612345678"),
        ("+44 20 7946 0958", None, "+442079460958"),
        # national formats elsewhere
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("06.12.34.56.78", "FR", "+33612345678"),
        ("020 7946 0958", "GB", "+442079460958"),
        # dialled with the region's exit prefix
        ("0033 6 12 34 56 78", "FR", "+33612345678"),
        ("00 44 20 7946 0958", "DE", "+442079460958"),
        ("011 33 6 12 34 56 78", "US", "+33612345678"),
    ],
)
def test_normalize_returns_e164(raw: str, region: str | None, expected: str) -> None:
    assert normalize(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "region", "reason_contains"),
    [
        ("4155550100", None, "give a region"),
        ("(415) 555-0100", None, "+ and the country code"),
        ("0033 6 12 34 56 78", None, "give a region"),
        ("", None, "empty"),
        ("   ", "US", "empty"),
        ("hello", "US", "does not look like a phone number"),
        ("+999 1234 5678", None, "country calling code"),
        ("+1234", None, "not a valid number for its country"),
        ("+1 123 456 7890", None, "not a valid number for its country"),
        ("+1 415 555 0100 0000", None, "not a valid number for its country"),
        ("12", "US", "not a valid number for its country"),
        ("415 555 0100 ext. 12", "US", "extension"),
        ("+14155550100", "XX", "region 'XX'"),
        ("1" * 65, "US", "at most 64"),
    ],
)
def test_normalize_rejects_with_actionable_reason(
    raw: str, region: str | None, reason_contains: str
) -> None:
    with pytest.raises(InvalidPhoneNumber) as caught:
        normalize(raw, region)
    error = caught.value
    assert error.raw == raw
    assert reason_contains in error.reason
    assert reason_contains in str(error)


def test_invalid_phone_number_is_a_value_error_that_quotes_the_input() -> None:
    error = InvalidPhoneNumber("555", "too short")
    assert isinstance(error, ValueError)
    assert "'555'" in str(error) and "too short" in str(error)


def test_invalid_phone_number_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(InvalidPhoneNumber("555", "too short")))
    assert (error.raw, error.reason) == ("555", "too short")


def test_overlong_input_is_truncated_in_the_message() -> None:
    raw = "9" * 10_000
    with pytest.raises(InvalidPhoneNumber) as caught:
        normalize(raw, "US")
    assert caught.value.raw == raw
    assert len(str(caught.value)) < 200


@pytest.mark.parametrize(
    ("e164", "zone"),
    [
        ("+14155550100", "America/Los_Angeles"),
        ("+12125550123", "America/New_York"),
        ("+33612345678", "Europe/Paris"),
        ("+442079460958", "Europe/London"),
        ("+80012345678", None),  # international freephone: nowhere in particular
    ],
)
def test_timezone_for(e164: str, zone: str | None) -> None:
    assert timezone_for(e164) == zone


@pytest.mark.parametrize(
    ("e164", "region"),
    [
        ("+14155550100", "US"),
        ("+16135550123", "CA"),
        ("+33612345678", "FR"),
        ("+442079460958", "GB"),
        ("+80012345678", None),
    ],
)
def test_region_of(e164: str, region: str | None) -> None:
    assert region_of(e164) == region


@pytest.mark.parametrize("reader", [timezone_for, region_of])
@pytest.mark.parametrize("not_e164", ["4155550100", "", "+", "+abc"])
def test_readers_reject_non_e164(reader, not_e164: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidPhoneNumber):
        reader(not_e164)


# NANP area codes that libphonenumber treats as fully valid for exchanges 200-999.
_AREA_CODES = st.sampled_from(["212", "312", "415", "617", "206", "202", "305", "512"])
_EXCHANGES = st.integers(min_value=200, max_value=999).map(str)
_LINES = st.integers(min_value=0, max_value=9999).map(lambda n: f"{n:04d}")
_US_NUMBERS = st.tuples(_AREA_CODES, _EXCHANGES, _LINES)


@given(_US_NUMBERS)
def test_normalize_is_idempotent(parts: tuple[str, str, str]) -> None:
    area, exchange, line = parts
    once = normalize(f"({area}) {exchange}-{line}", "US")
    assert once == f"+1{area}{exchange}{line}"
    assert normalize(once) == once
    assert normalize(once, "US") == once
    assert normalize(once, "FR") == once  # E.164 input ignores the region


@given(_US_NUMBERS, st.data())
def test_formatting_variants_normalize_to_the_same_number(
    parts: tuple[str, str, str], data: st.DataObject
) -> None:
    area, exchange, line = parts
    variants = [
        f"({area}) {exchange}-{line}",
        f"{area}-{exchange}-{line}",
        f"{area}.{exchange}.{line}",
        f"{area} {exchange} {line}",
        f"{area}{exchange}{line}",
        f"1 {area} {exchange} {line}",
        f"1-{area}-{exchange}-{line}",
        f"+1 {area} {exchange} {line}",
        f"+1 ({area}) {exchange}-{line}",
        f"011 1 {area} {exchange} {line}",
    ]
    padding = data.draw(st.sampled_from(["", " ", "  ", "\t"]))
    results = {normalize(padding + variant + padding, "US") for variant in variants}
    assert results == {f"+1{area}{exchange}{line}"}
