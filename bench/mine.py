"""Pair mining time at 10k and 100k images: how it grows with the collection.

    PYTHONPATH=. python bench/mine.py [--sizes 10000,100000] [--dim 1280]

Synthetic but shaped like a scraped collection: 60 % of the images come in posts of four (a dog
before and after, a re-post, a photo of another dog), 2 % are split collages (two panels), the rest
are single photos; every image has a vector like the default model's (1280-d, non-negative; photos
of one dog close together) and a breed tag (5 % not a dog). Mining reads every group and collage
once, from a cold start (its marks at zero), in a fresh database of its own. An all-pairs
comparison would grow with the square of the collection; mining should grow linearly.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time

import msgspec
import numpy as np

from furrsight.db.engine import connect
from furrsight.db.setup import migrate
from furrsight.jobs.runner import run_job
from furrsight.jobs.service import get_job
from furrsight.jobs.tables import Job
from furrsight.pairs import mining
from furrsight.search import vectors
from furrsight.settings import Settings, load_settings


def populate(settings: Settings, n: int, dim: int, rng: np.random.Generator) -> None:
    conn = connect(settings.db_path)
    images: list[tuple[int, int, str]] = []  # (panel, collage, which)
    sources: list[tuple[int, str, str | None, str | None, str | None]] = []  # (image, kind, group, page, author)
    vecs = np.zeros((n, dim), np.float32)
    next_id, post = 1, 0
    while next_id <= n:
        kind = rng.random()
        dog = np.abs(rng.standard_normal(dim)).astype(np.float32)
        if kind < 0.6 and next_id + 3 <= n:  # a post: before, after (same dog), re-post, another dog
            ids = list(range(next_id, next_id + 4))
            other = np.abs(rng.standard_normal(dim)).astype(np.float32)
            for i, base, noise in zip(ids, (dog, dog, dog, other), (0.35, 0.35, 0.02, 0.35), strict=True):
                vecs[i - 1] = base + noise * np.abs(rng.standard_normal(dim))
            for i in ids:
                sources.append(
                    (i, "scrape", f"post:{post}", f"https://site{post % 50}.example/p/{post}", f"a{post % 300}")
                )
            post += 1
            next_id += 4
        elif kind < 0.62 and next_id + 2 <= n:  # a collage and its two panels
            parent = next_id
            images_extra = [(parent + 1, parent, "before"), (parent + 2, parent, "after")]
            for i in (parent, parent + 1, parent + 2):
                vecs[i - 1] = dog + 0.35 * np.abs(rng.standard_normal(dim))
            sources.append((parent, "upload", None, None, None))
            for child, of, panel in images_extra:
                images.append((child, of, panel))
            next_id += 3
        else:
            vecs[next_id - 1] = dog
            sources.append((next_id, "scrape", None, f"https://site{next_id % 50}.example/x", None))
            next_id += 1
    panels = {i: (of, panel) for i, of, panel in images}
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO images (id, sha256, format, mime, width, height, bytes, state, phash, flags, parent_id, panel,"
        " panel_confidence, created_at) VALUES (?, ?, 'JPEG', 'image/jpeg', 800, 600, 100000, 'processed', ?, '', ?, ?,"
        " ?, datetime('now'))",
        [
            (
                i,
                secrets.token_hex(32),
                f"{int(rng.integers(0, 2**63)):016x}",
                *(panels.get(i, (None, None))),
                0.85 if i in panels else None,
            )
            for i in range(1, n + 1)
        ],
    )
    conn.executemany(
        "INSERT INTO sources (image, kind, group_key, page_url, author, seen_at) "
        "VALUES (?, ?, ?, ?, ?, datetime('now'))",
        sources,
    )
    conn.executemany(
        "INSERT INTO breed_tags (image, model, breed, confidence, dog_probability, is_dog, tagged_at) "
        "VALUES (?, ?, 'Poodle', 0.7, ?, ?, datetime('now'))",
        [
            (i, settings.search.model, p, p >= 0.5)
            for i in range(1, n + 1)
            for p in [0.1 if rng.random() < 0.05 else 0.9]
        ],
    )
    conn.execute("COMMIT")
    for lo in range(0, n, 5000):
        vectors.put(conn, settings.search.model, list(range(lo + 1, min(n, lo + 5000) + 1)), vecs[lo : lo + 5000])
    conn.close()


async def mine(settings: Settings) -> tuple[float, dict[str, int]]:
    token = secrets.token_hex(8)
    row = Job(kind=mining.MINE_KIND, params={"full": True}, run_token=token)
    await row.save()
    start = time.perf_counter()
    await run_job(row.id, token, mining.run_mine, settings)
    elapsed = time.perf_counter() - start
    job = await get_job(row.id)
    assert job.status == "succeeded", job
    return elapsed, job.counters


async def run(n: int, dim: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        settings = msgspec.structs.replace(load_settings(environ={}), data_dir=folder)
        await migrate(settings)
        t0 = time.perf_counter()
        populate(settings, n, dim, np.random.default_rng(n))
        loaded = time.perf_counter() - t0
        elapsed, counters = await mine(settings)
        print(
            f"n={n:>7}: mining {elapsed:6.1f} s ({n / elapsed:,.0f} images/s), {counters.get('new', 0):,} pairs, "
            f"skipped {sum(v for k, v in counters.items() if k.startswith('skipped:')):,} (set-up {loaded:.0f} s)"
        )
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--dim", type=int, default=1280)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    times = [asyncio.run(run(n, args.dim)) for n in sizes]
    for (a, ta), (b, tb) in zip(zip(sizes, times, strict=True), zip(sizes[1:], times[1:], strict=True), strict=False):
        print(
            f"{b // a}x the images: {tb / ta:.1f}x the time "
            f"(linear: {b / a:.0f}x; all pairs would be {(b / a) ** 2:.0f}x)"
        )


if __name__ == "__main__":
    main()
