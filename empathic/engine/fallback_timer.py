"""The `message.fallback` timer: scheduled when a text that may fall back to email fails
for good, in the transaction of that status change (engine.lifecycle calls `on_status`).

Apart from engine.fallback, which writes the email through the outbox when the timer
fires: the outbox records statuses through engine.lifecycle, so this side must not need it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.fallback import PERMANENT_FAILURES
from empathic.store import fallbacks as store
from empathic.store import timers
from empathic.store.messages import Transition

TIMER = "message.fallback"


async def on_status(conn: AsyncConnection, transitions: Sequence[Transition], now: datetime) -> None:
    """Every status change passes here: a text with a fallback that failed for good gets a
    timer that sends its email (most batches hold no such failure and cost no query)."""
    failed = [t for t in transitions if t.status in PERMANENT_FAILURES]
    if not failed:
        return
    due = set(await store.pending(conn, [t.message_id for t in failed]))
    if due:
        await timers.schedule(conn, [
            timers.Timer(TIMER, t.message_id, now, {}, t.workspace_id) for t in failed if t.message_id in due
        ])
