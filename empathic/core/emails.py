"""Email addresses as the outbox takes them: one bare address, checked and normalised.

Pure. The domain is lower-cased (it is case-insensitive); the local part is kept as given
(servers may treat case there as significant). Display names, several addresses, line
breaks and control characters are refused, so nothing but an address reaches a header.
"""

from __future__ import annotations

import re

MAX_LENGTH = 254  # RFC 5321's path limit, less the angle brackets

_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


class InvalidEmail(ValueError):
    pass


def is_email(value: str) -> bool:
    """Whether a recipient is meant as an email address (rather than a phone number)."""
    return "@" in value


def normalize_email(raw: str) -> str:
    address = raw.strip()
    if not address or len(address) > MAX_LENGTH:
        raise InvalidEmail(f"{raw!r} is not an email address of 1 to {MAX_LENGTH} characters")
    local, at, domain = address.rpartition("@")
    if not at or not _LOCAL.fullmatch(local) or len(local) > 64:
        raise InvalidEmail(f"{raw!r} is not an email address such as 'ana@example.com'")
    try:
        domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise InvalidEmail(f"{raw!r} has a domain that cannot be written in ASCII") from None
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        raise InvalidEmail(f"{raw!r} has no valid domain, such as 'example.com'")
    return f"{local}@{domain}"
