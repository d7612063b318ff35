"""The deep sanity check (``furrsight doctor --deep``): compare the database with the file store
and repair what an interrupted ingest or a lost disk left behind (paperless's sanity checker).

* temp files of interrupted writes: removed;
* originals without a row (a crash between the file and its row): removed;
* thumbnails without a row: removed; missing thumbnails of existing originals: made again;
* rows whose original is gone: removed (the image cannot be shown or used any more), and with
  them everything derived from them (sources, vectors, tags: foreign keys and triggers);
* panels whose collage row is gone: unlinked;
* images left in state ``stored`` (a crash before processing finished): re-processed.

Files younger than ``grace_seconds`` are left alone: an ingest running right now writes its file
a moment before its row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from furrsight.images.ingest import Ingestor
from furrsight.images.process import reprocess_image
from furrsight.images.tables import Image
from furrsight.settings import Settings
from furrsight.store import FileStore


@dataclass
class Finding:
    name: str
    count: int
    action: str


def _old(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime <= cutoff
    except FileNotFoundError:
        return False


def _sweep_files(store: FileStore, known: set[str], cutoff: float) -> list[Finding]:
    temps = [p for base in (store.files, store.thumbs) for p in base.glob("**/.tmp-*") if _old(p, cutoff)]
    orphans = [sha for sha in store.iter_files() if sha not in known and _old(store.file_path(sha), cutoff)]
    thumbs = [p for p in store.thumbs.glob("??/*.jpg") if p.name.removesuffix(".jpg") not in known and _old(p, cutoff)]
    for path in temps + thumbs:
        path.unlink(missing_ok=True)
    for sha in orphans:
        store.delete(sha)
    return [
        Finding("temp files of interrupted writes", len(temps), "removed"),
        Finding("files without a row", len(orphans), "removed"),
        Finding("thumbnails without a row", len(thumbs), "removed"),
    ]


async def deep_check(settings: Settings, grace_seconds: float = 600.0) -> list[Finding]:
    """Find and repair every mismatch between the images table and the file store."""
    store = FileStore(settings.data_path)
    rows = await Image.select(Image.id, Image.sha256, Image.parent_id, Image.state)
    known = {r["sha256"] for r in rows}
    findings = _sweep_files(store, known, time.time() - grace_seconds)
    purged = {r["id"] for r in rows if r["state"] == "purged"}  # taken down, file removed on purpose
    lost = [r for r in rows if r["id"] not in purged and not store.exists(r["sha256"])]
    if lost:
        await Image.delete().where(Image.id.is_in([r["id"] for r in lost]))
    ids = {r["id"] for r in rows} - {r["id"] for r in lost}
    orphaned = [r["id"] for r in rows if r["parent_id"] and r["parent_id"] not in ids and r["id"] in ids]
    if orphaned:
        await Image.update({Image.parent_id: None, Image.crop: None, Image.panel: None}).where(Image.id.is_in(orphaned))
    live = [r for r in rows if r["id"] in ids and r["id"] not in purged]
    unthumbed = [r for r in live if not _usable(store.thumb_path(r["sha256"]))]
    unfinished = [r for r in live if r["state"] == "stored"]
    async with Ingestor(store, settings) as engine:
        for r in {r["id"]: r for r in unthumbed + unfinished}.values():
            await reprocess_image(engine, r["id"])
    return [
        *findings,
        Finding("rows whose file is missing", len(lost), "rows removed"),
        Finding("panels whose collage is gone", len(orphaned), "unlinked"),
        Finding("missing thumbnails", len(unthumbed), "made again"),
        Finding("images whose processing was interrupted", len(unfinished), "re-processed"),
    ]


def _usable(thumb: Path) -> bool:
    """Thumbnails are not fsynced (they can be made again): one cut short by a power loss is
    empty or missing."""
    try:
        return thumb.stat().st_size > 0
    except OSError:
        return False
