"""panva's oidc-provider (npm, pinned in package.json) run by Node.js on 127.0.0.1 for the tests.

`make test` installs Node.js and npm from Debian when missing and the npm packages into
tests/oidc/node_modules (ignored by git) with ``npm ci``.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
IN_CI = bool(os.environ.get("CI"))


def missing() -> str | None:
    """Why the provider cannot run here, or None."""
    if shutil.which("node") is None:
        return "Node.js is not installed (`make test` installs Debian's nodejs and npm)"
    if not (HERE / "node_modules" / "oidc-provider" / "package.json").is_file():
        return "oidc-provider is not installed: run `npm ci --prefix tests/oidc` (`make test` does)"
    return None


class NodeProvider:
    """tests/oidc/provider.mjs in a child process. ``accounts`` maps a login to its claims (and an
    optional ``userinfo_sub``: a lie UserInfo then tells). ``conform``: oidc-provider's
    ``conformIdTokenClaims`` (True, its default: profile, email and group claims only in UserInfo)."""

    def __init__(
        self,
        accounts: dict[str, dict[str, Any]],
        conform: bool,
        redirect_uri: str,
        client_id: str = "furrsight",
        client_secret: str = "s3cret-for-tests-only",
    ) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.config = {
            "client": {"client_id": client_id, "client_secret": client_secret, "redirect_uris": [redirect_uri]},
            "conformIdTokenClaims": conform,
            "accounts": accounts,
        }
        self.log = tempfile.NamedTemporaryFile(prefix="oidc-provider-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc: subprocess.Popen[bytes] | None = None
        self.issuer = ""

    def start(self, timeout: float = 60.0) -> NodeProvider:
        why = missing()
        if why:  # under CI the tests run anyway, and fail here saying why
            raise RuntimeError(f"cannot run oidc-provider: {why}")
        self.proc = subprocess.Popen(
            ["node", "provider.mjs", json.dumps(self.config)], cwd=HERE, stdout=subprocess.PIPE, stderr=self.log
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self.proc.stdout.fileno(), 4096) if ready else b""
            if not chunk:  # ended, or no answer in time
                said = Path(self.log.name).read_text()[-2000:]
                self.stop()
                raise RuntimeError(f"oidc-provider did not start: {said}")
            line += chunk
        self.issuer = json.loads(line)["issuer"]
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)
