"""Real parts for every test: a SQLite file in a temp dir, a Valkey/Redis server on a free
loopback port, the real app, and real Dramatiq worker processes.

The session shares one data directory and one broker: worker processes read their settings
once at start, like in production. Tests make their own distinct images, so they do not depend
on what other tests stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis
from litestar.testing import AsyncTestClient

from furrsight.settings import Settings, load_settings
from furrsight.supervisor import broker_command, broker_server_binary, free_port, wait_for_broker

ROOT = Path(__file__).resolve().parent.parent


class BrokerServer:
    """A private Valkey/Redis server for tests; can be stopped and started again."""

    def __init__(self, folder: Path) -> None:
        binary = broker_server_binary()
        if binary is None:
            raise RuntimeError("tests need valkey-server or redis-server (make test installs it)")
        self.binary = binary
        self.port = free_port()
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            broker_command(self.binary, self.port, self.folder), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_broker(self.url)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def worker_env(settings_env: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(settings_env)
    return env


class WorkerProcess:
    """A real ``dramatiq furrsight.worker:setup`` process, as ``furrsight worker`` starts it."""

    def __init__(self, env: dict[str, str], queues: str = "default", log: Path | None = None) -> None:
        self.env = env
        self.queues = queues
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        out = self.log.open("ab") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dramatiq", "furrsight.worker:setup", "--processes", "1", "--threads", "2",
             "--queues", *self.queues.split(","), "--worker-shutdown-timeout", "5000"],
            env=self.env, stdout=out, stderr=out, cwd=ROOT, start_new_session=True,
        )  # fmt: skip
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group: the dramatiq parent and its worker child."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM to the dramatiq parent only, as systemd's ``KillMode=mixed`` and ``furrsight up``
        do: the parent forwards it once. (A SIGTERM to the whole group reaches the worker child twice,
        and dramatiq's second-signal path exits mid-shutdown and can hang there.)"""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(20)
        if self.proc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, 9)  # whatever the group left behind
            self.proc.wait(10)


@pytest.fixture(scope="session")
def tmp_root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="furrsight-test-") as folder:
        yield Path(folder)


@pytest.fixture(scope="session")
def broker_server(tmp_root: Path) -> Iterator[BrokerServer]:
    server = BrokerServer(tmp_root / "broker")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def settings_env(tmp_root: Path, broker_server: BrokerServer) -> dict[str, str]:
    (tmp_root / "imports").mkdir(exist_ok=True)
    env = {
        "FURRSIGHT_DATA": str(tmp_root / "data"),
        "FURRSIGHT_BROKER_URL": broker_server.url,
        "FURRSIGHT_IMPORT_ROOTS": str(tmp_root / "imports"),
        "FURRSIGHT_JOBS_HEARTBEAT_TIMEOUT_MS": "3000",
        "FURRSIGHT_JOBS_MAINTENANCE_CHANCE": "200000",
        "FURRSIGHT_PAGE_SIZE": "20",
    }
    os.environ.update(env)  # the test process reads the same settings as its workers
    return env


@pytest.fixture(scope="session")
def settings(settings_env: dict[str, str]) -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
async def migrated(settings: Settings) -> Settings:
    from furrsight.db.setup import migrate

    await migrate(settings)
    return settings


@pytest.fixture(scope="session")
def worker(migrated: Settings, settings_env: dict[str, str], tmp_root: Path) -> Iterator[WorkerProcess]:
    beating = beating_workers(settings_env["FURRSIGHT_BROKER_URL"])
    proc = WorkerProcess(worker_env(settings_env), log=tmp_root / "worker.log").start()
    wait_for_heartbeat(proc, settings_env["FURRSIGHT_BROKER_URL"], beating, "the default-queue worker")
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def gpu_worker(migrated: Settings, settings_env: dict[str, str], tmp_root: Path) -> Iterator[WorkerProcess]:
    """A single-threaded GPU-queue worker (like ``furrsight worker`` starts), for this module.
    Fails the tests that use it, with the worker's log, when it does not heart-beat."""
    url = settings_env["FURRSIGHT_BROKER_URL"]
    beating = beating_workers(url)
    proc = WorkerProcess(worker_env(settings_env), queues="gpu", log=tmp_root / "gpu-worker.log").start()
    wait_for_heartbeat(proc, url, beating, "the GPU worker")
    yield proc
    proc.stop()


def beating_workers(url: str, namespace: str = "furrsight", fresh_ms: int = 3000) -> set[bytes]:
    """The broker ids of worker processes whose heartbeat is fresher than ``fresh_ms``."""
    client = redis.Redis.from_url(url)
    try:
        now_ms = int(client.time()[0]) * 1000
        return set(client.zrangebyscore(f"{namespace}:__heartbeats__", now_ms - fresh_ms, "+inf"))
    finally:
        client.close()


