"""Ingest on equal resources: the real path against a bare loop doing only the image work that
any ingest must do, both spread over the same number of processes.

    python bench/ingest.py [--count 200] [--size 1600x1200] [--processes N] [--rounds 2] [--data-dir DIR]

Both read the same photo-like JPEGs (smooth colour fields plus sensor-like noise, as camera
photos compress; cached in ``bench/_work/``). The bare loop runs in N worker processes, each
taking every N-th file: read, SHA-256, decode exactly as ingest does (JPEG draft mode to the
512-px scale its analysis needs), orient, and make the same JPEG thumbnail in memory. The real
path is the folder import job itself, run through the job runner as a worker runs it (without
the broker hop), with its pool of N worker processes already started (a worker's second job
on), on a fresh data directory: the dedup look-up, perceptual hash, quality flags, collage
detection, originals and thumbnails written and fsynced, SQLite rows in group commits,
near-duplicate groups, sources, progress and counters.

Two ratios, each ours against the bare loop: throughput (images/s, wall clock, N processes
each) and CPU time per image (every process: ours counts the job's own process, recorder
thread included, and its pool workers). The target is at least 0.8 for both. The machine may be
shared: the rounds alternate bare and ours, and the ranges are printed. Last, where the CPU of
ingest goes: a worker's steps timed one by one, and the job's own process.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import multiprocessing
import os
import secrets
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, TypeVar

import msgspec
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.photos import make_photos
from furrsight.db.setup import migrate
from furrsight.filesystems import filesystem_of
from furrsight.images import collage, steps, work
from furrsight.images.analysis import analyse, gray8
from furrsight.images.decode import ANALYSIS_SIZE, draft, thumbnail_jpeg, upright_rgb
from furrsight.images.service import IMPORT_KIND, run_import
from furrsight.images.steps import Run
from furrsight.jobs.runner import run_job
from furrsight.jobs.service import get_job
from furrsight.jobs.tables import Job
from furrsight.settings import IngestSettings, load_settings
from furrsight.store import FileStore

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")
T = TypeVar("T")
STEPS = {
    "read": "read the file",
    "hash": "SHA-256",
    "header": "header and limits",
    "decode": "decode, working image, thumbnail",
    "analyse": "grey image, pHash, quality flags",
    "collage": "collage detection",
    "store": "write original and thumbnail",
}


def bare_share(paths: list[Path], thumb_size: int) -> float:
    """One worker's share of the bare loop; returns the CPU seconds it took."""
    start = time.process_time()
    for path in paths:
        data = path.read_bytes()
        hashlib.sha256(data).hexdigest()
        with Image.open(io.BytesIO(data)) as img:
            draft(img, max(ANALYSIS_SIZE, thumb_size))  # the decode ingest does (its analysis needs 512 px)
            view = upright_rgb(img)  # as ingest orients it (exif_transpose and convert would copy it twice)
            thumbnail_jpeg(view, thumb_size)  # ingest's own thumbnail recipe
    return time.process_time() - start


def bare(pool: ProcessPoolExecutor, paths: list[Path], processes: int, thumb_size: int) -> tuple[float, float, float]:
    """(images/s, CPU seconds per image, the whole machine's busy CPU seconds per image) of the
    bare loop over ``processes`` workers."""
    busy = machine_busy()
    start = time.perf_counter()
    futures = [pool.submit(bare_share, paths[i::processes], thumb_size) for i in range(processes)]
    cpu = sum(f.result() for f in futures)
    wall = time.perf_counter() - start
    return len(paths) / wall, cpu / len(paths), (machine_busy() - busy) / len(paths)


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy so far: every process and kernel thread (the
    page cache's write-back too, which no process's own CPU time shows), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / TICK  # all but idle and iowait


