"""Phone numbers: turning what people type into canonical E.164, and what a number tells us.

Every number the platform stores, keys contacts by, or sends to is the E.164 string that
:func:`normalize` returns; :func:`timezone_for` and :func:`region_of` read facts back out of
such a string. Parsing and validity come from ``phonenumbers`` (libphonenumber metadata).
"""

from __future__ import annotations

import functools
import json
from importlib import resources

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, ValidationResult
from phonenumbers import timezone as _timezones

from empathic.core.errors import InputError

__all__ = [
    "MAX_RAW_LENGTH", "InvalidPhoneNumber", "normalize", "region_of", "subdivision_of", "timezone_for", "timezones_for",
]

# No real number (with formatting, prefix and all) comes close; rejecting early keeps
# pasted paragraphs and abuse out of the parser and out of error messages.
MAX_RAW_LENGTH = 64

_PARSE_REASONS: dict[int, str] = {
    NumberParseException.NOT_A_NUMBER: "it does not look like a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: (
        "it has too few digits after the international dialling prefix"
    ),
    NumberParseException.TOO_SHORT_NSN: "it has too few digits",
    NumberParseException.TOO_LONG: "it has too many digits",
}

_LENGTH_HINTS: dict[int, str] = {  # ValidationResult's members are plain ints
    ValidationResult.TOO_SHORT: "too few digits",
    ValidationResult.TOO_LONG: "too many digits",
    ValidationResult.INVALID_LENGTH: "wrong number of digits",
}

# phonenumbers' answers for "no single country": non-geographic numbers (+800 …) and unknowns.
_NO_REGION = frozenset({"001", "ZZ"})
_UNKNOWN_ZONE = "Etc/Unknown"


class InvalidPhoneNumber(InputError):
    """A phone number that cannot be used, with what was given and why it was rejected
    (field `phone` where the API answers it as it is)."""

    def __init__(self, raw: str, reason: str) -> None:
        self.raw = raw
        self.reason = reason
        # Quote at most a phone-number's worth of the input so the message stays readable.
        shown = raw if len(raw) <= MAX_RAW_LENGTH else raw[:MAX_RAW_LENGTH] + "…"
        message = f"{shown!r} is not a usable phone number: {reason}"
        super().__init__("phone", message, message=message)

    def __reduce__(self) -> tuple[type[InvalidPhoneNumber], tuple[str, str]]:
        # Keep the two-argument constructor working across pickling (e.g. worker processes).
        return (type(self), (self.raw, self.reason))


def normalize(raw: str, region: str | None = None) -> str:
    """Return ``raw`` as an E.164 string (``"+14155550100"``) or raise :class:`InvalidPhoneNumber`.

    ``region`` is the ISO 3166 country (``"US"``, ``"fr"``) used to read national formats such
    as ``"(415) 555-0100"`` or international ones dialled with that country's exit prefix
    (``"0033 …"`` from France). Without it the number must start with ``+`` and its country
    code. Numbers libphonenumber does not consider valid for their country are rejected.
    """
    return _normalized(raw, region)


# A business texts the same customers again and again: a number read once is not parsed
# again (libphonenumber's parse and validity check cost ~30 µs). Failures are not kept.
@functools.lru_cache(maxsize=65_536)
def _normalized(raw: str, region: str | None) -> str:
    if len(raw) > MAX_RAW_LENGTH:
        raise InvalidPhoneNumber(
            raw, f"it is {len(raw)} characters long; a phone number is at most {MAX_RAW_LENGTH}"
        )
    if not raw.strip():
        raise InvalidPhoneNumber(raw, "it is empty")
    if region is not None:
        region = region.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise InvalidPhoneNumber(
                raw, f"region {region!r} is not a known ISO 3166 country code (e.g. 'US', 'GB')"
            )

    number = _parse(raw, region)

    if number.extension:
        # E.164 has no room for an extension; dropping it would text the switchboard instead.
        raise InvalidPhoneNumber(
            raw, f"it has an extension ({number.extension}); texts cannot reach an extension"
        )
    if not phonenumbers.is_valid_number(number):
        hint = _LENGTH_HINTS.get(phonenumbers.is_possible_number_with_reason(number))
        reason = "not a valid number for its country"
        raise InvalidPhoneNumber(raw, f"{reason} ({hint})" if hint else reason)

    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def timezone_for(e164: str) -> str | None:
    """Return the IANA time zone of an E.164 number, or ``None`` if its location is unknown.

    Where libphonenumber lists several zones (area codes straddling a boundary, toll-free and
    many mobile ranges) the zone is unknown: picking one would be a guess that quiet hours
    might then trust.
    """
    zones = _timezones.time_zones_for_number(_parse_e164(e164))
    if len(zones) != 1 or zones[0] == _UNKNOWN_ZONE:
        return None
    return zones[0]


