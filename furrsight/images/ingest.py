"""The one path every image takes in: ordered steps, each able to stop the run with a reason code.

check bytes -> sniff type -> SHA-256 -> exact dedup (in the caller) -> header (bomb, min side)
-> decode once -> analyse (phash, flags, collage) -> store original -> store thumbnail (in a
worker: a process of the pool, or a thread) -> record row + source + near-dup group (the
recorder, in groups) -> split a collage into two panels, which go through this same path.

An ``Ingestor`` is the engine one job uses: every lane of the job hands it files, the workers
spread the CPU work over the cores, and one recorder thread writes the rows. ``ingest()`` is the
same path for one file.

Crash safety: files are written (complete, and the original durable) before the row that points
at them, and a run that stops with an exception before its row exists removes the files it created. A SIGKILL in that
window leaves an unreferenced file that ``furrsight doctor --deep`` removes; a kill after the
row leaves a collage in state ``stored`` that the re-process job (or doctor --deep) finishes.
"""

from __future__ import annotations

import asyncio
import functools
import os
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, TypeVar

from PIL import Image as PILImage

from furrsight.images import collage, rows, work
from furrsight.images.decode import Refused
from furrsight.images.recorder import Recorder
from furrsight.images.rows import PanelOf
from furrsight.images.schemas import IngestResult, Provenance
from furrsight.images.steps import STEP_NAMES, check_bytes, sniff_type
from furrsight.images.tables import Image
from furrsight.images.work import FAULT_ENV, Found, InjectedFault, Prepared, checkpoint
from furrsight.metrics.instruments import IMAGES_INGESTED, IMAGES_REFUSED
from furrsight.settings import Settings
from furrsight.store import FileStore, drop_cached

__all__ = [
    "FAULT_ENV",
    "STEP_NAMES",
    "FileFailed",
    "Ingestor",
    "InjectedFault",
    "PanelOf",
    "Unreadable",
    "cut_panels",
    "ingest",
]
T = TypeVar("T")
POOL_AFTER = 32  # files an engine sees in-process before the pool is worth using
FILES_PER_BATCH = 8  # bodies a scrape hands ``ingest_files`` at once (4: 0.2 ms more a file)


