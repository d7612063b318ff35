"""``webdataset``: tar shards ``{split}-000000.tar`` … of ``webdataset_shard_pairs`` samples, one
sample per pair as ``KEY.before.jpg``, ``KEY.after.jpg``, ``KEY.json`` (adjacent, keys without
dots). Tar headers are fixed (time, owner, mode) so the same version gives the same bytes.

The archive is what ``tarfile`` writes (``TarInfo.tobuf`` makes each header; the bytes are the
same), but each member goes out in one ``os.writev`` of header, data and padding: ``tarfile``
copies a member through 16 KiB pieces of a buffer, which was a fifth of the writing time."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

from furrsight.exports.rows import Row, fields


class _Tar:
    """A USTAR archive written member by member, as ``tarfile.open(path, "w")`` would."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.offset, self.closed = 0, False

    def _write(self, parts: list[bytes]) -> None:
        total = sum(len(p) for p in parts)
        done = os.writev(self.fd, parts)
        if done < total:  # a short write (rare): the rest, piece by piece
            rest = memoryview(b"".join(parts))[done:]
            while rest:
                rest = rest[os.write(self.fd, rest) :]
        self.offset += total

    def add(self, info: tarfile.TarInfo, data: bytes) -> None:
        header = info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
        self._write([header, data, tarfile.NUL * (-len(data) % tarfile.BLOCKSIZE)])

    def close(self) -> None:
        """Two zero blocks, then zeros up to a whole record (``tarfile``'s ending), and close."""
        try:
            end = self.offset + 2 * tarfile.BLOCKSIZE
            self._write([tarfile.NUL * (2 * tarfile.BLOCKSIZE + (-end % tarfile.RECORDSIZE))])
        finally:
            self.closed = True
            os.close(self.fd)

    def __del__(self) -> None:  # an export that failed midway: no descriptor left open in the worker
        if not self.closed:
            self.closed = True
            os.close(self.fd)


def _member(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class WebDatasetWriter:
    name = "webdataset"

    def __init__(self, root: Path, shard_pairs: int, mtime: int) -> None:
        self.root, self.shard_pairs, self.mtime = root, shard_pairs, mtime
        self.tar: _Tar | None = None
        self.path: Path | None = None
        self.finished: list[Path] = []  # closed shards, for the exporter to fsync
        root.mkdir(parents=True, exist_ok=True)

    def begin_split(self, split: str, count: int) -> None:
        self.split, self.written, self.shard = split, 0, -1

    def _open_next(self) -> None:
        self._close()
        self.shard += 1
        self.path = self.root / f"{self.split}-{self.shard:06d}.tar"
        self.tar = _Tar(self.path)

    def _put(self, name: str, data: bytes) -> None:
        assert self.tar is not None
        self.tar.add(_member(name, len(data), self.mtime), data)

    def add(self, row: Row) -> None:
        if self.written % self.shard_pairs == 0:
            self._open_next()
        self._put(f"{row.key}.before.jpg", row.before)
        self._put(f"{row.key}.after.jpg", row.after)
        meta = {**fields(row, breed_as="name"), "breed_label": row.label, "split": row.split}
        self._put(f"{row.key}.json", json.dumps(meta, ensure_ascii=False, sort_keys=True).encode())
        self.written += 1

    def _close(self) -> None:
        if self.tar is not None and self.path is not None:
            self.tar.close()
            self.tar = None
            self.finished.append(self.path)

    def end_split(self) -> None:
        if self.written == 0:
            self._open_next()
        self._close()
