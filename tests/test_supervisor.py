"""The supervisor behind `furrsight up` and `furrsight worker`, on real child processes: a child
that dies is restarted after a back-off, what it left behind is ended first, /health's
`processes` part says what is restarting, and one that keeps crashing is given up on, with why."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from furrsight.runstatus import processes_report, read_statuses, run_dir
from furrsight.settings import Settings
from furrsight.supervisor import Supervisor, free_port

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def _gone(pid: int) -> bool:
    try:
        return "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


def _until(sup: Supervisor, condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        sup.poll_once()
        time.sleep(0.05)


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    sup = Supervisor(status_path=tmp_path / "run" / "up.json", backoff_first=0.5, restart_limit=3)
    yield sup
    sup.stop(timeout=5)


def test_a_killed_child_is_reported_restarting_then_runs_again(supervisor: Supervisor, tmp_path: Path) -> None:
    supervisor.backoff_first = 2.0  # long enough for the report below to be read before the restart
    first = supervisor.start("worker", SLEEPER)
    supervisor.start("web", SLEEPER)
    assert processes_report(tmp_path) == {
        "ok": True, "supervised_by": ["up"], "restarting": [],
        "children": {
            "worker": {"state": "running", "pid": first.pid, "restarts": 0, "last_exit": None, "detail": "running"},
            "web": {"state": "running", "pid": supervisor.children["web"].proc.pid,  # type: ignore[union-attr]
                    "restarts": 0, "last_exit": None, "detail": "running"},
        },
    }  # fmt: skip
    os.kill(first.pid, signal.SIGKILL)
    _until(supervisor, lambda: supervisor.children["worker"].restart_at is not None)
    report = processes_report(tmp_path)
    assert (report["ok"], report["restarting"]) == (False, ["worker"])
    assert report["children"]["worker"]["state"] == "restarting"
    assert report["children"]["worker"]["last_exit"] == "was killed by SIGKILL"
    assert report["error"].startswith("worker was killed by SIGKILL; restarting in ")

    _until(supervisor, lambda: supervisor.children["worker"].restart_at is None)
    again = processes_report(tmp_path)
    assert again["ok"] and again["children"]["worker"]["restarts"] == 1
    assert again["children"]["worker"]["pid"] not in (None, first.pid)
    assert again["children"]["web"]["restarts"] == 0  # the others ran on


def test_what_a_dead_child_left_behind_is_ended_before_it_restarts(supervisor: Supervisor, tmp_path: Path) -> None:
    """Like a Dramatiq parent killed while its worker process lives on: the orphan must not keep
    taking messages next to the restarted one."""
    pidfile = tmp_path / "orphan.pid"
    parent = supervisor.start("worker", ["sh", "-c", f"sleep 120 & echo $! > {pidfile}; wait"])
    _until(supervisor, lambda: pidfile.exists() and pidfile.read_text().strip() != "")
    orphan = int(pidfile.read_text())
    os.kill(parent.pid, signal.SIGKILL)
    _until(supervisor, lambda: supervisor.children["worker"].restart_at is not None)
    _until(supervisor, lambda: _gone(orphan))
    assert supervisor.children["worker"].last_exit == "was killed by SIGKILL"


def test_a_child_that_keeps_crashing_is_given_up_on_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sup = Supervisor(status_path=tmp_path / "run" / "up.json", backoff_first=0.05, restart_limit=3, window=60)
    sup.start("web", SLEEPER)
    sup.start("worker", [sys.executable, "-c", "import sys; sys.exit(3)"])
    web = sup.children["web"].proc
    assert sup.run_until_signal() == 1
    err = capsys.readouterr().err
    assert err.count("furrsight: worker exited with status 3; restarting it in") == 3
    assert (
        "furrsight: worker exited with status 3; it stopped 4 times within 60 s, so it is not restarted again: "
        "see its output above; stopping the rest" in err
    )
    assert web is not None and web.returncode is not None  # the rest were stopped
    assert not (tmp_path / "run" / "up.json").exists() and read_statuses(tmp_path) == {}


def test_a_status_file_left_by_a_dead_supervisor_is_ignored(tmp_path: Path) -> None:
    from furrsight.runstatus import write_status

    path = tmp_path / "run" / "up.json"
    write_status(path, {"worker": {"state": "restarting", "detail": "was killed by SIGKILL"}})
    assert read_statuses(tmp_path) == {"up": {"worker": {"state": "restarting", "detail": "was killed by SIGKILL"}}}
    text = path.read_text().replace(f'"pid": {os.getpid()}', '"pid": 999999999')
    path.write_text(text)
    assert read_statuses(tmp_path) == {}
    assert processes_report(tmp_path) == {"ok": True, "supervised_by": [], "restarting": [], "children": {}}


def test_a_worker_that_never_heart_beats_fails_its_fixture_loudly(settings_env: dict[str, str], tmp_path: Path) -> None:
    """A worker pointed at a broker that is not there retries for ever without a heartbeat: the
    fixture's wait fails with the worker's log instead of letting the tests hang or pass."""
    from tests.conftest import WorkerProcess, beating_workers, wait_for_heartbeat, worker_env

    url = settings_env["FURRSIGHT_BROKER_URL"]
    beating = beating_workers(url)  # the session's workers, if any run
    env = worker_env({**settings_env, "FURRSIGHT_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"})
    proc = WorkerProcess(env, queues="gpu", log=tmp_path / "silent.log").start()
    try:
        with pytest.raises(
            pytest.fail.Exception, match=r"the GPU worker sent no heartbeat within 5 s; its log:\n"
        ) as failed:
            wait_for_heartbeat(proc, url, beating, "the GPU worker", timeout=5)
    finally:
        proc.stop()
    assert "Connection refused" in str(failed.value)


async def test_health_names_the_child_a_supervisor_is_restarting(client: AsyncTestClient, settings: Settings) -> None:
    """/health over HTTP, with a real supervisor on the session's data directory."""
    sup = Supervisor(status_path=run_dir(settings.data_path) / "test-up.json", backoff_first=60.0)
    try:
        victim = sup.start("test-worker", SLEEPER)
        os.kill(victim.pid, signal.SIGKILL)
        _until(sup, lambda: sup.children["test-worker"].restart_at is not None)
        response = await client.get("/health")
    finally:
        sup.stop(timeout=5)
    assert response.status_code == 503
    report = response.json()
    assert "processes" in report["down"]
    assert report["processes"]["restarting"] == ["test-worker"]
    assert report["processes"]["error"].startswith("test-worker was killed by SIGKILL; restarting in ")
    assert report["processes"]["children"]["test-worker"]["last_exit"] == "was killed by SIGKILL"
    after = (await client.get("/health")).json()["processes"]
    assert "test-worker" not in after["children"]  # the file went with its supervisor
