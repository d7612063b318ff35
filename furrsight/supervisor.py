"""Child processes for ``furrsight up`` and ``furrsight worker``: a private broker, the web
process and the workers, started together and stopped together (no orphans).

Each child gets ``PR_SET_PDEATHSIG`` so that even if this process is SIGKILLed the kernel stops
the children; a clean stop (Ctrl-C, SIGTERM) sends SIGTERM to all, waits, then SIGKILLs.
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
from dataclasses import dataclass, field
from pathlib import Path

import redis

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


@dataclass
class Supervisor:
    """Start named children; stop them all when one exits or on SIGINT/SIGTERM."""

    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    stopping: bool = False

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, env=env, preexec_fn=_die_with_parent)
        self.children[name] = proc
        return proc

    def stop(self, timeout: float = 40.0) -> None:
        """Stop the web process and workers first (workers finish their current message while
        the broker is still up), then the broker; SIGKILL whatever outlives ``timeout``."""
        self.stopping = True
        procs = list(self.children.items())
        for group in ([p for n, p in procs if n != "broker"], [p for n, p in procs if n == "broker"]):
            for proc in group:
                if proc.poll() is None:
                    proc.terminate()
            deadline = time.monotonic() + timeout
            for proc in group:
                try:
                    proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def run_until_signal(self) -> int:
        """Block until a child exits or a signal arrives; returns the exit status."""

        def on_signal(signum: int, _frame: object) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, on_signal)
        status = 0
        try:
            while True:
                for name, proc in self.children.items():
                    code = proc.poll()
                    if code is not None:
                        print(f"furrsight: {name} exited with status {code}; stopping the rest", file=sys.stderr)
                        status = code or 1
                        raise KeyboardInterrupt
                time.sleep(0.3)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
        return status


def python_argv(*args: str) -> list[str]:
    """Run ``python -m furrsight ...`` with this interpreter (works without the console script)."""
    return [sys.executable, "-m", "furrsight", *args]


def child_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(overrides)
    return env
