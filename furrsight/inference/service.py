"""Model jobs and reports: pull and import as jobs with byte progress, the list with providers."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path
from typing import Any

from dramatiq import Broker

from furrsight.inference.install import ModelStatus, ModelStore
from furrsight.inference.manifest import Manifest, ModelError
from furrsight.inference.onnx_runtime import OnnxModel
from furrsight.inference.residency import RESIDENCY, Residency
from furrsight.jobs.runner import JobCancelled, JobContext
from furrsight.jobs.schemas import JobOut
from furrsight.jobs.service import submit
from furrsight.settings import Settings

PULL_KIND = "models.pull"
IMPORT_KIND = "models.import"


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
    """Download a model's files (resuming partial ones), checking pinned SHA-256 hashes."""
    store = model_store(ctx.settings)
    name = ctx.params["name"]
    ctx.log(f"pulling {name}")
    manifest = await _with_progress(ctx, lambda progress: store.pull(name, progress))
    ctx.count("files", len(manifest.files))
    for path, digest in store.records(name).items():
        ctx.log(f"{path}: sha256 {digest}")


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


async def start_pull(broker: Broker, settings: Settings, name: str, creator: str | None) -> JobOut:
    """The one way to start a pull job; ``ModelError`` for a model nobody knows."""
    check_known(settings, name)
    return await submit(broker, settings.data_path, PULL_KIND, {"name": name}, creator)


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
    """The manifest's ONNX model file, loaded through the residency manager."""
    entry = manifest.file("model")
    if entry is None:
        raise ModelError(f"{manifest.name}: the manifest names no model file")
    path = store.file_path(manifest, entry)
    return residency.acquire(f"{manifest.name}:{entry.path}", lambda: OnnxModel(path), large=manifest.large)  # type: ignore[no-any-return]


def runtime_report(settings: Settings) -> dict[str, Any]:
    """The active model's provider (loading it if needed), and every resident model's."""
    store = model_store(settings)
    active = None
    try:
        active = onnx_model(store, store.require(settings.search.model)).provider
    except (ModelError, OSError) as exc:
        active = f"not loadable: {exc}"
    out: dict[str, Any] = {"active_provider": active, "resident": RESIDENCY.resident(), "providers": {}}
    for key in RESIDENCY.resident():
        model = RESIDENCY.peek(key)
        provider = getattr(model, "provider", None)
        if provider:
            out["providers"][key] = provider
    return out
