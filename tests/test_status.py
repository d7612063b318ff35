"""Status: a SIGKILLed GPU worker is reported dead by name (status, /health, `furrsight status`);
a queue's depth and oldest age; disk figures."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import dramatiq
import msgspec
import pytest
import redis
from litestar.testing import AsyncTestClient

from furrsight.jobs.broker import GPU_QUEUE, create_broker, valkey_client
from furrsight.jobs.status import queue_states
from furrsight.jobs.workers import record_key
from furrsight.settings import Settings, StatusSettings
from furrsight.status.service import GpuMemory, collect, gpu_memory
from tests.conftest import ROOT, WorkerProcess, beating_workers, wait_for_heartbeat, worker_env


async def _until(condition: Callable[[], Awaitable[Any]], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := await condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)
    return found


async def test_a_sigkilled_gpu_worker_is_reported_dead_by_name(
    client: AsyncTestClient,  # type: ignore[type-arg]
    migrated: Settings,
    settings_env: dict[str, str],
    tmp_root: Path,
) -> None:
    url = settings_env["FURRSIGHT_BROKER_URL"]
    before = beating_workers(url)
    proc = WorkerProcess(worker_env(settings_env), queues="gpu", log=tmp_root / "status-gpu-worker.log").start()
    broker_id = ""
    try:
        wait_for_heartbeat(proc, url, before, "the GPU worker")
        (new_id,) = {b.decode() for b in beating_workers(url) - before}
        broker_id = new_id

        async def mine(state: str) -> Any:
            report = (await client.get("/api/v1/status")).json()
            return next((w for w in report["workers"] if w["broker_id"] == broker_id and w["state"] == state), None)

        alive = await _until(lambda: mine("alive"), "the GPU worker's record")
        assert alive["queues"] == ["gpu"] and alive["models"] == []
        pid = alive["pid"]

        proc.kill()  # SIGKILL: no clean shutdown, the record stays behind
        dead = await _until(lambda: mine("dead"), "status to report the GPU worker dead")
        assert dead["pid"] == pid and dead["last_beat_age_s"] is not None
        report = (await client.get("/api/v1/status")).json()
        assert report["status"] == "down"
        assert f"worker gpu pid {pid}" in report["down"]
        item = next(i for i in report["items"] if i["name"] == f"worker gpu pid {pid}")
        assert item["state"] == "down" and "stopped heart-beating" in item["detail"]

        health = await client.get("/health")
        assert health.status_code == 503
        assert "workers" in health.json()["down"]
        assert f"gpu worker (pid {pid} on " in health.json()["workers"]["error"]

        cli = subprocess.run(
            [sys.executable, "-m", "furrsight", "status"],
            env={**os.environ, **settings_env}, cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert cli.returncode == 1, cli.stdout + cli.stderr
        line = next(ln for ln in cli.stdout.splitlines() if f"worker gpu pid {pid}:" in ln)
        assert line.split()[0] == "down" and "stopped heart-beating" in line
        assert any(ln.split()[:2] == ["ok", "database:"] for ln in cli.stdout.splitlines())

        page = await client.get("/admin/status")
        assert page.status_code == 200 and f"worker gpu pid {pid}" in page.text
        fragment = await client.get("/admin/status", headers={"HX-Request": "true"})  # the page's refresh
        assert fragment.text.startswith('<div id="status-report"') and f"worker gpu pid {pid}" in fragment.text
    finally:
        proc.kill()
        if broker_id:  # the session's other tests expect a healthy /health
            redis.Redis.from_url(url).delete(record_key("furrsight", broker_id))


async def test_a_queue_shows_its_depth_and_oldest_age(migrated: Settings) -> None:
    settings = msgspec.structs.replace(migrated, broker_namespace=f"status-{uuid.uuid4().hex[:8]}")  # its own queues
    broker = create_broker(settings)
    client = valkey_client(settings)
    try:
        old = int(time.time() * 1000) - 90_000
        for stamp in (old, old + 1000, old + 2000):
            msg = dramatiq.Message(queue_name=GPU_QUEUE, actor_name="x", args=(), kwargs={}, options={})
            broker.enqueue(msg.copy(message_timestamp=stamp))  # enqueued 90 s ago
        later = dramatiq.Message(queue_name=GPU_QUEUE, actor_name="x", args=(), kwargs={}, options={})
        broker.enqueue(later, delay=600_000)
        states = {q.name: q for q in await queue_states(client, settings)}
        assert (states["gpu"].depth, states["gpu"].delayed) == (3, 1)
        assert states["gpu"].oldest_age_s is not None and states["gpu"].oldest_age_s >= 90
        assert (states["default"].depth, states["default"].delayed, states["default"].oldest_age_s) == (0, 0, None)
    finally:
        await client.aclose()
        broker.close()


async def test_status_has_disk_figures(client: AsyncTestClient, migrated: Settings) -> None:  # type: ignore[type-arg]
    report = (await client.get("/api/v1/status")).json()
    disk = report["disk"]
    assert disk["path"] == str(migrated.data_path)
    assert 0 < disk["free_bytes"] <= disk["total_bytes"]
    db = next(f for f in disk["folders"] if f["name"] == "furrsight.db")
    assert db["bytes"] == migrated.db_path.stat().st_size
    assert next(i for i in report["items"] if i["name"] == "disk free")["state"] in ("ok", "warn")
    assert report["gpus"] is None  # no nvidia-smi here
    assert next(i for i in report["items"] if i["name"] == "gpu")["detail"] == "no GPU"


async def test_little_free_space_is_a_warning(migrated: Settings) -> None:
    settings = msgspec.structs.replace(migrated, status=StatusSettings(min_free_gb=10**9))  # more than any disk
    client = valkey_client(settings)
    try:
        report = await collect(settings, client)
    finally:
        await client.aclose()
    item = next(i for i in report.items if i.name == "disk free")
    assert item.state == "warn" and item.detail.endswith("(below 1e+09 GB)")
    assert report.status in ("warn", "down")  # down only if something else is


async def test_status_is_for_admins(curator_client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    assert (await curator_client.get("/api/v1/status")).status_code == 403
    assert (await curator_client.get("/admin/status")).status_code == 403


def test_gpu_memory_is_read_from_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No GPU here: a stand-in ``nvidia-smi`` on PATH answers as the real one does (two GPUs)."""
    smi = tmp_path / "nvidia-smi"
    smi.write_text('#!/bin/sh\n[ "$1 $2" = "--query-gpu=memory.used,memory.total --format=csv,noheader,nounits" ] '
                   '&& printf "1234, 24576\\n80, 8192\\n"\n')  # fmt: skip
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert gpu_memory() == [
        GpuMemory(index=0, used_mb=1234, total_mb=24576),
        GpuMemory(index=1, used_mb=80, total_mb=8192),
    ]
    smi.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    assert gpu_memory() is None  # a driver that does not answer: no GPU, not a crash
