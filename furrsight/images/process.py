"""After ingest: re-process stored images (a setting changed, or a run was interrupted), and
split or un-split a collage by hand."""

from __future__ import annotations

import asyncio
from typing import Any

from furrsight.db.piccolo_conf import DATABASE
from furrsight.images import collage, steps
from furrsight.images.decode import Refused
from furrsight.images.ingest import cut_panels
from furrsight.images.lanes import write_lock
from furrsight.images.neardup import assign_group, leave_group
from furrsight.images.schemas import Provenance, SplitRequest
from furrsight.images.tables import Image, Source
from furrsight.jobs.runner import JobContext
from furrsight.settings import Settings
from furrsight.store import FileStore

REPROCESS_KIND = "images.reprocess"


class SplitError(ValueError):
    """A split or un-split that cannot be done; the message says why."""


def _analyse(run: steps.Run) -> None:
    steps.read_header(run)
    steps.decode_once(run)
    steps.analyse_image(run)


async def _fail(image_id: int, reason: str) -> str:
    await Image.update({Image.state: "failed", Image.reason: reason}).where(Image.id == image_id)
    return "failed"


async def reprocess_image(store: FileStore, settings: Settings, image_id: int, job_id: int | None = None) -> str:
    """Run the derived steps again on a stored original; returns the image's new state."""
    row = await Image.select().output(load_json=True).where(Image.id == image_id).first()
    if row is None:
        return "missing"
    try:
        data = await store.read(row["sha256"])
    except OSError:
        return await _fail(image_id, "file_missing: the original is not in the file store")
    panel = steps.PanelOf(row["parent_id"], row["crop"], row["panel"], row["panel_confidence"] or 0.0)
    run = steps.Run(data, Provenance(kind="split"), settings, store, panel_of=panel if row["parent_id"] else None)
    run.format, run.sha256 = row["format"], row["sha256"]
    try:
        await asyncio.to_thread(_analyse, run)
    except Refused as refused:
        return await _fail(image_id, f"{refused.reason}: {refused.message}")
    await asyncio.to_thread(steps.store_thumb, run)
    a, header = run.analysis, run.header
    assert header is not None
    has_children = await Image.exists().where(Image.parent_id == image_id)
    interrupted = row["state"] == "stored"  # a split that stopped half-way is done again (idempotent)
    will_split = (
        run.cut is not None and row["split_mode"] is None and not row["parent_id"] and (interrupted or not has_children)
    )
    state = "failed" if run.failure else ("stored" if will_split else "processed")
    async with write_lock(), DATABASE.write_transaction():
        await leave_group(image_id)
        await Image.update(
            {
                Image.state: state,
                Image.reason: run.failure,
                Image.width: header.width,
                Image.height: header.height,
                Image.phash: a.phash if a else None,
                Image.blur: a.blur if a else None,
                Image.flags: "," + ",".join(a.flags) + "," if a and a.flags else "",
            }
        ).where(Image.id == image_id)
        if a:
            await assign_group(image_id, a.phash, settings.ingest.near_dup_distance)
    if will_split and run.cut:
        await cut_panels(store, settings, data, image_id, run.cut, job_id)
        await Image.update({Image.state: "processed"}).where(Image.id == image_id)
        state = "processed"
    return state


async def run_reprocess(ctx: JobContext) -> None:
    """Re-process every image (or those in one state), oldest first. Idempotent."""
    store = FileStore(ctx.settings.data_path)
    which = ctx.params.get("state", "all")
    query = Image.select(Image.id).order_by(Image.id)
    if which != "all":
        query = query.where(Image.state == which)
    ids = [r["id"] for r in await query]
    await ctx.set_total(len(ids))
    ctx.log(f"{len(ids)} images to re-process ({which})")
    for image_id in ids:
        ctx.count(await reprocess_image(store, ctx.settings, image_id, ctx.job_id))
        await ctx.advance()


async def split_by_hand(store: FileStore, settings: Settings, image_id: int, request: SplitRequest) -> list[int]:
    """Replace the image's panels with the two halves of the seam the user chose."""
    row = await Image.select().where(Image.id == image_id).first()
    if row is None:
        raise SplitError(f"image {image_id} does not exist")
    if row["parent_id"]:
        raise SplitError("this image is itself a panel of a collage: split the collage instead")
    cut = collage.Cut(request.direction, request.position, request.position, 1.0, "manual")
    boxes = collage.boxes(cut, row["width"], row["height"])
    if any(min(b[2] - b[0], b[3] - b[1]) < settings.ingest.min_side for b in boxes):
        raise SplitError(f"a panel would be under the minimum side of {settings.ingest.min_side} pixels")
    data = await store.read(row["sha256"])
    await unsplit(store, image_id, mode="manual")
    ids = await cut_panels(store, settings, data, image_id, cut, None, first=request.first)
    await Image.update({Image.state: "processed", Image.split_mode: "manual"}).where(Image.id == image_id)
    return ids


async def unsplit(store: FileStore, image_id: int, mode: str = "never") -> int:
    """Remove the panels cut from an image (keeping any that were also seen elsewhere, unlinked);
    ``mode`` never: automatic detection leaves it alone from now on. Returns panels removed."""
    if not await Image.exists().where(Image.id == image_id):
        raise SplitError(f"image {image_id} does not exist")
    children = await Image.select(Image.id, Image.sha256).where(Image.parent_id == image_id)
    removed = 0
    for child in children:
        kinds = {s["kind"] for s in await Source.select(Source.kind).where(Source.image == child["id"])}
        async with write_lock(), DATABASE.write_transaction():
            await leave_group(child["id"])
            if kinds <= {"split"}:
                await Image.delete().where(Image.id == child["id"])
            else:
                values: dict[Any, Any] = {Image.parent_id: None, Image.crop: None, Image.panel: None}
                await Image.update(values).where(Image.id == child["id"])
        if kinds <= {"split"}:
            store.delete(child["sha256"])  # after the row: a crash here leaves a file doctor removes
            removed += 1
    await Image.update({Image.split_mode: mode}).where(Image.id == image_id)
    return removed
