"""The content-addressed file store: ``files/ab/<sha256>`` under the data directory.

One level of 256 folders: a million images make about 4,000 entries per folder, which ext4 and
XFS index well; a second level (65,536 folders) cost a mkdir for nearly every new image of a
dataset under a hundred thousand images (0.6 ms of ingest's ~8 ms per image).

The store owns every path it hands out: callers give a SHA-256 (checked to be 64 hex digits)
and a kind, never a path, so nothing can be written outside the data directory. Writes are
atomic: a temp file in the same folder, flushed and fsynced, then renamed into place; a crash
leaves at worst a ``.tmp-*`` file that ``sweep_temp()`` removes, never a half-written original.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path

import aiofiles
import aiofiles.os

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MADE: set[Path] = set()  # shard folders this process knows exist (a mkdir per write cost 0.6 ms)


def fsync_path(path: Path | str) -> None:
    """fsync a file or a folder (a folder's fsync makes the entries renamed into it last)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
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
    def _write_atomic_sync(self, path: Path, data: bytes, durable: bool = True) -> None:
        if path.parent not in _MADE:
            path.parent.mkdir(parents=True, exist_ok=True)
            _MADE.add(path.parent)
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        except FileNotFoundError:  # the folder was removed since (a sweep): make it again
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                if durable:
                    os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

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

    def put_sync(self, data: bytes, sha256: str) -> bool:
        """Write an original for ingest, atomically but without fsync: ingest's recorder calls
        ``make_durable`` for a whole group of files before it commits their rows. Written even
        if the path exists (a file without a row may be a torn leftover of a crash); returns
        whether the file is new."""
        path = self.file_path(sha256)
        existed = path.exists()
        self._write_atomic_sync(path, data, durable=False)
        return not existed

    @staticmethod
    def make_durable(paths: list[str]) -> None:
        """fsync these files and then their folders (so the renames survive a power cut too)."""
        for path in paths:
            fsync_path(path)
        for folder in {os.path.dirname(path) for path in paths}:
            fsync_path(folder)

    def put_thumb_sync(self, sha256: str, data: bytes) -> None:
        """Atomic but not fsynced: a thumbnail lost to a power cut is made again from its original."""
        self._write_atomic_sync(self.thumb_path(sha256), data, durable=False)

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

    def upgrade_layout(self) -> int:
        """Move originals of the older two-level layout (``files/ab/cd/<sha256>``) to their place
        and drop its thumbnails (WebP; remade by ``doctor --deep``). Returns files moved."""
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
        return moved

    def sweep_temp(self) -> int:
        """Remove temp files left by a crash mid-write; returns how many."""
        removed = 0
        for base in (self.files, self.thumbs):
            for tmp in base.glob("**/.tmp-*"):
                tmp.unlink(missing_ok=True)
                removed += 1
        return removed
