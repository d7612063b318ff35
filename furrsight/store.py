"""The content-addressed file store: ``files/ab/<sha256>`` under the data directory.

One level of 256 folders: a million images make about 4,000 entries per folder, which ext4 and
XFS index well; a second level (65,536 folders) cost a mkdir for nearly every new image of a
dataset under a hundred thousand images (0.6 ms of ingest's ~8 ms per image).

The store owns every path it hands out: callers give a SHA-256 (checked to be 64 hex digits)
and a kind, never a path, so nothing can be written outside the data directory. Writes are
atomic: a temp file in the same folder, flushed and fsynced, then renamed into place; a crash
leaves at worst a ``.tmp-*`` file that ``sweep_temp()`` removes, never a half-written original
that a row points at. Ingest writes a new image's files in place (``fresh``): no row points at
them until they are complete and durable, and a torn one left by a crash is a file without a
row (rewritten by the next ingest of those bytes, removed by ``doctor --deep``).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import itertools
import os
import re
import tempfile
from pathlib import Path
from typing import Callable

import aiofiles
import aiofiles.os

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
LAYOUT_MARKER = ".layout"  # in files/: the store is in the one-level layout (upgrade_layout ran)
_TEMP_NAMES = itertools.count()  # temp files' names: the process id and this counter
_MADE: set[Path] = set()  # shard folders this process knows exist (a mkdir per write cost 0.6 ms)


def fsync_path(path: Path | str) -> None:
    """fsync a file or a folder (a folder's fsync makes the entries renamed into it last)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _load_syncfs() -> Callable[[int], int] | None:
    """Linux's syncfs(2) from the C library (Python's ``os`` has no binding), or None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
    return fn  # type: ignore[no-any-return]


_SYNCFS = _load_syncfs()


def syncfs_path(path: Path | str) -> None:
    """Flush the whole filesystem holding ``path`` (data and metadata, every file): one journal
    commit where an fsync per file and per folder made one each. Reports a write-back error of
    any file since the last call (Linux 5.8 on)."""
    assert _SYNCFS is not None
    fd = os.open(path, os.O_RDONLY)
    try:
        if _SYNCFS(fd) != 0:
            code = ctypes.get_errno() or errno.EIO
            raise OSError(code, f"syncfs: {os.strerror(code)}", str(path))
    finally:
        os.close(fd)


def drop_cached(paths: list[str]) -> None:
    """Let the kernel drop these files' pages from its page cache (best effort: a file gone
    since, or a system without ``posix_fadvise``, is skipped). Ingest's recorder calls it for
    the originals it has just made durable: clean pages go at once (dirty ones would only be
    queued for write-back, so call it after ``syncfs``/fsync).

    Why: an import writes each original once, and only the embedding job reads it again (from
    disk then: 500 KiB, against tens of milliseconds of inference). Kept, a large import's
    originals push out of memory what is read all the time: the database and the thumbnails
    the gallery serves. And the memory each new original takes costs more as the cache grows:
    measured on the two-core build machine (a VM whose host backs memory on first touch: 5-9
    microseconds a fresh 4-KiB page), writing 5,000 originals of 500 KiB, made durable 16 at a
    time, cost the writer 0.61 ms of CPU a photo at first and 1.94 by the 5,000th; dropping
    them as they became durable, 0.60-0.62 throughout (their pages are reused)."""
    if not hasattr(os, "posix_fadvise"):
        return
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass
        finally:
            os.close(fd)


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.files = self.root / "files"
        self.thumbs = self.root / "thumbs"

    # -- paths -------------------------------------------------------------------------------
    def _shard(self, base: Path, sha256: str, suffix: str = "") -> Path:
        if not _SHA256.match(sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return base / sha256[:2] / f"{sha256}{suffix}"

    def file_path(self, sha256: str) -> Path:
        return self._shard(self.files, sha256)

    def thumb_path(self, sha256: str) -> Path:
        return self._shard(self.thumbs, sha256, ".jpg")

    # -- writing -----------------------------------------------------------------------------
    def _folder(self, path: Path) -> None:
        if path.parent not in _MADE:
            path.parent.mkdir(parents=True, exist_ok=True)
            _MADE.add(path.parent)

    def _open_new(self, path: Path) -> int:
        """``path`` created and opened for writing; ``FileExistsError`` if it is there."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        try:
            return os.open(path, flags, 0o644)
        except FileNotFoundError:  # the folder was removed since (a sweep): make it again
            path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(path, flags, 0o644)

    def _write_atomic_sync(self, path: Path, data: bytes, durable: bool = True) -> None:
        """A temp file beside ``path``, then renamed over it. The temp name is this process's
        own (pid and a counter, created exclusively): ``tempfile.mkstemp`` drew a random name
        first, 0.05-0.08 ms a file here, a tenth of writing a thumbnail."""
        self._folder(path)
        tmp = path.with_name(f".tmp-{os.getpid()}-{next(_TEMP_NAMES)}-{path.name}")
        fd = self._open_new(tmp)
        try:
            try:
                _write_all(fd, data)
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _write_new_sync(self, path: Path, data: bytes) -> bool:
        """Create ``path`` with ``data`` in place, for a file nothing can point at yet (no row):
        False, writing nothing, if it exists. Torn by a crash, it is a file without a row, which
        the next ingest of the same bytes rewrites (atomically: it exists) and ``doctor --deep``
        removes; the rename saved costs a journalled directory update per file."""
        self._folder(path)
        try:
            fd = self._open_new(path)
        except FileExistsError:
            return False
        try:
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return True

    async def _write_atomic(self, path: Path, data: bytes) -> None:
        await aiofiles.os.makedirs(path.parent, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        os.close(fd)
        try:
            async with aiofiles.open(tmp, "wb") as handle:
                await handle.write(data)
                await handle.flush()
                await aiofiles.os.wrap(os.fsync)(handle.fileno())
            await aiofiles.os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def put(self, data: bytes, sha256: str | None = None) -> tuple[str, bool]:
        """Store ``data``; returns (sha256, written) where written is False if already there."""
        digest = sha256 or hashlib.sha256(data).hexdigest()
        path = self.file_path(digest)
        if await aiofiles.os.path.exists(path):
            return digest, False
        await self._write_atomic(path, data)
        return digest, True

    async def put_thumb(self, sha256: str, data: bytes) -> None:
        await self._write_atomic(self.thumb_path(sha256), data)

    def put_sync(self, data: bytes, sha256: str, fresh: bool = False) -> bool:
        """Write an original for ingest, without fsync: ingest's recorder makes a whole group of
        files durable before it commits their rows. ``fresh``: no row points at these bytes (a
        new image), so a file that is not there yet is written in place; otherwise, or if it
        is there (a file without a row may be a torn leftover of a crash), it is rewritten
        atomically. Returns whether the file is new."""
        return self._put_sync(self.file_path(sha256), data, fresh)

    def _put_sync(self, path: Path, data: bytes, fresh: bool) -> bool:
        if fresh and self._write_new_sync(path, data):
            return True
        existed = fresh or path.exists()
        self._write_atomic_sync(path, data, durable=False)
        return not existed

    @staticmethod
    def make_durable(paths: list[str]) -> None:
        """fsync these files and then their folders (so the renames survive a power cut too)."""
        for path in paths:
            fsync_path(path)
        for folder in {os.path.dirname(path) for path in paths}:
            fsync_path(folder)

    @staticmethod
    def make_durable_groups(groups: list[list[str]]) -> list[OSError | None]:
        """``make_durable`` for the files of several callers at once, what failed for each.
        Several files: each checked to be there, then one ``syncfs`` per filesystem they are on
        (on Linux; measured on ext4, 800 originals of 500 KiB in groups of 16: the whole
        machine's CPU 0.20 ms a file, written and made durable, and 0.44 ms of wall time, where
        an fsync per file and per folder took 0.26-0.34 and 0.75 — one journal commit a group
        instead of one a file). The cost: it also waits for other dirty data on that filesystem."""
        failed: list[OSError | None] = [None] * len(groups)
        if _SYNCFS is None or sum(len(files) for files in groups) < 2:
            for i, files in enumerate(groups):
                try:
                    FileStore.make_durable(files)
                except OSError as exc:
                    failed[i] = exc
            return failed
        devices: dict[int, str] = {}
        for i, files in enumerate(groups):
            try:
                for path in files:
                    devices.setdefault(os.stat(path).st_dev, path)
            except OSError as exc:  # gone since it was written: no row may point at it
                failed[i] = exc
        for path in devices.values():
            try:
                syncfs_path(path)
            except OSError as exc:  # a write-back error: none of these files is known to be safe
                failed = [f or exc for f in failed]
        return failed

    def put_thumb_sync(self, sha256: str, data: bytes, fresh: bool = False) -> bool:
        """Not fsynced: a thumbnail lost to a power cut is made again from its original. Written
        as ``put_sync`` writes an original (in place when ``fresh`` and not there, else
        atomically); returns whether the file is new."""
        return self._put_sync(self.thumb_path(sha256), data, fresh)

    # -- reading and housekeeping -------------------------------------------------------------
    async def read(self, sha256: str) -> bytes:
        async with aiofiles.open(self.file_path(sha256), "rb") as handle:
            return await handle.read()

    def exists(self, sha256: str) -> bool:
        return self.file_path(sha256).exists()

    def delete(self, sha256: str) -> None:
        self.file_path(sha256).unlink(missing_ok=True)
        self.thumb_path(sha256).unlink(missing_ok=True)

    def iter_files(self) -> list[str]:
        """Every stored original's SHA-256 (for the sanity check)."""
        return [p.name for p in self.files.glob("??/*") if _SHA256.match(p.name)]

    def make_layout(self) -> None:
        """Make the 256 folders of originals and of thumbnails now, with the data directory, not
        one by one under the first thousand images of an import: creating a folder costs the
        ingest that meets it first (measured: 0.1-0.3 ms a photo over a new store's first 1,000
        photos, about half of them opening a folder). A folder that exists is left as it is."""
        for base in (self.files, self.thumbs):
            base.mkdir(parents=True, exist_ok=True)
            existing = set(os.listdir(base))
            for shard in (f"{i:02x}" for i in range(256)):
                if shard not in existing:
                    (base / shard).mkdir(exist_ok=True)

    def upgrade_layout(self) -> int:
        """Move originals of the older two-level layout (``files/ab/cd/<sha256>``) to their place
        and drop its thumbnails (WebP; remade by ``doctor --deep``). Returns files moved. Done
        once per store: a marker (``files/.layout``) says so, because looking for the old
        folders lists every folder of the store (a million entries for a million images) and
        ``migrate`` runs at every start."""
        marker = self.files / LAYOUT_MARKER
        if marker.exists():
            return 0
        moved = 0
        for old in self.files.glob("??/??/*"):
            if _SHA256.match(old.name):
                os.replace(old, self.file_path(old.name))
                moved += 1
        for folder in [*self.files.glob("??/??"), *self.thumbs.glob("??/??")]:
            if folder.is_dir():
                for leftover in folder.glob("*.webp"):
                    leftover.unlink()
                with contextlib.suppress(OSError):  # not empty: a temp file, left for sweep_temp
                    folder.rmdir()
        self.files.mkdir(parents=True, exist_ok=True)
        marker.write_text("one level: files/ab/<sha256>\n")
        return moved

    def sweep_temp(self) -> int:
        """Remove temp files left by a crash mid-write; returns how many."""
        removed = 0
        for base in (self.files, self.thumbs):
            for tmp in base.glob("**/.tmp-*"):
                tmp.unlink(missing_ok=True)
                removed += 1
        return removed
