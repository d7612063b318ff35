"""``imagefolder``: ``{split}/metadata.jsonl`` with ``before_file_name`` and ``after_file_name``
beside the images, which ``load_dataset("imagefolder", …)`` reads with both columns as images
(the breed stays a string there: ImageFolder ignores class labels declared elsewhere).
Missing numbers are NaN and missing texts empty (see ``_typed``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import IO, Any

from furrsight.exports.rows import CONFIDENCES, Row, fields


def _typed(name: str, value: Any) -> Any:
    """No JSON ``null``: the reader types a column from each split's first rows, and a column that
    is null there (no confidence in that split) would clash with the float of another split — a
    missing number is NaN (which the reader takes), a missing text is empty."""
    if value is not None:
        return value
    return math.nan if name in CONFIDENCES else ""


class ImageFolderWriter:
    name = "imagefolder"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.meta: IO[str] | None = None
        self.finished: list[Path] = []  # written files, for the exporter to fsync

    def begin_split(self, split: str, count: int) -> None:
        self.folder = self.root / split
        self.folder.mkdir(parents=True, exist_ok=True)
        self.meta = (self.folder / "metadata.jsonl").open("w", encoding="utf-8")

    def add(self, row: Row) -> None:
        assert self.meta is not None
        names = {"before_file_name": f"{row.key}_before.jpg", "after_file_name": f"{row.key}_after.jpg"}
        for name, data in ((names["before_file_name"], row.before), (names["after_file_name"], row.after)):
            (self.folder / name).write_bytes(data)
            self.finished.append(self.folder / name)
        record = {k: _typed(k, v) for k, v in fields(row, breed_as="name").items()}
        self.meta.write(json.dumps({**names, **record}, ensure_ascii=False, sort_keys=True) + "\n")

    def end_split(self) -> None:
        if self.meta is not None:
            self.meta.close()
            self.meta = None
            self.finished.append(self.folder / "metadata.jsonl")
