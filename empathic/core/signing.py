"""Webhook signatures: how a receiver knows a request came from Empathic, unaltered and fresh.

Every webhook request carries a header in the style Stripe made familiar. Signed with the
secret `whsec_example` at 2025-01-01T00:00:00Z, the body `{"hello":"world"}` gets::

    Empathic-Signature: t=1735689600,v1=cdd5cd0da60661ea30cacbbb778d5f0f9e437ec8cd26fda6fa7328d62dad685d

`t` is the Unix time (seconds) of signing and `v1` is the lowercase hex
HMAC-SHA256 of `f"{t}.".encode() + body`, keyed with the webhook's secret (the whole
string, `whsec_` prefix included, as UTF-8). Binding `t` into the MAC lets a receiver
reject replays of an old request; the body is signed byte for byte, so verify the raw
bytes you received, before any JSON parsing. While a secret is being rotated a header may
carry several `v1=` entries; a request is genuine if any of them matches. Unknown schemes
(`v0=`, `v2=`) are ignored so the format can grow.

A receiver can paste this (Python, standard library only)::

    import hashlib
    import hmac
    import time

    def verify_empathic(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
        try:
            parts = [p.split("=", 1) for p in header.split(",")]
            t = int(next(v for k, v in parts if k.strip() == "t"))
            given = [v.strip() for k, v in parts if k.strip() == "v1"]
        except (StopIteration, ValueError):
            return False
        if abs(time.time() - t) > tolerance:
            return False
        mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        return any(hmac.compare_digest(mac.encode(), g.encode()) for g in given)

Delivery is at least once: use the `Empathic-Delivery` header (the delivery id) to ignore
a request you have already processed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

HEADER = "Empathic-Signature"
SECRET_PREFIX = "whsec_"


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `Empathic-Signature` header value for `body` signed at `timestamp` (Unix seconds)."""
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, *, now: int, tolerance: int = 300) -> bool:
    """True if `header` holds a `v1` signature of `body` by `secret` made within `tolerance` s of `now`.

    Never raises on a malformed header: anything that does not parse is simply not genuine.
    """
    timestamp, given = _parse(header)
    if timestamp is None or not given:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = _mac(secret, timestamp, body).encode()
    # Compare against every entry, without stopping early, in constant time per entry.
    matched = False
    for candidate in given:
        matched |= hmac.compare_digest(expected, candidate)
    return matched


def _parse(header: object) -> tuple[int | None, list[bytes]]:
    if not isinstance(header, str):
        return None, []
    timestamp: int | None = None
    given: list[bytes] = []
    for item in header.split(","):
        key, sep, value = item.partition("=")
        if not sep:
            return None, []
        key, value = key.strip(), value.strip()
        if key == "t":
            # Exactly one plain decimal timestamp; "+5", " 1_000" and repeats are not ours.
            if timestamp is not None or not value.isascii() or not value.isdigit():
                return None, []
            try:
                timestamp = int(value)
            except ValueError:  # more digits than int() accepts
                return None, []
        elif key == "v1":
            given.append(value.encode("utf-8", "replace"))
    return timestamp, given


def new_secret() -> str:
    """A fresh webhook signing secret: `whsec_` and 32 random bytes, URL-safe base64."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)
