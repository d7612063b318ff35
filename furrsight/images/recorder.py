"""The database side of ingest: one writer thread per ingest engine, committing in groups.

Each database operation of ingest (look a SHA-256 up, record a new image with its source and
near-duplicate group, add a sighting, finish a split) is a small function of a connection.
Callers queue them; one thread fsyncs the originals the queued rows will point at, then runs
the operations in a single ``BEGIN IMMEDIATE``
transaction, each operation inside its own savepoint (a failing one is rolled back alone and
its caller gets the exception), then commits once and answers every caller. While a group
commits, the next one gathers, so a busy import writes tens of rows per transaction.

Why not piccolo here: piccolo opens a connection per query (each one loading sqlite-vec) and
recording one image took about six queries, 7 ms of the old ingest's 27 ms per image; this
plain connection kept open in one thread does the same work in well under a millisecond. The
schema still comes from the piccolo tables and migrations; only these hot statements are SQL.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from furrsight.db.engine import connect
from furrsight.images.neardup import PhashIndex, index_for, prune_log
from furrsight.settings import Settings
from furrsight.store import FileStore, drop_cached

T = TypeVar("T")
Operation = Callable[["Tx"], Any]
MAX_GROUP = 256  # operations per transaction, at most


@dataclass
class Tx:
    """What an operation gets: the connection (inside the transaction) and the phash index."""

    conn: sqlite3.Connection
    index: PhashIndex


class Recorder:
    def __init__(self, settings: Settings) -> None:
        self.db_path = str(settings.db_path)
        self.busy_timeout_ms = settings.db_busy_timeout_ms
        self.index = index_for(self.db_path)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="furrsight-recorder")
        self._local = threading.local()
        self._queue: list[tuple[Operation, list[str], bool, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.transactions = 0

    async def run(self, op: Callable[[Tx], T], durable: list[str] | None = None, *, drop: bool = True) -> T:
        """Queue ``op`` for the next group commit and wait for its result (or its exception).
        The files in ``durable`` are fsynced before the transaction that runs ``op`` begins,
        and dropped from the page cache after it commits unless ``drop`` is False (a collage's
        original, about to be read again to cut its panels: its caller drops it after)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.append((op, durable or [], drop, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await asyncio.shield(future)  # a cancelled caller's operation still completes

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
            try:
                work = [(op, files, drop) for op, files, drop, _ in group]
                outcomes = await loop.run_in_executor(self._thread, self._apply, work)
            except BaseException as exc:  # the commit itself failed: every operation of the group did
                outcomes = [(False, exc)] * len(group)
            for (_, _, _, future), (ok, value) in zip(group, outcomes, strict=True):
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.db_path, self.busy_timeout_ms)
        return conn

    def _apply(self, ops: list[tuple[Operation, list[str], bool]]) -> list[tuple[bool, Any]]:
        conn = self._conn()
        tx = Tx(conn, self.index)
        # before the write lock: other writers need not wait
        failed = FileStore.make_durable_groups([files for _, files, _ in ops])
        unsafe = {i: exc for i, exc in enumerate(failed) if exc is not None}
        outcomes: list[tuple[bool, Any]] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for i, (op, _, _) in enumerate(ops):
                if i in unsafe:  # its file is not safely on disk: no row may point at it
                    outcomes.append((False, unsafe[i]))
                    continue
                conn.execute("SAVEPOINT op")
                try:
                    outcomes.append((True, op(tx)))
                    conn.execute("RELEASE op")
                except Exception as exc:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    self.index.invalidate()  # it may hold rows that were just rolled back
                    outcomes.append((False, exc))
            self.transactions += 1
            if self.transactions % 500 == 0:
                prune_log(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self.index.invalidate()
            raise
        # Durable now, so clean: out of the page cache at once (``drop_cached`` says why).
        drop_cached([path for i, (_, files, drop) in enumerate(ops) if drop and i not in unsafe for path in files])
        return outcomes

    def _close_conn(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    async def aclose(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close_conn)
        self._thread.shutdown(wait=True)
