"""Job records: create, enqueue, read, cancel, retry. Plain async functions over the jobs table."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from dramatiq import Broker
from piccolo.query.functions.aggregate import Count

from furrsight.db.piccolo_conf import DATABASE
from furrsight.jobs.schemas import FINISHED, JobOut, JobPage
from furrsight.jobs.tables import Job
from furrsight.metrics.instruments import JOBS_FINISHED


class JobError(Exception):
    """A job operation that cannot be done; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


def now() -> datetime:
    return datetime.now(UTC)


def _out(row: dict[str, Any]) -> JobOut:
    return msgspec.convert(row, JobOut, from_attributes=False, strict=False)


async def _row(job_id: int) -> dict[str, Any] | None:
    return await Job.select().where(Job.id == job_id).first().output(load_json=True)


async def get_job(job_id: int) -> JobOut:
    row = await _row(job_id)
    if row is None:
        raise JobError(f"job {job_id} does not exist", status=404)
    return _out(row)


def log_path(data_path: Path, job_id: int) -> Path:
    return data_path / "logs" / "jobs" / f"{job_id}.log"


def read_log_tail(data_path: Path, job_id: int, lines: int) -> str:
    path = log_path(data_path, job_id)
    if not path.exists():
        return ""
    with path.open("rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - 256 * lines))
        text = handle.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


def _send(broker: Broker, job_id: int, kind: str, token: str) -> None:
    broker.get_actor(kind).send(job_id, token)


async def submit(broker: Broker, data_path: Path, kind: str, params: dict[str, Any], creator: str | None) -> JobOut:
    """Record a job and enqueue it. If the broker is unreachable the job stays queued, with the
    reason in ``error``, and ``retry`` sends it again: accepted work is never dropped."""
    broker.get_actor(kind)  # an unknown kind fails here, before anything is written
    token = secrets.token_hex(8)
    row = Job(kind=kind, params=params, creator=creator, run_token=token)
    await row.save()
    await Job.update({Job.log_path: str(log_path(data_path, row.id))}).where(Job.id == row.id)
    try:
        _send(broker, row.id, kind, token)
    except Exception as exc:  # the broker is down: keep the job, say why
        await Job.update({Job.error: f"could not reach the broker ({exc}); retry the job"}).where(Job.id == row.id)
        raise JobError(f"job {row.id} recorded but not queued: the broker is unreachable", status=503) from exc
    return await get_job(row.id)


async def list_jobs(
    limit: int = 50, before: int | None = None, status: str | None = None, kind: str | None = None
) -> JobPage:
    query = Job.select().order_by(Job.id, ascending=False).limit(limit + 1)
    if before is not None:
        query = query.where(Job.id < before)
    if status:
        query = query.where(Job.status == status)
    if kind:
        query = query.where(Job.kind == kind)
    rows = await query.output(load_json=True)
    items = [_out(r) for r in rows[:limit]]
    return JobPage(items=items, next_cursor=items[-1].id if len(rows) > limit else None)


async def cancel_job(job_id: int) -> JobOut:
    """A queued job is cancelled at once; a running one is asked to stop at its next check."""
    async with DATABASE.write_transaction():
        job = await get_job(job_id)
        if job.status in FINISHED:
            raise JobError(f"job {job_id} has already {job.status}; nothing to cancel")
        if job.status == "queued":
            await Job.update({Job.status: "cancelled", Job.finished_at: now(), Job.cancel_requested: True}).where(
                Job.id == job_id
            )
            JOBS_FINISHED.labels(job.kind, "cancelled").inc()
        else:
            await Job.update({Job.cancel_requested: True}).where(Job.id == job_id)
    return await get_job(job_id)


async def fail_unfinished(reason: str) -> int:
    """Mark every queued or running job failed with ``reason`` (after a restore: the broker that
    held their messages is not the one the restored appliance uses); each can then be retried."""
    async with DATABASE.write_transaction():
        ids = [r["id"] for r in await Job.select(Job.id).where(Job.status.is_in(["queued", "running"]))]
        if ids:
            await Job.update({Job.status: "failed", Job.error: reason, Job.finished_at: now()}).where(Job.id.is_in(ids))
    return len(ids)


async def retry_job(broker: Broker, job_id: int) -> JobOut:
    """Run a failed or cancelled job again (or re-send a queued one the broker never got)."""
    token = secrets.token_hex(8)
    async with DATABASE.write_transaction():
        job = await get_job(job_id)
        never_sent = job.status == "queued" and job.error is not None
        if job.status not in ("failed", "cancelled") and not never_sent:
            raise JobError(f"job {job_id} is {job.status}; only failed or cancelled jobs can be retried")
        await Job.update(
            {
                Job.status: "queued",
                Job.error: None,
                Job.cancel_requested: False,
                Job.run_token: token,
                Job.attempts: 0,
                Job.progress_done: 0,
                Job.started_at: None,
                Job.finished_at: None,
            }
        ).where(Job.id == job_id)
    try:
        _send(broker, job_id, job.kind, token)
    except Exception as exc:
        await Job.update({Job.error: f"could not reach the broker ({exc}); retry the job"}).where(Job.id == job_id)
        raise JobError(f"job {job_id} could not be queued: the broker is unreachable", status=503) from exc
    return await get_job(job_id)


async def counts_by_kind_status() -> dict[tuple[str, str], int]:
    """How many jobs there are of each (kind, status), for ``/metrics``."""
    rows = await Job.select(Job.kind, Job.status, Count(Job.id, alias="n")).group_by(Job.kind, Job.status)
    return {(r["kind"], r["status"]): r["n"] for r in rows}


async def job_ids(
    statuses: tuple[str, ...], *, finished_after: datetime | None = None, not_kind: str = "", limit: int = 10_000
) -> list[int]:
    """Ids of the jobs in ``statuses`` (oldest first), optionally only those finished after a time."""
    query = Job.select(Job.id).where(Job.status.is_in(list(statuses))).order_by(Job.id).limit(limit)
    if finished_after is not None:
        query = query.where(Job.finished_at >= finished_after)
    if not_kind:
        query = query.where(Job.kind != not_kind)
    return [r["id"] for r in await query]


async def job_params(statuses: tuple[str, ...]) -> list[dict[str, Any]]:
    """The params of every job in ``statuses`` (what a clean-up must not remove from under them)."""
    rows = await Job.select(Job.params).where(Job.status.is_in(list(statuses))).output(load_json=True)
    return [r["params"] for r in rows]
