"""Issue 15, items 3 and 7: the scheduler. Two schedulers on the same Valkey and database fire
each slot exactly once; a restart never fires a slot twice; missed slots run once, with a note.
(The API, the page and the worker's scheduler, on the session's database: ``test_schedules_api``.)

These tests run on a data directory and a broker namespace of this module's own: they count every
job their schedules make."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from furrsight.jobs.broker import create_broker, valkey_client
from furrsight.jobs.runner import JobContext
from furrsight.jobs.service import job_params, list_jobs
from furrsight.jobs.tables import Job
from furrsight.pipeline import register_schedulable_actions, register_tasks
from furrsight.schedules import housekeeping, service
from furrsight.schedules.scheduler import Scheduler
from furrsight.schedules.schemas import ScheduleIn
from furrsight.settings import Settings
from tests.conftest import WorkerProcess, own_data, worker_env
from tests.schedule_data import jobs_of

NAMESPACE = "schedtest"


@pytest.fixture(scope="module")
async def own(migrated: Settings, tmp_root: Path) -> AsyncIterator[Settings]:
    register_schedulable_actions()  # as every process that schedules does (the web's, a worker's)
    async with own_data(tmp_root / "schedules", migrated, broker_namespace=NAMESPACE) as settings:
        yield settings


def _broker(settings: Settings):  # type: ignore[no-untyped-def]
    broker = create_broker(settings)
    register_tasks(broker, settings)
    return broker


async def test_two_schedulers_fire_each_slot_once(own: Settings) -> None:
    broker = _broker(own)
    made = await service.create_schedule(
        own, ScheduleIn(name="retry every minute", action="retry_failed", interval_s=60)
    )
    a = Scheduler(broker, own, valkey_client(own))
    b = Scheduler(broker, own, valkey_client(own))
    base = made.last_slot
    for k in range(1, 6):  # five slots; each ticked three times by both schedulers at once
        now = base + k * 60 + 7
        fired = await asyncio.gather(*(s.tick(now) for s in (a, b, a, b, a, b)))
        assert sum(len(jobs) for jobs in fired) == 1
    jobs = await jobs_of(made.id)
    assert len(jobs) == 5
    after = await service.get_schedule(made.id)
    assert (after.fires, after.last_slot, after.last_job_id) == (5, base + 5 * 60, jobs[-1])
    assert after.last_note == f"ran the slot of {service._stamp(base + 300)}: job {jobs[-1]}"
    kinds = {j.kind for j in (await list_jobs(limit=500)).items if j.id in jobs}
    assert kinds == {housekeeping.RETRY_KIND}

    # A restart: new schedulers, and the Valkey keys gone too (expired): the database still knows.
    client = valkey_client(own)
    keys = [k async for k in client.scan_iter(f"{NAMESPACE}:schedules:{made.id}:*")]
    assert len(keys) == 5
    await client.delete(*keys)
    c = Scheduler(broker, own, valkey_client(own))
    d = Scheduler(broker, own, valkey_client(own))
    again = await asyncio.gather(c.tick(base + 5 * 60 + 30), d.tick(base + 5 * 60 + 59))
    assert again == [[], []]
    assert len(await jobs_of(made.id)) == 5

    # The schedulers were down for eleven slots: the latest runs once, and the note says so.
    late = base + 16 * 60 + 1
    fired = await asyncio.gather(c.tick(late), d.tick(late))
    assert sum(len(jobs) for jobs in fired) == 1
    after = await service.get_schedule(made.id)
    assert after.fires == 6
    assert after.last_note.startswith(
        f"missed 10 slot(s) while no scheduler ran; ran the latest, {service._stamp(base + 960)}, once: job "
    )
    assert len(await jobs_of(made.id)) == 6


async def test_paused_schedule_skips_its_slots_and_run_now_makes_a_job(own: Settings) -> None:
    broker = _broker(own)
    made = await service.create_schedule(
        own, ScheduleIn(name="nightly clean-up", action="cleanup", cron="0 3 * * *", params={"log_days": 10})
    )
    await service.set_enabled(made.id, False)
    scheduler = Scheduler(broker, own, valkey_client(own))
    fired = await scheduler.tick(made.last_slot + 3 * 86400)  # (the first test's schedule may fire)
    assert [j for j in fired if j.creator == f"schedule {made.id}"] == []
    job = await service.run_now(broker, own, made.id, "curator-ann")
    assert (job.kind, job.params, job.creator, job.status) == (
        housekeeping.CLEANUP_KIND, {"log_days": 10}, "curator-ann", "queued"
    )  # fmt: skip
    after = await service.get_schedule(made.id)
    assert (after.fires, after.last_slot, after.last_job_id, after.next_slot) == (0, made.last_slot, job.id, None)
    resumed = await service.set_enabled(made.id, True)
    assert (resumed.last_slot, resumed.next_slot) == (made.last_slot, made.last_slot + 86400)
    assert resumed.last_note.endswith("; 0 slot(s) skipped while paused")


def test_cron_slots() -> None:
    t = 1_780_000_000  # 2026-05-28 20:26:40 UTC
    assert service.latest_slot("*/5 * * * *", None, t) == t - 100
    assert service.latest_slot("*/5 * * * *", None, t - 100) == t - 100
    assert service.next_slot("*/5 * * * *", None, t - 100) == t + 200
    assert service.slots_between("*/5 * * * *", None, t - 100 - 3600, t - 100) == 11
    assert service.latest_slot(None, 60, t) == t - 40


async def test_cleanup_removes_old_logs_and_unclaimed_staging(own: Settings) -> None:
    old = time.time() - 40 * 86400
    logs = own.data_path / "logs" / "jobs"
    logs.mkdir(parents=True, exist_ok=True)
    stale_log, fresh_log = logs / "900001.log", logs / "900002.log"
    for path in (stale_log, fresh_log):
        path.write_text("x")
    os.utime(stale_log, (old, old))
    incoming = own.data_path / "incoming"
    kept, gone, young = incoming / "eeeeffff", incoming / "aaaabbbb", incoming / "ccccdddd"
    for folder in (kept, gone, young):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "a.jpg").write_bytes(b"img")
    for folder in (kept, gone):
        os.utime(folder, (old, old))
    failed = Job(kind="images.import", params={"staging": "incoming/eeeeffff"}, status="failed", run_token="t")
    await failed.save()  # a failed upload may be retried: its staged files stay
    assert {"staging": "incoming/eeeeffff"} in await job_params(("failed",))
    job = Job(kind=housekeeping.CLEANUP_KIND, params={}, run_token="t")
    await job.save()
    ctx = JobContext(job.id, housekeeping.CLEANUP_KIND, {}, own)
    await housekeeping.run_cleanup(ctx)
    assert ctx.counters == {"logs_removed": 1, "staging_kept": 1, "staging_removed": 1}
    assert (stale_log.exists(), fresh_log.exists()) == (False, True)
    assert (kept.exists(), gone.exists(), young.exists()) == (True, False, True)


async def test_two_worker_processes_fire_each_slot_once(own: Settings, settings_env: dict[str, str]) -> None:
    """Two real ``furrsight.worker`` processes, each running the scheduler, on one Valkey and one
    database: every slot of a 10-second schedule makes exactly one job."""
    env = worker_env({**settings_env, "FURRSIGHT_DATA": str(own.data_path), "FURRSIGHT_BROKER_NAMESPACE": "schedtwo"})
    made = await service.create_schedule(
        own, ScheduleIn(name="two workers", action="cleanup", params={"log_days": 3650}, interval_s=10)
    )
    workers = [WorkerProcess(env, log=own.data_path / f"worker{i}.log").start() for i in range(2)]
    try:
        deadline = time.monotonic() + 90
        while (await service.get_schedule(made.id)).fires < 3:
            assert time.monotonic() < deadline, (own.data_path / "worker0.log").read_text()[-3000:]
            await asyncio.sleep(0.5)
        await service.set_enabled(made.id, False)
    finally:
        for w in workers:
            w.stop()
    after = await service.get_schedule(made.id)
    client = valkey_client(own)
    keys = sorted([k async for k in client.scan_iter(f"schedtwo:schedules:{made.id}:*")])
    jobs = await jobs_of(made.id)
    assert len(jobs) == after.fires == len(keys)
