"""Tests for empathic.core.signing: the Empathic-Signature header webhook receivers check.

Expected MACs are computed here with hmac directly, from the format the module docstring
promises, so the module cannot agree with itself by mistake.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from empathic.core import signing
from empathic.core.signing import new_secret, sign, verify

SECRET = "whsec_test"
BODY = b'{"data":{"status":"delivered"},"id":"whd_1","type":"message.status"}'
T = 1_735_689_600


def _reference(secret: str, t: int, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), str(t).encode() + b"." + body, hashlib.sha256).hexdigest()


def test_known_answer() -> None:
    assert sign(SECRET, T, BODY) == f"t={T},v1={_reference(SECRET, T, BODY)}"


def test_known_answer_fixed_vector() -> None:
    # The example in the module docstring, pinned so the documentation stays true.
    header = "t=1735689600,v1=cdd5cd0da60661ea30cacbbb778d5f0f9e437ec8cd26fda6fa7328d62dad685d"
    assert sign("whsec_example", 1735689600, b'{"hello":"world"}') == header
    assert header in signing.__doc__


def test_round_trip() -> None:
    assert verify(SECRET, sign(SECRET, T, BODY), BODY, now=T)


@pytest.mark.parametrize(
    "header_secret, header_t, body",
    [
        (SECRET, T, BODY + b" "),
        (SECRET, T, BODY.replace(b"delivered", b"failed")),
        ("whsec_other", T, BODY),
    ],
    ids=["body-extended", "body-changed", "other-secret"],
)
def test_tampering_is_rejected(header_secret: str, header_t: int, body: bytes) -> None:
    header = sign(header_secret, header_t, body)
    assert not verify(SECRET, header, BODY, now=T)


def test_timestamp_swapped_under_a_genuine_mac_is_rejected() -> None:
    mac = _reference(SECRET, T, BODY)
    assert not verify(SECRET, f"t={T + 60},v1={mac}", BODY, now=T + 60)


@pytest.mark.parametrize(
    "offset, ok", [(0, True), (300, True), (-300, True), (301, False), (-301, False), (86_400, False)]
)
def test_tolerance(offset: int, ok: bool) -> None:
    assert verify(SECRET, sign(SECRET, T, BODY), BODY, now=T + offset) is ok


def test_custom_tolerance() -> None:
    header = sign(SECRET, T, BODY)
    assert not verify(SECRET, header, BODY, now=T + 10, tolerance=5)
    assert verify(SECRET, header, BODY, now=T + 10, tolerance=10)


GOOD_MAC = _reference(SECRET, T, BODY)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        ",",
        "t=,v1=",
        f"v1={GOOD_MAC}",  # no timestamp
        f"t={T}",  # no signature
        f"t={T},v1=",
        f"t=abc,v1={GOOD_MAC}",
        f"t=+{T},v1={GOOD_MAC}",
        f"t={T}.5,v1={GOOD_MAC}",
        f"t=1_735_689_600,v1={GOOD_MAC}",
        f"t={T},t={T},v1={GOOD_MAC}",  # ambiguous
        f"t={T},v1={GOOD_MAC},junk",
        f"t={T},v0={GOOD_MAC}",  # unknown scheme only
        f"t={T},v1={GOOD_MAC.upper()}",
        f"t={T},v1={GOOD_MAC[:-1]}",
        f"t={T},v1=é{GOOD_MAC}",  # non-ASCII must not raise in compare_digest
        f"t=٣{T},v1={GOOD_MAC}",  # a non-ASCII digit
        "t=" + "9" * 5000 + f",v1={GOOD_MAC}",  # beyond int()'s digit limit
    ],
)
def test_malformed_headers_are_rejected_without_raising(header: str) -> None:
    assert verify(SECRET, header, BODY, now=T) is False


@pytest.mark.parametrize("header", [None, b"t=1,v1=00", 42])
def test_non_string_headers_are_rejected_without_raising(header: object) -> None:
    assert verify(SECRET, header, BODY, now=T) is False  # type: ignore[arg-type]


def test_whitespace_around_entries_is_tolerated() -> None:
    assert verify(SECRET, f" t={T} , v1={GOOD_MAC} ", BODY, now=T)


def test_several_v1_entries_support_secret_rotation() -> None:
    old, new = "whsec_old", "whsec_new"
    header = f"t={T},v1={_reference(new, T, BODY)},v1={_reference(old, T, BODY)}"
    assert verify(old, header, BODY, now=T)
    assert verify(new, header, BODY, now=T)
    assert not verify("whsec_third", header, BODY, now=T)


def test_unknown_schemes_are_ignored() -> None:
    assert verify(SECRET, f"t={T},v0=deadbeef,v1={GOOD_MAC},v2=xyz", BODY, now=T)


def test_new_secret() -> None:
    secrets = {new_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert re.fullmatch(r"whsec_[A-Za-z0-9_-]{43}", secret)  # 32 bytes, unpadded base64


def test_documented_receiver_snippet_verifies_our_signatures() -> None:
    doc = signing.__doc__
    assert doc is not None
    start = doc.index("    import hashlib")
    end = doc.index("\n\n", doc.index("return any(", start))
    namespace: dict[str, object] = {}
    exec(textwrap.dedent(doc[start:end]), namespace)  # noqa: S102 - our own documentation
    verify_empathic = namespace["verify_empathic"]
    import time

    now = int(time.time())
    header = sign(SECRET, now, BODY)
    assert verify_empathic(SECRET, header, BODY)  # type: ignore[operator]
    assert not verify_empathic(SECRET, header, BODY + b"x")  # type: ignore[operator]
    assert not verify_empathic("whsec_other", header, BODY)  # type: ignore[operator]
    assert not verify_empathic(SECRET, sign(SECRET, now - 3600, BODY), BODY)  # type: ignore[operator]
    assert not verify_empathic(SECRET, "garbage", BODY)  # type: ignore[operator]


secrets_st = st.text(min_size=1, max_size=80)
bodies_st = st.binary(min_size=1, max_size=2000)
timestamps_st = st.integers(min_value=0, max_value=2**40)


@given(secret=secrets_st, body=bodies_st, t=timestamps_st)
def test_property_round_trip(secret: str, body: bytes, t: int) -> None:
    assert verify(secret, sign(secret, t, body), body, now=t)


@given(secret=secrets_st, body=bodies_st, t=timestamps_st, data=st.data())
def test_property_flipped_byte_fails(secret: str, body: bytes, t: int, data: st.DataObject) -> None:
    header = sign(secret, t, body)
    index = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=7))
    tampered = bytearray(body)
    tampered[index] ^= 1 << bit
    assert not verify(secret, header, bytes(tampered), now=t)
