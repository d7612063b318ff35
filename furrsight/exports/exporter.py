"""The export job: one version, one format, written under ``<data>/exports/<version>/`` into a
hidden temp folder that is renamed into place when every file is closed — so a job killed midway
(even by SIGKILL) leaves only a ``.tmp-*`` folder, never a complete-looking half export, and its
retry removes that folder and starts again. Images are read and prepared in a thread, a batch of
pairs at a time; progress and cancellation between batches."""

from __future__ import annotations

import asyncio
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from furrsight.exports import card, pictures, splits
from furrsight.exports.attribution import attribution_file
from furrsight.exports.hf_parquet import ParquetWriter
from furrsight.exports.imagefolder import ImageFolderWriter
from furrsight.exports.rows import CONFIDENCES, IMAGE_FIELDS, Row, key_of
from furrsight.exports.tables import DatasetExport
from furrsight.exports.wds import WebDatasetWriter
from furrsight.images import groups
from furrsight.jobs.runner import JobContext
from furrsight.pairs.batches import human_corrections
from furrsight.settings import ExportSettings, Settings
from furrsight.store import FileStore

BATCH = 128  # pairs prepared per thread hop


class Writer(Protocol):
    name: str

    def begin_split(self, split: str, count: int) -> None: ...
    def add(self, row: Row) -> None: ...
    def end_split(self) -> None: ...


def exports_root(settings: Settings, version_id: int) -> Path:
    return settings.data_path / "exports" / str(version_id)


def final_path(settings: Settings, version_id: int, export_id: int, fmt: str) -> Path:
    return exports_root(settings, version_id) / f"{export_id}-{fmt}"


def make_writer(fmt: str, root: Path, class_names: list[str], conf: ExportSettings, mtime: int) -> Writer:
    if fmt == "hf-parquet":
        return ParquetWriter(root, class_names, conf.parquet_shard_pairs, conf.parquet_row_group)
    if fmt == "imagefolder":
        return ImageFolderWriter(root)
    return WebDatasetWriter(root, conf.webdataset_shard_pairs, mtime)


def prepare(store: FileStore, conf: ExportSettings, image: dict[str, Any]) -> tuple[bytes, str]:
    """The exported file of one image and its perceptual hash, measured on the exported pixels
    (the stored hash where the pixels are the stored ones, byte for byte)."""
    data = store.file_path(image["sha256"]).read_bytes()
    out, changed = pictures.export_bytes(
        data, image["format"], image["width"], image["height"], conf.max_side, conf.jpeg_quality
    )
    return out, (image.get("phash") if not changed else None) or pictures.phash(out)


def _prepare_batch(
    store: FileStore, conf: ExportSettings, items: list[dict[str, Any]]
) -> list[tuple[bytes, bytes, str, str]]:
    out = []
    for item in items:
        (before, hb), (after, ha) = prepare(store, conf, item["before"]), prepare(store, conf, item["after"])
        out.append((before, after, hb, ha))
    return out


def _write_rows(writer: Writer, rows: list[Row]) -> None:
    for row in rows:
        writer.add(row)


def _fsync_tree(root: Path) -> None:
    for folder, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


async def write_export(
    ctx: JobContext, version: dict[str, Any], items: list[dict[str, Any]], fmt: str, target: Path
) -> dict[str, Any]:
    """Write ``items`` of ``version`` as ``fmt`` at ``target`` (atomically); returns the report."""
    settings, conf = ctx.settings, ctx.settings.exports
    store = FileStore(settings.data_path)
    tmp = target.parent / f".tmp-{target.name}"
    shutil.rmtree(tmp, ignore_errors=True)  # what a killed run left
    tmp.mkdir(parents=True)
    try:
        mtime = int(version["created_at"].timestamp())
        names = version["class_names"]
        index = {n: i for i, n in enumerate(names)}
        writer = make_writer(fmt, tmp, names, conf, mtime)
        image_splits: dict[int, set[str]] = {}
        hashes: dict[int, str] = {}
        await ctx.set_total(len(items))
        for split in splits.SPLITS:
            chosen = [i for i in items if i["split"] == split]
            writer.begin_split(split, len(chosen))
            batches = [chosen[lo : lo + BATCH] for lo in range(0, len(chosen), BATCH)]
            # Two threads in step: the next batch is read and prepared while this one is written.
            pending = (
                asyncio.ensure_future(asyncio.to_thread(_prepare_batch, store, conf, batches[0])) if batches else None
            )
            for k, batch in enumerate(batches):
                assert pending is not None
                prepared = await pending
                if k + 1 < len(batches):
                    pending = asyncio.ensure_future(asyncio.to_thread(_prepare_batch, store, conf, batches[k + 1]))
                rows = [
                    Row(key_of(item["pair_id"]), split, item, index.get(item["labels"]["breed"] or ""), before, after)
                    for item, (before, after, _, _) in zip(batch, prepared, strict=True)
                ]
                await asyncio.to_thread(_write_rows, writer, rows)
                for item, (_, _, hb, ha) in zip(batch, prepared, strict=True):
                    for side, digest in (("before", hb), ("after", ha)):
                        image_splits.setdefault(item[side]["id"], set()).add(split)
                        hashes[item[side]["id"]] = digest
                await ctx.advance(len(batch))
            writer.end_split()
        corrections = await human_corrections([i["pair_id"] for i in items])
        texts = ["origin", "caption", "breed_source", *(f"{s}_{f}" for s in ("before", "after") for f in IMAGE_FIELDS)]
        features = card.card_features(names, texts, list(CONFIDENCES))
        text = (
            card.yaml_header(fmt, version, items, features)
            + "\n"
            + card.prose(version, items, corrections, conf.known_limits, fmt)
        )
        (tmp / "README.md").write_text(text, encoding="utf-8")
        (tmp / "ATTRIBUTION").write_text(attribution_file(version, items), encoding="utf-8")
        leaks = splits.leak_check(image_splits, hashes, {}, conf.leak_hamming, conf.leak_cosine)
        await asyncio.to_thread(_fsync_tree, tmp)
        old = target.parent / f".old-{target.name}"
        if target.exists():  # a rebuild: the new folder replaces the old in two renames
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = [p for p in target.rglob("*") if p.is_file()]
    return {
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
        "splits": {s: sum(1 for i in items if i["split"] == s) for s in splits.SPLITS},
        "leaks_exported": {
            k: v for k, v in leaks.items() if not k.startswith("embedding") and k != "images_with_embedding"
        },
    }


async def left_out(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The version's items minus those with an image taken down since; and what was left out."""
    ids = sorted({i[s]["id"] for i in items for s in ("before", "after")})
    down = await groups.taken_down(ids)
    gone = [i for i in items if i["before"]["id"] in down or i["after"]["id"] in down]
    kept = [i for i in items if i["before"]["id"] not in down and i["after"]["id"] not in down]
    return kept, [{"pair_id": i["pair_id"], "reason": "taken_down"} for i in gone]


def now() -> datetime:
    return datetime.now(UTC)


async def mark(export_id: int, **values: Any) -> None:
    await DatasetExport.update(values).where(DatasetExport.id == export_id)  # type: ignore[arg-type]