class Ingestor:
    """Ingest for one job: ``processes`` worker processes (0: one per core; 1: threads only)."""

    def __init__(self, store: FileStore, settings: Settings, *, processes: int = 1) -> None:
        self.store = store
        self.settings = settings
        self.limits = settings.ingest
        self.processes = processes if processes > 0 else work.default_processes()
        self.recorder = Recorder(settings)
        self.seen = 0
        self._root, self._db = str(store.root), str(settings.db_path)  # resolved once, not per file
        self._warming: asyncio.Future[None] | None = None
        self._pooled = False  # this engine's CPU work has gone to the worker pool

    def start_pool(self) -> None:
        """A job with many files ahead: start the worker pool in the background now, while the
        first files go through threads (the pool then stays up for later jobs)."""
        if self.processes > 1 and not work.is_warm() and self._warming is None:
            self._warming = asyncio.ensure_future(asyncio.to_thread(work.warm, self.processes))

    @property
    def lanes(self) -> int:
        """Files worth having in flight: enough to keep every worker busy while others wait."""
        return max(self.settings.ingest.concurrency, 2 * self.processes + 2 if self.processes > 1 else 0)

    async def __aenter__(self) -> Ingestor:
        return self

    async def __aexit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType] | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._warming is not None:
            await asyncio.gather(self._warming, return_exceptions=True)
        await self.recorder.aclose()

    async def work(self, fn: Callable[..., T], *args: Any, files: int = 1, attempts: int = 2) -> T:
        """Run CPU work (for ``files`` files) in the pool once it pays, or else in a thread; a
        crashed pool is replaced and the work tried again, ``attempts`` times in all."""
        self.seen += files
        # Once on the pool, stay on it: a pool replaced after a crash is not warm yet, and a file
        # that crashed a worker must be tried again in a worker, never in this process.
        self._pooled = self._pooled or (self.processes > 1 and (work.is_warm() or self.seen > POOL_AFTER))
        if not self._pooled:
            worker = asyncio.ensure_future(asyncio.to_thread(fn, *args))
            try:
                return await asyncio.shield(worker)
            except asyncio.CancelledError:  # let the thread finish its write, so cleanup sees it
                await asyncio.wait([worker])
                raise
        loop = asyncio.get_running_loop()
        for attempt in range(1, attempts + 1):
            executor = work.pool(self.processes)
            try:
                return await loop.run_in_executor(executor, functools.partial(fn, *args))
            except BrokenProcessPool:
                work.discard_pool(executor)  # a decoder crashed a worker (or it was killed): a fresh pool
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    async def ingest(self, data: bytes, source: Provenance, *, panel_of: PanelOf | None = None) -> IngestResult:
        """Take one file in through every step; refusals come back as a result, never raised."""
        return _counted(await self._ingest(data, source, panel_of))

    async def ingest_files(self, items: list[tuple[Path, Provenance]]) -> list[IngestResult | Exception]:
        """Several files on this server in one trip to a worker (which reads them itself), their
        rows in one group commit: a folder import's per-file costs in this process (the event
        loop, the pool's hand-over, the recorder's wake-ups) are paid once per batch. Each
        file's outcome in order: a result, ``Unreadable``, or the exception that failed it.

        A batch whose worker died (a decoder crash) is done again file by file, each of them
        tried twice more before it is refused as ``worker_crashed``."""
        fault = os.environ.get(FAULT_ENV, "")
        paths = [str(path) for path, _ in items]
        single = len(items) == 1
        try:
            found = await self.work(
                work.prepare_files, paths, self.limits, self._root, self._db, fault,
                files=len(items), attempts=2 if single else 1,
            )  # fmt: skip
        except BrokenProcessPool:
            if single:
                return [_counted(_crashed())]
            return [outcome for item in items for outcome in await self.ingest_files([item])]
        settled = (
            self._settle(f, path, source, fault) for f, path, (_, source) in zip(found, paths, items, strict=True)
        )
        return list(await asyncio.gather(*settled))

    async def _settle(self, found: Found, path: str, source: Provenance, fault: str) -> IngestResult | Exception:
        """What a worker found about one file, recorded: a row, a sighting, or a refusal."""
        try:
            if isinstance(found, work.Known):
                seen = await self.recorder.run(rows.sighting(found.sha256, source))
                if seen is not None:
                    return _counted(IngestResult(outcome="duplicate", image_id=seen.image_id, state=seen.state))
                # removed since the look-up: take it in after all
                (found,) = await self.work(work.prepare_files, [path], self.limits, self._root, self._db, fault, False)
            if isinstance(found, work.Unreadable):
                return Unreadable(found.message)
            if isinstance(found, work.Failed):
                return FileFailed(found.message)
            if isinstance(found, work.Refusal):
                return _counted(IngestResult(outcome="refused", reason=found.reason, message=found.message))
            assert isinstance(found, Prepared)
            return _counted(await self._record(found, source, None))
        except BrokenProcessPool:
            return _counted(_crashed())
        except Exception as exc:  # this file's failure is this file's: the batch carries on
            return exc

    async def _ingest(self, data: bytes, source: Provenance, panel_of: PanelOf | None) -> IngestResult:
        prefix = "child." if panel_of else ""
        try:
            checkpoint(prefix + "check_bytes")
            check_bytes(data, self.limits)
            checkpoint(prefix + "sniff")
            fmt = sniff_type(data)
        except Refused as refused:
            return IngestResult(outcome="refused", reason=refused.reason, message=refused.message)
        fault = os.environ.get(FAULT_ENV, "")
        root, db = self._root, self._db
        try:
            prepared = await self.work(work.prepare, data, self.limits, root, db, bool(panel_of), fault)
            if isinstance(prepared, work.Known):
                seen = await self.recorder.run(rows.sighting(prepared.sha256, source, panel_of))
                if seen is not None:
                    return IngestResult(outcome="duplicate", image_id=seen.image_id, state=seen.state)
                # removed since the look-up: take it in after all
                prepared = await self.work(work.prepare, data, self.limits, root, db, bool(panel_of), fault, False)
        except BrokenProcessPool:
            return _crashed()
        if isinstance(prepared, work.Refusal):
            return IngestResult(outcome="refused", reason=prepared.reason, message=prepared.message)
        assert isinstance(prepared, Prepared)
        return await self._record(replace(prepared, format=fmt), source, panel_of, data)

    async def _record(
        self, p: Prepared, source: Provenance, panel_of: PanelOf | None, data: bytes | None = None
    ) -> IngestResult:
        """The row, then a collage's panels (cut from ``data``, or else from the stored original)."""
        a = p.analysis
        state = "failed" if p.failure else ("stored" if p.cut else "processed")
        new = rows.NewImage(
            sha256=p.sha256, format=p.format, mime=PILImage.MIME.get(p.format, "image/" + p.format.lower()),
            width=p.width, height=p.height, bytes=p.size, state=state, reason=p.failure,
            phash=a.phash if a else None, blur=a.blur if a else None, flags=a.flags if a else [], panel_of=panel_of,
        )  # fmt: skip
        prefix = "child." if panel_of else ""
        try:
            checkpoint(prefix + "record")
            op = rows.record(new, source, self.limits.near_dup_distance)
            recorded = await self.recorder.run(op, p.durable, drop=p.cut is None)  # a collage's is read again
        except Exception:
            # The operation failed: nothing points at the files this run wrote: remove them. Not on
            # a cancellation (a BaseException): the recorder still applies the shielded operation,
            # and its row will point at them (an orphan file is harmless: doctor --deep removes it).
            for path in p.wrote:
                Path(path).unlink(missing_ok=True)
            raise
        if recorded.duplicate:  # another lane stored the same bytes meanwhile
            return IngestResult(outcome="duplicate", image_id=recorded.image_id, state=recorded.state)
        children: list[int] = []
        checkpoint(prefix + "split")
        if p.cut is not None:
            original = data if data is not None else str(self.store.file_path(p.sha256))
            try:  # from the page cache still (a folder import's worker reads the stored original)
                children = await self.cut_panels(original, recorded.image_id, p.cut, p.width, p.height, source.job_id)
            finally:
                drop_cached(p.durable)  # durable since its row committed: as the recorder does for others
            await self.recorder.run(rows.set_state(recorded.image_id, "processed"))
            state = "processed"
        return IngestResult(
            outcome="new", image_id=recorded.image_id, state=state, flags=a.flags if a else [],
            near_dup_group=recorded.group, children=children,
        )  # fmt: skip

    async def cut_panels(
        self, data: bytes | str, parent_id: int, cut: collage.Cut, width: int, height: int, job_id: int | None,
        first: str | None = None,
    ) -> list[int]:  # fmt: skip
        """Ingest the two panels of ``cut`` as children of ``parent_id`` (``data``: the original's
        bytes, or the path of its stored copy); returns their ids."""
        first = first or cut.first  # read from captions, or left/top by default
        order = ["before", "after"] if first == "before" else ["after", "before"]
        confidence = 1.0 if cut.method == "manual" else cut.order_confidence
        ids = []
        for index, (box, panel) in enumerate(await self.work(work.panels, data, cut, width, height)):
            name = f"panel {index + 1} ({order[index]}) of image {parent_id}"
            source = Provenance(kind="split", file_name=name, job_id=job_id)
            result = await self.ingest(panel, source, panel_of=PanelOf(parent_id, box, order[index], confidence))
            if result.image_id is not None:
                ids.append(result.image_id)
        return ids


