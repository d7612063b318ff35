"""The scrape job: run one plugin (or one per enabled query), fetch, ingest, count, record.

Each candidate the plugin yields becomes a task (up to a window of them at once): it waits for its
host's turn in the polite client, downloads, and hands the body to ingest (the images feature's
``Ingestor``: workers over the cores, rows written in groups), so many hosts are fetched side by
side and ingest overlaps fetching. A candidate that fails in any way — a fetch error, a refusal,
an exception nobody expected — is counted as failed with its reason and the run goes on. Every
URL's outcome is written to ``scrape_urls`` in batches: a later run skips what was fetched, "retry
failed only" re-runs what was not.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import msgspec

from furrsight.images.ingest import Ingestor
from furrsight.images.schemas import Provenance
from furrsight.images.service import image_exists
from furrsight.jobs.broker import valkey_client
from furrsight.jobs.runner import JobCancelled, JobContext
from furrsight.queries.service import enabled_queries
from furrsight.scraping.contract import Candidate, ScrapeContext
from furrsight.scraping.discovery import plugin_settings
from furrsight.scraping.handoff import Handoff, staging_folder
from furrsight.scraping.hosts import TransferGate
from furrsight.scraping.http import ClientConfig, FetchError, PoliteClient
from furrsight.scraping.pacing import SharedPacer
from furrsight.scraping.service import registry
from furrsight.scraping.tables import ScrapeUrl
from furrsight.store import FileStore

logger = logging.getLogger(__name__)
IMAGE_TYPES = ("image/", "application/octet-stream", "binary/octet-stream")
BATCH = 64
WINDOW_PER_SLOT = 16  # candidates in progress per transfer slot: most of them wait on their host
BACKLOG_BYTES = 256 * 1024 * 1024
# One statement per batch whatever its size: the rows go in as one JSON parameter that SQLite
# unpacks itself (json_each), instead of ten placeholders a row that the query builder assembles
# in Python (a few per cent of the fetching process's CPU on a long list). ``WHERE true``: an
# upsert after a SELECT needs one (SQLite's parser).
UPSERT = (
    "INSERT INTO scrape_urls (key, url, plugin, status, reason, message, image_id, candidate, job, updated_at) "
    "SELECT {} || ' ' || (r.value ->> 0), r.value ->> 0, {}, r.value ->> 1, r.value ->> 2, r.value ->> 3, "
    "r.value ->> 4, r.value -> 5, {}, CURRENT_TIMESTAMP FROM json_each({}) AS r WHERE true "
    "ON CONFLICT(key) DO UPDATE SET status=excluded.status, reason=excluded.reason, message=excluded.message, "
    "image_id=excluded.image_id, candidate=excluded.candidate, updated_at=excluded.updated_at"
)


class _JobLogHandler(logging.Handler):
    def __init__(self, ctx: JobContext) -> None:
        super().__init__(logging.INFO)
        self.ctx = ctx

    def emit(self, record: logging.LogRecord) -> None:
        self.ctx.log(f"{record.name}: {record.getMessage()}")


def plugin_context(job: JobContext, client: PoliteClient, plugin_name: str) -> ScrapeContext:
    s = job.settings.scraping
    log = logging.getLogger(f"furrsight.plugins.{plugin_name}.job{job.job_id}")
    log.addHandler(_JobLogHandler(job))
    roots = (*job.settings.import_roots, str(job.settings.data_path / "incoming"))
    plugin = registry(job.settings).scrapers.get(plugin_name)
    own = plugin_settings(s, plugin) if plugin else dict(s.plugin_settings.get(plugin_name, {}))
    return ScrapeContext(
        http=client, log=log, settings=own, progress=job.log, count=job.count, job_id=job.job_id, import_roots=roots,
        base_urls={"openverse": s.openverse_url, "wikimedia_commons": s.wikimedia_url, "reddit": s.reddit_url,
                   "searxng": s.searxng_url},
    )  # fmt: skip


async def _candidates(job: JobContext, sctx: ScrapeContext) -> AsyncIterator[Candidate]:
    params = job.params
    if params.get("retry_of"):
        rows = await ScrapeUrl.select(ScrapeUrl.candidate).where(
            (ScrapeUrl.job == params["retry_of"]) & (ScrapeUrl.status != "fetched")
        ).output(load_json=True)  # fmt: skip
        for row in rows:
            yield msgspec.convert(row["candidate"], Candidate)
        return
    plugin = registry(job.settings).scrapers.get(params["plugin"])
    if plugin is None:
        raise ValueError(f"scraper plugin {params['plugin']!r} is not installed (or is broken)")
    runs: list[dict[str, Any]] = [params["params"]]
    if params.get("over_queries"):
        runs = [{**params["params"], "query": q} for q in await enabled_queries()]
        job.log(f"running {plugin.name} over {len(runs)} enabled queries")
    for raw in runs:
        typed = msgspec.convert(raw, plugin.Params, strict=False)
        async for candidate in plugin.scrape(typed, sctx):
            if candidate.query is None and raw.get("query"):
                candidate.query = raw["query"]
            yield candidate


class Backlog:
    """Bodies in memory that ingest has not finished with. Past ``max_count`` bodies or
    ``max_bytes``, the client starts no new download and no new candidate is let in, so a
    network faster than ingest cannot fill the memory (past the limit by at most the downloads
    already on the wire)."""

    def __init__(self, gate: TransferGate, max_count: int, max_bytes: int = BACKLOG_BYTES) -> None:
        self.gate, self.max_count, self.max_bytes = gate, max_count, max_bytes
        self.count = self.size = 0
        self.roomy = asyncio.Event()
        self.roomy.set()

    @contextmanager
    def holding(self, size: int) -> Iterator[None]:
        self._add(1, size)
        try:
            yield
        finally:
            self._add(-1, -size)

    async def room(self) -> None:
        await self.roomy.wait()

    def _add(self, count: int, size: int) -> None:
        self.count, self.size = self.count + count, self.size + size
        if self.count >= self.max_count or self.size >= self.max_bytes:
            self.gate.pause()
            self.roomy.clear()
        else:
            self.gate.resume()
            self.roomy.set()


class ScrapeRun:
    def __init__(self, job: JobContext, client: PoliteClient, ingester: Handoff, plugin: str) -> None:
        self.job, self.client, self.ingester, self.plugin = job, client, ingester, plugin
        self.pending: list[tuple[str, str, str | None, str | None, int | None, Candidate]] = []
        self.seen: set[str] = set()
        self.window_size = WINDOW_PER_SLOT * client.config.concurrency  # candidates in progress
        self.window = asyncio.Semaphore(self.window_size)
        self.backlog = Backlog(client.gate, client.config.concurrency)

    def _record(self, candidate: Candidate, status: str, reason: str | None = None, message: str | None = None,
                image_id: int | None = None) -> None:  # fmt: skip
        if candidate.url:
            self.pending.append((candidate.url, status, reason, message, image_id, candidate))

    async def flush(self) -> None:
        rows, self.pending = self.pending, []
        if not rows:
            return
        try:
            await self._upsert(rows)
        except sqlite3.IntegrityError:  # an image removed since it was fetched (doctor --deep, un-split)
            await self._upsert([await self._still_there(row) for row in rows])

    async def _upsert(self, rows: list[tuple[Any, ...]]) -> None:
        batch = msgspec.json.encode(rows).decode()
        await ScrapeUrl.raw(UPSERT, self.job.job_id, self.plugin, self.job.job_id, batch)

    @staticmethod
    async def _still_there(row: tuple[Any, ...]) -> tuple[Any, ...]:
        """A row whose image is gone, as the database marks one whose image goes later (a
        failure that "retry failed" fetches again: scrape_urls' ``image_removed`` trigger)."""
        url, image_id, candidate = row[0], row[4], row[5]
        if image_id is None or await image_exists(image_id):
            return row
        return (url, "failed", "image_removed", "the image fetched from this URL was removed from the store "
                "since: retry to fetch it again", None, candidate)  # fmt: skip

    async def _fresh(self, batch: list[Candidate]) -> list[Candidate]:
        """Drop candidates already fetched (by an earlier run, or earlier in this one)."""
        urls = [c.url for c in batch if c.url]
        done = set()
        if urls and not self.job.params.get("retry_of"):
            rows = await ScrapeUrl.select(ScrapeUrl.url).where(
                ScrapeUrl.url.is_in(urls) & (ScrapeUrl.status == "fetched")
            )  # fmt: skip
            done = {r["url"] for r in rows}
        fresh = []
        for c in batch:
            if c.url and (c.url in done or c.url in self.seen):
                self.job.count("skipped")
                self.job.done += 1
                continue
            if c.url:
                self.seen.add(c.url)
            fresh.append(c)
        return fresh

    async def run(self, source: AsyncIterator[Candidate]) -> None:
        """Every candidate of ``source`` in its own task, up to ``window`` at a time: a candidate
        waiting for its host (robots.txt, the per-host delay) holds nothing the others need, a
        fetched one goes to ingest while the next ones download."""
        async with asyncio.TaskGroup() as group:
            ticker = group.create_task(self._tick())
            async for candidate in self._fresh_stream(source):
                await self.backlog.room()
                await self.window.acquire()
                group.create_task(self._one(candidate))
            for _ in range(self.window_size):  # wait for the last ones
                await self.window.acquire()
            ticker.cancel()

    async def _fresh_stream(self, source: AsyncIterator[Candidate]) -> AsyncIterator[Candidate]:
        batch: list[Candidate] = []
        async for candidate in source:
            self.job.count("found")
            self.job.total += 1
            batch.append(candidate)
            if len(batch) >= BATCH:
                for c in await self._fresh(batch):
                    yield c
                batch = []
        for c in await self._fresh(batch):
            yield c

    async def _tick(self) -> None:
        """Progress and the cancel check, also while every candidate waits on a slow host."""
        while True:
            await asyncio.sleep(JobContext.FLUSH_EVERY)
            await self.job.advance(0)

    async def _one(self, candidate: Candidate) -> None:
        try:
            await self.handle(candidate)
        except JobCancelled:
            raise
        except Exception as exc:  # one candidate's surprise must not end the run: count it, go on
            logger.exception("scrape job %s: candidate %s", self.job.job_id, candidate.url or candidate.file_name)
            self._fail(candidate, "failed", "unexpected", f"{type(exc).__name__}: {exc}")
        finally:
            self.window.release()
        self.job.done += 1
        if len(self.pending) >= 200:
            await self.flush()
        await self.job.advance(0)

    def _fail(self, candidate: Candidate, status: str, reason: str, message: str) -> None:
        self.job.count("robots" if status == "robots" else "failed")
        if status != "robots":
            self.job.count(f"failed:{reason}")
        self.job.log(f"{status} {candidate.url or candidate.file_name}: {message}")
        self._record(candidate, status, reason, message)

    async def handle(self, candidate: Candidate) -> None:
        data = candidate.data
        if data is None:
            try:
                response = await self.client.get(
                    candidate.url or "", accept=IMAGE_TYPES, max_bytes=self.job.settings.ingest.max_file_bytes
                )
            except FetchError as exc:
                self._fail(candidate, "robots" if exc.reason == "robots" else "failed", exc.reason, exc.message)
                return
            data = response.content
            self.job.count("fetched")
        fields = {f: getattr(candidate, f) for f in Provenance.__struct_fields__ if hasattr(candidate, f)}
        source = Provenance(**{**fields, "kind": "scrape", "plugin": self.plugin, "job_id": self.job.job_id})
        with self.backlog.holding(len(data)):
            result = await self.ingester.ingest(data, source)
        if result.outcome == "refused":
            self._fail(candidate, "failed", result.reason or "refused", result.message or "refused by ingest")
            return
        self.job.count(result.outcome)
        self._record(candidate, "fetched", image_id=result.image_id)


async def run_scrape(ctx: JobContext) -> None:
    settings = ctx.settings
    plugin = str(ctx.params.get("plugin"))
    pacer = None
    if settings.broker_url and settings.scraping.per_host_delay > 0:
        pacer = SharedPacer(valkey_client(settings), settings.broker_namespace)
    client = PoliteClient(ClientConfig.from_settings(settings.scraping), pacer)
    ingester = Ingestor(FileStore(settings.data_path), settings, processes=settings.ingest.processes)
    ingester.start_pool()  # scrapes are large as a rule; the pool outlives the job
    sctx = plugin_context(ctx, client, plugin)
    handoff = Handoff(ingester, staging_folder(settings, ctx.job_id))
    run = ScrapeRun(ctx, client, handoff, plugin)
    try:
        await run.run(_candidates(ctx, sctx))
    except BaseExceptionGroup as failed:
        first = failed.exceptions[0]
        raise (JobCancelled() if isinstance(first, JobCancelled) else first) from None
    finally:
        await run.flush()
        await handoff.aclose()
        await ingester.aclose()
        await client.aclose()
        for handler in list(sctx.log.handlers):
            sctx.log.removeHandler(handler)
