"""Measure sign-in costs: argon2, equal-time refusal, and the per-request price of the guard.

Run: python bench/auth_bench.py   (starts a private redis/valkey on a free port,
uses a temporary data directory; prints medians in milliseconds)
"""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's furrsight

N = 30
REQUESTS = 300


def median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.2f} ms"


async def timed(coro_factory, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(n):
        start = time.perf_counter()
        await coro_factory()
        out.append(time.perf_counter() - start)
    return out


async def main(folder: Path, broker_url: str) -> None:
    os.environ.update({"FURRSIGHT_DATA": str(folder / "data"), "FURRSIGHT_BROKER_URL": broker_url})
    from litestar.testing import AsyncTestClient

    from furrsight.app import create_app
    from furrsight.auth import service
    from furrsight.auth.passwords import hash_password, verify_password
    from furrsight.auth.state import CSRF_COOKIE
    from furrsight.db.setup import migrate
    from furrsight.settings import load_settings

    settings = load_settings()
    await migrate(settings)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request of the test client
    stored = hash_password("bench password")
    hashes = [time.perf_counter()]
    for _ in range(N):
        hash_password("bench password")
    print(f"argon2 hash (per password): {(time.perf_counter() - hashes[0]) / N * 1000:.1f} ms")
    verify = []
    for _ in range(N):
        start = time.perf_counter()
        verify_password(stored, "bench password")
        verify.append(time.perf_counter() - start)
    print(f"argon2 verify: {median_ms(verify)}")
    await service.create_user("bench", "admin", "bench password")
    wrong: list[float] = []
    unknown: list[float] = []
    for _ in range(N):  # interleaved, so that a change in machine load hits both alike
        wrong += await timed(lambda: service.check_password("bench", "wrong password"), 1)
        unknown += await timed(lambda: service.check_password("nobody", "wrong password"), 1)
    ratio = statistics.median(unknown) / statistics.median(wrong)
    print(f"refusal, wrong password: {median_ms(wrong)}; unknown user: {median_ms(unknown)}; ratio {ratio:.2f}")
    token = (await service.create_token("bench", "bench")).token
    async with AsyncTestClient(app=create_app(settings), timeout=30) as client:
        health = await timed(lambda: client.get("/health"), REQUESTS)
        anon = await timed(lambda: client.get("/api/v1/me"), REQUESTS)
        bearer = await timed(lambda: client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}), REQUESTS)
        await client.get("/login")
        form = {"username": "bench", "password": "bench password", "_csrf_token": client.cookies.get(CSRF_COOKIE)}
        await client.post("/login", data=form, follow_redirects=False)
        session = await timed(lambda: client.get("/api/v1/me"), REQUESTS)
    base = statistics.median(anon)
    print(
        f"GET request medians over {REQUESTS}: /health (public) {median_ms(health)}; /api/v1/me anonymous 401 "
        f"(baseline: no lookup) {median_ms(anon)}; with Bearer token {median_ms(bearer)} "
        f"(x{statistics.median(bearer) / base:.1f}); with session cookie {median_ms(session)} "
        f"(x{statistics.median(session) / base:.1f})"
    )


if __name__ == "__main__":
    from furrsight.supervisor import broker_command, broker_server_binary, free_port, wait_for_broker

    with tempfile.TemporaryDirectory(prefix="furrsight-bench-") as tmp:
        port = free_port()
        binary = broker_server_binary()
        assert binary, "needs valkey-server or redis-server"
        (Path(tmp) / "broker").mkdir()
        proc = subprocess.Popen(broker_command(binary, port, Path(tmp) / "broker"), stdout=subprocess.DEVNULL)
        try:
            wait_for_broker(f"redis://127.0.0.1:{port}/0")
            asyncio.run(main(Path(tmp), f"redis://127.0.0.1:{port}/0"))
        finally:
            proc.terminate()
            proc.wait(10)
