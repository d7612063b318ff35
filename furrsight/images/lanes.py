"""Concurrency inside one process: a job's files in flight, a few at a time (the lanes)."""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Iterable, TypeVar

T = TypeVar("T")


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
