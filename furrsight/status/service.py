"""The status report: one item per thing to watch, each ``ok``, ``warn`` or ``down`` with a line
of words, plus the figures behind them (queues, workers, disk, GPU memory).

Read by ``furrsight status`` (which exits 1 when an item is down), ``GET /api/v1/status`` and
the admin page ``/admin/status``. The broker's side is ``furrsight.jobs.status``; the
supervisors' side ``furrsight.runstatus``; disk and GPU are read here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import msgspec
import valkey

from furrsight.jobs import health as jobs_health
from furrsight.jobs.status import QueueState, WorkerState, queue_states, worker_states
from furrsight.runstatus import processes_report
from furrsight.settings import Settings

State = Literal["ok", "warn", "down"]
GB = 1024**3


class Item(msgspec.Struct, kw_only=True):
    name: str
    state: State
    detail: str


class FolderUse(msgspec.Struct, kw_only=True):
    name: str
    bytes: int


class DiskState(msgspec.Struct, kw_only=True):
    path: str
    free_bytes: int
    total_bytes: int
    folders: list[FolderUse]


class GpuMemory(msgspec.Struct, kw_only=True):
    index: int
    used_mb: int
    total_mb: int


class StatusReport(msgspec.Struct, kw_only=True):
    status: State  # the worst item
    down: list[str]  # names of the items that are down
    items: list[Item]
    queues: list[QueueState]
    workers: list[WorkerState]
    disk: DiskState
    gpus: list[GpuMemory] | None  # None: no GPU (no nvidia-smi, or it failed)


def _size(path: Path) -> int:
    if not path.is_dir():
        return path.lstat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # removed while we walk
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def disk_state(data_path: Path) -> DiskState:
    """Bytes under each top-level entry of the data directory, and the free space of its disk."""
    data_path.mkdir(parents=True, exist_ok=True)
    usage = shutil.disk_usage(data_path)
    folders = [FolderUse(name=p.name, bytes=_size(p)) for p in sorted(data_path.iterdir())]
    return DiskState(path=str(data_path), free_bytes=usage.free, total_bytes=usage.total, folders=folders)


def gpu_memory() -> list[GpuMemory] | None:
    """Used and total memory of each GPU by ``nvidia-smi``; None where there is none."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    try:
        out = subprocess.run(
            [smi, "--query-gpu=memory.used,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout  # fmt: skip
        rows = [line.split(",") for line in out.strip().splitlines() if line.strip()]
        return [GpuMemory(index=i, used_mb=int(u), total_mb=int(t)) for i, (u, t) in enumerate(rows)]
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "empty"
    return f"oldest {seconds:.0f} s" if seconds < 120 else f"oldest {seconds / 60:.0f} min"


async def _service(name: str, check: Callable[[Any], Awaitable[dict[str, Any]]], state: object) -> Item:
    try:
        answer = await check(state)
    except Exception as exc:
        answer = {"ok": False, "error": str(exc) or type(exc).__name__}
    return Item(name=name, state="ok" if answer["ok"] else "down", detail=answer.get("error", "reachable"))


NO_BROKER = "no broker URL: set FURRSIGHT_BROKER_URL, or run `furrsight up` on this data directory"


async def collect(
    settings: Settings, client: valkey.asyncio.Valkey | None, web_models: list[str] | None = None
) -> StatusReport:
    """The whole report. ``client``: None when no broker is known; ``web_models``: what the
    asking web process holds (None from the CLI)."""
    state = SimpleNamespace(settings=settings, valkey=client)
    items = [await _service("database", jobs_health.database, state)]
    if client is None:
        broker = Item(name="broker", state="down", detail=NO_BROKER)
    else:
        broker = await _service("broker", jobs_health.broker, state)
    items.append(broker)
    processes = processes_report(settings.data_path)
    if processes["supervised_by"]:
        detail = processes.get("error") or f"{len(processes['children'])} supervised, all running"
        items.append(Item(name="processes", state="ok" if processes["ok"] else "down", detail=detail))
    queues: list[QueueState] = []
    workers: list[WorkerState] = []
    if client is not None and broker.state == "ok":
        queues, workers = await queue_states(client, settings), await worker_states(client, settings)
        items += [_queue_item(q) for q in queues]
        items += _worker_items(workers)
    disk = await asyncio.to_thread(disk_state, settings.data_path)
    items += _disk_items(disk, settings.status.min_free_gb)
    if web_models is not None:
        items.append(Item(name="models web", state="ok", detail=", ".join(web_models) or "none resident"))
    gpus = await asyncio.to_thread(gpu_memory)
    items += [_gpu_item(g) for g in gpus] if gpus else [Item(name="gpu", state="ok", detail="no GPU")]
    down = [i.name for i in items if i.state == "down"]
    worst: State = "down" if down else "warn" if any(i.state == "warn" for i in items) else "ok"
    return StatusReport(status=worst, down=down, items=items, queues=queues, workers=workers, disk=disk, gpus=gpus)


def _queue_item(q: QueueState) -> Item:
    return Item(
        name=f"queue {q.name}", state="ok", detail=f"{q.depth} waiting, {q.delayed} delayed, {_age(q.oldest_age_s)}"
    )


def _worker_items(workers: list[WorkerState]) -> list[Item]:
    items = []
    for w in workers:
        state: State = {"alive": "ok", "replaced": "warn"}.get(w.state, "down")  # type: ignore[assignment]
        name = f"worker {'/'.join(w.queues)} pid {w.pid}"
        items.append(Item(name=name, state=state, detail=w.words()))
        if w.state == "alive":
            items.append(Item(name=f"models {name}", state="ok", detail=", ".join(w.models) or "none resident"))
    if not any(w.state == "alive" for w in workers):
        items.append(Item(name="workers", state="down", detail="no worker has a fresh heartbeat"))
    return items


def _disk_items(disk: DiskState, min_free_gb: float) -> list[Item]:
    low = disk.free_bytes < min_free_gb * GB
    free = f"{disk.free_bytes / GB:.1f} GB free of {disk.total_bytes / GB:.1f} GB at {disk.path}"
    items = [
        Item(
            name="disk free",
            state="warn" if low else "ok",
            detail=free + (f" (below {min_free_gb:g} GB)" if low else ""),
        )
    ]
    items += [Item(name=f"disk {f.name}", state="ok", detail=_bytes(f.bytes)) for f in disk.folders]
    return items


def _bytes(count: int) -> str:
    return f"{count / GB:.1f} GB" if count >= GB else f"{count / 1024**2:.1f} MB"


def _gpu_item(g: GpuMemory) -> Item:
    return Item(name=f"gpu {g.index}", state="ok", detail=f"{g.used_mb} MB used of {g.total_mb} MB")
