"""ESME_RTHROTTLED: the bind pauses, then sends what was throttled again, losing and
doubling nothing. A window's answers arrive together, so its throttles are one piece of
news (one pause), and the pause grows only while the SMSC takes nothing at all."""

from __future__ import annotations

import random

from empathic.channels.base import Inbound, Outbound, Receipt
from empathic.channels.smpp.channel import SmppChannel, SmppSettings
from empathic.core.clock import SystemClock
from empathic.smsc.server import Smsc, SmscSettings

PAUSE = 0.02
SEED = 7


class Sink:
    data_dir = None  # no files: no journal

    async def on_receipts(self, batch: list[Receipt]) -> None: ...

    async def on_inbound(self, inbound: Inbound) -> str:
        return "msg_x"


def settings(port: int) -> SmppSettings:
    return SmppSettings.from_config("c", {
        "host": "127.0.0.1", "port": port, "system_id": "s", "password": "p", "window": 50,
        "throttle_pause": PAUSE, "throttle_retries": 30, "receipts": False, "tps": 100_000,
    })


def test_throttles_during_a_pause_do_not_lengthen_it() -> None:
    ch = SmppChannel("c", settings(1), SystemClock())
    for _ in range(40):  # a window's worth of throttled answers at once
        ch._throttled()  # noqa: SLF001
    assert list(ch.pauses) == [PAUSE]
    ch._paused_until = 0.0  # noqa: SLF001 - the pause is over; the SMSC took nothing since
    ch._throttled()  # noqa: SLF001
    assert list(ch.pauses) == [PAUSE, 2 * PAUSE]
    ch._paused_until = 0.0  # noqa: SLF001
    ch._taken_since_pause = True  # noqa: SLF001 - a text was taken after it: back to the first pause
    ch._throttled()  # noqa: SLF001
    assert list(ch.pauses) == [PAUSE, 2 * PAUSE, PAUSE]


async def test_a_third_of_submits_throttled_loses_and_doubles_nothing_and_never_backs_off_far() -> None:
    async with Smsc(SmscSettings(port=0, throttle_share=0.3, receipts=False, seed=SEED)) as smsc:
        ch = SmppChannel("c", settings(smsc.port), SystemClock())
        await ch.start(Sink())
        assert await ch.wait_up(5)
        try:
            batch = [Outbound(f"m{i}", f"+1415555{i:04d}", "+18005550100", f"text {i}") for i in range(600)]
            results = [r for start in range(0, len(batch), 100) for r in await ch.send(batch[start:start + 100])]
        finally:
            await ch.stop()
    assert [r.error for r in results if r.error is not None] == []
    summary = smsc.summary()
    assert summary["received"] == summary["unique"] == 600 and summary["duplicates"] == 0
    assert summary["throttled"] > 100  # the SMSC really did throttle
    # A pause doubles only when nothing was taken since the last one, so n pauses in a row
    # need n throttled answers in a row: the SMSC's draws (seeded, one per submit_sm, in
    # order) bound the longest pause. How the submits fall into windows is timing, so a
    # fixed bound (4 x) failed now and then at a batch's tail of one-text windows.
    draws = random.Random(SEED)
    run = longest = 0
    for _ in range(summary["submits"]):
        run = run + 1 if draws.random() < 0.3 else 0
        longest = max(longest, run)
    assert max(ch.pauses) <= PAUSE * 2 ** max(longest - 1, 0), (longest, sorted(ch.pauses)[-5:])
    assert sorted(ch.pauses)[len(ch.pauses) // 2] == PAUSE, sorted(ch.pauses)  # most pauses are the first one
