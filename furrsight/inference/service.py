"""Model jobs and reports: pull and import as jobs with byte progress, the list with providers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any

from dramatiq import Broker

from furrsight.inference import devices
from furrsight.inference.install import ModelStatus, ModelStore, noncommercial_notice
from furrsight.inference.manifest import Manifest, ModelError
from furrsight.inference.onnx_runtime import OnnxModel
from furrsight.inference.residency import RESIDENCY, Residency
from furrsight.jobs.runner import JobCancelled, JobContext
from furrsight.jobs.schemas import JobOut
from furrsight.jobs.service import submit
from furrsight.settings import Settings

PULL_KIND = "models.pull"
IMPORT_KIND = "models.import"
VERIFY_KIND = "models.verify"


def model_store(settings: Settings) -> ModelStore:
    return ModelStore(settings.data_path / "models")


class _Stop(Exception):
    pass


async def _with_progress(ctx: JobContext, work: Any) -> Any:
    """Run ``work(progress)`` in a thread; its byte progress reaches the job every half second,
    and a cancel request stops the transfer at the next chunk (a pull resumes from there)."""
    stop = threading.Event()
    seen = {"done": 0, "total": 0}

    def progress(done: int, total: int | None) -> None:
        seen["done"], seen["total"] = done, total or 0
        if stop.is_set():
            raise _Stop()

    task = asyncio.ensure_future(asyncio.to_thread(work, progress))
    try:
        while not task.done():
            await asyncio.wait([task], timeout=0.5)
            ctx.total, ctx.done = seen["total"], seen["done"]
            await ctx.flush()
            try:
                await ctx.check_cancelled()
            except JobCancelled:
                stop.set()
                with contextlib.suppress(_Stop):
                    await task
                raise
        return task.result()
    except _Stop as exc:
        raise JobCancelled() from exc


async def run_pull(ctx: JobContext) -> None:
    """Download a model's files (resuming partial ones), refusing bytes whose SHA-256 is not the
    pinned one; unpinned files only with ``allow_unpinned`` (their hash is recorded)."""
    store = model_store(ctx.settings)
    name, allow = ctx.params["name"], bool(ctx.params.get("allow_unpinned"))
    accept = bool(ctx.params.get("accept_licence"))
    ctx.log(f"pulling {name}" + (" (unpinned files allowed)" if allow else ""))
    manifest = await _with_progress(
        ctx, lambda progress: store.pull(name, progress, allow_unpinned=allow, accept_licence=accept)
    )
    ctx.count("files", len(manifest.files))
    unpinned = {f.path for f in manifest.unpinned()}
    for path, digest in store.records(name).items():
        ctx.log(f"{path}: sha256 {digest}" + (" (unpinned: recorded as it came)" if path in unpinned else ""))


async def run_verify(ctx: JobContext) -> None:
    """Re-hash an installed model's files (minutes for gigabytes: a job, progress in bytes).
    Fails, with every problem in the error, when a file is missing or its hash differs."""
    store = model_store(ctx.settings)
    name = ctx.params["name"]
    problems = await _with_progress(ctx, lambda progress: store.verify(name, progress))
    manifest = store.manifest(name)
    ctx.count("files", len(manifest.files))
    ctx.count("bad", len(problems))
    for problem in problems:
        ctx.log(problem)
    if problems:
        raise ModelError(f"{name}: {len(problems)} of {len(manifest.files)} file(s) bad: " + "; ".join(problems))
    ctx.log(f"{name}: all {len(manifest.files)} file(s) intact")


async def run_import(ctx: JobContext) -> None:
    """Install files brought in by hand from a server folder."""
    store = model_store(ctx.settings)
    name, path = ctx.params["name"], Path(ctx.params["path"])
    manifest = await asyncio.to_thread(store.import_files, name, path)
    ctx.count("files", len(manifest.files))
    for file, digest in store.records(name).items():
        ctx.log(f"{file}: sha256 {digest}")


def check_known(settings: Settings, name: str) -> None:
    """ModelError unless ``name`` is in the catalogue or installed (before a job is queued)."""
    model_store(settings).manifest(name)


class ImportSourceError(ValueError):
    """A model import from a path that is not an absolute, existing path on the server."""


async def start_pull(
    broker: Broker,
    settings: Settings,
    name: str,
    creator: str | None,
    *,
    allow_unpinned: bool = False,
    accept_licence: bool = False,
) -> JobOut:
    """The one way to start a pull job; ``ModelError`` for a model nobody knows. Unpinned files
    are refused by the job unless ``allow_unpinned``."""
    check_known(settings, name)
    manifest = model_store(settings).manifest(name)
    if not manifest.commercial_use and not accept_licence:  # said before anything is queued
        raise ModelError(noncommercial_notice(manifest) + ": pull it only for non-commercial use, and say so "
                         "(accept_licence)")  # fmt: skip
    params = {"name": name, "allow_unpinned": allow_unpinned, "accept_licence": accept_licence}
    return await submit(broker, settings.data_path, PULL_KIND, params, creator)


async def start_verify(broker: Broker, settings: Settings, name: str, creator: str | None) -> JobOut:
    """The one way to start a verify job: ``ModelError`` when the model is not installed."""
    check_known(settings, name)
    model_store(settings).require(name)
    return await submit(broker, settings.data_path, VERIFY_KIND, {"name": name}, creator)


async def start_model_import(broker: Broker, settings: Settings, name: str, path: str, creator: str | None) -> JobOut:
    """The one way to start a model import job: files at an absolute server ``path`` (a folder
    with its own ``manifest.toml``, or files of a known model)."""
    if not path.startswith("/"):
        raise ImportSourceError(f"{path!r} is not an absolute path on the server")
    source = Path(path)
    if not source.exists():
        raise ImportSourceError(f"{path} does not exist on the server")
    if not (source.is_dir() and (source / "manifest.toml").exists()):
        check_known(settings, name)
    return await submit(broker, settings.data_path, IMPORT_KIND, {"name": name, "path": str(source)}, creator)


def list_models(settings: Settings) -> list[ModelStatus]:
    return model_store(settings).statuses()


def onnx_model(store: ModelStore, manifest: Manifest, residency: Residency = RESIDENCY) -> OnnxModel:
    """The manifest's ONNX model file, loaded through the residency manager, on the providers the
    residency allows (the web process's residency allows the CPU only)."""
    entry = manifest.file("model")
    if entry is None:
        raise ModelError(f"{manifest.name}: the manifest names no model file")
    path = store.file_path(manifest, entry)
    model = residency.acquire(
        f"{manifest.name}:{entry.path}",
        lambda: OnnxModel(path, providers=residency.providers, name=manifest.name),
        large=manifest.large,
    )
    return model  # type: ignore[no-any-return]


class DevicesOut(devices.DeviceReport, frozen=True, kw_only=True):
    """Which device each runtime of the GPU worker uses, and why; ``source`` says who found out:
    ``gpu-worker`` (its own probe, written at its start) or ``web`` (this process's, until then)."""

    source: str
    pid: int
    at: float


def device_report(settings: Settings) -> DevicesOut:
    """The GPU worker's devices as it published them, else as this process finds them (the web
    process may be sandboxed away from the GPU: the worker's word counts). Blocking: runs
    ``nvidia-smi`` once per process when no worker has reported."""
    found = devices.published(settings.data_path)
    source = "gpu-worker" if found else "web"
    if found is None:
        found = devices.Published(report=devices.probe(), pid=os.getpid(), at=time.time())
    report = found.report
    return DevicesOut(driver=report.driver, onnx=report.onnx, gguf=report.gguf, source=source, pid=found.pid,
                      at=found.at)  # fmt: skip


def runtime_report(residency: Residency, settings: Settings) -> dict[str, Any]:
    """What this process holds and on which provider (loads nothing), what onnxruntime offers, and
    which device each runtime of the GPU worker uses and why."""
    import onnxruntime

    out: dict[str, Any] = {
        "devices": (found := device_report(settings)),
        "devices_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(found.at)),
        "device": residency.device,
        "allowed": residency.providers,
        "available": onnxruntime.get_available_providers(),
        "resident": residency.resident(),
        "providers": {},
    }
    for key in residency.resident():
        session = getattr(residency.peek(key), "_session", None)
        if session is not None:
            out["providers"][key] = session.get_providers()[0]
    return out
