"""Per-host politeness and the client-wide transfer limit.

A ``Host`` keeps what the client knows of one scheme://host:port: its robots.txt, its slots
(requests in flight to it) and when its last request left. ``take_turn`` is the only way a
request goes out: after the host's delay, then through the ``TransferGate``, so a request
waiting for its host holds nothing the other hosts need. ``Hosts`` is the table of them, with
the idle ones forgotten once it grows large (a list over a million hosts must not keep a
million robots.txt parsers).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from furrsight.scraping.pacing import SharedPacer
from furrsight.scraping.robots import Robots

KEEP_HOSTS = 10_000  # hosts remembered before idle ones are forgotten
DOWN_FOR = 300.0  # seconds a host whose robots.txt could not be reached is taken as down


class TransferGate:
    """Requests on the wire at once, all hosts: at most ``limit``. While paused (the scrape runner
    pauses it while ingest is behind, so fetched bodies cannot pile up) no download starts.

    robots.txt look-ups yield to downloads: a downloaded body is work for ingest now, a robots.txt
    answer only a host's delay later, so at the start of a list over many hosts ingest gets its
    first files while the other hosts' robots.txt are still being read, instead of after all of
    them. A pause holds back downloads only: look-ups go on then (they bring no body), so the
    hosts further down the list are ready by the time ingest catches up."""

    def __init__(self, limit: int) -> None:
        self.free = limit
        self.paused = False
        self.queues: tuple[deque[asyncio.Future[None]], ...] = (deque(), deque())  # downloads, look-ups

    async def acquire(self, lookup: bool = False) -> None:
        if self.free > 0 and (lookup or not self.paused):  # then nobody of this kind waits (see _wake)
            self.free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queues[lookup].append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as it was cancelled: hand it on
            raise

    def release(self) -> None:
        self.free += 1
        self._wake()

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self._wake()

    def _wake(self) -> None:
        """Hand free slots to the waiters: downloads first (unless paused), then look-ups, each in
        the order they came."""
        for lookup, queue in enumerate(self.queues):
            while queue and self.free > 0 and (lookup or not self.paused):
                waiter = queue.popleft()
                if not waiter.done():  # a cancelled waiter is skipped
                    self.free -= 1
                    waiter.set_result(None)


class Host:
    def __init__(self, key: str, concurrency: int) -> None:
        self.key = key
        self.slots = asyncio.Semaphore(concurrency)
        self.turn = asyncio.Lock()  # requests of this host take their turn one after another
        self.last_at = -float("inf")  # when the last request to this host left
        self.robots: Robots | None = None
        self.crawl_delay = 0.0
        self.down: tuple[float, str, str] | None = None  # robots.txt unreachable: (until when, reason, message)
        self.robots_lock = asyncio.Lock()
        self.users = 0  # requests (or robots.txt look-ups) under way

    @contextmanager
    def used(self) -> Iterator[Host]:
        self.users += 1
        try:
            yield self
        finally:
            self.users -= 1

    async def take_turn(
        self, delay: float, gate: TransferGate, pacer: SharedPacer | None, lookup: bool = False
    ) -> None:
        """Wait until ``delay`` after this host's last request, then for a transfer slot: returns
        holding one (the caller releases it). The host's clock starts when a request really
        leaves, so a wait for a slot never brings two requests closer than ``delay``. ``lookup``:
        a robots.txt request, which yields its slot to downloads (see ``TransferGate``)."""
        async with self.turn:
            wait = self.last_at + delay - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await gate.acquire(lookup)
            try:
                if pacer is not None:
                    await pacer.wait(self.key, delay)  # other jobs and processes on this host
            except BaseException:
                gate.release()
                raise
            self.last_at = time.monotonic()

    def mark_down(self, reason: str, message: str) -> None:
        self.down = (time.monotonic() + DOWN_FOR, reason, message)

    def still_down(self) -> tuple[str, str] | None:
        """Why this host was unreachable (reason, message), if that was less than ``DOWN_FOR`` ago."""
        if self.down is not None and time.monotonic() < self.down[0]:
            return self.down[1], self.down[2]
        return None

    def idle(self, now: float, delay: float) -> bool:
        return self.users == 0 and now - self.last_at > max(delay, self.crawl_delay)


class Hosts:
    def __init__(self, concurrency: int, delay: float) -> None:
        self.concurrency, self.delay = concurrency, delay
        self.table: dict[str, Host] = {}
        self.sweep_at = KEEP_HOSTS

    def get(self, key: str) -> Host:
        host = self.table.get(key)
        if host is None:
            if len(self.table) >= self.sweep_at:
                self._forget_idle()
            host = self.table[key] = Host(key, self.concurrency)
        return host

    def _forget_idle(self) -> None:
        """Forget hosts with nothing under way and their delay over (only their robots.txt is
        lost: read again if they come back); next time, sweep when the table has doubled."""
        now = time.monotonic()
        self.table = {k: h for k, h in self.table.items() if not h.idle(now, self.delay)}
        self.sweep_at = max(KEEP_HOSTS, 2 * len(self.table))
