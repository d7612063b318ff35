"""``hf-parquet``: ``data/{split}-00000-of-0000N.parquet`` with both images as Image features and
the breed as a ClassLabel, declared in the Parquet schema's ``huggingface`` metadata (what
``Dataset.to_parquet`` writes) and in the dataset card, so ``datasets`` decodes them untouched."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from furrsight.exports.rows import CONFIDENCES, IMAGE_FIELDS, Row, fields

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
# JPEG bytes do not compress: spend no CPU on them; the text columns take zstd.
COMPRESSION = {"before.bytes": "NONE", "after.bytes": "NONE", "before.path": "ZSTD", "after.path": "ZSTD"}


# Dictionary encoding only where values repeat: tried on the image bytes it cost half the write time.
DICTIONARY = [
    "origin", "breed_source", "services.list.element",
    *(f"{s}_{f}" for s in ("before", "after") for f in ("license", "license_url")),
]  # fmt: skip


def _compression() -> None:
    for column in (
        "pair_id", "breed", "services.list.element", "origin", "caption", "breed_source", *CONFIDENCES,
        *(f"{s}_{f}" for s in ("before", "after") for f in IMAGE_FIELDS),
    ):  # fmt: skip
        COMPRESSION[column] = "ZSTD"


def schema(class_names: list[str]) -> pa.Schema:
    columns: list[tuple[str, pa.DataType]] = [
        ("pair_id", pa.int64()), ("before", IMAGE), ("after", IMAGE), ("breed", pa.int64()),
        ("services", pa.list_(pa.string())), ("origin", pa.string()), ("caption", pa.string()),
        ("breed_source", pa.string()), *((c, pa.float64()) for c in CONFIDENCES),
        *((f"{s}_{f}", pa.string()) for s in ("before", "after") for f in IMAGE_FIELDS),
    ]  # fmt: skip
    return pa.schema(columns, metadata={"huggingface": json.dumps({"info": {"features": features(class_names)}})})


def features(class_names: list[str]) -> dict[str, Any]:
    """The ``datasets`` feature dictionary of the columns (the Parquet metadata's form)."""
    value = {"_type": "Value"}
    out: dict[str, Any] = {
        "pair_id": {**value, "dtype": "int64"},
        "before": {"_type": "Image"},
        "after": {"_type": "Image"},
        "breed": {"names": class_names, "_type": "ClassLabel"},
        "services": {"feature": {**value, "dtype": "string"}, "_type": "Sequence"},
        "origin": {**value, "dtype": "string"},
        "caption": {**value, "dtype": "string"},
        "breed_source": {**value, "dtype": "string"},
    }
    out.update({c: {**value, "dtype": "float64"} for c in CONFIDENCES})
    out.update({f"{s}_{f}": {**value, "dtype": "string"} for s in ("before", "after") for f in IMAGE_FIELDS})
    return out


_compression()


class ParquetWriter:
    name = "hf-parquet"

    def __init__(self, root: Path, class_names: list[str], shard_pairs: int, row_group: int) -> None:
        self.root, self.schema = root, schema(class_names)
        self.shard_pairs, self.row_group = shard_pairs, row_group
        (root / "data").mkdir(parents=True, exist_ok=True)
        self.writer: pq.ParquetWriter | None = None
        self.path: Path | None = None
        self.buffer: list[dict[str, Any]] = []
        self.finished: list[Path] = []  # closed files, for the exporter to fsync

    def begin_split(self, split: str, count: int) -> None:
        self.split, self.shards, self.written, self.shard = split, max(1, math.ceil(count / self.shard_pairs)), 0, -1

    def _open_next(self) -> None:
        self._close_shard()
        self.shard += 1
        self.path = self.root / "data" / f"{self.split}-{self.shard:05d}-of-{self.shards:05d}.parquet"
        self.writer = pq.ParquetWriter(
            self.path, self.schema, compression=COMPRESSION, use_dictionary=DICTIONARY, write_statistics=False
        )

    def add(self, row: Row) -> None:
        if self.written % self.shard_pairs == 0:
            self._flush()
            self._open_next()
        record = fields(row)
        record["before"] = {"bytes": row.before, "path": f"{row.key}_before.jpg"}
        record["after"] = {"bytes": row.after, "path": f"{row.key}_after.jpg"}
        self.buffer.append(record)
        self.written += 1
        if len(self.buffer) >= self.row_group:
            self._flush()

    def _flush(self) -> None:
        if self.buffer and self.writer is not None:
            self.writer.write_table(pa.Table.from_pylist(self.buffer, schema=self.schema))
            self.buffer = []

    def _close_shard(self) -> None:
        self._flush()
        if self.writer is not None and self.path is not None:
            self.writer.close()
            self.writer = None
            self.finished.append(self.path)

    def end_split(self) -> None:
        if self.written == 0:  # an empty split is still one (empty) file, as its name promises
            self._open_next()
        self._close_shard()
