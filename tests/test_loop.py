"""The background loop: a wake during a pass is kept, and stop waits for the pass."""

from __future__ import annotations

import asyncio

from empathic.loop import Loop


async def test_a_wake_during_a_pass_runs_the_next_pass_at_once() -> None:
    passes: list[float] = []
    loop_ref: list[Loop] = []

    async def step() -> float:
        passes.append(asyncio.get_running_loop().time())
        if len(passes) == 1:
            loop_ref[0].wake()  # new work committed while this pass runs
        return 30.0  # otherwise it would sleep half a minute

    loop = Loop("test", step)
    loop_ref.append(loop)
    loop.start()
    try:
        for _ in range(100):
            if len(passes) >= 2:
                break
            await asyncio.sleep(0.01)
        assert len(passes) >= 2 and passes[1] - passes[0] < 1.0
    finally:
        await loop.stop()


async def test_stop_lets_the_running_pass_finish() -> None:
    finished = asyncio.Event()
    started = asyncio.Event()

    async def step() -> float:
        started.set()
        await asyncio.sleep(0.1)  # a transaction in flight
        finished.set()
        return 30.0

    loop = Loop("test", step)
    loop.start()
    await started.wait()
    await loop.stop()
    assert finished.is_set()
