"""Fetched bodies handed to ingest as staged files, a few per trip to a worker.

``Ingestor.ingest(data)`` takes one body per trip: it is pickled into the worker pool's pipe
(copied in this process and again in the worker) and each file pays the pool's hand-over and the
recorder's wake-up on its own. ``Ingestor.ingest_files`` takes paths, which the worker reads
itself, in batches whose rows go in one group commit. So each body is written to a staging folder
(``incoming/scrape-<job>``, which the clean-up job removes if a crash leaves it) and handed over with the
others that arrive within a few milliseconds, up to ``FILES_PER_BATCH`` at once, as a folder import does.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from furrsight.images.ingest import FILES_PER_BATCH, Ingestor
from furrsight.images.schemas import IngestResult, Provenance
from furrsight.settings import Settings

GATHER_S = 0.02  # how long a first body waits for others to share its trip


def staging_folder(settings: Settings, job_id: int) -> Path:
    return settings.data_path / "incoming" / f"scrape-{job_id}"


class Handoff:
    def __init__(self, ingester: Ingestor, folder: Path) -> None:
        self.ingester, self.folder = ingester, folder
        self.queue: list[tuple[Path, Provenance, asyncio.Future[IngestResult | Exception]]] = []
        self.files = 0
        self.trips: set[asyncio.Task[None]] = set()
        self.trip_sizes: list[int] = []  # files per trip, in order (for tests and figures)
        self._timer: asyncio.TimerHandle | None = None

    async def ingest(self, data: bytes, source: Provenance) -> IngestResult:
        """``data`` through ingest; an exception ingest reports for this file is raised."""
        if self.files == 0:
            self.folder.mkdir(parents=True, exist_ok=True)
        self.files += 1
        path = self.folder / f"{self.files}"
        path.write_bytes(data)  # into the page cache: a fraction of what the pipe's two copies cost
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[IngestResult | Exception] = loop.create_future()
        self.queue.append((path, source, outcome))
        if len(self.queue) >= FILES_PER_BATCH:
            self._send()
        elif self._timer is None:
            self._timer = loop.call_later(GATHER_S, self._send)
        try:
            result = await outcome
        finally:
            path.unlink(missing_ok=True)
        if isinstance(result, Exception):
            raise result
        return result

    def _send(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self.queue = self.queue, []
        if batch:
            self.trip_sizes.append(len(batch))
            trip = asyncio.create_task(self._trip(batch))
            self.trips.add(trip)
            trip.add_done_callback(self.trips.discard)

    async def _trip(self, batch: list[tuple[Path, Provenance, asyncio.Future[IngestResult | Exception]]]) -> None:
        try:
            outcomes = await self.ingester.ingest_files([(path, source) for path, source, _ in batch])
        except Exception as exc:  # the whole trip failed: each of its files did
            outcomes = [exc] * len(batch)
        for (_, _, outcome), result in zip(batch, outcomes, strict=True):
            if not outcome.done():
                outcome.set_result(result)

    async def aclose(self) -> None:
        """Wait for the trips under way, then remove the staging folder."""
        self._send()
        if self.trips:
            await asyncio.gather(*self.trips, return_exceptions=True)
        shutil.rmtree(self.folder, ignore_errors=True)
