"""channels/window.py: a freed slot goes to the most urgent waiter, first come first served
within one priority; cancelled waiters neither get nor leak a slot."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from empathic.channels.window import PriorityWindow


async def _grant_order(size: int, priorities: list[int]) -> list[int]:
    """Fill the window, queue one waiter per priority, then free slots one at a time."""
    window = PriorityWindow(size)
    for _ in range(size):
        await window.acquire(9)
    granted: list[int] = []

    async def waiter(index: int, priority: int) -> None:
        await window.acquire(priority)
        granted.append(index)

    tasks = [asyncio.create_task(waiter(i, p)) for i, p in enumerate(priorities)]
    await asyncio.sleep(0)  # every waiter is queued
    for _ in priorities:
        window.release()
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    return granted


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4), st.lists(st.integers(0, 3), min_size=1, max_size=30))
def test_slots_go_most_urgent_first_then_in_arrival_order(size: int, priorities: list[int]) -> None:
    granted = asyncio.run(_grant_order(size, priorities))
    assert granted == sorted(range(len(priorities)), key=lambda i: (priorities[i], i))


async def test_a_free_slot_is_taken_at_once_and_all_come_back() -> None:
    window = PriorityWindow(3)
    async with window.slot(3):
        await window.acquire(0)
        assert window.in_use == 2
        window.release()
    assert window.free == 3
    with pytest.raises(RuntimeError):
        window.release()  # more releases than acquires is a bug, not a bigger window


async def test_a_cancelled_waiter_neither_gets_nor_leaks_a_slot() -> None:
    window = PriorityWindow(1)
    await window.acquire()
    gone = asyncio.create_task(window.acquire(0))
    later = asyncio.create_task(window.acquire(3))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    window.release()  # skips the cancelled waiter
    await asyncio.wait_for(later, 1)
    assert window.free == 0
    window.release()
    assert window.free == 1


async def test_a_waiter_cancelled_as_it_is_handed_a_slot_gives_it_back() -> None:
    window = PriorityWindow(1)
    await window.acquire()
    racing = asyncio.create_task(window.acquire(0))
    await asyncio.sleep(0)
    window.release()  # hands the slot to `racing`
    racing.cancel()  # before it resumed
    with pytest.raises(asyncio.CancelledError):
        await racing
    assert window.free == 1