def region_of(e164: str) -> str | None:
    """Return the ISO 3166 region of an E.164 number (``"US"``), or ``None`` if it has none."""
    region = phonenumbers.region_code_for_number(_parse_e164(e164))
    if region is None or region in _NO_REGION:
        return None
    return region


_NUMBER_TYPES = {
    phonenumbers.PhoneNumberType.MOBILE: "mobile",
    phonenumbers.PhoneNumberType.FIXED_LINE: "fixed_line",
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    phonenumbers.PhoneNumberType.TOLL_FREE: "toll_free",
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "premium_rate",
    phonenumbers.PhoneNumberType.SHARED_COST: "shared_cost",
    phonenumbers.PhoneNumberType.VOIP: "voip",
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    phonenumbers.PhoneNumberType.PAGER: "pager",
    phonenumbers.PhoneNumberType.UAN: "uan",
    phonenumbers.PhoneNumberType.VOICEMAIL: "voicemail",
}
NUMBER_TYPES = frozenset(_NUMBER_TYPES.values()) | {"unknown"}


def number_type_of(e164: str) -> str:
    """What kind of line a number is (`mobile`, `fixed_line`, `toll_free`, …, or `unknown`);
    in the US and Canada most numbers are `fixed_line_or_mobile`."""
    return _NUMBER_TYPES.get(phonenumbers.number_type(_parse_e164(e164)), "unknown")


def _parse(raw: str, region: str | None) -> PhoneNumber:
    try:
        return phonenumbers.parse(raw, region)
    except NumberParseException as exc:
        raise InvalidPhoneNumber(raw, _parse_reason(exc, raw, region)) from None


def _parse_e164(e164: str) -> PhoneNumber:
    # These readers take numbers that already went through normalize(); anything without
    # a leading "+" is a caller bug, not something to guess a country for.
    if len(e164) > MAX_RAW_LENGTH or not e164.startswith("+"):
        raise InvalidPhoneNumber(e164, "expected an E.164 number such as '+14155550100'")
    return _parse(e164, None)


def _parse_reason(exc: NumberParseException, raw: str, region: str | None) -> str:
    if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE:
        if region is None and not raw.strip().startswith("+"):
            return (
                "it is not in international format; give a region (e.g. 'US') "
                "or start it with + and the country code"
            )
        return "it does not start with a known country calling code"
    return _PARSE_REASONS.get(exc.error_type, "it could not be read as a phone number")


def timezones_for(e164: str) -> tuple[str, ...]:
    """Every IANA zone the number may be in (empty if unknown): a message must suit them all."""
    return tuple(z for z in _timezones.time_zones_for_number(_parse_e164(e164)) if z != _UNKNOWN_ZONE)


def subdivision_of(e164: str) -> str | None:
    """The ISO 3166-2 code of a North American number's state or province (``"US-FL"``), from
    its area code; ``None`` elsewhere or when the area code spans no single one. Numbers move
    with their owners: rules bound to a state treat its area codes as in the state, as such
    laws themselves presume. (The table is extracted from libphonenumber's geocoder by
    ``tools/nanp_area_codes.py``: the geocoder itself costs ~100 MB to load.)"""
    number = _parse_e164(e164)
    if number.country_code != 1:
        return None
    return _area_codes().get(str(number.national_number)[:3])


@functools.cache
def _area_codes() -> dict[str, str]:
    data = resources.files("empathic.core").joinpath("data/nanp_area_codes.json").read_text(encoding="utf-8")
    area_codes: dict[str, str] = json.loads(data)["area_codes"]
    return area_codes


# Names libphonenumber's English geocoder gives whole North American area codes.
SUBDIVISION_NAMES: dict[str, str] = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "Washington D.C.": "DC", "Florida": "FL",
    "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA",
    "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD",
    "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS", "Missouri": "MO",
    "Montana": "MT", "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH", "New Jersey": "NJ",
    "New Mexico": "NM", "New York": "NY", "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH",
    "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA", "Rhode Island": "RI", "South Carolina": "SC",
    "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT",
    "Virginia": "VA", "Washington State": "WA", "Washington": "WA", "West Virginia": "WV",
    "Wisconsin": "WI", "Wyoming": "WY",
    "Alberta": "AB", "British Columbia": "BC", "Manitoba": "MB", "New Brunswick": "NB",
    "Newfoundland and Labrador": "NL", "Nova Scotia": "NS", "Ontario": "ON", "Prince Edward Island": "PE",
    "Quebec": "QC", "British Colombia": "BC", "Saskatchewan": "SK", "Northwest Territories": "NT", "Nunavut": "NU", "Yukon": "YT",
}