def cpu_of(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far (from /proc)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / TICK


async def ours(folder: Path, count: int, data_dir: Path, processes: int) -> tuple[float, float, float, float]:
    """The folder import job itself (``run_import`` through the job runner, as a worker runs it,
    without the broker hop), on a warm pool: (images/s, CPU seconds per image in all processes,
    of which in the job's own process, the whole machine's busy CPU seconds per image)."""
    env = {**os.environ, "FURRSIGHT_DATA": str(data_dir), "FURRSIGHT_IMPORT_ROOTS": str(folder)}
    settings = load_settings(env)
    settings = msgspec.structs.replace(settings, ingest=msgspec.structs.replace(settings.ingest, processes=processes))
    await migrate(settings)
    work.warm(processes)
    workers = list(work._pool._processes) if work._pool is not None else []  # type: ignore[attr-defined]
    token = secrets.token_hex(8)
    row = Job(kind=IMPORT_KIND, params={"path": str(folder)}, run_token=token)
    await row.save()

    before = time.process_time(), cpu_of(workers), machine_busy()
    start = time.perf_counter()
    await run_job(row.id, token, run_import, settings)
    wall = time.perf_counter() - start
    caller, pool, busy = time.process_time() - before[0], cpu_of(workers) - before[1], machine_busy() - before[2]
    job = await get_job(row.id)
    assert job.status == "succeeded" and job.counters == {"new": count}, job
    return count / wall, (caller + pool) / count, caller / count, busy / count


def breakdown(paths: list[Path], limits: IngestSettings, root: str) -> dict[str, float]:
    """Where a worker's CPU goes, step by step (run in a worker process): seconds per image."""
    warm = FileStore(Path(root) / "warm-up")
    warm.make_layout()
    for path in paths[:5]:  # the first images pay for lazy imports and caches
        step_by_step(path, limits, warm, {})
    spent: dict[str, float] = dict.fromkeys(STEPS, 0.0)
    store = FileStore(Path(root) / "timed")
    store.make_layout()  # as ``migrate`` makes it with the data directory
    for path in paths:
        step_by_step(path, limits, store, spent)
    return {name: total / len(paths) for name, total in spent.items()}


def step_by_step(path: Path, limits: IngestSettings, store: FileStore, spent: dict[str, float]) -> None:
    """A worker's steps for one file (as ``work.prepare`` runs them), each one timed."""

    def timed(name: str, fn: Callable[..., T], *args: Any) -> T:
        start = time.process_time()
        result = fn(*args)
        spent[name] = spent.get(name, 0.0) + time.process_time() - start
        return result

    data = timed("read", path.read_bytes)
    run = Run(data, timed("hash", steps.hash_bytes, data), limits, store)
    timed("header", steps.read_header, run)
    timed("store", steps.store_original, run)
    timed("decode", steps.decode_once, run)
    assert run.decoded is not None and run.header is not None
    g8 = timed("analyse", gray8, run.decoded.array)
    timed("analyse", analyse, None, run.header.width, run.header.height, limits, g8)
    timed("collage", collage.detect, None, run.decoded.array if limits.collage_captions else None, g8)
    timed("store", steps.store_thumb, run)


def filesystem(path: Path) -> str:
    """What the data directories are on (``filesystems.filesystem_of``). On an ext4 without a journal,
    a warning: there a new file gets no inode freed in the last minute (six, while the inode
    table is not written yet), and ext4 checks each on the way: for minutes after another
    program removed many files (the test suite, an earlier benchmark), every file created costs
    more (measured here: 0.2-0.3 ms, against 0.01 on a journalled ext4)."""
    fs = filesystem_of(path)
    if fs is None:
        return "unknown"
    if fs.journal is False:
        return f"{fs}: for minutes after many files are removed there, creating files costs more (see docs/ingest.md)"
    return str(fs)


def span(values: list[float], fmt: str) -> str:
    low, high = min(values), max(values)
    return format(low, fmt) if len(values) == 1 else f"{format(low, fmt)}-{format(high, fmt)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", default="1600x1200")
    parser.add_argument("--processes", type=int, default=0, help="worker processes for both (0: one per core)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where the import job's data directories go (default: the temporary folder): "
                        "a folder on the filesystem the appliance's data will be on")  # fmt: skip
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    folder = ROOT / "bench" / "_work" / f"photos-{args.size}-{args.count}"  # the import job takes all of it
    paths = make_photos(folder, args.count, (width, height))
    kib = sum(p.stat().st_size for p in paths) / len(paths) / 1024
    thumb = load_settings().ingest.thumb_size
    processes = args.processes or work.default_processes()

    context = multiprocessing.get_context("forkserver")  # as ingest's pool, with its allocator settings
    rates: dict[str, list[float]] = {"bare": [], "ours": []}
    cpus: dict[str, list[float]] = {"bare": [], "ours": []}
    machine: dict[str, list[float]] = {"bare": [], "ours": []}
    callers: list[float] = []
    with ProcessPoolExecutor(processes, mp_context=context, initializer=work._keep_heap) as pool, \
            tempfile.TemporaryDirectory(prefix="furrsight-bench-", dir=args.data_dir) as tmp:  # fmt: skip
        on = filesystem(Path(tmp))
        bare(pool, paths[: 8 * processes], processes, thumb)  # start the workers, warm the caches
        warm = make_photos(Path(tmp) / "warm-up", 8 * processes, (width, height))
        asyncio.run(ours(warm[0].parent, len(warm), Path(tmp) / "warm", processes))  # and ingest's pool
        for r in range(args.rounds):
            for name in ("bare", "ours"):
                if name == "bare":
                    rate, cpu, busy = bare(pool, paths, processes, thumb)
                else:
                    rate, cpu, caller, busy = asyncio.run(ours(folder, len(paths), Path(tmp) / f"data{r}", processes))
                    callers.append(caller)
                rates[name].append(rate)
                cpus[name].append(cpu)
                machine[name].append(busy)
                print(f"round {r + 1} {name}: {rate:6.1f} images/s, {cpu * 1000:5.2f} ms CPU per image "
                      f"({busy * 1000:5.2f} ms of the whole machine's)")  # fmt: skip
        limits = load_settings().ingest
        steps_cpu = pool.submit(breakdown, paths[: min(len(paths), 100)], limits, str(Path(tmp) / "steps")).result()
    work.shutdown_pool()

    print(f"{args.count} photo-like {width}x{height} JPEGs, {kib:.0f} KiB each on average; "
          f"{processes} worker processes each, {os.cpu_count()} CPUs")  # fmt: skip
    print(f"the import job's data directories on {on}")
    print(f"bare loop (read, hash, decode, thumbnail): {span(rates['bare'], '.1f')} images/s, "
          f"{span([c * 1000 for c in cpus['bare']], '.2f')} ms CPU per image")  # fmt: skip
    print(f"furrsight ingest (the import job):         {span(rates['ours'], '.1f')} images/s, "
          f"{span([c * 1000 for c in cpus['ours']], '.2f')} ms CPU per image")  # fmt: skip
    throughput = [o / b for o, b in zip(rates["ours"], rates["bare"], strict=True)]
    per_cpu = [b / o for o, b in zip(cpus["ours"], cpus["bare"], strict=True)]
    per_machine = [b / o for o, b in zip(machine["ours"], machine["bare"], strict=True)]
    print(f"ratio, throughput on equal processes: {span(throughput, '.2f')}x, median "
          f"{statistics.median(throughput):.2f}x (target >= 0.8x)")  # fmt: skip
    print(f"ratio, CPU per image (bare / ours):   {span(per_cpu, '.2f')}x, median "
          f"{statistics.median(per_cpu):.2f}x (target >= 0.8x)")  # fmt: skip
    print(f"  the same, the whole machine's CPU:  {span(per_machine, '.2f')}x, median "
          f"{statistics.median(per_machine):.2f}x (kernel write-back included; other load too)")  # fmt: skip
    print("where ingest's CPU goes, ms per image (a worker's steps timed one by one):")
    for name, label in STEPS.items():
        print(f"  {label:36s} {steps_cpu[name] * 1000:5.2f}")
    print(f"  {'the job process (the rest)':36s} {span([c * 1000 for c in callers], '.2f')}")


if __name__ == "__main__":
    main()
