"""People's passwords: argon2id hashes (argon2-cffi), the rules a new one must meet, and the
one-time passwords an admin hands out.

Hashing and verifying take tens of milliseconds on purpose: callers on the event loop run
them in a thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from empathic.core.errors import InputError

MIN_LENGTH = 10
MAX_LENGTH = 1024  # enough for any passphrase; bounds the work a sign-in can ask for

_hasher = PasswordHasher(type=Type.ID)
# Hashed against when no account matches, so a wrong email costs what a wrong password does.
_DUMMY = _hasher.hash("not anyone's password")


class WeakPassword(InputError):
    def __init__(self, detail: str) -> None:
        super().__init__("password", detail, message=detail)


def check_new(password: str) -> None:
    """Refuse a password a person chose that is too short (or absurdly long)."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"A password needs at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"A password may have at most {MAX_LENGTH} characters.")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify(hashed: str | None, password: str) -> bool:
    """Whether `password` is the one `hashed` was made from. `hashed` None (no such
    person) still does the work of a verification, then answers False."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(hashed if hashed is not None else _DUMMY, password) and hashed is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(hashed: str) -> bool:
    """The hash was made with other parameters than today's: hash again at the next sign-in."""
    try:
        return _hasher.check_needs_rehash(hashed)
    except InvalidHashError:
        return True


def one_time() -> str:
    """A password an admin hands over once (the person chooses their own at first sign-in):
    16 characters of an unambiguous alphabet, about 80 bits."""
    alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(16))
