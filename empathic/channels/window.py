"""A carrier's window of requests in flight, handed out most urgent first.

A channel may have several batches waiting for window slots at once (the dispatcher keeps
some in flight so the window never runs dry). A plain semaphore would serve them in
arrival order, so a one-time code claimed behind thousands of marketing texts would wait
for all of them. Here a freed slot goes to the waiter with the lowest priority value
(`TopicKind.priority`: codes and compliance 0, marketing 3), first come first served
within one priority: a code waits for at most the texts already on the wire.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from types import TracebackType


class PriorityWindow:
    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a window holds at least one request")
        self.size = size
        self.free = size
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def in_use(self) -> int:
        return self.size - self.free

    async def acquire(self, priority: int = 0) -> None:
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return
        slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._order), slot))
        try:
            await slot
        except asyncio.CancelledError:
            if slot.done() and not slot.cancelled():  # handed a slot just as we were cancelled
                self.release()
            raise

    def release(self) -> None:
        """Free a slot: straight to the most urgent waiter, if any."""
        while self._waiters:
            _, _, slot = heapq.heappop(self._waiters)
            if not slot.done():  # a cancelled waiter is skipped
                slot.set_result(None)
                return
        if self.free >= self.size:
            raise RuntimeError("released more slots than were taken")
        self.free += 1

    def slot(self, priority: int = 0) -> _Slot:
        """`async with window.slot(priority):` holds one slot for the block."""
        return _Slot(self, priority)


class _Slot:
    __slots__ = ("_window", "_priority")

    def __init__(self, window: PriorityWindow, priority: int) -> None:
        self._window = window
        self._priority = priority

    async def __aenter__(self) -> None:
        await self._window.acquire(self._priority)

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._window.release()
