"""First run: with no account, only the setup page, behind a one-time code from the console.

It needs an empty database, so it runs in its own process on its own data directory.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from litestar.testing import AsyncTestClient

from furrsight.settings import Settings
from tests.conftest import ROOT


async def scenario() -> None:
    from furrsight.app import create_app
    from furrsight.auth.routes import SETUP_ACCOUNT
    from furrsight.auth.state import CSRF_COOKIE
    from furrsight.auth.throttle import Throttle
    from furrsight.db.setup import migrate
    from furrsight.jobs.broker import valkey_client
    from furrsight.settings import load_settings

    settings = load_settings()
    await migrate(settings)
    code_file = settings.data_path / "setup-code"
    async with AsyncTestClient(app=create_app(settings), timeout=30) as client:
        page = await client.get("/images", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/setup", page.status_code
        api = await client.get("/api/v1/jobs")
        assert api.status_code == 401 and "/setup" in api.json()["error"]
        assert stat.S_IMODE(code_file.stat().st_mode) == 0o600
        code = code_file.read_text().strip()
        assert (await client.get("/setup")).status_code == 200
        form = {"username": "first-admin", "password": "a long password", "password2": "a long password"}
        form["_csrf_token"] = client.cookies.get(CSRF_COOKIE)
        wrong = await client.post("/setup", data={**form, "code": "0000-0000-0000"})
        assert wrong.status_code == 400 and "setup code is wrong" in wrong.text
        for _ in range(2):  # the limit is 3 (see the env below): then even the right code waits
            await client.post("/setup", data={**form, "code": "0000-0000-0000"})
        throttled = await client.post("/setup", data={**form, "code": code})
        assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
        await Throttle(valkey_client(settings), settings.auth, prefix="firstrun:auth:fail").succeeded(SETUP_ACCOUNT)
        done = await client.post("/setup", data={**form, "code": code}, follow_redirects=False)
        assert done.status_code == 303, done.text
        assert (await client.get("/api/v1/me")).json() == {"username": "first-admin", "role": "admin", "via": "session"}
        assert not code_file.exists()
        assert (await client.get("/setup", follow_redirects=False)).headers["location"] == "/login"
        await client.get("/jobs")  # signing in renewed the CSRF token: a page brings the new one
        form["_csrf_token"] = client.cookies.get(CSRF_COOKIE)
        again = await client.post("/setup", data={**form, "username": "second", "code": code})
        assert again.status_code == 400 and "already done" in again.text
    print("SCENARIO-OK")


def test_first_run_offers_only_setup_behind_the_console_code(settings: Settings, tmp_root: Path) -> None:
    env = {**os.environ, "FURRSIGHT_DATA": str(tmp_root / "firstrun"), "FURRSIGHT_BROKER_NAMESPACE": "firstrun"}
    env["FURRSIGHT_AUTH_MAX_FAILURES_PER_ACCOUNT"] = "3"
    env["PYTHONPATH"] = str(ROOT)
    run = subprocess.run(
        [sys.executable, "-c", "import asyncio, tests.test_auth_firstrun as t; asyncio.run(t.scenario())"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "SCENARIO-OK" in run.stdout, run.stdout + run.stderr
    assert "setup code:" in run.stderr  # printed on the console at start-up
