"""First run: while no account exists, a one-time setup code (in the data directory, mode 0600,
printed on the console by ``furrsight serve``/``up``) lets someone create the first admin."""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
from pathlib import Path

from furrsight.auth import audit, service
from furrsight.auth.schemas import UserOut
from furrsight.settings import Settings

CODE_FILE = "setup-code"


class SetupError(ValueError):
    """The first admin could not be created; the message says why."""


def code_path(settings: Settings) -> Path:
    return settings.data_path / CODE_FILE


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")


async def ensure_setup_code(settings: Settings) -> str | None:
    """The setup code while no user exists (made once, then reused); None once one does."""
    path = code_path(settings)
    if await service.count_users():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return None
    with contextlib.suppress(FileExistsError):
        raw = secrets.token_hex(6)
        _write_private(path, "-".join(raw[i : i + 4] for i in range(0, 12, 4)))
    return path.read_text().strip()


async def create_first_admin(
    settings: Settings, code: str, username: str, password: str, address: str | None = None
) -> UserOut:
    path = code_path(settings)
    try:
        expected = path.read_text().strip()
    except FileNotFoundError:
        expected = ""
    if await service.count_users():
        raise SetupError("setup is already done: sign in instead")
    if not expected or not hmac.compare_digest(expected.encode(), code.strip().encode()):
        await audit.record("setup.failed", target=username, address=address)
        raise SetupError(
            "the setup code is wrong: copy it from the console of `furrsight serve` or the file setup-code"
        )
    user = await service.create_user(username, "admin", password, actor=username)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return user
