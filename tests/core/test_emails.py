"""Email addresses the outbox takes: normalised, or refused with a reason."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from empathic.core.emails import InvalidEmail, normalize_email


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ana@example.com", "ana@example.com"),
        ("  Ana.Lima@Example.COM ", "Ana.Lima@example.com"),
        ("o'brien+orders@mail.example.co.uk", "o'brien+orders@mail.example.co.uk"),
        ("jose@bücher.example", "jose@xn--bcher-kva.example"),
    ],
)
def test_good_addresses(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["", "ana", "ana@", "@example.com", "ana@localhost", "ana@@example.com", "Ana <ana@example.com>",
     "ana@example.com, bo@example.com", "ana@exa mple.com", "an a@example.com", "ana@example.com\r\nBcc: x@y.z",
     "ana..lima@example.com", "ana@-example.com", "a" * 65 + "@example.com"],
)
def test_bad_addresses(raw: str) -> None:
    with pytest.raises(InvalidEmail):
        normalize_email(raw)


local = st.from_regex(r"[a-z0-9_+-]{1,20}(\.[a-z0-9_+-]{1,10}){0,2}", fullmatch=True)
label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


@given(local, st.lists(label, min_size=2, max_size=4))
def test_normalising_is_idempotent(user: str, labels: list[str]) -> None:
    address = f"{user}@{'.'.join(labels).upper()}"
    once = normalize_email(address)
    assert normalize_email(once) == once and once.endswith("@" + ".".join(labels))


@given(st.text(max_size=40))
def test_anything_with_a_line_break_or_space_inside_is_refused(text: str) -> None:
    raw = f"ana{text}@example.com"
    try:
        result = normalize_email(raw)
    except InvalidEmail:
        return
    assert not any(ch.isspace() or not ch.isprintable() for ch in result)
