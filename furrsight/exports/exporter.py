"""The export job: one version, one format, written under ``<data>/exports/<version>/`` into a
hidden temp folder that is renamed into place when every file is closed — so a job killed midway
(even by SIGKILL) leaves only a ``.tmp-*`` folder, never a complete-looking half export, and its
retry removes that folder and starts again. Images are read, prepared and written in a thread, a
batch of pairs at a time (``batch.py``); finished files are fsynced behind the writing
(``durable.py``); progress and cancellation between batches."""

from __future__ import annotations

import asyncio
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from furrsight.exports import batch, card, durable, splits
from furrsight.exports.attribution import attribution_file
from furrsight.exports.hf_parquet import ParquetWriter
from furrsight.exports.imagefolder import ImageFolderWriter
from furrsight.exports.rows import CONFIDENCES, IMAGE_FIELDS, Writer
from furrsight.exports.tables import DatasetExport
from furrsight.exports.wds import WebDatasetWriter
from furrsight.images import groups
from furrsight.jobs.runner import JobContext
from furrsight.pairs.batches import human_corrections
from furrsight.settings import ExportSettings, Settings
from furrsight.store import FileStore

HOP_S = 0.5  # seconds of reading and writing per hop to the worker thread


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


async def _write_pairs(
    ctx: JobContext, writer: Writer, syncer: durable.Syncer, items: list[dict[str, Any]], index: dict[str, int]
) -> batch.Seen:
    """Every pair, split by split, about ``HOP_S`` seconds of work per thread hop (progress and
    cancellation between hops); finished files handed to the syncer."""
    store, conf, seen = FileStore(ctx.settings.data_path), ctx.settings.exports, batch.Seen()
    await ctx.set_total(len(items))
    for split in splits.SPLITS:
        chosen = [i for i in items if i["split"] == split]
        writer.begin_split(split, len(chosen))
        lo = 0
        while lo < len(chosen):
            rest = chosen[lo:]
            facts = await asyncio.to_thread(batch.write_batch, store, conf, writer, split, index, rest, HOP_S)
            syncer.done(writer.finished)
            writer.finished.clear()
            for item, pair in zip(rest, facts, strict=False):  # the pairs written: the first len(facts)
                seen.add(item, split, pair)
            lo += len(facts)
            await ctx.advance(len(facts))
        writer.end_split()
        syncer.done(writer.finished)
        writer.finished.clear()
    return seen


async def _write_texts(tmp: Path, fmt: str, version: dict[str, Any], items: list[dict[str, Any]],
                       conf: ExportSettings) -> list[Path]:  # fmt: skip
    """The dataset card and the ATTRIBUTION file."""
    names = version["class_names"]
    corrections = await human_corrections([i["pair_id"] for i in items])
    texts = ["origin", "caption", "breed_source", *(f"{s}_{f}" for s in ("before", "after") for f in IMAGE_FIELDS)]
    features = card.card_features(names, texts, list(CONFIDENCES))
    header = card.yaml_header(fmt, version, items, features)
    (tmp / "README.md").write_text(
        header + "\n" + card.prose(version, items, corrections, conf.known_limits, fmt), encoding="utf-8"
    )
    (tmp / "ATTRIBUTION").write_text(attribution_file(version, items), encoding="utf-8")
    return [tmp / "README.md", tmp / "ATTRIBUTION"]


def _swap_in(tmp: Path, target: Path) -> None:
    """The finished temp folder takes the target's place (a rebuild: the old folder goes in two
    renames), and the rename itself is made durable."""
    old = target.parent / f".old-{target.name}"
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    durable.renamed(target)
    shutil.rmtree(old, ignore_errors=True)


async def write_export(
    ctx: JobContext, version: dict[str, Any], items: list[dict[str, Any]], fmt: str, target: Path
) -> dict[str, Any]:
    """Write ``items`` of ``version`` as ``fmt`` at ``target`` (atomically); returns the report."""
    conf = ctx.settings.exports
    tmp = target.parent / f".tmp-{target.name}"
    shutil.rmtree(tmp, ignore_errors=True)  # what a killed run left
    tmp.mkdir(parents=True)
    syncer = durable.Syncer()
    try:
        names = version["class_names"]
        writer = make_writer(fmt, tmp, names, conf, int(version["created_at"].timestamp()))
        seen = await _write_pairs(ctx, writer, syncer, items, {n: i for i, n in enumerate(names)})
        syncer.done(await _write_texts(tmp, fmt, version, items, conf))
        leaks = await asyncio.to_thread(batch.exported_leaks, version, conf, seen.splits, seen.hashes, seen.measured)
        await asyncio.to_thread(syncer.finish, tmp)  # every file and folder on disk before the rename
        _swap_in(tmp, target)
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
