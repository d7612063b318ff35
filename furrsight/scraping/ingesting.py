"""Hand candidates' bytes to ingest: in this process, or spread over a pool of processes.

Decoding, hashing and thumbnailing are CPU work; on a large scrape a process pool (one process
per core) runs the real ``furrsight.images.ingest.ingest`` in each child, while this process keeps
fetching. Small scrapes never pay for starting the pool.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import msgspec

from furrsight.images.ingest import ingest
from furrsight.images.schemas import IngestResult, Provenance
from furrsight.settings import Settings
from furrsight.store import FileStore

POOL_AFTER = 48  # candidates seen before a pool is worth starting

_child: dict[str, Any] = {}  # per child process: its loop, settings and store


def _child_init(settings_json: bytes) -> None:
    from furrsight.db.setup import open_database

    settings = msgspec.json.decode(settings_json, type=Settings)
    open_database(settings)
    _child.update(loop=asyncio.new_event_loop(), settings=settings, store=FileStore(settings.data_path))


def _child_ingest(data: bytes, source: Provenance) -> IngestResult:
    result = _child["loop"].run_until_complete(ingest(_child["store"], _child["settings"], data, source))
    return result  # type: ignore[no-any-return]


class Ingester:
    def __init__(self, settings: Settings, store: FileStore) -> None:
        self.settings = settings
        self.store = store
        wanted = settings.scraping.ingest_processes
        self.processes = wanted if wanted > 0 else (os.cpu_count() or 1)
        self.pool: ProcessPoolExecutor | None = None
        self.seen = 0

    def _maybe_start_pool(self) -> None:
        self.seen += 1
        if self.pool is None and self.processes > 1 and self.seen >= POOL_AFTER:
            self.pool = ProcessPoolExecutor(
                self.processes, mp_context=multiprocessing.get_context("spawn"),
                initializer=_child_init, initargs=(msgspec.json.encode(self.settings),),
            )  # fmt: skip

    async def ingest(self, data: bytes, source: Provenance) -> IngestResult:
        self._maybe_start_pool()
        if self.pool is None:
            return await ingest(self.store, self.settings, data, source)
        return await asyncio.get_running_loop().run_in_executor(self.pool, _child_ingest, data, source)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
