"""Backups as a job (the web's button and ``POST /api/v1/backups``), over ``snapshot``.

The job writes into ``<data>/backups/``; the CLI (``furrsight backup DEST``) writes anywhere. Copy
a backup off the machine: one on the same disk does not survive the disk.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from dramatiq import Broker

from furrsight.backup.files import BackupError
from furrsight.backup.restore import list_backups, restore_from, verify
from furrsight.backup.snapshot import backup_to
from furrsight.db.setup import open_database
from furrsight.jobs.runner import JobCancelled, JobContext
from furrsight.jobs.schemas import JobOut
from furrsight.jobs.service import fail_unfinished, submit
from furrsight.settings import Settings

__all__ = ["BackupError", "backup_to", "list_backups", "restore_from", "run_backup", "start_backup", "verify"]

KIND = "backup.backup"


def backups_folder(settings: Settings) -> Path:
    return settings.data_path / "backups"


def finished_backups(settings: Settings) -> list[dict[str, Any]]:
    return list_backups(backups_folder(settings))


async def start_backup(broker: Broker, settings: Settings, creator: str | None, *, models: bool = False) -> JobOut:
    """Queue a backup job (202 with its Location)."""
    return await submit(broker, settings.data_path, KIND, {"models": models}, creator)


async def run_backup(ctx: JobContext) -> None:
    """Run the backup in a thread (file copies block); progress and cancellation cross over
    through plain attributes and an event, flushed from here every half second."""
    stop = threading.Event()

    def progress(done: int, total: int) -> None:
        ctx.done, ctx.total = done, total
        if stop.is_set():
            raise JobCancelled()

    models = bool(ctx.params.get("models"))
    folder = backups_folder(ctx.settings)
    work = asyncio.create_task(asyncio.to_thread(backup_to, ctx.settings, folder, progress, models=models, log=ctx.log))
    while not work.done():
        await asyncio.wait({work}, timeout=ctx.FLUSH_EVERY)
        await ctx.flush()
        try:
            await ctx.check_cancelled()
        except JobCancelled:
            stop.set()
    final = await work  # raises JobCancelled when stopped: the partial folder is gone by then
    ctx.count("files", ctx.total)
    ctx.log(f"backup written: {final.name}")


async def after_restore(settings: Settings) -> int:
    """Jobs unfinished in the snapshot (this backup's own job among them) are marked failed, in
    words, so they can be retried: their messages were in the old broker. Returns how many."""
    open_database(settings)
    return await fail_unfinished("unfinished when the backup was taken, which was restored since; retry it")
