"""The API's field types: strict where JSON or a query string would be read loosely, and
named formats for values no pattern can check.

Pydantic reads `true` as 1, `"0.5"` as a number and `0` as 1970-01-01; the API takes none
of these: a count is an integer (a query's digits), a number is a number, an instant is
ISO 8601 text with its offset. The OpenAPI document says the same (`type`, `format`).

Formats beyond JSON Schema's own, each checked by the code that reads the value:
`phone` (a number libphonenumber accepts: E.164, or national with `region`), `time-zone`
(an IANA name), `region` (an ISO 3166 country libphonenumber knows).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, JsonValue

_DIGITS = re.compile(r"[+-]?[0-9]+")
# RFC 3339 (seconds optional), offset required: the only way an instant is read.
_INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?([Zz]|[+-][0-9]{2}:[0-9]{2})")
# What str.strip() removes (Unicode white space, and the separators \x1c-\x1f Python counts
# as space), spelled out so JSON Schema validators of every regex dialect read it alike.
SPACE = "\\t-\\r \\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
NOT_BLANK = f"[^{SPACE}]"
CLOCK = "^(([01]?[0-9]|2[0-3]):[0-5][0-9]|24:00)$"  # a time of day, HH:MM (24:00 ends one)
# A contact is known by a phone or an email (the handlers say so with a 422 naming `phone`).
PHONE_OR_EMAIL: list[JsonValue] = [
    {"required": ["phone"], "properties": {"phone": {"type": "string", "minLength": 1}}},
    {"required": ["email"], "properties": {"email": {"type": "string"}}},
]


def _whole(value: Any) -> Any:
    # 10.0 is an integer to JSON Schema (and to JSON); 10.5, true and "10" are not.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        raise ValueError("must be a whole number")
    return value


def _digits(value: Any) -> Any:
    if not isinstance(value, str) or not _DIGITS.fullmatch(value):
        raise ValueError("must be a whole number, in digits")
    return value


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be a number")
    return value


def _instant(value: Any) -> Any:
    if not isinstance(value, str) or not _INSTANT.fullmatch(value):
        raise ValueError("must be an ISO 8601 instant with its offset, e.g. 2026-11-23T10:00:00Z")
    return value


# An integer's bounds go before its validator (`Annotated[int, Field(ge=1, le=500), DIGITS]`):
# FastAPI drops a validator from an alias given a Query() default, and pydantic writes bounds
# after it into the document as `ge`/`le`, which JSON Schema does not know.
WHOLE = BeforeValidator(_whole)  # in a JSON body
DIGITS = BeforeValidator(_digits)  # in a query string
Number = Annotated[float, BeforeValidator(_number)]
Instant = Annotated[datetime, BeforeValidator(_instant)]
Phone = Annotated[str, Field(max_length=64, json_schema_extra={"format": "phone"})]
TimeZone = Annotated[str, Field(max_length=64, json_schema_extra={"format": "time-zone"})]
Region = Annotated[str, Field(min_length=2, max_length=2, pattern="^[A-Za-z]{2}$", json_schema_extra={"format": "region"})]

# The rules of those formats, for the 422s that name them (problems.beyond_schema).
PHONE_RULE = "a number libphonenumber accepts: E.164, or national in `region` (an ISO 3166 country it knows)"
TIME_ZONE_RULE = "an IANA time zone name, e.g. Europe/Paris"
