"""The scheduler loop: every few seconds, fire the schedules whose latest slot has not run.

Any number may run (one per worker process): a slot fires only after this scheduler wins
``SET <ns>:schedules:<id>:<slot> NX`` in Valkey (two schedulers never fire the same slot) AND
advances the row's ``last_slot`` in a write transaction (a restarted scheduler, or one whose
Valkey key expired, never fires it again). Slots missed while none ran are not replayed: the
latest fires once and the row's note says how many were missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time

import valkey.asyncio
from dramatiq import Broker

from furrsight.jobs.schemas import JobOut
from furrsight.schedules import service
from furrsight.settings import Settings

logger = logging.getLogger(__name__)
LOCK_TTL_S = 7 * 86400  # longer than any slot is "latest"; the row's last_slot guards beyond it


class Scheduler:
    def __init__(self, broker: Broker, settings: Settings, client: valkey.asyncio.Valkey, every_s: float = 5.0) -> None:
        self.broker = broker
        self.settings = settings
        self.client = client
        self.every_s = every_s
        self.owner = f"{os.uname().nodename}:{os.getpid()}:{id(self)}"

    def key(self, schedule_id: int, slot: int) -> str:
        return f"{self.settings.broker_namespace}:schedules:{schedule_id}:{slot}"

    async def tick(self, now: int | None = None) -> list[JobOut]:
        """Fire every enabled schedule's due slot once; the jobs this scheduler made."""
        now = int(time.time()) if now is None else now
        made: list[JobOut] = []
        for row in await service.enabled_schedules():
            slot = service.latest_slot(row["cron"], row["interval_s"], now)
            if slot <= row["last_slot"]:
                continue
            if not await self.client.set(self.key(row["id"], slot), self.owner, nx=True, ex=LOCK_TTL_S):
                continue  # another scheduler has this slot
            try:
                claimed = await service.claim_slot(row["id"], slot)
            except Exception:  # the database was busy: free the slot for the next tick (or another scheduler)
                await self.client.delete(self.key(row["id"], slot))
                raise
            if claimed is None:
                continue  # fired before (a restart, or the lock expired)
            job = await service.fire(self.broker, self.settings, claimed, slot)
            if job is not None:
                made.append(job)
        return made

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Tick until ``stop`` is set; a failing tick (database busy, Valkey restarting) is logged
        and the next one tries again."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:
                logger.exception("scheduler tick failed; trying again in %.0f s", self.every_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every_s)
