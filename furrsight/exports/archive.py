"""One export folder as one tar archive, streamed: a header, the file in 1 MiB pieces, padding —
never the whole archive (or a whole Parquet shard) in memory."""

from __future__ import annotations

import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiofiles

BLOCK = 512
PIECE = 1 << 20


def _header(name: str, size: int, mtime: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o644
    return info.tobuf(format=tarfile.PAX_FORMAT)


async def stream_tar(folder: Path, prefix: str) -> AsyncIterator[bytes]:
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        yield _header(f"{prefix}/{path.relative_to(folder).as_posix()}", stat.st_size, int(stat.st_mtime))
        async with aiofiles.open(path, "rb") as handle:
            while piece := await handle.read(PIECE):
                yield piece
        if stat.st_size % BLOCK:
            yield b"\0" * (BLOCK - stat.st_size % BLOCK)
    yield b"\0" * (BLOCK * 2)
