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
from typing import Any, NamedTuple, Protocol

from furrsight.exports import card, durable, pictures, splits
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
    finished: list[Path]  # files closed since the exporter last took them (to fsync)

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


class Prepared(NamedTuple):
    data: bytes  # the exported file
    phash: str  # its perceptual hash, measured on the exported pixels
    measured: bool  # the hash was measured now (pixels re-encoded, or no stored hash)


def prepare(store: FileStore, conf: ExportSettings, image: dict[str, Any]) -> Prepared:
    """The exported file of one image and its perceptual hash (the stored one where the pixels
    are the stored ones, byte for byte: the compressed picture is copied as it is)."""
    data = store.file_path(image["sha256"]).read_bytes()
    out, changed = pictures.export_bytes(
        data, image["format"], image["width"], image["height"], conf.max_side, conf.jpeg_quality
    )
    if not changed and image.get("phash"):
        return Prepared(out, image["phash"], False)
    return Prepared(out, pictures.phash(out), True)


def _write_batch(
    store: FileStore, conf: ExportSettings, writer: Writer, split: str, index: dict[str, int],
    batch: list[dict[str, Any]],
) -> list[tuple[tuple[str, bool], tuple[str, bool]]]:  # fmt: skip
    """Read, prepare and write one batch of pairs (one thread: reading and writing in two
    threads made them wait on each other's GIL hand-offs); each image's hash and whether it was
    measured now."""
    out = []
    for item in batch:
        before, after = prepare(store, conf, item["before"]), prepare(store, conf, item["after"])
        label = index.get(item["labels"]["breed"] or "")
        writer.add(Row(key_of(item["pair_id"]), split, item, label, before.data, after.data))
        out.append(((before.phash, before.measured), (after.phash, after.measured)))
    return out


def _exported_leaks(
    version: dict[str, Any], conf: ExportSettings, image_splits: dict[int, set[str]], hashes: dict[int, str],
    measured: set[int],
) -> dict[str, int]:  # fmt: skip
    """The perceptual-hash leak check on the exported files. Two images whose hashes are both the
    version's (pixels byte for byte as stored) were compared when the version was made, at the
    same threshold and in the same splits (an export holds a subset of the version's pairs):
    when that found none, only pairs with an image measured now are compared again —
    ``len(measured) × images`` instead of ``images²``."""
    reuse = (
        version.get("settings", {}).get("leak_hamming") == conf.leak_hamming
        and version.get("report", {}).get("leaks", {}).get("phash_cross_split") == 0
    )
    only = measured if reuse else None
    leaks = splits.leak_check(image_splits, hashes, {}, conf.leak_hamming, conf.leak_cosine, only=only)
    leaks = {k: v for k, v in leaks.items() if not k.startswith("embedding") and k != "images_with_embedding"}
    return {**leaks, "images_measured": len(measured) if reuse else len(hashes)}


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
        measured: set[int] = set()
        syncer = durable.Syncer()
        await ctx.set_total(len(items))
        for split in splits.SPLITS:
            chosen = [i for i in items if i["split"] == split]
            writer.begin_split(split, len(chosen))
            for lo in range(0, len(chosen), BATCH):
                batch = chosen[lo : lo + BATCH]
                facts = await asyncio.to_thread(_write_batch, store, conf, writer, split, index, batch)
                syncer.done(writer.finished)
                writer.finished.clear()
                for item, pair in zip(batch, facts, strict=True):
                    for side, (digest, now) in zip(("before", "after"), pair, strict=True):
                        image_splits.setdefault(item[side]["id"], set()).add(split)
                        hashes[item[side]["id"]] = digest
                        if now:
                            measured.add(item[side]["id"])
                await ctx.advance(len(batch))
            writer.end_split()
            syncer.done(writer.finished)
            writer.finished.clear()
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
        syncer.done([tmp / "README.md", tmp / "ATTRIBUTION"])
        leaks = await asyncio.to_thread(_exported_leaks, version, conf, image_splits, hashes, measured)
        await asyncio.to_thread(syncer.finish, tmp)  # every file and folder on disk before the rename
        old = target.parent / f".old-{target.name}"
        if target.exists():  # a rebuild: the new folder replaces the old in two renames
            os.replace(target, old)
        os.replace(tmp, target)
        durable.renamed(target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        syncer.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = [p for p in target.rglob("*") if p.is_file()]
    return {
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
        "splits": {s: sum(1 for i in items if i["split"] == s) for s in splits.SPLITS},
        "leaks_exported": leaks,
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
