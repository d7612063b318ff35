"""Child processes for ``furrsight up`` and ``furrsight worker``: a private broker, the web
process and the workers, kept running together and stopped together (no orphans).

A child that dies is started again after a back-off (the broker from its append-only file, on
the same port); one that keeps dying is given up on, with the reason on the console, and then
everything stops. Each child gets ``PR_SET_PDEATHSIG`` so that even if this process is SIGKILLed
the kernel stops the children; a clean stop (Ctrl-C, SIGTERM) sends SIGTERM to all, waits, then
SIGKILLs. What the supervisor is doing is written to ``<data>/run/<role>.json`` for ``/health``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from furrsight.runstatus import write_status

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def broker_server_binary() -> str | None:
    """valkey-server where the distribution has it, else redis-server (same protocol)."""
    return shutil.which("valkey-server") or shutil.which("redis-server")


def broker_command(binary: str, port: int, directory: Path) -> list[str]:
    # Append-only file on: queued messages survive a broker restart.
    return [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
        "--appendonly", "yes", "--save", "", "--daemonize", "no", "--protected-mode", "yes",
        "--loglevel", "warning",
    ]  # fmt: skip


def wait_for_broker(url: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the broker at {url} did not answer within {timeout:.0f}s") from None
            time.sleep(0.1)
        finally:
            client.close()


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


@dataclass
class Child:
    """One supervised process: how to start it, and its recent crashes."""

    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = None
    crashes: deque[float] = field(default_factory=deque)  # monotonic times, within the window
    restarts: int = 0
    last_exit: str | None = None
    restart_at: float | None = None  # set while waiting out the back-off

    def report(self) -> dict[str, Any]:
        state = "restarting" if self.restart_at is not None else "running"
        detail = self.last_exit or "running"
        if self.restart_at is not None:
            wait = max(0.0, self.restart_at - time.monotonic())
            detail = f"{self.last_exit}; restarting in {wait:.1f} s (crash {len(self.crashes)} in the window)"
        pid = self.proc.pid if self.proc and state == "running" else None
        return {"state": state, "pid": pid, "restarts": self.restarts, "last_exit": self.last_exit, "detail": detail}


class GaveUp(Exception):
    """A child crashed too often in the window; the message says which and how."""


@dataclass
class Supervisor:
    """Start named children and keep them running: a child that exits is restarted after a
    back-off (``backoff_first`` seconds, doubling up to ``backoff_max``); more than
    ``restart_limit`` exits within ``window`` seconds and the supervisor gives up, says why and
    stops them all. Each child runs in its own process group, so what a dead child leaves
    behind (a Dramatiq worker process whose parent was killed, an ingest pool) is ended before
    it starts again. ``status_path`` (optional) is kept up to date for ``/health``."""

    status_path: Path | None = None
    restart_limit: int = 5
    window: float = 60.0
    backoff_first: float = 1.0
    backoff_max: float = 30.0
    facts: dict[str, str] = field(default_factory=dict)  # written to the status file too
    children: dict[str, Child] = field(default_factory=dict)
    stopping: bool = False

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        child = self.children.setdefault(name, Child(name, argv, env))
        self._spawn(child)
        assert child.proc is not None
        return child.proc

    def _spawn(self, child: Child) -> None:
        child.proc = subprocess.Popen(child.argv, env=child.env, preexec_fn=_die_with_parent, start_new_session=True)
        child.restart_at = None
        self.write_status()

    def write_status(self) -> None:
        if self.status_path is not None:
            write_status(self.status_path, {n: c.report() for n, c in self.children.items()}, **self.facts)

    def poll_once(self) -> None:
        """One pass: notice children that exited, restart those whose back-off is over.
        Raises ``GaveUp`` when a child crashed too often."""
        now = time.monotonic()
        for child in self.children.values():
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restarts += 1
                    self._spawn(child)
                    _say(f"{child.name} started again (restart {child.restarts})")
                continue
            code = child.proc.poll() if child.proc else None
            if code is not None:
                self._crashed(child, code, now)

    def _crashed(self, child: Child, code: int, now: float) -> None:
        assert child.proc is not None
        _end_group(child.proc.pid, signal.SIGKILL)  # what the dead child left behind
        child.last_exit = describe_exit(code)
        child.crashes.append(now)
        while child.crashes and child.crashes[0] < now - self.window:
            child.crashes.popleft()
        if len(child.crashes) > self.restart_limit:
            raise GaveUp(
                f"{child.name} {child.last_exit}; it stopped {len(child.crashes)} times within {self.window:.0f} s, "
                f"so it is not restarted again: see its output above"
            )
        delay = min(self.backoff_max, self.backoff_first * 2 ** (len(child.crashes) - 1))
        child.restart_at = now + delay
        _say(f"{child.name} {child.last_exit}; restarting it in {delay:.1f} s")
        self.write_status()

    def stop(self, timeout: float = 40.0) -> None:
        """Stop the web process and workers first (workers finish their current message while
        the broker is still up), then the broker; SIGKILL whatever outlives ``timeout``, and
        whatever a child left in its process group."""
        self.stopping = True
        running = [c.proc for c in self.children.values() if c.proc is not None]
        broker = self.children.get("broker")
        for group in ([p for p in running if broker is None or p is not broker.proc], [broker.proc] if broker else []):
            for proc in group:
                if proc is not None and proc.poll() is None:
                    proc.terminate()
            deadline = time.monotonic() + timeout
            for proc in group:
                if proc is None:
                    continue
                try:
                    proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                _end_group(proc.pid, signal.SIGKILL)
        if self.status_path is not None:
            self.status_path.unlink(missing_ok=True)

    def run_until_signal(self) -> int:
        """Keep the children running until SIGINT/SIGTERM (exit status 0) or until one crashes
        too often (exit status 1); then stop them all."""

        def on_signal(signum: int, _frame: object) -> None:
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, on_signal)
        status = 0
        try:
            while True:
                self.poll_once()
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        except GaveUp as exc:
            _say(f"{exc}; stopping the rest")
            status = 1
        finally:
            self.stop()
            signal.signal(signal.SIGTERM, previous)
        return status


def _say(message: str) -> None:
    print(f"furrsight: {message}", file=sys.stderr, flush=True)


def _end_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def python_argv(*args: str) -> list[str]:
    """Run ``python -m furrsight ...`` with this interpreter (works without the console script)."""
    return [sys.executable, "-m", "furrsight", *args]


def child_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(overrides)
    return env
