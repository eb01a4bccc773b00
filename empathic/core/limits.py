"""How much free-form data a workspace may store per thing: a contact's attributes and an
event's data (or a flow run's inputs), measured as compact UTF-8 JSON. The limits keep a list
of contacts a sensible size and a template's scope small; larger data belongs in the
business's own system, which a flow can call."""

from __future__ import annotations

import json
from typing import TypeVar

ATTRIBUTES_LIMIT = 16 * 1024  # a contact's attributes, after merging an update
DATA_LIMIT = 64 * 1024  # an event's data, a flow run's data and vars, a preview's scope


_Value = TypeVar("_Value")


class TooLarge(ValueError):
    pass


def json_size(value: object) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8", "surrogatepass"))


def check_size(value: _Value, limit: int, what: str) -> _Value:
    """`value` itself, or TooLarge when it takes more than `limit` bytes as JSON."""
    if json_size(value) > limit:
        raise TooLarge(f"{what} may take at most {limit // 1024} KiB as JSON")
    return value
