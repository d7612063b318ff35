"""Benchmark: our ``url_list`` scrape (full ingest) against img2dataset, on loopback and under latency.

    PYTHONPATH=. .venv/bin/python bench/scrape.py [--count 2000] [--rounds 3] [--scenarios loopback,latency]

Generates ``count`` photo-like 1024×768 JPEGs (cached between runs), serves them with
``bench/hosts.py`` in its own process, and fetches the same URL list with both tools, each run in
a fresh process, alternating which goes first from round to round (the machine is shared: read
the ranges, not one figure). Two scenarios:

* ``loopback``: one host (127.0.0.1) answering at once. img2dataset with one process per core and
  32 threads; FurrSight with the politeness delay at zero and 16 requests in flight (one host
  could otherwise only be fetched once a second).
* ``latency``: the images spread over ``hosts`` loopback addresses (distinct hosts to both
  clients), each answer — robots.txt too — sent after ``latency-ms``, the list shuffled: a lab's
  URL list on a real network. **Both tools at their defaults**: img2dataset with nothing but its
  input and output; FurrSight with its default settings (1 s between requests to a host, 2 per
  host in flight, robots.txt read, the per-host delay shared through a private Valkey when one
  can be started) except that loopback addresses are allowed.

img2dataset (MIT; not a FurrSight dependency) is found at ``--img2dataset`` or installed on first
use into ``bench/_work/venv`` (git-ignored). FurrSight runs a ``url_list`` job through the real job
runner and the full ingest path (SHA-256, decode, analysis, collage detection, thumbnail, file
store, SQLite rows) into a fresh data directory. Rates are images per second, wall clock
including start-up; CPU per image counts every process of each side.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "_work"
CORES = os.cpu_count() or 1
RUN_TIMEOUT = 900  # seconds: one run of either tool is stopped past this


def img2dataset_binary(given: str) -> str:
    """``given``, else bench/_work/venv's img2dataset, installed there first if missing."""
    if given:
        return given
    binary = WORK / "venv" / "bin" / "img2dataset"
    if not binary.exists():
        print(f"installing img2dataset into {binary.parent.parent} (once) …", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(WORK / "venv")], check=True)
        pip = [str(WORK / "venv" / "bin" / "pip"), "install", "-q"]
        subprocess.run([*pip, "img2dataset"], check=True, timeout=1800)
    return str(binary)


