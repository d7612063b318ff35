"""Benchmark: our ``url_list`` scrape (full ingest) against img2dataset on the same URL list.

    PYTHONPATH=. .venv/bin/python bench/scrape.py --count 2000 --img2dataset /work/bench-venv/bin/img2dataset

Generates ``count`` photo-like 1024×768 JPEGs (cached between runs), serves them from a loopback
HTTP server in its own process, then fetches the same URL list twice:

* img2dataset (MIT; installed in its own venv, not a FurrSight dependency): its defaults —
  resize to 256 px, output to files — with as many processes as cores;
* FurrSight: a ``url_list`` scrape job through the real job runner and the full ingest path
  (SHA-256, decode, thumbnail, file store, SQLite rows) into a fresh data directory, with the
  politeness delay set to zero for loopback.

It prints both rates (images per second, wall clock including start-up) and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.photos import make_photos

ROOT = Path(__file__).resolve().parent.parent
CORES = os.cpu_count() or 1


SERVER = """
import sys
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
class Quiet(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=sys.argv[1]))
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def serve(folder: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}"


def run_img2dataset(binary: str, url_file: Path, out: Path) -> tuple[int, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run(
        [binary, "--url_list", str(url_file), "--output_folder", str(out), "--input_format", "txt",
         "--output_format", "files", "--processes_count", str(CORES), "--thread_count", "32",
         "--image_size", "256", "--disable_all_reencoding", "False"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"},
    )  # fmt: skip
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = len(list(out.rglob("*.jpg")))
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    print(f"  cpu per image: img2dataset (all its processes) {1000 * cpu / max(done, 1):.1f} ms")
    return done, elapsed


def pool_cpu() -> float:
    """CPU seconds of the ingest worker processes (children of the forkserver, so not in
    RUSAGE_CHILDREN): read from /proc before the pool shuts down."""
    from furrsight.images import work

    total = 0.0
    for pid in list(getattr(work._pool, "_processes", None) or {}):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def run_ours(
    url_file: Path, data: Path, processes: int, args_in_flight: int = 16
) -> tuple[int, float, dict[str, int]]:
    os.environ["FURRSIGHT_DATA"] = str(data)
    from furrsight.db.setup import migrate
    from furrsight.settings import load_settings
    from tests.sites import loopback_settings, run_inline

    settings = loopback_settings(
        load_settings(),
        per_host_concurrency=args_in_flight,
        concurrency=args_in_flight,
        processes=processes,
        read_timeout=30.0,
        retries=0,
    )
    await migrate(settings)
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    job = await run_inline(settings, {"plugin": "url_list", "params": {"file": str(url_file)}})
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = [(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), pool_cpu()]
    done = job.counters.get("new", 0)
    print(f"  cpu per image: fetching process {1000 * cpu[0] / done:.1f} ms, ingest pool {1000 * cpu[1] / done:.1f} ms")
    return done, elapsed, job.counters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--photos", type=Path, default=Path(tempfile.gettempdir()) / "furrsight-bench-photos")
    parser.add_argument("--img2dataset", default="/work/bench-venv/bin/img2dataset")
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--processes", type=int, default=0, help="our ingest processes (0: one per core)")
    args = parser.parse_args()

    print(f"{CORES} cores; making {args.count} 1024x768 JPEGs in {args.photos} (cached) …", flush=True)
    paths = make_photos(args.photos, args.count)
    size = sum(p.stat().st_size for p in paths) / len(paths)
    print(f"  average {size / 1024:.0f} KiB each")
    server, base = serve(args.photos)
    try:
        with tempfile.TemporaryDirectory(prefix="furrsight-bench-") as tmp:
            work = Path(tmp)
            url_file = work / "urls.txt"
            url_file.write_text("".join(f"{base}/{p.name}\n" for p in paths))
            peer_rate = None
            if not args.skip_peer:
                done, elapsed = run_img2dataset(args.img2dataset, url_file, work / "i2d")
                peer_rate = done / elapsed
                print(f"img2dataset: {done} images in {elapsed:.1f} s = {peer_rate:.1f} images/s")
            # our url_list reads files below the import roots: the list lives in the data dir's incoming/
            data = work / "data"
            (data / "incoming").mkdir(parents=True)
            ours_file = data / "incoming" / "urls.txt"
            ours_file.write_text(url_file.read_text())
            done, elapsed, counters = asyncio.run(run_ours(ours_file, data, args.processes))
            rate = done / elapsed
            print(f"furrsight url_list: {done} images in {elapsed:.1f} s = {rate:.1f} images/s  {counters}")
            if peer_rate:
                print(f"ratio furrsight / img2dataset: {rate / peer_rate:.2f}x")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
