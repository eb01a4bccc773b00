"""Background loops that sleep until woken or due, and finish their current pass to stop.

Cancelling a task in the middle of a database transaction would abandon its connection
(on SQLite, with the write lock held), so `stop()` asks the loop to end after the pass in
progress and cancels only if that takes longer than the grace period.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Loop:
    def __init__(self, name: str, step: Callable[[], Awaitable[float]], *, error_delay: float = 1.0) -> None:
        """`step` does one pass and returns how many seconds to sleep before the next (0: at once)."""
        self.name = name
        self._step = step
        self._error_delay = error_delay
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=self.name)

    def wake(self) -> None:
        self._wake.set()

    async def stop(self, grace: float = 10.0) -> None:
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=grace)
        except TimeoutError:
            log.warning("%s did not finish its pass within %.0fs; cancelling", self.name, grace)
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def _run(self) -> None:
        while not self._stopping:
            # Cleared before the pass, so a wake() during it is not lost: it skips the sleep.
            self._wake.clear()
            try:
                delay = await self._step()
            except Exception:
                log.exception("%s pass failed; retrying in %.1fs", self.name, self._error_delay)
                delay = self._error_delay
            if self._stopping:
                break
            if delay <= 0:
                await asyncio.sleep(0)  # let others run between back-to-back passes
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            except TimeoutError:
                pass
