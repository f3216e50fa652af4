"""The one bounded fan-out every batch runs on (scan, discovery, batch re-activation).

Built on `asyncio.TaskGroup`, so no task outlives the batch: when the caller is cancelled
(Ctrl-C, SIGTERM) or a result sink fails, every sibling is cancelled and awaited before the
error leaves `fan_out`, and a caller closing its transports afterwards never closes them under
a running task. A failure of one item's work is that item's result (`on_error`), never the end
of the batch.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from contextlib import AsyncExitStack
from typing import TypeVar, cast

T = TypeVar("T")
R = TypeVar("R")


async def fan_out(
    items: Sequence[T],
    work: Callable[[T], Awaitable[R]],
    *,
    on_error: Callable[[T, Exception], R],
    concurrency: int,
    per_site: int | None = None,
    site_of: Callable[[T], str | None] | None = None,
    one_at_a_time: Callable[[T], Hashable] | None = None,
    on_result: Callable[[R], Awaitable[None]] | None = None,
) -> list[R]:
    """Run `work` over `items`, at most `concurrency` at once, `per_site` per `site_of(item)`,
    and one at a time per `one_at_a_time(item)` key; results come back in input order and go
    to `on_result` as they land. An exception of `work` becomes `on_error(item, exc)`; an
    exception of `on_result` stops the batch (siblings cancelled and awaited) and is raised."""
    overall = asyncio.Semaphore(max(1, concurrency))
    sites: defaultdict[str, asyncio.Semaphore] = defaultdict(
        lambda: asyncio.Semaphore(max(1, per_site or concurrency))
    )
    keys: defaultdict[Hashable, asyncio.Lock] = defaultdict(asyncio.Lock)
    results: list[R | None] = [None] * len(items)

    async def one(index: int, item: T) -> None:
        # Narrowest limit first: an item waiting for its own key or its site's cap must not
        # sit on an overall slot that an item of another site could use.
        async with AsyncExitStack() as limits:
            if one_at_a_time is not None:
                await limits.enter_async_context(keys[one_at_a_time(item)])
            if per_site is not None:
                await limits.enter_async_context(sites[(site_of(item) if site_of else None) or ""])
            await limits.enter_async_context(overall)
            try:
                result = await work(item)
            except Exception as exc:
                result = on_error(item, exc)
        results[index] = result
        if on_result is not None:
            await on_result(result)

    try:
        async with asyncio.TaskGroup() as group:
            for index, item in enumerate(items):
                group.create_task(one(index, item))
    except BaseExceptionGroup as failed:
        # Only sinks raise here (work errors are results): report the first as itself.
        raise failed.exceptions[0] from None
    return cast(list[R], results)  # every slot is filled once the group has ended cleanly