def wait_for_heartbeat(
    proc: WorkerProcess, url: str, beating_before: set[bytes], what: str, timeout: float = 60.0
) -> None:
    """Wait until a worker process that was not beating before (``beating_before``: broker ids)
    beats; fail loudly, with the worker's log, if it exits or stays silent. Compared by id, not by
    count: a worker that just stopped still looks fresh for a moment and would hide the new one."""
    deadline = time.monotonic() + timeout
    while not beating_workers(url) - beating_before:
        assert proc.proc is not None
        code = proc.proc.poll()
        if code is not None or time.monotonic() > deadline:
            why = f"exited with status {code}" if code is not None else f"sent no heartbeat within {timeout:.0f} s"
            pytest.fail(f"{what} {why}; its log:\n{_tail(proc.log)}", pytrace=False)
        time.sleep(0.2)


def wait_for_workers(url: str, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while len(beating_workers(url)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {count} worker processes sent a heartbeat within {timeout:.0f} s")
        time.sleep(0.2)


def _tail(log: Path | None, lines: int = 30) -> str:
    if log is None or not log.exists():
        return "(no log)"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


async def user_with_token(role: str, name: str | None = None) -> tuple[str, str]:
    """An active account of ``role`` (made once per session) and a new API token for it."""
    from furrsight.auth import service

    name = name or f"test-{role}"
    with contextlib.suppress(service.AccountError):  # made by an earlier fixture of this session
        await service.create_user(name, role, "password-of-" + name)
    return name, (await service.create_token(name, "tests")).token


@asynccontextmanager
async def app_client(settings: Settings, token: str | None = None, **kwargs: Any) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    """A test client on its own instance of the real app, optionally sending a Bearer token."""
    from furrsight.app import create_app

    async with AsyncTestClient(app=create_app(settings), timeout=30, **kwargs) as test_client:
        if token:
            test_client.headers["Authorization"] = f"Bearer {token}"
        yield test_client


@pytest.fixture(scope="session")
async def client(migrated: Settings) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    """The real app, signed in as an admin with a Bearer token (CSRF-exempt)."""
    _, token = await user_with_token("admin")
    async with app_client(migrated, token) as test_client:
        yield test_client


@pytest.fixture(scope="session")
async def curator_client(migrated: Settings) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    _, token = await user_with_token("curator")
    async with app_client(migrated, token) as test_client:
        yield test_client


@pytest.fixture(scope="session")
async def viewer_client(migrated: Settings) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    _, token = await user_with_token("viewer")
    async with app_client(migrated, token) as test_client:
        yield test_client


@pytest.fixture(scope="session")
async def _anon_app_client(migrated: Settings) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    await user_with_token("admin")  # past first run: the app asks for a sign-in, not for setup
    async with app_client(migrated) as test_client:
        yield test_client


@pytest.fixture
def anon_client(_anon_app_client: AsyncTestClient) -> AsyncTestClient:  # type: ignore[type-arg]
    """A browser without a session (cookies cleared before each test)."""
    _anon_app_client.cookies.clear()
    _anon_app_client.headers.pop("Authorization", None)
    return _anon_app_client


async def wait_for_job(
    client: AsyncTestClient,
    job_id: int,
    timeout: float = 60.0,
    statuses: tuple[str, ...] = ("succeeded", "failed", "cancelled"),
) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while True:
        job = (await client.get(f"/api/v1/jobs/{job_id}")).json()
        if job["status"] in statuses:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job['status']}: {job}")
        await asyncio.sleep(0.2)


@asynccontextmanager
async def own_data(folder: Path, shared: Settings, **changes: Any) -> AsyncIterator[Settings]:
    """Settings on a data directory of the caller's own (``changes``: other settings to change,
    e.g. a broker namespace of its own), migrated; this process's database is pointed there for the
    duration (tests that count or repair the whole store must not see other tests' images, nor the
    session workers' jobs), then back at the one before (the session's, or a module's own)."""
    from furrsight.db.setup import migrate, open_database

    settings = load_settings({**os.environ, "FURRSIGHT_DATA": str(folder)})
    settings = msgspec.structs.replace(settings, **changes) if changes else settings
    await migrate(settings)
    _OWN_DATA.append(settings)
    try:
        yield settings
    finally:
        _OWN_DATA.remove(settings)
        open_database(_OWN_DATA[-1] if _OWN_DATA else shared)  # a test's own inside its module's own


_OWN_DATA: list[Settings] = []  # the data directories ``own_data`` has pointed this process at, innermost last


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Each phase's report on the test item (``item.rep_call``…), so a fixture can tell whether its
    test failed (the browser tests keep a screenshot then)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
