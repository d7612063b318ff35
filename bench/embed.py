"""The embedding job's throughput against a bare loop, same images, model and batch size, one run.

    python bench/embed.py [--images 160] [--batch 16] [--rounds 5]

The bare loop is the least an embedder must do: read each file, decode and preprocess it, and
``session.run`` per batch. The job is ``furrsight.search.service.run_embed`` on a real database and
file store (what the GPU worker runs, without the broker hop): it also finds the images to embed,
writes vectors into sqlite-vec, breed tags and image states, and reports progress.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's furrsight

import furrsight  # noqa: F401  (chooses the sqlite3 module that can load sqlite-vec)


def make_jpeg(seed: int) -> bytes:
    rng = random.Random(seed)
    img = Image.linear_gradient("L").resize((640, 480)).convert("RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(20):
        x, y = rng.randrange(640), rng.randrange(480)
        fill = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse((x, y, x + rng.randrange(20, 300), y + rng.randrange(20, 200)), fill=fill)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


async def main(n: int, batch: int, rounds: int) -> None:
    folder = tempfile.mkdtemp(prefix="furrsight-bench-")
    os.environ.update({"FURRSIGHT_DATA": folder, "FURRSIGHT_SEARCH_BATCH_SIZE": str(batch)})
    from furrsight.db.setup import migrate
    from furrsight.images.ingest import ingest
    from furrsight.images.schemas import Provenance
    from furrsight.inference.onnx_runtime import OnnxModel
    from furrsight.jobs.runner import JobContext
    from furrsight.jobs.tables import Job
    from furrsight.search import service, vectors
    from furrsight.search.embedder import image_embedder, preprocess
    from furrsight.settings import load_settings
    from furrsight.store import FileStore

    settings = load_settings()
    await migrate(settings)
    store = FileStore(settings.data_path)
    for seed in range(n):
        await ingest(store, settings, make_jpeg(seed), Provenance(kind="import", file_name=f"{seed}.jpg"))
    paths = sorted(store.file_path(p.name) for p in (settings.data_path / "files").rglob("*") if p.is_file())
    models = service.model_store(settings)
    manifest = models.require(settings.search.model)
    pre = manifest.preprocess
    assert pre is not None
    entry = manifest.file("model")
    assert entry is not None
    bare = OnnxModel(models.file_path(manifest, entry))
    embedder = image_embedder(models, settings.search.model)
    warm = np.stack([preprocess(p, pre) for p in paths[:batch]])
    bare.run(warm)
    embedder.run(warm)

    bare_times, job_times, bare_cpu, job_cpu = [], [], [], []
    for _ in range(rounds):  # interleaved, so that a busy machine slows both alike
        start, cpu = time.perf_counter(), time.process_time()
        for lo in range(0, len(paths), batch):
            pixels = np.stack([preprocess(Path(p), pre) for p in paths[lo : lo + batch]])
            bare.run(pixels)
        bare_times.append(time.perf_counter() - start)
        bare_cpu.append(time.process_time() - cpu)

        await service.in_db(settings, lambda conn: vectors.delete(conn, manifest.name, list(range(1, n + 1))))
        job = Job(kind=service.EMBED_KIND, params={}, run_token="bench")
        await job.save()
        ctx = JobContext(job.id, service.EMBED_KIND, {}, settings)
        start, cpu = time.perf_counter(), time.process_time()
        await service.run_embed(ctx)
        job_times.append(time.perf_counter() - start)
        job_cpu.append(time.process_time() - cpu)
        assert ctx.counters.get("embedded") == len(paths), ctx.counters
    print("rounds (s): bare", [round(t, 2) for t in bare_times], "job", [round(t, 2) for t in job_times])
    bare_s, job_s = statistics.median(bare_times), statistics.median(job_times)
    ratio = statistics.median(b / j for b, j in zip(bare_times, job_times, strict=True))
    print(f"{len(paths)} images 640x480 JPEG, {manifest.name} on {bare.provider}, batch {batch}")
    print(f"bare loop: {len(paths) / bare_s:.1f} images/s ({bare_s:.2f} s)")
    print(f"embed job: {len(paths) / job_s:.1f} images/s ({job_s:.2f} s)")
    print(f"job / bare: {ratio:.2f}x (target >= 0.85x; median over {rounds} paired, interleaved rounds)")
    cpu_ratio = statistics.median(bare_cpu) / statistics.median(job_cpu)
    print(
        f"CPU seconds per run: bare {statistics.median(bare_cpu):.2f}, job {statistics.median(job_cpu):.2f} "
        f"-> {cpu_ratio:.2f}x (less sensitive to other load on the machine)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=160)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.images, args.batch, args.rounds))
