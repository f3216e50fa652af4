"""The one fan-out helper: a cancelled batch (Ctrl-C, SIGTERM) ends every task before it
returns, so a caller's `finally` never closes transports under a running task."""

from __future__ import annotations

import asyncio

import pytest

from controller.fanout import fan_out


async def test_cancelling_the_batch_ends_every_task_before_it_returns() -> None:
    started: list[int] = []
    cleaned: list[int] = []
    four_running = asyncio.Event()

    async def work(item: int) -> int:
        started.append(item)
        if len(started) == 4:
            four_running.set()
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(0)  # a close that itself awaits (a logout, a TLS shutdown)
            cleaned.append(item)
        return item

    batch = asyncio.create_task(fan_out(range(6), work, on_error=lambda _, exc: -1, concurrency=4))
    await four_running.wait()
    batch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await batch
    assert sorted(cleaned) == sorted(started) == [0, 1, 2, 3]  # the other two never started


async def test_a_failing_item_is_its_result_and_the_limits_hold() -> None:
    running = 0
    peak = 0

    async def work(item: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        if item == 3:
            raise ValueError("bad item")
        return item * 10

    results = await fan_out(list(range(8)), work, on_error=lambda item, exc: -item, concurrency=3)
    assert results == [0, 10, 20, -3, 40, 50, 60, 70]
    assert peak == 3
