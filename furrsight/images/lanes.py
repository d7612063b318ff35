"""Concurrency inside one process: a few ingests in flight, one database writer at a time."""

from __future__ import annotations

import asyncio
import weakref
from typing import Awaitable, Callable, Iterable, TypeVar

T = TypeVar("T")

_WRITE_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def write_lock() -> asyncio.Lock:
    """One writer at a time per event loop: concurrent ingests in one process queue here instead
    of on SQLite's busy timeout (whose back-off sleeps made 3 lanes slower than one)."""
    loop = asyncio.get_running_loop()
    lock = _WRITE_LOCKS.get(loop)
    if lock is None:
        lock = _WRITE_LOCKS[loop] = asyncio.Lock()
    return lock


async def for_each(items: Iterable[T], concurrency: int, fn: Callable[[T], Awaitable[None]]) -> None:
    """``fn`` on every item, ``concurrency`` at a time; the first error cancels the rest."""
    pending = iter(items)

    async def lane() -> None:
        for item in pending:  # the lanes share one iterator: each takes the next item
            await fn(item)

    lanes = [asyncio.create_task(lane()) for _ in range(max(1, concurrency))]
    try:
        await asyncio.gather(*lanes)
    except BaseException:
        for task in lanes:
            task.cancel()
        await asyncio.gather(*lanes, return_exceptions=True)
        raise