@contextmanager
def hosts_server(folder: Path, hosts: int, latency_ms: float) -> Iterator[int]:
    """bench/hosts.py in its own process: yields the port every host listens on."""
    cmd = [sys.executable, "-m", "bench.hosts", str(folder), "--hosts", str(hosts), "--latency-ms", str(latency_ms)]
    # its own session: the kernel's autogroup scheduler shares the CPU between sessions, and the
    # hosts stand for other machines, so their serving must not come out of the measured tool's share
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def private_broker(folder: Path) -> Iterator[str]:
    """A Valkey/Redis on a free loopback port for the shared per-host pacer ("" when none here)."""
    from furrsight.supervisor import broker_command, broker_server_binary, free_port, wait_for_broker

    binary = broker_server_binary()
    if binary is None:
        yield ""
        return
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(broker_command(binary, port, folder), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_broker(f"redis://127.0.0.1:{port}/0")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def run_img2dataset(binary: str, url_file: Path, out: Path, defaults: bool) -> dict[str, Any]:
    tuned = ["--processes_count", str(CORES), "--thread_count", "32"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run(
        [binary, "--url_list", str(url_file), "--output_folder", str(out), *([] if defaults else tuned)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=RUN_TIMEOUT,
        env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"},
    )  # fmt: skip
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"done": len(list(out.rglob("*.jpg"))), "seconds": elapsed, "cpu": cpu}


def run_ours(url_file: Path, data: Path, scenario: str, broker_url: str, root: Path = ROOT) -> dict[str, Any]:
    """Our run in a fresh process (like img2dataset's), with the code of checkout ``root``."""
    # our url_list reads files below the import roots: the list goes to the data dir's incoming/
    (data / "incoming").mkdir(parents=True)
    ours_file = data / "incoming" / "urls.txt"
    ours_file.write_text(url_file.read_text())
    env = {**os.environ, "FURRSIGHT_DATA": str(data), "FURRSIGHT_BROKER_URL": broker_url, "PYTHONPATH": str(root)}
    cmd = [sys.executable, __file__, "--ours", scenario, str(ours_file), str(root)]
    # the appliance's database exists before any scrape (made at install, by `furrsight up`): made
    # here by the product's own command before the clock starts, as img2dataset needs none
    migrate = [sys.executable, "-m", "furrsight.cli", "migrate"]
    subprocess.run(migrate, env=env, cwd=root, check=True, capture_output=True, timeout=RUN_TIMEOUT)
    started = time.monotonic()
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return {**result, "seconds": time.monotonic() - started}


def ours(scenario: str, url_file: Path) -> None:
    """(In the child process) run the scrape job; print done, counters and CPU seconds as JSON."""
    import asyncio

    import msgspec

    from furrsight.db.setup import open_database
    from furrsight.images import work
    from furrsight.settings import load_settings
    from tests.sites import loopback_settings, run_inline

    settings = load_settings()
    if scenario == "loopback":
        settings = loopback_settings(
            settings, processes=0, per_host_concurrency=16, concurrency=16, read_timeout=30.0, retries=0
        )
    else:  # defaults, but loopback addresses are allowed
        scraping = msgspec.structs.replace(settings.scraping, allowed_networks=["127.0.0.0/8"])
        settings = msgspec.structs.replace(settings, scraping=scraping)

    async def go() -> tuple[Any, float, float]:
        open_database(settings)  # as a worker does at boot
        started = time.monotonic()
        job = await run_inline(settings, {"plugin": "url_list", "params": {"file": str(url_file)}})
        return job, pool_cpu(work), time.monotonic() - started

    job, pool, job_seconds = asyncio.run(go())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    main = usage.ru_utime + usage.ru_stime
    print(json.dumps({"done": job.counters.get("new", 0), "counters": job.counters, "cpu": main + pool, "pool": pool,
                      "job_seconds": job_seconds}))  # fmt: skip


def pool_cpu(work: Any) -> float:
    """CPU seconds of the ingest worker processes (children of the forkserver, so not in
    RUSAGE_CHILDREN): read from /proc before the pool shuts down."""
    total = 0.0
    for pid in list(getattr(work._pool, "_processes", None) or {}):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def url_list(paths: list[Path], port: int, hosts: int) -> str:
    from bench.hosts import address

    urls = [f"http://{address(i % hosts, hosts)}:{port}/{p.name}" for i, p in enumerate(paths)]
    random.Random(0).shuffle(urls)  # a real list does not come sorted by host
    return "".join(f"{u}\n" for u in urls)


def scenario_round(
    name: str, args: argparse.Namespace, paths: list[Path], work: Path, order: list[str]
) -> dict[str, Any]:
    hosts, latency = (1, 0.0) if name == "loopback" else (args.hosts, args.latency_ms)
    rates: dict[str, Any] = {}
    with hosts_server(args.photos, hosts, latency) as port:
        url_file = work / f"{name}-urls.txt"
        url_file.write_text(url_list(paths, port, hosts))
        for side in order:
            out = work / f"{name}-{side}-{time.monotonic_ns()}"
            broker = args.broker_url if name == "latency" else ""
            if side == "img2dataset":
                result = run_img2dataset(args.img2dataset, url_file, out, defaults=name == "latency")
            else:
                result = run_ours(url_file, out, name, broker, args.before if side == "before" else ROOT)
            shutil.rmtree(out, ignore_errors=True)  # thousands of files: gone now, not all at the end
            rate = result["done"] / result["seconds"]
            cpu_ms = 1000 * result["cpu"] / max(result["done"], 1)
            extra = ""
            if "counters" in result:
                pool_ms = 1000 * result["pool"] / max(result["done"], 1)
                extra = (f" (fetching process {cpu_ms - pool_ms:.1f}, ingest pool {pool_ms:.1f}); the job itself "
                         f"{result['job_seconds']:.1f} s  {result['counters']}")  # fmt: skip
            print(f"  {name:8} {side:11} {result['done']:5} images in {result['seconds']:5.1f} s = {rate:6.1f}/s, "
                  f"cpu {cpu_ms:4.1f} ms/image{extra}", flush=True)  # fmt: skip
            rates[side] = rate
            rates[side + " cpu"] = cpu_ms
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--hosts", type=int, default=1000, help="distinct hosts of the latency scenario")
    parser.add_argument("--latency-ms", type=float, default=150.0, help="each host's answer delay")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scenarios", default="loopback,latency")
    parser.add_argument("--photos", type=Path, default=Path(tempfile.gettempdir()) / "furrsight-bench-photos")
    parser.add_argument("--img2dataset", default="", help="its binary (default: installed into bench/_work/venv)")
    parser.add_argument("--before", type=Path, help="also run the FurrSight of this checkout (before/after)")
    parser.add_argument("--sides", default="img2dataset,furrsight", help="run only these (for experiments)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))  # so every server below is stopped too
    sides = [s for s in args.sides.split(",") if s] + (["before"] if args.before else [])
    if "img2dataset" in sides:
        args.img2dataset = img2dataset_binary(args.img2dataset)

    print(f"{CORES} cores; making {args.count} 1024x768 JPEGs in {args.photos} (cached) …", flush=True)
    from bench.photos import make_photos

    paths = make_photos(args.photos, args.count)
    print(f"  average {sum(p.stat().st_size for p in paths) / len(paths) / 1024:.0f} KiB each")
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    results: dict[str, list[dict[str, Any]]] = {s: [] for s in scenarios}
    with tempfile.TemporaryDirectory(prefix="furrsight-bench-") as tmp, private_broker(Path(tmp) / "broker") as url:
        args.broker_url = url
        print(f"shared per-host pacer: {'Valkey at ' + url if url else 'none (no valkey-server here)'}")
        for r in range(args.rounds):
            order = sides[r % len(sides) :] + sides[: r % len(sides)]  # who goes first takes turns
            for name in scenarios:
                results[name].append(scenario_round(name, args, paths, Path(tmp), order))
    for name, runs in results.items():
        for side in sides:
            rates, cpu = [r[side] for r in runs], [r[side + " cpu"] for r in runs]
            line = (f"{name}: {side:11} {min(rates):6.1f}–{max(rates):6.1f} images/s, "
                    f"{min(cpu):4.1f}–{max(cpu):4.1f} ms CPU/image")  # fmt: skip
            if side != "img2dataset" and "img2dataset" in sides:
                ratio = [r[side] / r["img2dataset"] for r in runs]
                cpu_ratio = statistics.median(r["img2dataset cpu"] / r[side + " cpu"] for r in runs)
                line += (
                    f"; ratio to img2dataset {min(ratio):.2f}–{max(ratio):.2f}x "
                    f"(median {statistics.median(ratio):.2f}x of each round's pair), CPU per image "
                    f"img2dataset's/ours {cpu_ratio:.2f}"
                )
            print(f"{line} over {len(runs)} rounds")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--ours":  # the child: FurrSight from the checkout named
        sys.path.insert(0, sys.argv[4])
        ours(sys.argv[2], Path(sys.argv[3]))
    else:
        sys.path.insert(0, str(ROOT))
        main()
