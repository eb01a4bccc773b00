"""Input the platform cannot accept: the one error type the API answers 422 problem+json.

Each domain's own error (outbox.SubmitError, events.EventError, preferences.PreferencesError
…) derives from `InputError`, so api.problems maps them all in one handler.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict


class FieldError(TypedDict):
    """One of a problem's `errors`: the input field at fault and what is wrong with it."""

    field: str
    detail: str
    line: NotRequired[int | None]  # a flow's problems: its line in the source, where known


class InputError(ValueError):
    """Input we cannot accept: `field` (dotted, `[i]` for an item) and why (`detail`); the
    message is `field: detail` unless given."""

    def __init__(self, field: str, detail: str, *, message: str | None = None) -> None:
        super().__init__(f"{field}: {detail}" if message is None else message)
        self.field = field
        self.detail = detail

    def errors(self) -> list[FieldError]:
        """The problem's `errors`: the field at fault, and why."""
        return [{"field": self.field, "detail": self.detail}]
