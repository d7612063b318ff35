"""The one path every image takes in: an ordered list of small steps (see ``steps.py``), each
able to stop the run with a reason code and a sentence.

check bytes -> sniff type -> SHA-256 -> exact dedup -> header (bomb, min side) -> decode once ->
analyse (phash, flags, collage) -> store original -> store thumbnail -> record row + source +
near-dup group -> split a collage into two panels, which go through this same path.

Crash safety: files are written (atomically) before the row that points at them, and a run that
stops with an exception before its row exists removes the files it created. A SIGKILL in that
window leaves an unreferenced file that ``furrsight doctor --deep`` removes; a kill after the
row leaves a collage in state ``stored`` that the re-process job (or doctor --deep) finishes.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Callable

from PIL import Image as PILImage

from furrsight.db.piccolo_conf import DATABASE
from furrsight.images import steps
from furrsight.images.decode import Refused, encode_panel
from furrsight.images.lanes import write_lock
from furrsight.images.neardup import assign_group
from furrsight.images.schemas import IngestResult, Provenance
from furrsight.images.steps import PanelOf, Run
from furrsight.images.tables import Image, Source
from furrsight.settings import Settings
from furrsight.store import FileStore

FAULT_ENV = "FURRSIGHT_TEST_INGEST_FAULT"  # tests only: "kill:STEP" or "raise:STEP" (child.STEP)


class InjectedFault(RuntimeError):
    """Raised at a step when the test hook asks for it."""


def checkpoint(name: str) -> None:
    """The test hook: die (SIGKILL) or raise just before step ``name``."""
    fault = os.environ.get(FAULT_ENV)
    if not fault:
        return
    action, _, step = fault.partition(":")
    if step != name:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise InjectedFault(f"injected fault before {name}")


async def add_source(image_id: int, source: Provenance) -> None:
    values = {f: getattr(source, f) for f in Provenance.__struct_fields__ if f not in ("job_id",)}
    same = Source.exists().where(
        (Source.image == image_id)
        & (Source.kind == source.kind)
        & (Source.job == source.job_id)
        & (Source.file_name == source.file_name)
        & (Source.url == source.url)
    )
    if source.job_id is not None and await same:
        return  # a redelivered job seeing the same file again: one sighting, one row
    await Source(image=image_id, job=source.job_id, **values).save()


async def _existing(run: Run) -> IngestResult | None:
    row = await Image.select(Image.id, Image.state).where(Image.sha256 == run.sha256).first()
    if row is None:
        return None
    await add_source(row["id"], run.source)
    if run.panel_of:
        await _adopt(row["id"], run.panel_of)
    return IngestResult(outcome="duplicate", image_id=row["id"], state=row["state"])


async def dedup(run: Run) -> IngestResult | None:
    if not await Image.exists().where(Image.sha256 == run.sha256):
        return None
    async with write_lock(), DATABASE.write_transaction():
        return await _existing(run)


async def _adopt(image_id: int, panel: PanelOf) -> None:
    """A panel whose bytes already exist as an image: link it to its collage if it has no parent."""
    await Image.update(
        {
            Image.parent_id: panel.parent_id,
            Image.crop: panel.crop,
            Image.panel: panel.panel,
            Image.panel_confidence: panel.confidence,
        }
    ).where((Image.id == image_id) & Image.parent_id.is_null() & (Image.id != panel.parent_id))


async def record(run: Run) -> IngestResult | None:
    assert run.header is not None
    a = run.analysis
    state = "failed" if run.failure else ("stored" if run.cut else "processed")
    async with write_lock(), DATABASE.write_transaction():
        again = await _existing(run)  # another worker stored the same bytes meanwhile
        if again:
            return again
        p = run.panel_of
        row = Image(
            sha256=run.sha256, format=run.format, mime=PILImage.MIME.get(run.format, "image/" + run.format.lower()),
            width=run.header.width, height=run.header.height, bytes=len(run.data), state=state, reason=run.failure,
            phash=a.phash if a else None, blur=a.blur if a else None,
            flags="," + ",".join(a.flags) + "," if a and a.flags else "",
            parent_id=p.parent_id if p else None, crop=p.crop if p else None, panel=p.panel if p else None,
            panel_confidence=p.confidence if p else None,
        )  # fmt: skip
        await row.save()
        run.image_id = row.id
        if a:
            run.group = await assign_group(row.id, a.phash, run.settings.ingest.near_dup_distance)
        await add_source(row.id, run.source)
    run.state = state
    return None


async def split(run: Run) -> IngestResult | None:
    """Cut a detected collage into its two panels and ingest each through this same path."""
    if run.cut is None or run.image_id is None:
        return None
    assert run.header is not None
    run.children = await cut_panels(run.store, run.settings, run.data, run.image_id, run.cut, run.source.job_id)
    async with write_lock():
        await Image.update({Image.state: "processed"}).where(Image.id == run.image_id)
    run.state = "processed"
    return None


async def cut_panels(
    store: FileStore,
    settings: Settings,
    data: bytes,
    parent_id: int,
    cut: steps.collage.Cut,
    job_id: int | None,
    first: str = "before",
) -> list[int]:
    """Ingest the two panels of ``cut`` as children of ``parent_id``; returns their ids."""
    row = await Image.select(Image.width, Image.height).where(Image.id == parent_id).first()
    if row is None:
        return []
    panels = await asyncio.to_thread(steps.crop_panels, data, cut, row["width"], row["height"])
    order = ["before", "after"] if first == "before" else ["after", "before"]
    manual = cut.method == "manual"
    confidence = 1.0 if manual else min(cut.confidence, steps.collage.FIRST_IS_BEFORE_CONFIDENCE)
    ids = []
    for index, (box, img) in enumerate(panels):
        name = f"panel {index + 1} ({order[index]}) of image {parent_id}"
        source = Provenance(kind="split", file_name=name, job_id=job_id)
        link = PanelOf(parent_id, box, order[index], confidence)
        result = await ingest(store, settings, await asyncio.to_thread(encode_panel, img), source, panel_of=link)
        if result.image_id is not None:
            ids.append(result.image_id)
    return ids


STEPS: list[tuple[str, Callable[[Run], object], bool]] = [  # (name, step, runs in a thread)
    ("check_bytes", steps.check_bytes, False),
    ("sniff", steps.sniff_type, False),
    ("hash", steps.hash_bytes, True),
    ("dedup", dedup, False),
    ("header", steps.read_header, True),
    ("decode", steps.decode_once, True),
    ("analyse", steps.analyse_image, True),
    ("store_original", steps.store_original, True),
    ("store_thumb", steps.store_thumb, True),
    ("record", record, False),
    ("split", split, False),
]


async def _run_steps(run: Run, batch: list[tuple[str, Callable[[Run], object]]], threaded: bool) -> IngestResult | None:
    """Run consecutive steps; CPU-bound ones together in one worker-thread hop."""
    if threaded:

        def work() -> None:
            for name, step in batch:
                checkpoint(run.prefix + name)
                step(run)

        thread = asyncio.ensure_future(asyncio.to_thread(work))
        try:
            await asyncio.shield(thread)
        except asyncio.CancelledError:  # let the thread finish its write, so cleanup sees it
            await asyncio.wait([thread])
            raise
        return None
    for name, step in batch:
        checkpoint(run.prefix + name)
        out = step(run)
        if asyncio.iscoroutine(out):
            out = await out
        if isinstance(out, IngestResult):
            return out
    return None


def _batches() -> list[tuple[bool, list[tuple[str, Callable[[Run], object]]]]]:
    batches: list[tuple[bool, list[tuple[str, Callable[[Run], object]]]]] = []
    for name, step, threaded in STEPS:
        if batches and batches[-1][0] == threaded:
            batches[-1][1].append((name, step))
        else:
            batches.append((threaded, [(name, step)]))
    return batches


async def ingest(
    store: FileStore, settings: Settings, data: bytes, source: Provenance, *, panel_of: PanelOf | None = None
) -> IngestResult:
    """Take one file in through every step; refusals come back as a result, never raised."""
    run = Run(data=data, source=source, settings=settings, store=store, panel_of=panel_of)
    try:
        for threaded, batch in _batches():
            stopped = await _run_steps(run, batch, threaded)
            if stopped is not None:
                return stopped
    except Refused as refused:
        return IngestResult(outcome="refused", reason=refused.reason, message=refused.message)
    except BaseException:
        if run.image_id is None:  # nothing points at the files this run wrote: remove them
            for path in run.wrote:
                path.unlink(missing_ok=True)
        raise
    a = run.analysis
    return IngestResult(
        outcome="new", image_id=run.image_id, state=run.state, flags=a.flags if a else [],
        near_dup_group=run.group, children=run.children,
    )  # fmt: skip
