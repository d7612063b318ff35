"""After ingest: re-process stored images (a setting changed, or a run was interrupted), and
split or un-split a collage by hand."""

from __future__ import annotations

from typing import Any

from dramatiq import Broker

from furrsight.images import collage, rows, work
from furrsight.images.ingest import POOL_AFTER, Ingestor, cut_panels
from furrsight.images.lanes import for_each
from furrsight.images.neardup import leave_group
from furrsight.images.recorder import Recorder, Tx
from furrsight.images.schemas import SplitRequest
from furrsight.images.tables import Image, Source
from furrsight.jobs.runner import JobContext
from furrsight.jobs.schemas import JobOut
from furrsight.jobs.service import submit
from furrsight.settings import Settings
from furrsight.store import FileStore

REPROCESS_KIND = "images.reprocess"


async def start_reprocess(broker: Broker, settings: Settings, state: str | None, creator: str | None) -> JobOut:
    """The one way to start a re-processing job: all images, or those in ``state``."""
    return await submit(broker, settings.data_path, REPROCESS_KIND, {"state": state}, creator)


class SplitError(ValueError):
    """A split or un-split that cannot be done; the message says why."""


async def reprocess_image(engine: Ingestor, image_id: int, job_id: int | None = None) -> str:
    """Run the derived steps again on a stored original; returns the image's new state."""
    row = await Image.select().output(load_json=True).where(Image.id == image_id).first()
    if row is None:
        return "missing"
    recorder, limits = engine.recorder, engine.limits
    try:
        data = await engine.store.read(row["sha256"])
    except OSError:
        await recorder.run(rows.failed(image_id, "file_missing: the original is not in the file store"))
        return "failed"
    is_panel = bool(row["parent_id"])
    root = str(engine.store.root)
    prepared = await engine.work(work.reanalyse, data, row["sha256"], limits, root, is_panel)
    if isinstance(prepared, work.Refusal):
        await recorder.run(rows.failed(image_id, f"{prepared.reason}: {prepared.message}"))
        return "failed"
    has_children = await Image.exists().where(Image.parent_id == image_id)
    interrupted = row["state"] == "stored"  # a split that stopped half-way is done again (idempotent)
    cut = prepared.cut
    will_split = cut is not None and row["split_mode"] is None and not is_panel and (interrupted or not has_children)
    state = "failed" if prepared.failure else ("stored" if will_split else "processed")
    a = prepared.analysis
    new = rows.NewImage(
        sha256=row["sha256"], format=row["format"], mime=row["mime"],
        width=prepared.width, height=prepared.height, bytes=len(data), state=state, reason=prepared.failure,
        phash=a.phash if a else None, blur=a.blur if a else None, flags=a.flags if a else [], panel_of=None,
    )  # fmt: skip
    await recorder.run(rows.reanalysed(image_id, new, limits.near_dup_distance))
    if will_split and cut:
        await engine.cut_panels(data, image_id, cut, prepared.width, prepared.height, job_id)
        await recorder.run(rows.set_state(image_id, "processed"))
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

    async with Ingestor(store, ctx.settings, processes=ctx.settings.ingest.processes) as engine:
        if len(ids) > POOL_AFTER:
            engine.start_pool()

        async def one(image_id: int) -> None:
            ctx.count(await reprocess_image(engine, image_id, ctx.job_id))
            await ctx.advance()

        await for_each(ids, engine.lanes, one)


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
    await unsplit(store, settings, image_id, mode="manual")
    ids = await cut_panels(store, settings, data, image_id, cut, None, first=request.first)
    await Image.update({Image.state: "processed", Image.split_mode: "manual"}).where(Image.id == image_id)
    return ids


async def unsplit(store: FileStore, settings: Settings, image_id: int, mode: str = "never") -> int:
    """Remove the panels cut from an image (keeping any that were also seen elsewhere, unlinked);
    ``mode`` never: automatic detection leaves it alone from now on. Returns panels removed."""
    if not await Image.exists().where(Image.id == image_id):
        raise SplitError(f"image {image_id} does not exist")
    children = await Image.select(Image.id, Image.sha256).where(Image.parent_id == image_id)
    removed = 0
    recorder = Recorder(settings)
    try:
        for child in children:
            kinds = {s["kind"] for s in await Source.select(Source.kind).where(Source.image == child["id"])}
            await recorder.run(_drop_panel(child["id"], delete=kinds <= {"split"}))
            if kinds <= {"split"}:
                store.delete(child["sha256"])  # after the row: a crash here leaves a file doctor removes
                removed += 1
        await recorder.run(_split_mode(image_id, mode))
    finally:
        await recorder.aclose()
    return removed


def _drop_panel(image_id: int, delete: bool) -> Any:
    def op(tx: Tx) -> None:
        if delete:  # its sources, vectors, tags and group membership go with it (keys and triggers)
            tx.conn.execute("DELETE FROM images WHERE id = ?", (image_id,))
        else:
            leave_group(tx.conn, image_id)
            tx.conn.execute("UPDATE images SET parent_id = NULL, crop = NULL, panel = NULL WHERE id = ?", (image_id,))

    return op


def _split_mode(image_id: int, mode: str) -> Any:
    def op(tx: Tx) -> None:
        tx.conn.execute("UPDATE images SET split_mode = ? WHERE id = ?", (mode, image_id))

    return op
