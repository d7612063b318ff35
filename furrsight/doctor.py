"""``furrsight doctor``: start-up checks in words, each failure with its fix."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import redis

from furrsight.filesystems import Filesystem, filesystem_of
from furrsight.inference import devices
from furrsight.inference.devices import RuntimeDevice
from furrsight.settings import Settings
from furrsight.supervisor import broker_server_binary


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True

    @property
    def label(self) -> str:
        return "ok" if self.ok else ("FAIL" if self.required else "warn")


def check_sqlite(settings: Settings) -> Check:
    try:
        from furrsight.db.engine import sqlite_report

        report = sqlite_report()
    except Exception as exc:
        return Check(
            "sqlite", False, f"cannot load sqlite-vec: {exc}",
            "pip install pysqlite3-binary sqlite-vec, or build the venv with a Python whose sqlite3 "
            "can load extensions (Debian's /usr/bin/python3)",
        )  # fmt: skip
    return Check(
        "sqlite", True, f"{report['module']} SQLite {report['sqlite']}, sqlite-vec {report['sqlite_vec']} loaded"
    )


def check_data_dir(settings: Settings) -> Check:
    path = settings.data_path
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check("data directory", False, f"{path} is not writable: {exc}",
                     "create it and give the service user write access (chown) or set FURRSIGHT_DATA")  # fmt: skip
    free = os.statvfs(path)
    gib = free.f_bavail * free.f_frsize / 1024**3
    return Check("data directory", True, f"{path} writable, {gib:.1f} GiB free")


def check_filesystem(settings: Settings) -> Check:
    return filesystem_check(settings.data_path, filesystem_of(settings.data_path))


def filesystem_check(path: Path, fs: Filesystem | None) -> Check:
    """What the data directory's filesystem means for the data: warnings, each with its fix."""
    if fs is None:
        return Check("filesystem", True, f"{path}: no mount table to read (not Linux)", required=False)
    if fs.network:
        return Check(
            "filesystem", False,
            f"{path} is on {fs}, a network filesystem: SQLite's write-ahead log needs memory shared "
            "between the processes of one machine and locks that network filesystems do not keep "
            "reliably (the database can be corrupted)",
            "put the data directory on a local disk (FURRSIGHT_DATA); back it up to the share instead",
            required=False,
        )  # fmt: skip
    if fs.in_memory:
        return Check(
            "filesystem", False, f"{path} is on {fs}: in memory, so everything is lost at the next reboot",
            "put the data directory on a disk (FURRSIGHT_DATA)", required=False,
        )  # fmt: skip
    if fs.journal is False:
        return Check(
            "filesystem", False,
            f"{path} is on {fs}: after a power cut or a crash of the machine the whole filesystem "
            "needs a check (fsck) before its files and the database can be trusted; and for minutes "
            "after many files are removed, creating files is slower (docs/ingest.md)",
            f"unmount it and add a journal (tune2fs -O has_journal {fs.source}), or use a journalled "
            "filesystem for the data directory",
            required=False,
        )  # fmt: skip
    return Check("filesystem", True, f"{path} is on {fs}")


def check_migrations(settings: Settings) -> Check:
    from furrsight.db.engine import connect

    if not settings.db_path.exists():
        return Check("database", False, f"{settings.db_path} does not exist yet", "run `furrsight migrate`")
    conn = connect(settings.db_path)
    try:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
        mode = conn.execute("pragma journal_mode").fetchone()[0]
    finally:
        conn.close()
    if "jobs" not in tables:
        return Check("database", False, "the schema is missing", "run `furrsight migrate`")
    return Check("database", True, f"{settings.db_path} ({mode} mode, {len(tables)} tables)")


def check_broker(settings: Settings) -> Check:
    if not settings.broker_url:
        binary = broker_server_binary()
        if binary:
            return Check("broker", True, f"none configured; `furrsight up` starts a private one ({binary})")
        return Check("broker", False, "no broker configured and no valkey-server/redis-server installed",
                     "apt-get install redis-server (or valkey-server), or set FURRSIGHT_BROKER_URL")  # fmt: skip
    client = redis.Redis.from_url(settings.broker_url, socket_connect_timeout=2, socket_timeout=2)
    try:
        version = client.info("server").get("redis_version") or client.info("server").get("valkey_version")
    except redis.RedisError as exc:
        return Check("broker", False, f"{settings.broker_url} unreachable: {exc}",
                     "start it (systemctl start valkey-server / redis-server) or fix FURRSIGHT_BROKER_URL")  # fmt: skip
    finally:
        client.close()
    return Check("broker", True, f"{settings.broker_url} answers (server {version})")


