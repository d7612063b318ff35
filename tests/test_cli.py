"""The command line as an admin uses it: `up` starts everything and stops it all; `doctor`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from furrsight.supervisor import free_port

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


def _health(port: int) -> tuple[int, dict]:  # type: ignore[type-arg]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_up_starts_broker_web_and_workers_and_sigterm_stops_them_all(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "furrsight", "up", "--port", str(port)],
        env=_env(tmp_path / "data"), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        status, report = 0, {}
        while time.monotonic() < deadline:
            try:
                status, report = _health(port)
                if status == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.5)
        assert status == 200, report
        assert report["workers"]["alive"] >= 2  # the default and the GPU worker processes
        children = _descendants(proc.pid)
        assert len(children) >= 4  # broker, web, two dramatiq parents (and their workers)
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=90)[0].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "FurrSight is starting at" in output
    assert f"http://127.0.0.1:{port}/" in output
    assert proc.returncode == 0, output
    time.sleep(0.5)
    assert [pid for pid in children if _alive(pid)] == []


def test_doctor_reports_each_check_and_fails_on_a_required_one(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "furrsight", "doctor"], env=_env(tmp_path / "data"), cwd=ROOT,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    for name in ("sqlite:", "data directory:", "database:", "broker:", "workers:", "models:", "CUDA:"):
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


def test_doctor_names_an_unreachable_broker_with_a_fix(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "furrsight", "doctor"],
        env=_env(tmp_path / "data", FURRSIGHT_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0"),
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "unreachable" in result.stdout
    assert "fix:" in result.stdout
    assert result.returncode == 1
