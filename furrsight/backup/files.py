"""What backing up and restoring share: the backup's layout, its error, hashed and fsynced copies."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATABASE = "furrsight.db"
PREFIX = "furrsight-backup-"
PARTIAL = ".partial-"
CHUNK = 1 << 20

Progress = Callable[[int, int], None]  # (done, total); may raise to stop


class BackupError(ValueError):
    """A backup or restore that cannot be done, in words."""


def noop(done: int, total: int) -> None:
    pass


def quiet(message: str) -> None:
    pass


def copy_file(src: Path, dst: Path) -> tuple[str, int]:
    """Copy a file, fsynced; returns the sha256 and size of what was copied."""
    digest = hashlib.sha256()
    size = 0
    dst.parent.mkdir(parents=True, exist_ok=True)
    with src.open("rb") as reader, dst.open("wb") as writer:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            writer.write(chunk)
            size += len(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    return digest.hexdigest(), size


def file_digest(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as reader:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
