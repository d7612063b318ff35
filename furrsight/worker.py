"""The worker entry point: ``dramatiq furrsight.worker:setup`` (what ``furrsight worker`` runs).

The broker is created and set before any actor is declared; then every feature declares its
actors on it, and the database is opened for this process.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sys
import threading
from typing import Any

import dramatiq
from dramatiq.asyncio import get_event_loop_thread

from furrsight.db.setup import open_database
from furrsight.inference import devices
from furrsight.inference.residency import RESIDENCY, IdleSweeper
from furrsight.jobs.broker import DEFAULT_QUEUE, GPU_QUEUE, create_broker, valkey_client
from furrsight.jobs.workers import WorkerRecord
from furrsight.pipeline import register_tasks
from furrsight.schedules.scheduler import Scheduler
from furrsight.settings import load_settings


def setup() -> None:
    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    broker = create_broker(settings)
    dramatiq.set_broker(broker)
    register_tasks(broker, settings)
    interval = max(0.5, settings.jobs.heartbeat_timeout_ms / 3000)  # fresh within a heartbeat timeout
    broker.add_middleware(
        WorkerRecord(settings.broker_namespace, settings.status.forget_dead_worker_s, interval, RESIDENCY.resident)
    )
    open_database(settings)
    IdleSweeper(RESIDENCY, settings.search.idle_unload_s).start()  # idle models leave the GPU
    if GPU_QUEUE in _queues(sys.argv):  # the devices models run on here, for the models page
        threading.Thread(target=devices.publish, args=(settings.data_path,), name="device-probe", daemon=True).start()
    if DEFAULT_QUEUE in _queues(sys.argv) and settings.ingest.processes != 1:
        _start_ingest_pool(settings.ingest.processes)
    if DEFAULT_QUEUE in _queues(sys.argv):  # each default-queue process runs one; Valkey picks who fires
        broker.add_middleware(SchedulerLoop(Scheduler(broker, settings, valkey_client(settings))))


class SchedulerLoop(dramatiq.Middleware):
    """Runs the schedules' scheduler on the worker's asyncio loop (where the actors run, so it
    shares this process's database connection), from boot to shutdown."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.stop: asyncio.Event | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        thread = get_event_loop_thread()
        if thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._run(), thread.loop)

    async def _run(self) -> None:
        self.stop = asyncio.Event()
        await self.scheduler.run(self.stop)

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        thread = get_event_loop_thread()
        if thread is not None and self.stop is not None:
            thread.loop.call_soon_threadsafe(self.stop.set)


def _queues(argv: list[str]) -> set[str]:
    """The queues this worker serves (``--queues a b``; none named: all of them)."""
    if "--queues" not in argv:
        return {DEFAULT_QUEUE}
    named = argv[argv.index("--queues") + 1 :]
    return set(itertools.takewhile(lambda arg: not arg.startswith("-"), named))


def _start_ingest_pool(processes: int) -> None:
    """Start the ingest worker pool in the background now, so that even the first import or
    scrape after a restart finds it warm (starting it takes about a second)."""
    from furrsight.images import work

    count = processes or work.default_processes()
    if count > 1:
        threading.Thread(target=work.warm, args=(count,), name="ingest-pool-start", daemon=True).start()