def check_workers(settings: Settings) -> Check:
    if not settings.broker_url:
        return Check("workers", False, "no broker configured, so no workers", "use `furrsight up`", required=False)
    client = redis.Redis.from_url(settings.broker_url, socket_connect_timeout=2, socket_timeout=2)
    try:
        now_ms = int(client.time()[0]) * 1000
        key = f"{settings.broker_namespace}:__heartbeats__"
        alive = int(client.zcount(key, now_ms - settings.jobs.heartbeat_timeout_ms, "+inf"))
    except redis.RedisError as exc:
        return Check("workers", False, f"cannot ask the broker: {exc}", "start the broker first", required=False)
    finally:
        client.close()
    if alive == 0:
        return Check("workers", False, "no worker has sent a heartbeat recently",
                     "start them: systemctl start furrsight-worker, or `furrsight worker`", required=False)  # fmt: skip
    return Check("workers", True, f"{alive} worker process(es) alive")


def check_models(settings: Settings) -> Check:
    models = settings.data_path / "models"
    names = sorted(p.name for p in models.iterdir() if p.is_dir()) if models.is_dir() else []
    if not names:
        fix = "`furrsight models list`, then `furrsight models pull NAME` or `import`"
        return Check("models", False, f"no models installed in {models}", fix, required=False)
    return Check("models", True, f"{len(names)} installed: {', '.join(names)}")


def _device_check(name: str, runtime: RuntimeDevice, required: bool) -> Check:
    """CUDA, or the CPU on a machine without an NVIDIA driver, is as it should be; the CPU where a
    driver is (a library missing, a version mismatch, a CPU-only build) is a warning with its fix."""
    if runtime.device == "none":
        return Check(name, False, runtime.words, runtime.fix, required=required)
    return Check(name, runtime.device == "cuda" or not runtime.fix, runtime.words, runtime.fix, required=False)


def check_onnx_device(settings: Settings) -> Check:
    """Which device ONNX models (embeddings, breed tags) use in a GPU worker here, and why."""
    return _device_check("ONNX runtime", devices.probe().onnx, required=True)


def check_gguf_device(settings: Settings) -> Check:
    """Which device GGUF models (the query LLM, pair analysis) use in a GPU worker here, and why."""
    return _device_check("GGUF runtime", devices.probe().gguf, required=False)


def check_scrapers(settings: Settings) -> Check:
    from furrsight.scraping.discovery import discover

    registry = discover(settings.scraping.disabled_plugins, settings.scraping.plugin_dirs)
    if registry.broken:
        detail = "; ".join(f"{b.source}: {b.error}" for b in registry.broken)
        return Check("scrapers", False, f"{len(registry.broken)} plugin(s) did not load: {detail}",
                     "fix or uninstall the plugin; the others work", required=False)  # fmt: skip
    return Check("scrapers", True, f"{len(registry.scrapers)} loaded: {', '.join(sorted(registry.scrapers))}")


def check_default_model(settings: Settings) -> Check:
    """Load the active image model and say which ONNX provider it really got."""
    from furrsight.inference.install import ModelStore
    from furrsight.inference.manifest import ModelError
    from furrsight.inference.onnx_runtime import OnnxModel

    store = ModelStore(settings.data_path / "models")
    try:
        manifest = store.require(settings.search.model)
        entry = manifest.file("model")
        assert entry is not None
        provider = OnnxModel(store.file_path(manifest, entry)).provider
    except (ModelError, OSError, AssertionError) as exc:
        return Check("image model", False, str(exc), "`furrsight models list`, then pull or import it", required=False)
    return Check("image model", True, f"{manifest.name} loads and runs on {provider}")


def check_ocr(settings: Settings) -> Check:
    """Collage captions ("before"/"after") are read with Tesseract; without it, layout only."""
    from furrsight.images import captions

    ok, detail = captions.status()
    if ok:
        return Check("caption OCR", True, f"{detail}: collage captions are read")
    return Check(
        "caption OCR",
        False,
        f"{detail}: collages are split by layout only, left/top taken as before",
        "apt-get install tesseract-ocr tesseract-ocr-eng, and pip install tesserocr",
        required=False,
    )


CHECKS: list[Callable[[Settings], Check]] = [
    check_sqlite,
    check_data_dir,
    check_filesystem,
    check_migrations,
    check_broker,
    check_workers,
    check_models,
    check_onnx_device,
    check_gguf_device,
    check_scrapers,
    check_default_model,
    check_ocr,
]


def run_checks(settings: Settings) -> list[Check]:
    results = []
    for check in CHECKS:
        try:
            results.append(check(settings))
        except Exception as exc:  # a check that crashes is a failed check, not a crashed doctor
            results.append(Check(check.__name__.removeprefix("check_"), False, f"check crashed: {exc!r}"))
    return results


def run_deep(settings: Settings) -> list[Any]:
    """``doctor --deep``: the images' sanity check and repair (``furrsight.images.sanity``)."""
    import asyncio

    from furrsight.db.setup import open_database
    from furrsight.images.sanity import deep_check

    if not settings.db_path.exists():
        return []  # nothing to compare: the plain checks already say to run `furrsight migrate`
    open_database(settings)
    return asyncio.run(deep_check(settings))
