"""Identifiers: time-ordered, URL-safe, prefixed by what they name (`msg_`, `ct_`, ...).

48 bits of milliseconds then 80 random bits in Crockford base32 (the ULID layout), so ids
sort by creation time and serve directly as pagination cursors.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # 10 bits at a time: a hot path (every message)


def _base32(value: int, length: int) -> str:
    """`value` in `length` characters, most significant first (bits above 5 x length dropped)."""
    pairs = -(-length // 2)
    text = "".join([_PAIRS[(value >> shift) & 1023] for shift in range(10 * (pairs - 1), -1, -10)])
    return text[-length:] if length % 2 else text


_last = (0, 0)  # (ms, random part) of the newest id this process made
_lock = threading.Lock()


def new_id(prefix: str, *, at_ms: int | None = None) -> str:
    """A new id; ids made by one process within one millisecond still increase."""
    global _last
    ms = int(time.time() * 1000) if at_ms is None else at_ms
    with _lock:
        if ms == _last[0]:
            rand = (_last[1] + 1) % (1 << 80)
        else:
            rand = int.from_bytes(os.urandom(10), "big") >> 1  # room to count up within the ms
        _last = (ms, rand)
    return f"{prefix}_{_base32((ms << 80) | rand, 26)}"


def first_id(prefix: str, at_ms: int) -> str:
    """The lowest id `new_id(prefix)` can make at or after millisecond `at_ms`: ids below it
    were all made before."""
    return f"{prefix}_{_base32(at_ms, 10)}{'0' * 16}"


def made_at_ms(id_: str) -> int | None:
    """The millisecond an id made by `new_id` was made in (None for an id of another form)."""
    _, _, rest = id_.rpartition("_")
    if len(rest) != 26 or any(c not in _ALPHABET for c in rest[:10]):
        return None
    value = 0
    for c in rest[:10]:
        value = value * 32 + _ALPHABET.index(c)
    return value
