"""A list endpoint's page: `{"data": [...], "next_cursor": ...}`, made the one way.

The store reads a page newest first after the cursor (empathic.store.paging); the endpoint
asks it for `fetch(limit)` rows, one more than it shows, and `Page.of` keeps `limit` of them.
`next_cursor` is the id of the last row shown (the next page starts after it), or null when
the extra row was not there: the last page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from empathic.core.json import Json

Row = TypeVar("Row")


def fetch(limit: int) -> int:
    """How many rows to ask the store for, to show `limit` and know whether more follow."""
    return limit + 1


@dataclass(frozen=True, slots=True)
class Page(Generic[Row]):
    rows: list[Row]  # at most `limit`
    next_cursor: str | None

    @classmethod
    def of(cls, rows: Sequence[Row], limit: int, id_of: Callable[[Row], str]) -> Page[Row]:
        """The page from the `fetch(limit)` rows the store gave."""
        shown = list(rows[:limit])
        return cls(shown, id_of(shown[-1]) if len(rows) > limit else None)

    def to_json(self, views: list[Json]) -> Json:
        """The response: these views of `rows`, and the cursor."""
        return {"data": views, "next_cursor": self.next_cursor}
