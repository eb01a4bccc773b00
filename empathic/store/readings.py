"""What was heard in each inbound text (`message_readings`): its keyword, or its meaning.

Written with the text, in the same transaction (engine.inbound), so the inbox shows what
the system understood when it acted, not a second reading made later with other rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.json import Json
from empathic.store.schema import message_readings

_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Reading:
    """One inbound text as it was heard: a keyword (`stop`, `start`, `help`, `stop:<topic>`,
    `start:<topic>`), else the intent with its language and confidence, the time it proposes
    (`proposed_start`; a whole day also has `proposed_end`) and the option it picks."""

    message_id: str
    workspace_id: str
    keyword: str | None
    intent: str | None
    language: str | None
    confidence: float | None
    proposed_start: datetime | None
    proposed_end: datetime | None
    option: str | None
    created_at: datetime


def to_view(reading: Reading) -> Json:
    return {
        "keyword": reading.keyword,
        "intent": reading.intent,
        "language": reading.language,
        "confidence": reading.confidence,
        "proposed_start": reading.proposed_start.isoformat() if reading.proposed_start else None,
        "proposed_end": reading.proposed_end.isoformat() if reading.proposed_end else None,
        "option": reading.option,
    }


async def record(conn: AsyncConnection, reading: Reading) -> None:
    await conn.execute(insert(message_readings).values(**asdict(reading)))


async def of_messages(conn: AsyncConnection, workspace_id: str, message_ids: Iterable[str]) -> dict[str, Reading]:
    """The readings of these messages of the workspace, by message id (absent: none stored)."""
    ids = sorted(set(message_ids))
    found: dict[str, Reading] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = await conn.execute(
            select(message_readings).where(
                message_readings.c.workspace_id == workspace_id,
                message_readings.c.message_id.in_(ids[start : start + _CHUNK]),
            )
        )
        found.update({r["message_id"]: Reading(**r) for r in rows.mappings()})
    return found
