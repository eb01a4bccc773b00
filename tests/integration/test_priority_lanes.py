"""Priority lanes over real SMPP: with a marketing backlog flowing (every batch in flight,
the window full), a one-time code queued now reaches the SMSC after about the texts
already on the wire, not after the batches claimed before it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from empathic.core.consent import ConsentAction
from empathic.engine.dispatcher import DispatchSettings
from empathic.engine.outbox import MessageRequest
from empathic.engine.runtime import Runtime
from empathic.smsc.server import Smsc, SmscSettings
from empathic.store import consent as consent_store
from empathic.store import contacts as contact_store
from tests.conftest import POSTGRES_URL, eventually, make_settings, postgres_schema
from tests.integration.test_smpp_engine import smpp_entry, write_project

BACKLOG = 800
BATCH = 100
IN_FLIGHT = 4
WINDOW = 5


class NoonInSanFrancisco:
    def now(self) -> datetime:
        return datetime(2026, 11, 23, 20, tzinfo=UTC)  # marketing hours for +1 415


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


async def test_a_code_overtakes_a_marketing_backlog(tmp_path: Path, backend: str) -> None:
    order: list[str] = []  # destinations in the order the SMSC read them
    async with Smsc(SmscSettings(port=0, latency=0.01, receipts=False)) as smsc:
        original = smsc.submit

        def recording(connection, pdu):  # type: ignore[no-untyped-def]
            order.append(pdu.destination_addr)
            original(connection, pdu)

        smsc.submit = recording  # type: ignore[method-assign]
        project = write_project(tmp_path / "project", smpp_entry(smsc.port, tps=100_000).replace("window = 50", f"window = {WINDOW}"))
        dispatch = DispatchSettings(batch_size=BATCH, batches_in_flight=IN_FLIGHT, retry_base=0.05)
        if backend == "postgresql":
            async with postgres_schema(migrated=True) as schema:
                settings = make_settings(tmp_path, project_dir=project, dispatch=dispatch,
                                         database_url=POSTGRES_URL, database_schema=schema)
                await _overtake(settings, smsc, order)
        else:
            await _overtake(make_settings(tmp_path, project_dir=project, dispatch=dispatch), smsc, order)


async def _overtake(settings, smsc: Smsc, order: list[str]) -> None:  # type: ignore[no-untyped-def]
    rt = Runtime(settings, clock=NoonInSanFrancisco())
    await rt.start()
    try:
        phones = [f"+1415555{i:04d}" for i in range(BACKLOG)]
        async with rt.db.transaction() as conn:
            people = await contact_store.ensure_by_phone(conn, rt.workspace_id, phones, rt.now())
            for person in people.values():
                await consent_store.append(
                    conn, rt.workspace_id, person.id, topic="marketing", channel="sms",
                    action=ConsentAction.GRANTED, source="api", actor="test", evidence=None, at=rt.now(),
                )
        await rt.outbox.submit(
            rt.workspace_id,
            [MessageRequest(to=phone, body=f"Deal {i}: 20% off", topic="marketing") for i, phone in enumerate(phones)],
            numbered=True,
        )

        async def flowing() -> bool:  # the backlog is moving, batches in flight (SMPP cannot be
            # asked what it holds, so they hold two windows at most: dispatcher.doubt_limit)
            dispatcher = rt.dispatchers["carrier"]
            return len(order) >= 3 * WINDOW and len(dispatcher._in_flight) >= 2  # noqa: SLF001

        await eventually(flowing, timeout=20, interval=0.001)
        await rt.outbox.submit(rt.workspace_id, [MessageRequest(to="+14155559999", body="Your code is 424242", topic="otp")])
        on_the_wire = len(order)  # read by the SMSC when the code was accepted
        await eventually(lambda: _read(order, "14155559999"), timeout=20, interval=0.001)
        ahead = order.index("14155559999") - on_the_wire
        # Without lanes the code waits for a claimed batch to finish: 229 went first when
        # measured. With them, the window's texts and those written while the code was
        # claimed (5 when measured); half a batch leaves room for a slow machine.
        assert ahead <= BATCH // 2, f"{ahead} marketing texts went before the code"
        await eventually(lambda: _read(order, None, BACKLOG + 1), timeout=30)
    finally:
        await rt.stop()
    assert smsc.summary()["received"] == BACKLOG + 1 and smsc.summary()["duplicates"] == 0


async def _read(order: list[str], destination: str | None, count: int = 0) -> bool:
    return destination in order if destination is not None else len(order) >= count
