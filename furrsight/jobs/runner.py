"""Running a job inside a worker: claim it, give the handler a context, record the outcome.

Delivery is at-least-once, so ``run_job`` first decides whether this message should run at all:
a finished job, or a message from an earlier run (another ``run_token``), is skipped; a message
for a job already ``running`` is a redelivery after a worker died, and runs again (handlers are
idempotent) unless that has happened too often.
"""

from __future__ import annotations

import logging
import time
import traceback
from pathlib import Path
from typing import Any, Awaitable, Callable

from furrsight.db.piccolo_conf import DATABASE
from furrsight.jobs.service import get_job, log_path, now
from furrsight.jobs.tables import Job
from furrsight.metrics.instruments import JOBS_FINISHED
from furrsight.settings import Settings

MAX_DELIVERIES = 3
logger = logging.getLogger(__name__)


class JobCancelled(Exception):
    """Raised by ``JobContext.check_cancelled`` when a user asked the job to stop."""


class JobContext:
    """What a job handler gets: its params, settings, progress, counters, log and cancellation."""

    FLUSH_EVERY = 0.5  # seconds between progress writes to the database

    def __init__(self, job_id: int, kind: str, params: dict[str, Any], settings: Settings) -> None:
        self.job_id = job_id
        self.kind = kind
        self.params = params
        self.settings = settings
        self.counters: dict[str, int] = {}
        self.done = 0
        self.total = 0
        self._last_flush = 0.0
        self._log_path: Path = log_path(settings.data_path, job_id)
        self._log_path.parent.mkdir(parents=True, exist_ok=True)

    def log(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with self._log_path.open("a", encoding="utf-8") as handle:
            handle.write(f"{stamp} {message}\n")

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    async def set_total(self, total: int) -> None:
        self.total = total
        await self.flush()

    async def advance(self, n: int = 1) -> None:
        self.done += n
        if time.monotonic() - self._last_flush >= self.FLUSH_EVERY:
            await self.flush()
            await self.check_cancelled()

    async def flush(self) -> None:
        self._last_flush = time.monotonic()
        await Job.update(
            {Job.progress_done: self.done, Job.progress_total: self.total, Job.counters: self.counters}
        ).where(Job.id == self.job_id)

    async def check_cancelled(self) -> None:
        rows = await Job.select(Job.cancel_requested).where(Job.id == self.job_id).first()
        if rows and rows["cancel_requested"]:
            raise JobCancelled()


async def _claim(job_id: int, token: str) -> str | None:
    """Mark the job running; returns why it must not run, or None."""
    async with DATABASE.write_transaction():
        row = await Job.select().where(Job.id == job_id).first()
        if row is None:
            return "no such job"
        if row["run_token"] != token:
            return "stale message from an earlier run"
        if row["status"] in ("succeeded", "failed", "cancelled"):
            return f"already {row['status']}"
        redelivered = row["status"] == "running"
        attempts = row["attempts"] + 1
        if redelivered and attempts > MAX_DELIVERIES:
            await Job.update(
                {
                    Job.status: "failed",
                    Job.finished_at: now(),
                    Job.error: f"a worker died {MAX_DELIVERIES} times while running this job; retry it to try again",
                }
            ).where(Job.id == job_id)
            JOBS_FINISHED.labels(row["kind"], "failed").inc()
            return "too many deliveries"
        if row["cancel_requested"]:
            await Job.update({Job.status: "cancelled", Job.finished_at: now()}).where(Job.id == job_id)
            JOBS_FINISHED.labels(row["kind"], "cancelled").inc()
            return "cancelled"
        values: dict[Any, Any] = {Job.status: "running", Job.attempts: attempts, Job.error: None}
        if not redelivered:
            values[Job.started_at] = now()
        await Job.update(values).where(Job.id == job_id)
    return None


async def _finish(ctx: JobContext, status: str, error: str | None = None) -> None:
    JOBS_FINISHED.labels(ctx.kind, status).inc()
    await Job.update(
        {
            Job.status: status,
            Job.error: error,
            Job.finished_at: now(),
            Job.progress_done: ctx.done,
            Job.progress_total: max(ctx.total, ctx.done),
            Job.counters: ctx.counters,
        }
    ).where(Job.id == ctx.job_id)


Handler = Callable[[JobContext], Awaitable[None]]
Then = Callable[[JobContext], Awaitable[None]]  # runs after a job succeeded (pipeline chaining)


async def run_job(job_id: int, token: str, handler: Handler, settings: Settings, then: Then | None = None) -> None:
    reason = await _claim(job_id, token)
    if reason is not None:
        logger.info("job %s not run: %s", job_id, reason)
        return
    job = await get_job(job_id)
    ctx = JobContext(job_id, job.kind, job.params, settings)
    if job.attempts > 1:
        ctx.log(f"resumed after a worker was lost (delivery {job.attempts})")
    ctx.log(f"started {job.kind}")
    try:
        await handler(ctx)
    except JobCancelled:
        ctx.log("cancelled by request")
        await _finish(ctx, "cancelled")
    except Exception as exc:  # the job fails with the reason in words; the worker lives on
        ctx.log("failed: " + "".join(traceback.format_exception_only(exc)).strip())
        ctx.log(traceback.format_exc())
        await _finish(ctx, "failed", error=str(exc) or type(exc).__name__)
    else:
        ctx.log("finished: " + ", ".join(f"{k} {v}" for k, v in sorted(ctx.counters.items())))
        await _finish(ctx, "succeeded")
        if then is not None:
            try:
                await then(ctx)
            except Exception as exc:  # the job itself succeeded; the next stage can be started by hand
                ctx.log(f"could not start the next stage: {exc}")


def job_actor(handler: Handler, settings: Settings, then: Then | None = None) -> Callable[[int, str], Awaitable[None]]:
    """The function a Dramatiq actor runs for ``handler``: thin, ids in, service call out.
    ``then`` (given by ``pipeline.py``) runs after the job succeeded."""

    async def actor(job_id: int, run_token: str) -> None:
        await run_job(job_id, run_token, handler, settings, then)

    actor.__name__ = getattr(handler, "__name__", "job")
    return actor
