"""Ingest throughput: the real path against a bare loop doing only the same image work.

    PYTHONPATH=. python bench/ingest.py [--count 300] [--size 1600x1200] [--flat]

Both read the same generated photo files from disk (photo-like JPEGs with sensor-like noise, as
camera photos compress; ``--flat`` for flat drawings that compress four times better). The bare
loop reads, hashes (SHA-256), decodes exactly as ingest does (JPEG draft mode to the 512-px scale
its analysis needs), orients and makes the same JPEG thumbnail in memory, one file at a time.
The real path is an ``Ingestor`` as the import job runs it, on a fresh data directory (worker
processes, SQLite rows in group commits, originals fsynced, perceptual hash, quality flags,
collage detection, near-duplicate groups, sources): once with the worker pool already running
(a worker process's second job on), once including the pool's start-up (its first job).
Prints the throughputs and the ratio (target: at least 0.8).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.photos import make_photos
from furrsight.db.setup import migrate
from furrsight.images.decode import ANALYSIS_SIZE, draft, thumbnail_jpeg
from furrsight.images.ingest import Ingestor
from furrsight.images.lanes import for_each
from furrsight.images.schemas import Provenance
from furrsight.images.work import default_processes
from furrsight.settings import load_settings
from furrsight.store import FileStore
from tests.images import photo


def bare(paths: list[Path], thumb_size: int) -> float:
    start = time.perf_counter()
    for path in paths:
        data = path.read_bytes()
        hashlib.sha256(data).hexdigest()
        with Image.open(io.BytesIO(data)) as img:
            draft(img, max(ANALYSIS_SIZE, thumb_size))  # the decode ingest does (its analysis needs 512 px)
            view = (ImageOps.exif_transpose(img) or img).convert("RGB")
            thumbnail_jpeg(view, thumb_size)  # ingest's own thumbnail recipe
    return len(paths) / (time.perf_counter() - start)


async def ours(paths: list[Path], data_dir: Path, processes: int) -> float:
    """The import job's loop: an ``Ingestor`` with its lanes of files in flight."""
    settings = load_settings({**os.environ, "FURRSIGHT_DATA": str(data_dir)})
    await migrate(settings)
    store = FileStore(settings.data_path)

    start = time.perf_counter()
    async with Ingestor(store, settings, processes=processes) as engine:
        engine.start_pool()  # what the import job does for a large folder

        async def one(path: Path) -> None:
            data = path.read_bytes()
            result = await engine.ingest(data, Provenance(kind="import", file_name=str(path)))
            assert result.outcome == "new", result

        await for_each(paths, engine.lanes, one)
    return len(paths) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--size", default="1600x1200")
    parser.add_argument("--processes", type=int, default=0, help="ingest worker processes (default 0: one per core)")
    parser.add_argument(
        "--flat", action="store_true", help="flat drawings (tests/images.py, ~100 KiB), not noisy photo-like JPEGs"
    )
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="furrsight-bench-") as tmp:
        folder = Path(tmp) / "photos"
        if args.flat:
            folder.mkdir()
            paths = []
            for i in range(args.count):
                path = folder / f"{i:05d}.jpg"
                path.write_bytes(photo(900_000 + i, size=(width, height)))
                paths.append(path)
        else:
            paths = make_photos(folder, args.count, (width, height))
        kib = sum(p.stat().st_size for p in paths) / len(paths) / 1024
        ingest_settings = load_settings().ingest
        thumb = ingest_settings.thumb_size
        processes = args.processes or default_processes()
        bare(paths[:10], thumb)  # warm-up
        bare_first = bare(paths, thumb)
        cold_rate = asyncio.run(ours(paths, Path(tmp) / "data-cold", processes))
        ours_rate = asyncio.run(ours(paths, Path(tmp) / "data", processes))
        threads_rate = asyncio.run(ours(paths, Path(tmp) / "data-threads", 1))
        bare_rate = (bare_first + bare(paths, thumb)) / 2  # before and after, averaged
    kind = "flat drawings" if args.flat else "photo-like"
    print(f"{args.count} {kind} {width}x{height} JPEGs, {kib:.0f} KiB each on average, {os.cpu_count()} CPUs")
    print(f"bare loop (read, hash, decode, thumbnail), one process:  {bare_rate:7.1f} images/s")
    print(f"furrsight ingest, {processes} worker processes (the import job): {ours_rate:7.1f} images/s")
    print(f"  the same, first job of a new worker process (pool start-up): {cold_rate:7.1f} images/s")
    print(f"furrsight ingest, threads of one process:             {threads_rate:7.1f} images/s")
    print(f"ratio: {ours_rate / bare_rate:.2f}x (target >= 0.8x); threads only: {threads_rate / bare_rate:.2f}x")


if __name__ == "__main__":
    main()
