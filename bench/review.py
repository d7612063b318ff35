"""Review under load: "next pair" and "save" for 20 concurrent reviewers, against `/health` under
the same load in the same run; and the dashboard at 100k images.

    PYTHONPATH=. python bench/review.py [--images 100000] [--pairs 50000] [--clients 20] [--seconds 20]

A fresh data directory and a private Valkey; 100k images with a source each (5 plugins, 4
licences) and 50k analysed pairs with a breed, a service and a confidence, written straight into
SQLite; then a real `furrsight serve` (one uvicorn process) on a loopback port. Each reviewer is a
signed-in client (its own curator account and API token) that asks for its next pair and accepts
it, back to back, while one more client asks for `/health` back to back: the baseline, measured on
the same server under the same load. Target: next-pair and save p95 at most 4× `/health`'s p95.
Then the dashboard, uncached (every request recomputes) and cached.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = ("openverse", "wikimedia_commons", "reddit", "web_page", "upload")
LICENCES = ("CC-BY-4.0", "CC-BY-SA-4.0", "CC0-1.0", None)


def populate(db: Path, images: int, pairs: int, rng: np.random.Generator) -> None:
    from furrsight.db.engine import connect

    conn = connect(db)
    breeds = [r[0] for r in conn.execute("SELECT id FROM breeds")]
    services = [r[0] for r in conn.execute("SELECT id FROM services")]
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO images (id, sha256, format, mime, width, height, bytes, state, phash, flags, created_at) "
        "VALUES (?, ?, 'JPEG', 'image/jpeg', 800, 600, 100000, ?, ?, '', datetime('now'))",
        [
            (i, secrets.token_hex(32), "processed" if i % 50 else "failed", f"{int(rng.integers(0, 2**63)):016x}")
            for i in range(1, images + 1)
        ],
    )
    conn.executemany(
        "INSERT INTO sources (image, kind, plugin, license, url, seen_at) VALUES (?, ?, ?, ?, ?, datetime('now'))",
        [
            (i, "upload" if PLUGINS[i % 5] == "upload" else "scrape", PLUGINS[i % 5] if i % 5 != 4 else None,
             LICENCES[i % 4], f"https://site{i % 50}.example/{i}.jpg")
            for i in range(1, images + 1)
        ],
    )  # fmt: skip
    conn.executemany(
        "INSERT INTO pairs (id, before, after, origin, status, confidence, breed_id, breed_source, breed_confidence,"
        " order_source, model, prompt_version, version, created_at, updated_at) VALUES (?, ?, ?, 'post', 'analysed',"
        " ?, ?, 'vlm', 0.8, 'vlm', 'bench-vlm', 'v1', 1, datetime('now'), datetime('now'))",
        [(p, 2 * p - 1, 2 * p, float(rng.random()), int(rng.choice(breeds))) for p in range(1, pairs + 1)],
    )
    conn.executemany(
        "INSERT INTO pair_services (pair, service_id, source, confidence) VALUES (?, ?, 'vlm', 0.7)",
        [(p, int(rng.choice(services))) for p in range(1, pairs + 1)],
    )
    conn.executemany(
        "INSERT INTO pair_history (pair, at, user, field, old, new, via, version) "
        "VALUES (?, datetime('now'), NULL, 'created', NULL, '{}', 'mining', 1)",
        [(p,) for p in range(1, pairs + 1)],
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # a steady state, not a 100 MB write-ahead log
    conn.close()


def pct(samples: list[float], q: float) -> float:
    return float(np.percentile(np.array(samples) * 1000, q))


def line(name: str, samples: list[float]) -> str:
    return f"{name:<22} n={len(samples):>5}  p50 {pct(samples, 50):7.1f} ms  p95 {pct(samples, 95):7.1f} ms"


async def reviewer(url: str, token: str, stop: float, nexts: list[float], saves: list[float]) -> None:
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        while time.monotonic() < stop:
            start = time.perf_counter()
            got = await client.post("/api/v1/review/next", json={})
            nexts.append(time.perf_counter() - start)
            assert got.status_code == 200, got.text
            pair = got.json()
            start = time.perf_counter()
            saved = await client.post(
                f"/api/v1/review/pairs/{pair['id']}", json={"version": pair["version"], "status": "accepted"}
            )
            saves.append(time.perf_counter() - start)
            assert saved.status_code == 200, saved.text


async def health(url: str, stop: float, out: list[float]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        while time.monotonic() < stop:
            start = time.perf_counter()
            await client.get("/health")
            out.append(time.perf_counter() - start)


async def load(url: str, tokens: list[str], seconds: float) -> None:
    nexts: list[float] = []
    saves: list[float] = []
    checks: list[float] = []
    stop = time.monotonic() + seconds
    await asyncio.gather(*(reviewer(url, t, stop, nexts, saves) for t in tokens), health(url, stop, checks))
    print(f"{len(tokens)} concurrent reviewers for {seconds:.0f} s, one more client on /health:")
    for name, samples in (("next pair", nexts), ("save (accept)", saves), ("/health (baseline)", checks)):
        print("  " + line(name, samples))
    base = pct(checks, 95)
    print(f"  p95 ratio to /health: next pair {pct(nexts, 95) / base:.1f}x, save {pct(saves, 95) / base:.1f}x"
          f" (target: at most 4x); decisions/s {len(saves) / seconds:.0f}")  # fmt: skip


async def dashboard(url: str, token: str, n: int = 20) -> None:
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
        fresh, cached = [], []
        for _ in range(n):
            start = time.perf_counter()
            assert (await client.get("/api/v1/dashboard", params={"fresh": "true"})).status_code == 200
            fresh.append(time.perf_counter() - start)
        for _ in range(n):
            start = time.perf_counter()
            assert (await client.get("/")).status_code == 200
            cached.append(time.perf_counter() - start)
    print("dashboard at this size, one client:")
    print("  " + line("computed (fresh)", fresh))
    print("  " + line("page, cached", cached))


async def accounts(count: int) -> list[str]:
    from furrsight.auth import service

    tokens = []
    for i in range(count):
        await service.create_user(f"reviewer{i}", "curator", "bench password of a reviewer")
        tokens.append((await service.create_token(f"reviewer{i}", "bench")).token)
    return tokens


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=50_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    from furrsight.db.setup import migrate
    from furrsight.settings import load_settings
    from furrsight.supervisor import broker_command, broker_server_binary, free_port, wait_for_broker

    with tempfile.TemporaryDirectory(prefix="furrsight-bench-review-") as tmp:
        binary = broker_server_binary()
        assert binary, "needs valkey-server or redis-server"
        broker_port, port = free_port(), free_port()
        (Path(tmp) / "broker").mkdir()
        broker = subprocess.Popen(broker_command(binary, broker_port, Path(tmp) / "broker"), stdout=subprocess.DEVNULL)
        env = {**os.environ, "FURRSIGHT_DATA": f"{tmp}/data", "FURRSIGHT_BROKER_URL": f"redis://127.0.0.1:{broker_port}/0",
               "FURRSIGHT_LOG_LEVEL": "WARNING"}  # fmt: skip
        os.environ.update(env)
        server = None
        try:
            wait_for_broker(env["FURRSIGHT_BROKER_URL"])
            settings = load_settings()
            asyncio.run(migrate(settings))
            started = time.perf_counter()
            populate(settings.db_path, args.images, args.pairs, np.random.default_rng(7))
            tokens = asyncio.run(accounts(args.clients))
            print(f"seeded {args.images} images and {args.pairs} pairs in {time.perf_counter() - started:.1f} s")
            server = subprocess.Popen(
                [sys.executable, "-m", "furrsight", "serve", "--port", str(port)], env=env, cwd=ROOT,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                try:
                    urllib.request.urlopen(f"{url}/login", timeout=2).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
                    time.sleep(0.2)
            asyncio.run(dashboard(url, tokens[0]))
            asyncio.run(load(url, tokens, args.seconds))
        finally:
            if server:
                server.terminate()
                server.wait(20)
            broker.terminate()
            broker.wait(10)


if __name__ == "__main__":
    main()
