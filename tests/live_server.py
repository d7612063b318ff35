"""A real ``furrsight serve`` (uvicorn) on a loopback port, with its own data directory and broker
namespace on the session's Valkey/Redis, and accounts made with the real CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from furrsight.supervisor import free_port

ROOT = Path(__file__).resolve().parent.parent
MAKE_ACCOUNTS = """
import asyncio, json, sys
from furrsight.auth import service
from furrsight.db.setup import migrate
from furrsight.settings import load_settings

async def main(roles):
    await migrate(load_settings())
    tokens = {}
    for name, role in roles.items():
        await service.create_user(name, role, f"password-of-{name}-1234")
        tokens[name] = (await service.create_token(name, "tests", actor="tests")).token
    print(json.dumps(tokens))

asyncio.run(main(json.loads(sys.argv[1])))
"""


class LiveServer:
    def __init__(self, folder: Path, **settings: str) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (folder / "imports").mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ)  # the session's broker URL and settings, then our own
        self.env.update(
            FURRSIGHT_DATA=str(folder / "data"),
            FURRSIGHT_IMPORT_ROOTS=str(folder / "imports"),
            FURRSIGHT_BROKER_NAMESPACE=f"live-{uuid.uuid4().hex[:8]}",  # the session's workers never see our jobs
            **settings,
        )
        self.log = folder / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def cli(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "furrsight", *args], env=self.env, cwd=ROOT, input=stdin,
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return done.stdout

    def user_token(self, name: str, role: str) -> str:
        """A new account of ``role`` and an API token for it."""
        return self.user_tokens({name: role})[name]

    def user_tokens(self, roles: dict[str, str]) -> dict[str, str]:
        """New accounts (name: role) and an API token for each, in one process (as the CLI does)."""
        done = subprocess.run(
            [sys.executable, "-c", MAKE_ACCOUNTS, json.dumps(roles)], env=self.env, cwd=ROOT,
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]

    def start(self) -> LiveServer:
        self.cli("migrate")
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "furrsight", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env, cwd=ROOT, stdout=out, stderr=out, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log_tail()}")
            try:
                httpx.get(f"{self.url}/health", timeout=2)  # 200 or 503 (no worker here): it answers
                return self
            except httpx.TransportError:
                time.sleep(0.2)
        raise TimeoutError(f"the server did not answer: {self.log_tail()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""
