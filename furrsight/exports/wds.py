"""``webdataset``: tar shards ``{split}-000000.tar`` … of ``webdataset_shard_pairs`` samples, one
sample per pair as ``KEY.before.jpg``, ``KEY.after.jpg``, ``KEY.json`` (adjacent, keys without
dots). Tar headers are fixed (time, owner, mode) so the same version gives the same bytes."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from furrsight.exports.rows import Row, fields


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
        self.tar: tarfile.TarFile | None = None
        root.mkdir(parents=True, exist_ok=True)

    def begin_split(self, split: str, count: int) -> None:
        self.split, self.written, self.shard = split, 0, -1

    def _open_next(self) -> None:
        self._close()
        self.shard += 1
        path = self.root / f"{self.split}-{self.shard:06d}.tar"
        self.tar = tarfile.open(path, "w", format=tarfile.USTAR_FORMAT)  # noqa: SIM115 (closed by _close)

    def _put(self, name: str, data: bytes) -> None:
        assert self.tar is not None
        self.tar.addfile(_member(name, len(data), self.mtime), io.BytesIO(data))

    def add(self, row: Row) -> None:
        if self.written % self.shard_pairs == 0:
            self._open_next()
        self._put(f"{row.key}.before.jpg", row.before)
        self._put(f"{row.key}.after.jpg", row.after)
        meta = {**fields(row, breed_as="name"), "breed_label": row.label, "split": row.split}
        self._put(f"{row.key}.json", json.dumps(meta, ensure_ascii=False, sort_keys=True).encode())
        self.written += 1

    def _close(self) -> None:
        if self.tar is not None:
            self.tar.close()
            self.tar = None

    def end_split(self) -> None:
        if self.written == 0:
            self._open_next()
        self._close()
