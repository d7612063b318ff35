"""The command line as an admin uses it: `up` starts everything, keeps it running when a child
is killed, and stops it all; `doctor`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from furrsight.settings import Settings
from furrsight.supervisor import free_port
from tests.conftest import BrokerServer, WorkerProcess, beating_workers, worker_env
from tests.images import photo

ROOT = Path(__file__).resolve().parent.parent


def _env(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FURRSIGHT_")}
    env.update({"FURRSIGHT_DATA": str(data), **extra})
    return env


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    stack = [pid]
    while stack:
        current = stack.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            children = (task / "children").read_text().split() if (task / "children").exists() else []
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    stack.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def _call(port: int, path: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _health(port: int) -> tuple[int, dict]:  # type: ignore[type-arg]
    return _call(port, "/health")  # type: ignore[no-any-return]


def _wait(condition: Callable[[], Any], what: str, timeout: float = 90.0) -> Any:
    """Poll ``condition`` until it returns something truthy (connection errors count as not yet)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = condition()
            if result:
                return result
        except (urllib.error.URLError, ConnectionError):
            pass
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


@contextmanager
def _up(env: dict[str, str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    """`furrsight up` until /health is 200 with both worker processes beating; SIGKILLed if left."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "furrsight", "up", "--port", str(port)],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait(lambda: _health(port)[0] == 200 and _health(port)[1]["workers"]["alive"] >= 2, "up to be healthy")
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_up_starts_broker_web_and_workers_and_sigterm_stops_them_all(tmp_path: Path) -> None:
    port = free_port()
    with _up(_env(tmp_path / "data"), port) as proc:
        status, report = _health(port)
        assert status == 200, report
        assert report["workers"]["alive"] >= 2  # the default and the GPU worker processes
        assert report["processes"]["supervised_by"] == ["up"]
        assert sorted(report["processes"]["children"]) == ["broker", "gpu-worker", "web", "worker"]
        # every child reports its metrics to up's one folder (the web process timed /health)
        assert {p.parent.name for p in (tmp_path / "data" / "run" / "metrics").glob("*/*.db")} == {"up"}
        children = _descendants(proc.pid)
        assert len(children) >= 4  # broker, web, two dramatiq parents (and their workers)
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=90)[0].decode()
    assert "FurrSight is starting at" in output
    assert f"http://127.0.0.1:{port}/" in output
    assert proc.returncode == 0, output
    _wait(lambda: not [pid for pid in children if _alive(pid)], "every child to be gone", timeout=10)
    assert not (tmp_path / "data" / "run" / "up.json").exists()


def _admin_token(env: dict[str, str]) -> str:
    def furrsight(*args: str, stdin: str = "") -> str:
        return subprocess.run([sys.executable, "-m", "furrsight", *args], env=env, cwd=ROOT, input=stdin,
                              capture_output=True, text=True, check=True, timeout=120).stdout  # fmt: skip

    furrsight("migrate")
    furrsight("users", "add", "admin", "--role", "admin", "--password-stdin", stdin="a long enough password\n")
    return furrsight("users", "token", "admin").strip().splitlines()[-1]


def test_up_restarts_every_killed_worker_process_and_the_import_finishes_with_every_file_once(
    tmp_path: Path,
) -> None:
    """SIGKILL every worker process (the Dramatiq parents included) mid-import: the web process
    keeps serving, /health says what is restarting, `up` restarts both workers, and the job is
    redelivered and finishes with every file stored once."""
    from furrsight.db.engine import connect

    folder = tmp_path / "imports" / "killed"
    folder.mkdir(parents=True)
    # Enough work that the kill lands mid-import: batched ingest takes 200 such photos in about
    # a second on two idle cores, quicker than the first progress write can be polled.
    for i in range(800):
        (folder / f"{i:04d}.jpg").write_bytes(photo(70_000 + i, size=(1024, 768)))
    env = _env(tmp_path / "data", FURRSIGHT_IMPORT_ROOTS=str(tmp_path / "imports"),
               FURRSIGHT_JOBS_HEARTBEAT_TIMEOUT_MS="3000", FURRSIGHT_JOBS_MAINTENANCE_CHANCE="200000")  # fmt: skip
    token, port = _admin_token(env), free_port()
    with _up(env, port) as proc:
        status, job = _call(port, "/api/v1/imports", token, {"path": str(folder)})
        assert status == 202, job

        def running() -> bool:
            state = _call(port, f"/api/v1/jobs/{job['id']}", token)[1]
            assert state["status"] in ("queued", "running"), state
            return bool(state["status"] == "running" and state["progress_done"] > 0)

        _wait(running, "the import to start", timeout=60)
        workers = [pid for pid in _descendants(proc.pid) if " -m dramatiq " in _cmdline(pid)]
        assert len(workers) >= 4  # two Dramatiq parents, each with its worker process
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        status, report = _health(port)  # the web process answers while the workers are down
        assert status in (200, 503), report

        def restarted() -> dict[str, Any] | None:
            children = _health(port)[1]["processes"]["children"]
            done = all(
                children[n]["restarts"] == 1 and children[n]["state"] == "running" for n in ("worker", "gpu-worker")
            )
            return children if done else None

        children = _wait(restarted, "both workers to be restarted")
        assert children["worker"]["last_exit"] == children["gpu-worker"]["last_exit"] == "was killed by SIGKILL"
        assert children["web"]["restarts"] == children["broker"]["restarts"] == 0

        def finished() -> dict[str, Any] | None:
            state = _call(port, f"/api/v1/jobs/{job['id']}", token)[1]
            return state if state["status"] in ("succeeded", "failed", "cancelled") else None

        done = _wait(finished, "the import to finish", timeout=120)
        assert done["status"] == "succeeded", done
        assert done["attempts"] == 2  # delivered again after the kill
        conn = connect(tmp_path / "data" / "furrsight.db")
        try:
            stored = [r[0] for r in conn.execute("SELECT file_name FROM sources WHERE job = ?", (job["id"],))]
        finally:
            conn.close()
        assert sorted(stored) == sorted(str(p) for p in folder.iterdir())
        _wait(lambda: _health(port)[0] == 200, "/health to be 200 again")
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=90)[0].decode()
    assert "furrsight: worker was killed by SIGKILL; restarting it in" in output
    assert "furrsight: gpu-worker was killed by SIGKILL; restarting it in" in output
    assert proc.returncode == 0, output


def test_up_restarts_the_web_process_and_the_broker_and_work_goes_on(tmp_path: Path) -> None:
    """SIGKILL the web process and the private broker: both come back (the broker on its port,
    from its append-only file), the workers reconnect, and a new import runs."""
    folder = tmp_path / "imports" / "after"
    folder.mkdir(parents=True)
    for i in range(3):
        (folder / f"{i}.jpg").write_bytes(photo(71_000 + i))
    env = _env(tmp_path / "data", FURRSIGHT_IMPORT_ROOTS=str(tmp_path / "imports"))
    token, port = _admin_token(env), free_port()
    with _up(env, port) as proc:
        children = _health(port)[1]["processes"]["children"]
        os.kill(children["broker"]["pid"], signal.SIGKILL)
        os.kill(children["web"]["pid"], signal.SIGKILL)

        def back() -> dict[str, Any] | None:
            status, report = _health(port)
            kids = report["processes"]["children"]
            again = kids["web"]["restarts"] == kids["broker"]["restarts"] == 1
            return report if status == 200 and again and report["workers"]["alive"] >= 2 else None

        report = _wait(back, "the web process and the broker to be back")
        assert report["processes"]["children"]["broker"]["last_exit"] == "was killed by SIGKILL"
        status, job = _call(port, "/api/v1/imports", token, {"path": str(folder)})
        assert status == 202, job

        def finished() -> dict[str, Any] | None:
            state = _call(port, f"/api/v1/jobs/{job['id']}", token)[1]
            return state if state["status"] in ("succeeded", "failed", "cancelled") else None

        done = _wait(finished, "the import to finish", timeout=60)
        assert (done["status"], done["counters"]) == ("succeeded", {"new": 3}), done
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=90)[0].decode()
    assert "furrsight: broker was killed by SIGKILL; restarting it in" in output
    assert "furrsight: web was killed by SIGKILL; restarting it in" in output
    assert proc.returncode == 0, output


def test_worker_only_gpu_runs_just_the_gpu_queue_worker(tmp_path: Path, broker_server: BrokerServer) -> None:
    """`furrsight worker --only gpu` (the GPU unit's command): one supervised child, the GPU-queue
    worker, heart-beating, with its own status file; SIGTERM stops it cleanly."""
    env = _env(tmp_path / "data", FURRSIGHT_BROKER_URL=broker_server.url, FURRSIGHT_BROKER_NAMESPACE="only-gpu")
    subprocess.run([sys.executable, "-m", "furrsight", "migrate"], env=env, cwd=ROOT, check=True, capture_output=True)
    status = tmp_path / "data" / "run" / "worker-gpu.json"
    proc = subprocess.Popen([sys.executable, "-m", "furrsight", "worker", "--only", "gpu"], env=env, cwd=ROOT)
    try:
        _wait(lambda: beating_workers(broker_server.url, namespace="only-gpu"), "the GPU worker's heartbeat")
        children = json.loads(status.read_text())["children"]
        assert {name: child["state"] for name, child in children.items()} == {"gpu-worker": "running"}
        argv = _cmdline(children["gpu-worker"]["pid"])
        assert argv.endswith("--threads 1 --queues gpu ")
        assert not (tmp_path / "data" / "run" / "worker.json").exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert not status.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_worker_only_refuses_an_unknown_kind(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "furrsight", "worker", "--only", "cpu"], env=_env(tmp_path / "data"), cwd=ROOT,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--only takes default or gpu, not 'cpu'" in result.stderr


def test_doctor_reports_each_check_and_fails_on_a_required_one(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "furrsight", "doctor"], env=_env(tmp_path / "data"), cwd=ROOT,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    for name in ("sqlite:", "data directory:", "filesystem:", "database:", "broker:", "workers:", "models:"):
        assert name in ok.stdout, ok.stdout
    for name in ("ONNX runtime:", "GGUF runtime:"):
        assert name in ok.stdout, ok.stdout
    assert "sqlite-vec" in ok.stdout
    assert "run `furrsight migrate`" in ok.stdout  # no database yet: a failure, with its fix
    assert ok.returncode == 1

    subprocess.run([sys.executable, "-m", "furrsight", "migrate"], env=_env(tmp_path / "data"), cwd=ROOT, check=True)
    good = subprocess.run(
        [sys.executable, "-m", "furrsight", "doctor"], env=_env(tmp_path / "data"), cwd=ROOT,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert good.returncode == 0, good.stdout


def test_doctor_warns_of_a_data_directory_on_a_network_in_memory_or_journal_less_filesystem() -> None:
    from furrsight.doctor import filesystem_check
    from furrsight.filesystems import Filesystem

    data = Path("/srv/furrsight")
    ext4 = filesystem_check(data, Filesystem("ext4", "/dev/sda1", journal=True))
    assert (ext4.label, ext4.detail) == ("ok", "/srv/furrsight is on ext4 (/dev/sda1), with a journal")
    assert filesystem_check(data, Filesystem("xfs", "/dev/sdb")).label == "ok"
    bare = filesystem_check(data, Filesystem("ext4", "/dev/vda", journal=False))
    assert bare.label == "warn" and "without a journal" in bare.detail and "fsck" in bare.detail
    assert bare.fix.startswith("unmount it and add a journal (tune2fs -O has_journal /dev/vda)")
    share = filesystem_check(data, Filesystem("nfs4", "nas:/lab"))
    assert share.label == "warn" and "a network filesystem" in share.detail and "FURRSIGHT_DATA" in share.fix
    memory = filesystem_check(data, Filesystem("tmpfs", "tmpfs"))
    assert memory.label == "warn" and "lost at the next reboot" in memory.detail
    assert filesystem_check(data, None).label == "ok"


def test_doctor_names_an_unreachable_broker_with_a_fix(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "furrsight", "doctor"],
        env=_env(tmp_path / "data", FURRSIGHT_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0"),
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "unreachable" in result.stdout
    assert "fix:" in result.stdout
    assert result.returncode == 1


async def test_scrape_run_starts_the_same_job_as_the_web_and_the_pipeline_queues_embedding(
    worker: WorkerProcess, settings: Settings, settings_env: dict[str, str]
) -> None:
    from furrsight.jobs.service import list_jobs

    root = Path(settings.import_roots[0]) / "scrape-cli"
    root.mkdir(parents=True, exist_ok=True)
    for seed in (64200, 64201):  # seeds no other test uses: both images are new
        (root / f"{seed}.jpg").write_bytes(photo(seed))
    before = (await list_jobs(limit=1)).items
    result = subprocess.run(
        [sys.executable, "-m", "furrsight", "scrape", "run", "local_folder", "-p", json.dumps({"path": str(root)})],
        env=worker_env(settings_env), cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    scrape = (await list_jobs(kind="scraping.scrape", limit=1)).items[0]
    assert scrape.creator == "cli" and (before == [] or scrape.id > before[0].id)
    assert f"job {scrape.id} succeeded: " in result.stdout and "new 2" in result.stdout, result.stdout

    async def chained() -> list[str]:  # queued by the worker just after the scrape succeeded
        return [j.creator or "" for j in (await list_jobs(kind="search.embed", limit=50)).items if j.id > scrape.id]

    deadline = time.monotonic() + 30
    while not await chained():
        assert time.monotonic() < deadline, "no embedding job was queued"
        await asyncio.sleep(0.2)
    assert await chained() == ["pipeline"]


def test_scrape_run_without_a_broker_says_how_to_get_one(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "furrsight", "scrape", "run", "local_folder", "-p", "{}"],
        env=_env(tmp_path / "data"), cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "no broker: start `furrsight up` first" in result.stderr
