"""The schedulable jobs the schedules feature runs itself: clean-up and retry of failed jobs."""

from __future__ import annotations

import json
import shutil
import time
from typing import Any

from dramatiq import Broker

from furrsight.jobs.runner import JobContext
from furrsight.jobs.schemas import JobOut
from furrsight.jobs.service import JobError, job_ids, job_params, retry_job, submit
from furrsight.schedules.service import ScheduleError, cutoff
from furrsight.settings import Settings

CLEANUP_KIND = "schedules.cleanup"
RETRY_KIND = "schedules.retry_failed"
UNFINISHED = ("queued", "running", "failed", "cancelled")  # jobs that may still need their files


def _days(params: dict[str, Any], name: str, default: float) -> float:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= 3650:
        raise ScheduleError(f"params.{name}: a number of days from 1 to 3650")
    return float(value)


def check_cleanup(settings: Settings, params: dict[str, Any]) -> None:
    unknown = set(params) - {"log_days", "staging_days"}
    if unknown:
        raise ScheduleError(f"params: unknown {', '.join(sorted(unknown))} (log_days, staging_days)")
    _days(params, "log_days", 30)
    _days(params, "staging_days", 7)


def check_retry(settings: Settings, params: dict[str, Any]) -> None:
    unknown = set(params) - {"within_days"}
    if unknown:
        raise ScheduleError(f"params: unknown {', '.join(sorted(unknown))} (within_days)")
    _days(params, "within_days", 1)


async def start_cleanup(broker: Broker, settings: Settings, params: dict[str, Any], creator: str) -> JobOut:
    check_cleanup(settings, params)
    return await submit(broker, settings.data_path, CLEANUP_KIND, params, creator)


async def start_retry_failed(broker: Broker, settings: Settings, params: dict[str, Any], creator: str) -> JobOut:
    check_retry(settings, params)
    return await submit(broker, settings.data_path, RETRY_KIND, params, creator)


async def run_cleanup(ctx: JobContext) -> None:
    """Remove logs of jobs finished more than ``log_days`` ago, and ``incoming/`` staging folders
    older than ``staging_days`` that no unfinished job (queued, running, failed, cancelled: all
    retryable) names: accepted uploads a job may still ingest are never removed."""
    data = ctx.settings.data_path
    log_before = cutoff(_days(ctx.params, "log_days", 30)).timestamp()
    staging_before = cutoff(_days(ctx.params, "staging_days", 7)).timestamp()
    active = set(await job_ids(("queued", "running")))
    for path in sorted((data / "logs" / "jobs").glob("*.log")):
        mine = path.stem.isdigit() and int(path.stem) in {*active, ctx.job_id}
        if path.stem.isdigit() and not mine and path.stat().st_mtime < log_before:
            path.unlink(missing_ok=True)
            ctx.count("logs_removed")
    needed = json.dumps(await job_params(UNFINISHED))
    incoming = data / "incoming"
    for folder in sorted(incoming.iterdir()) if incoming.is_dir() else []:
        if folder.is_dir() and folder.stat().st_mtime < staging_before:
            if folder.name in needed:
                ctx.count("staging_kept")
                continue
            shutil.rmtree(folder, ignore_errors=True)
            ctx.count("staging_removed")
    ctx.log(f"clean-up done (logs before {time.ctime(log_before)}, staging before {time.ctime(staging_before)})")


def run_retry_failed(broker: Broker) -> Any:
    async def run_retry(ctx: JobContext) -> None:
        """Retry the jobs that failed within ``within_days`` (not this kind itself)."""
        since = cutoff(_days(ctx.params, "within_days", 1))
        for job_id in await job_ids(("failed",), finished_after=since, not_kind=RETRY_KIND, limit=500):
            try:
                job = await retry_job(broker, job_id)
            except JobError as exc:  # retried by someone else meanwhile, or the broker is down
                ctx.log(f"job {job_id} not retried: {exc}")
                ctx.count("not_retried")
                continue
            ctx.log(f"retried job {job_id} ({job.kind})")
            ctx.count("retried")

    return run_retry
