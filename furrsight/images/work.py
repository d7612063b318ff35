"""The CPU-bound middle of ingest, run where the cores are: in a pool of worker processes, or in
a thread of the caller when a pool is not worth it (a few files, a one-core machine, tests).

The pool is one per process, started on first need and kept: a worker process of Dramatiq runs
many jobs, and starting Python with Pillow, numpy and scipy costs about a second. It uses the
``forkserver`` start method (never ``fork``: the caller has threads, and a forked copy of a
held lock deadlocks) with this module preloaded, so a new worker is a cheap fork of a warm
process. Results come back as plain values (a refusal too: an exception with a custom
``__init__`` does not survive pickling).
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import multiprocessing
import multiprocessing.util
import os
import select
import sqlite3
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from furrsight.images import collage
from furrsight.images.analysis import Analysis
from furrsight.images.decode import Refused, encode_panel
from furrsight.images.steps import (
    WORK_STEPS,
    Run,
    check_bytes,
    crop_panels,
    hash_bytes,
    sniff_type,
)  # fmt: skip
from furrsight.settings import IngestSettings
from furrsight.store import FileStore


def _keep_heap() -> None:
    """Keep large buffers in the heap instead of mapping and unmapping them per image (set in
    each pool worker by its initializer, not at import: other processes keep glibc's defaults).

    glibc serves allocations over 128 KiB (every decoded image, every resized copy) with a fresh
    mmap, and a fresh mapping costs a page fault per 4 KiB page when first touched. A long-lived
    process raises that threshold by itself after its first large frees; a new worker process
    does not: measured, 1,500 page faults and 15 ms of CPU per 1600x1200 photo, against 9 ms
    with the thresholds below (64 MiB to map, 128 MiB kept before trimming). glibc only."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 64 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 128 << 20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):  # not glibc: its allocator decides
        pass


FAULT_ENV = "FURRSIGHT_TEST_INGEST_FAULT"  # tests only: "kill:STEP" or "raise:STEP" (child.STEP); "...@NAME":
# only for a file (handed by path) whose name is NAME


class InjectedFault(RuntimeError):
    """Raised at a step when the test hook asks for it."""


def checkpoint(name: str, fault: str | None = None) -> None:
    """The test hook: die (SIGKILL) or raise just before step ``name``. Read from the environment
    in the caller's process and handed to workers (a pool's workers keep the environment they
    were started with)."""
    fault = fault if fault is not None else os.environ.get(FAULT_ENV)
    if not fault:
        return
    action, _, step = fault.partition(":")
    if step != name:
        return
    if action == "kill":
        os.kill(os.getpid(), 9)
    raise InjectedFault(f"injected fault before {name}")


@dataclass(frozen=True)
class Prepared:
    """What the worker found out and wrote."""

    sha256: str
    width: int
    height: int
    analysis: Analysis | None
    cut: collage.Cut | None
    failure: str | None
    wrote: list[str]  # files this run created (the caller removes them if recording fails)
    durable: list[str]  # files to fsync before the row that points at them commits
    size: int = 0  # bytes of the original
    format: str = ""  # as sniffed (``prepare_file``; ``prepare``'s caller sniffed it itself)


@dataclass(frozen=True)
class Refusal:
    reason: str
    message: str


@dataclass(frozen=True)
class Unreadable:
    """The file could not be read (``prepare_file``): the caller says so in words."""

    message: str


@dataclass(frozen=True)
class Failed:
    """An unexpected error on one file of a batch (the others go on): its ``repr``."""

    message: str


@dataclass(frozen=True)
class Known:
    """The bytes are already stored (the caller adds a sighting)."""

    sha256: str


_local = threading.local()


def _stored(db_path: str, sha256: str) -> bool:
    """Is an image with these bytes recorded? On this thread's own connection (a worker process
    has one; so does each thread of the caller's pool). A hint only: the recorder checks again
    under the write lock."""
    conns: dict[str, sqlite3.Connection] = _local.__dict__.setdefault("conns", {})
    conn = conns.get(db_path)
    if conn is None:
        conn = conns[db_path] = sqlite3.connect(db_path, timeout=30, isolation_level=None, check_same_thread=False)
    return conn.execute("SELECT 1 FROM images WHERE sha256 = ?", (sha256,)).fetchone() is not None


@functools.lru_cache(maxsize=8)
def _store(root: str) -> FileStore:
    """The file store at ``root``, made once per process (``FileStore`` resolves its path)."""
    return FileStore(Path(root))


def prepare(
    data: bytes, limits: IngestSettings, root: str, db_path: str, is_panel: bool, fault: str = "", dedup: bool = True
) -> Prepared | Refusal | Known:
    """SHA-256 and the dedup look-up, then header, decode, analysis, the original and its
    thumbnail written to the store. Hashing here, not in the caller, keeps the caller (which
    also fetches, for a scrape) light: 0.4 ms of its time per 200 KiB file."""
    prefix = "child." if is_panel else ""
    checkpoint(prefix + "hash", fault)
    sha256 = hash_bytes(data)
    checkpoint(prefix + "dedup", fault)
    if dedup and _stored(db_path, sha256):
        return Known(sha256)
    run = Run(data, sha256, limits, _store(root), is_panel)
    try:
        for name, step in WORK_STEPS:
            checkpoint(prefix + name, fault)
            step(run)
    except BaseException as exc:
        for path in run.wrote:  # nothing will point at them
            path.unlink(missing_ok=True)
        if isinstance(exc, Refused):
            return Refusal(exc.reason, exc.message)
        raise
    assert run.header is not None
    return Prepared(
        sha256, run.header.width, run.header.height, run.analysis, run.cut, run.failure,
        [str(p) for p in run.wrote], [str(p) for p in run.durable], len(data),
    )  # fmt: skip


Found: TypeAlias = "Prepared | Refusal | Known | Unreadable | Failed"


def prepare_files(
    paths: list[str], limits: IngestSettings, root: str, db_path: str, fault: str = "", dedup: bool = True
) -> list[Found]:
    """Files on this server (a folder import, staged uploads), read here in the worker, each
    through the caller's two cheap checks (size, type) and ``prepare``. Handing the worker paths
    instead of bytes spares the job's process reading each file and pickling it into the pool,
    and the worker unpickling it; a batch of files per trip spares the pool's hand-over per file."""
    found: list[Found] = []
    hook, _, only = fault.partition("@")
    for path in paths:
        try:
            here = hook if not only or Path(path).name == only else ""
            found.append(_prepare_file(path, limits, root, db_path, here, dedup))
        except Exception as exc:  # one file's failure is not its batch's
            found.append(Failed(repr(exc)))
    return found


def _prepare_file(path: str, limits: IngestSettings, root: str, db_path: str, fault: str, dedup: bool) -> Found:
    try:
        with open(path, "rb") as handle:
            data = handle.read(limits.max_file_bytes + 1)  # a larger file is refused as too large
    except OSError as exc:
        return Unreadable(str(exc))
    try:
        checkpoint("check_bytes", fault)
        check_bytes(data, limits)
        checkpoint("sniff", fault)
        fmt = sniff_type(data)
    except Refused as refused:
        return Refusal(refused.reason, refused.message)
    prepared = prepare(data, limits, root, db_path, False, fault, dedup)
    return dataclasses.replace(prepared, format=fmt) if isinstance(prepared, Prepared) else prepared


def reanalyse(data: bytes, sha256: str, limits: IngestSettings, root: str, is_panel: bool) -> Prepared | Refusal:
    """Re-processing a stored original: the worker's steps again, all but writing the original."""
    run = Run(data, sha256, limits, FileStore(Path(root)), is_panel, fresh=False)
    try:
        for name, step in WORK_STEPS:
            if name != "store_original":
                step(run)
    except Refused as refused:
        return Refusal(refused.reason, refused.message)
    assert run.header is not None
    return Prepared(sha256, run.header.width, run.header.height, run.analysis, run.cut, run.failure, [], [])


def panels(data: bytes | str, cut: collage.Cut, width: int, height: int) -> list[tuple[list[int], bytes]]:
    """A collage's two panels as JPEG files of their own, with their crop boxes; ``data`` is
    the original's bytes or the path of its stored copy."""
    if isinstance(data, str):
        data = Path(data).read_bytes()
    return [(box, encode_panel(img)) for box, img in crop_panels(data, cut, width, height)]


# -- the process pool --------------------------------------------------------------------------
_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()
_warm = threading.Event()


def pool(processes: int) -> Executor:
    """This process's worker pool (started on the first call)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["furrsight.images.work"])
            _pool = ProcessPoolExecutor(
                processes, mp_context=context, initializer=_worker_start, initargs=(os.getpid(),)
            )
            # Not atexit: in a process that multiprocessing started itself (Dramatiq's worker
            # processes), exit joins child processes before atexit runs, and idle pool workers
            # never end: the exit hung. Finalizers with a priority run before those joins.
            multiprocessing.util.Finalize(None, shutdown_pool, exitpriority=100)
        return _pool


def _worker_start(parent: int) -> None:
    """Pool initializer: the allocator settings of a worker, and its watch on ``parent``."""
    _keep_heap()
    _exit_with(parent)


def _exit_with(parent: int) -> None:
    """End this worker when the process that started the pool ends. Workers of a process that was
    SIGKILLed (or OOM-killed) otherwise wait on their queue forever, and keep the forkserver
    alive with them (each holds its "alive" pipe)."""

    def watch() -> None:
        try:
            handle = os.pidfd_open(parent)  # readable once the process has ended (Linux 5.3+)
        except ProcessLookupError:
            os._exit(0)
        except (AttributeError, OSError):  # no pidfd: ask every two seconds
            while True:
                time.sleep(2)
                try:
                    os.kill(parent, 0)
                except ProcessLookupError:
                    os._exit(0)
        select.select([handle], [], [])
        os._exit(0)

    threading.Thread(target=watch, name="furrsight-parent-watch", daemon=True).start()


def warm(processes: int) -> None:
    """Start the pool and all its workers now (about a second, blocking); then free."""
    if _warm.is_set():
        return
    executor = pool(processes)
    for future in [executor.submit(os.getpid) for _ in range(processes)]:  # each submit forks a worker
        future.result()
    _warm.set()


def is_warm() -> bool:
    return _warm.is_set()


def discard_pool(broken: Executor) -> None:
    """Drop a pool whose worker died (the next call starts a fresh one); a pool that another
    caller already replaced is left alone."""
    global _pool
    with _pool_lock:
        if _pool is broken:
            _warm.clear()
            _pool = None
    broken.shutdown(wait=False, cancel_futures=True)


def shutdown_pool() -> None:
    global _pool
    with _pool_lock:
        _warm.clear()
        if _pool is not None:
            _pool.shutdown(wait=True, cancel_futures=True)
            _pool = None


def default_processes() -> int:
    """Worker processes for ingest: one per core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
