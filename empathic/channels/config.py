"""Reading a `[[channels]]` entry: typed values whose errors name the key at fault (`key:
what is wrong`), and secrets, given literally or by `<key>_env`, which are never printed."""

from __future__ import annotations

import hmac
import os
from collections.abc import Collection, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit


class Secret:
    """A credential that never shows itself in repr(), str(), logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(Secret)


class Entry:
    """One entry of channel type `kind`, read as the channel `name`. Unknown keys, and a
    `type` or `name` in the entry that contradicts how it is read, are refused at once.
    `env` stands in for the process environment (tests); `where` prefixes every error."""

    def __init__(
        self,
        kind: str,
        name: str,
        raw: Mapping[str, Any],
        keys: Collection[str],
        *,
        env: Mapping[str, str] | None = None,
        where: str = "",
    ) -> None:
        self.raw = raw
        self.env = os.environ if env is None else env
        self.where = where
        unknown = sorted(set(raw) - set(keys) - {"type", "name"})
        if unknown:
            raise self.error(", ".join(unknown), f"unknown key{'s' if len(unknown) > 1 else ''} for a channel of "
                                                 f"type {kind}, which takes {', '.join(sorted(keys))}")
        if raw.get("type", kind) != kind:
            raise self.error("type", f"must be {kind!r}")
        if raw.get("name", name) != name:
            raise self.error("name", f"is {raw['name']!r} but the channel is read as {name!r}")

    def error(self, key: str, why: str) -> ValueError:
        """The error for `key` (to raise): never put a secret's value in `why`."""
        return ValueError(f"{self.where}: {key}: {why}" if self.where else f"{key}: {why}")

    def text(self, key: str) -> str:
        """A required non-empty string without control characters, stripped."""
        value = self.optional_text(key)
        if value is None:
            raise self.error(key, "is required")
        return value

    def optional_text(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, "must be a non-empty string")
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise self.error(key, "must not contain control characters")
        return value.strip()

    def secret(self, key: str) -> Secret:
        """A required secret: `key` literally, or `key_env` naming the variable that holds it."""
        value = self.optional_secret(key)
        if value is None:
            raise self.error(key, f"is required ({key} or {key}_env)")
        return value

    def optional_secret(self, key: str) -> Secret | None:
        env_key = f"{key}_env"
        literal, variable = self.raw.get(key), self.raw.get(env_key)
        if literal is not None and variable is not None:
            raise self.error(key, f"give either {key} or {env_key}, not both")
        if literal is not None:
            if not isinstance(literal, str) or not literal:
                raise self.error(key, "must be a non-empty string")
            return Secret(literal)
        if variable is None:
            return None
        if not isinstance(variable, str) or not variable:
            raise self.error(env_key, "must be the name of an environment variable")
        value = self.env.get(variable)
        if not value:
            raise self.error(env_key, f"environment variable {variable} is not set")
        return Secret(value)

    def number(self, key: str, default: float, *, high: float | None = None) -> float:
        """A number above 0 (and at most `high`)."""
        return float(self._positive(key, default, (int, float), "a number", high))

    def integer(self, key: str, default: int, *, high: int | None = None) -> int:
        """A whole number above 0 (and at most `high`)."""
        return int(self._positive(key, default, (int,), "an integer", high))

    def _positive(
        self, key: str, default: float, kinds: tuple[type[float], ...], kind: str, high: float | None
    ) -> float:
        value = self.raw.get(key, default)
        too_big = high is not None and isinstance(value, int | float) and value > high
        if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0 or too_big:
            limit = f" up to {high:g}" if high is not None else ""
            raise self.error(key, f"must be {kind} above 0{limit}, not {value!r}")
        return value

    def choice(self, key: str, default: str, options: Sequence[str]) -> str:
        value = self.raw.get(key, default)
        if not isinstance(value, str) or value not in options:
            raise self.error(key, f"must be one of {', '.join(map(repr, options))}, not {value!r}")
        return value

    def url(self, key: str, default: str) -> str:
        """An http(s) URL, as given."""
        value = self.raw.get(key, default)
        try:
            parts = urlsplit(value) if isinstance(value, str) else None
        except ValueError:  # e.g. an unclosed IPv6 bracket
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise self.error(key, "must be an http(s) URL")
        return value

    def optional_url(self, key: str) -> str | None:
        return None if self.raw.get(key) is None else self.url(key, "")
