"""Ingest throughput: the real path against a bare loop doing only the same image work.

    PYTHONPATH=. python bench/ingest.py [--count 300] [--size 1600x1200]

Both read the same generated photo files from disk. The bare loop reads, hashes (SHA-256),
decodes (JPEG draft mode, like ingest), orients and writes a JPEG thumbnail in memory; the real
path is ``furrsight.images.ingest.ingest`` on a fresh data directory (SQLite, file store with
fsync, perceptual hash, quality flags, collage detection, near-duplicate groups, sources).
Prints both throughputs and the ratio (target: at least 0.8).
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
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="furrsight-bench-") as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        paths = []
        for i in range(args.count):
            path = folder / f"{i:05d}.jpg"
            path.write_bytes(photo(900_000 + i, size=(width, height)))
            paths.append(path)
        ingest_settings = load_settings().ingest
        thumb = ingest_settings.thumb_size
        processes = args.processes or default_processes()
        bare(paths[:10], thumb)  # warm-up
        bare_first = bare(paths, thumb)
        cold_rate = asyncio.run(ours(paths, Path(tmp) / "data-cold", processes))
        ours_rate = asyncio.run(ours(paths, Path(tmp) / "data", processes))
        threads_rate = asyncio.run(ours(paths, Path(tmp) / "data-threads", 1))
        bare_rate = (bare_first + bare(paths, thumb)) / 2  # before and after, averaged
    print(f"{args.count} photos of {width}x{height} JPEG, {os.cpu_count()} CPUs")
    print(f"bare loop (read, hash, decode, thumbnail), one process:  {bare_rate:7.1f} images/s")
    print(f"furrsight ingest, {processes} worker processes (the import job): {ours_rate:7.1f} images/s")
    print(f"  the same, first job of a new worker process (pool start-up): {cold_rate:7.1f} images/s")
    print(f"furrsight ingest, threads of one process:             {threads_rate:7.1f} images/s")
    print(f"ratio: {ours_rate / bare_rate:.2f}x (target >= 0.8x); threads only: {threads_rate / bare_rate:.2f}x")


if __name__ == "__main__":
    main()