class Unreadable(OSError):
    """A file handed to ``Ingestor.ingest_files`` could not be read (the message says why)."""


class FileFailed(RuntimeError):
    """A file failed in a worker for a reason of its own (the message is the exception's repr)."""


def _crashed() -> IngestResult:
    message = (
        "the worker process decoding it died twice (a decoder crash on a hostile file, or memory "
        "ran out); retry the job to try again"
    )
    return IngestResult(outcome="refused", reason="worker_crashed", message=message)


def _counted(result: IngestResult) -> IngestResult:
    if result.outcome == "refused":
        IMAGES_REFUSED.labels(result.reason or "unknown").inc()
    else:
        IMAGES_INGESTED.labels(result.outcome).inc()
    return result


async def ingest(
    store: FileStore, settings: Settings, data: bytes, source: Provenance, *, panel_of: PanelOf | None = None
) -> IngestResult:
    """One file through the whole path, in this process (an engine for a single file)."""
    async with Ingestor(store, settings) as engine:
        return await engine.ingest(data, source, panel_of=panel_of)


async def cut_panels(
    store: FileStore, settings: Settings, data: bytes, parent_id: int, cut: collage.Cut, job_id: int | None,
    first: str | None = None,
) -> list[int]:  # fmt: skip
    """Split a stored image by ``cut`` (a split by hand, a re-processed collage)."""
    row = await Image.select(Image.width, Image.height).where(Image.id == parent_id).first()
    if row is None:
        return []
    async with Ingestor(store, settings) as engine:
        return await engine.cut_panels(data, parent_id, cut, row["width"], row["height"], job_id, first)
