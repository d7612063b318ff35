"""The one place that opens SQLite.

* every connection (piccolo opens a new one per query) loads sqlite-vec and sets its pragmas
  through the ``factory`` hook;
* the file is in WAL mode, with a busy timeout from the settings;
* one long-lived "keeper" connection stays open for the life of the process, so that closing
  piccolo's short-lived connections does not checkpoint the WAL every time (3x faster writes);
* read-then-write work uses ``write_transaction()``: ``BEGIN IMMEDIATE`` takes the write lock up
  front, so two writers queue on the busy timeout instead of failing with "database is locked";
  writers of one process (one event loop) queue first on an asyncio lock, in order;
* ``reading()`` runs several reads on one connection (one snapshot, one thread);
* ``write_call(work)`` runs a whole read-check-write as ONE thread call on this process's writer
  connection (``BEGIN IMMEDIATE`` … ``COMMIT``): the write lock is held for one await, not one per
  piccolo query — under twenty concurrent review saves each of those awaits waited its turn on the
  event loop while every other writer waited on the lock (docs/review.md, Figures).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import weakref
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, AsyncIterator, Callable, TypeVar

import sqlite_vec
from piccolo.engine.sqlite import SQLiteEngine, TransactionType

from furrsight.db.sqlite_compat import ORIGIN
from furrsight.settings import Settings

_writing: ContextVar[bool] = ContextVar("furrsight_writing", default=False)
T = TypeVar("T")
_PICCOLO_TYPES = sqlite3.PARSE_DECLTYPES | sqlite3.PARSE_COLNAMES  # as piccolo's SQLiteEngine connects


class FurrsightConnection(sqlite3.Connection):
    """A connection with sqlite-vec loaded and our pragmas set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.enable_load_extension(True)
        try:
            sqlite_vec.load(self)
        finally:
            self.enable_load_extension(False)
        self.execute("PRAGMA foreign_keys = ON")
        self.execute("PRAGMA synchronous = NORMAL")


def connect(
    path: str | Path, busy_timeout_ms: int = 10_000, *, any_thread: bool = False, detect_types: int = 0
) -> FurrsightConnection:
    """A plain synchronous connection with the same set-up (doctor, keeper, bulk vector SQL)."""
    return sqlite3.connect(  # type: ignore[return-value]
        str(path),
        timeout=busy_timeout_ms / 1000,
        factory=FurrsightConnection,
        isolation_level=None,
        check_same_thread=not any_thread,
        detect_types=detect_types,
    )


class Database:
    """Owns the piccolo engine and the keeper connection of one process."""

    def __init__(self, engine: SQLiteEngine) -> None:
        self.engine = engine
        self._keeper: sqlite3.Connection | None = None
        self._writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()
        self._writer: sqlite3.Connection | None = None  # write_call's connection, opened on first use
        self._writer_lock = threading.Lock()  # one thread at a time on it (a cancelled await leaves its thread running)
        self._readers: list[tuple[int, sqlite3.Connection]] = []  # read_call's idle connections, by generation
        self._readers_lock = threading.Lock()
        self._generation = 0  # close() ends a generation: its connections are not reused

    def open(self, settings: Settings) -> None:
        """Point the engine at the settings' database; a no-op when already open there."""
        if self._keeper is not None and self.engine.path == str(settings.db_path):
            return
        settings.data_path.mkdir(parents=True, exist_ok=True)
        self.close()
        self.engine.path = str(settings.db_path)
        self.engine.connection_kwargs["timeout"] = settings.db_busy_timeout_ms / 1000
        self._keeper = connect(settings.db_path, settings.db_busy_timeout_ms, any_thread=True)
        self._keeper.execute("PRAGMA journal_mode = WAL")

    def close(self) -> None:
        with self._readers_lock:
            self._generation += 1
            for _, conn in self._readers:
                conn.close()
            self._readers.clear()
        with self._writer_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        if self._keeper is not None:
            self._keeper.close()
            self._keeper = None

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[None]:
        """Several reads on one connection (a deferred transaction: one consistent snapshot, no
        lock that blocks a writer in WAL mode). piccolo otherwise opens a new aiosqlite
        connection — a new thread — for every query: about 1 ms each on two cores."""
        async with self.engine.transaction(transaction_type=TransactionType.deferred):
            yield

    @asynccontextmanager
    async def write_transaction(self) -> AsyncIterator[None]:
        """``BEGIN IMMEDIATE``, after this process's earlier writers (first come, first served).

        Writers of one process queue on an asyncio lock rather than on SQLite's busy handler,
        which polls with sleeps of up to 100 ms and serves no one in order: with 20 concurrent
        review saves that made the slowest wait seconds. A write inside a write joins it."""
        if _writing.get():
            async with self.engine.transaction(transaction_type=TransactionType.immediate):
                yield
            return
        lock = self._writers.setdefault(asyncio.get_running_loop(), asyncio.Lock())
        async with lock:
            token = _writing.set(True)
            try:
                async with self.engine.transaction(transaction_type=TransactionType.immediate):
                    yield
            finally:
                _writing.reset(token)

    async def write_call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(conn)`` inside ``BEGIN IMMEDIATE`` … ``COMMIT`` in one thread call, after this
        process's earlier writers (the same queue as ``write_transaction``); an exception rolls
        back. ``conn`` gives rows as ``sqlite3.Row``. Not inside a ``write_transaction``."""
        if _writing.get():
            raise RuntimeError("write_call inside a write_transaction would wait for itself")
        lock = self._writers.setdefault(asyncio.get_running_loop(), asyncio.Lock())
        async with lock:
            return await asyncio.to_thread(self._write_now, work)

    async def read_call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(conn)`` in one thread call on a pooled reader connection, inside one deferred
        transaction (one snapshot). Rows are ``sqlite3.Row`` with piccolo's column types
        (``PARSE_DECLTYPES``: a ``Timestamptz`` is a datetime, a ``Boolean`` a bool)."""
        return await asyncio.to_thread(self._read_now, work)

    def _read_now(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._readers_lock:
            generation = self._generation
            conn = self._readers.pop()[1] if self._readers else None
        if conn is None:
            conn = connect(self.engine.path, self._timeout_ms(), any_thread=True, detect_types=_PICCOLO_TYPES)
            conn.row_factory = sqlite3.Row
        try:
            conn.execute("BEGIN")
            try:
                return work(conn)
            finally:
                conn.execute("COMMIT")  # a read: ends the snapshot
        finally:
            with self._readers_lock:
                if generation == self._generation and len(self._readers) < 8:
                    self._readers.append((generation, conn))
                    conn = None
            if conn is not None:
                conn.close()

    def _timeout_ms(self) -> int:
        return int(float(self.engine.connection_kwargs.get("timeout", 10)) * 1000)

    def _write_now(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._writer_lock:
            if self._writer is None:
                self._writer = connect(self.engine.path, self._timeout_ms(), any_thread=True)
                self._writer.row_factory = sqlite3.Row
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result


def compiled(query: Any) -> tuple[str, list[Any]]:
    """A piccolo query as SQLite SQL and its arguments (``?`` placeholders), to run on a plain
    connection in ``read_call`` — the filters stay built by piccolo."""
    return query.querystrings[0].compile_string(engine_type="sqlite")  # type: ignore[no-any-return]


def new_engine() -> SQLiteEngine:
    return SQLiteEngine(path="furrsight.db", factory=FurrsightConnection, timeout=10)


def sqlite_report() -> dict[str, str]:
    """What doctor prints about SQLite: the module in use and the sqlite-vec version."""
    conn = sqlite3.connect(":memory:", factory=FurrsightConnection)
    try:
        (vec_version,) = conn.execute("select vec_version()").fetchone()
        return {"module": ORIGIN, "sqlite": sqlite3.sqlite_version, "sqlite_vec": vec_version}
    finally:
        conn.close()
