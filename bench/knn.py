"""kNN latency and recall@10 of ``furrsight.search.vectors`` at 10k, 100k and 1M vectors.

    PYTHONPATH=. python bench/knn.py [--sizes 10000,100000,1000000] [--dim 1280] [--queries 100]

Vectors are synthetic but shaped like the default model's features: 1280-d, non-negative
(post-activation), in clusters (images of the same kind of dog), with per-image noise. Recall@10
compares the appliance's search (bit-signature prefilter in sqlite-vec + exact re-scoring)
with brute-force exact cosine search in NumPy, on the same data, in the same run.

The data is made in chunks of ``CHUNK`` vectors, each from its own seed, and never held whole
(1M float32 1280-d vectors are 5 GB; their float64 noise would be 10 GB): the load pass makes
each chunk and stores it, the exact search makes it again and keeps a running top 10.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

import furrsight  # noqa: F401  (chooses the sqlite3 module that can load sqlite-vec)
from furrsight.db.engine import connect
from furrsight.search import vectors

CHUNK = 5000  # vectors made, stored and scanned at a time


class Data:
    """``n`` clustered vectors, made chunk by chunk (the same chunk every time it is asked for)."""

    def __init__(self, n: int, dim: int) -> None:
        self.n, self.dim = n, dim
        rng = np.random.default_rng(n)
        self.centres = np.abs(rng.standard_normal((max(10, n // 100), dim), dtype=np.float32))

    def chunk(self, lo: int) -> np.ndarray:
        rng = np.random.default_rng([self.n, 0, lo])
        rows = min(CHUNK, self.n - lo)
        which = rng.integers(0, len(self.centres), rows)
        noise = np.abs(rng.standard_normal((rows, self.dim), dtype=np.float32))
        return vectors.normalise(np.maximum(self.centres[which] + 0.6 * noise, 0))

    def chunks(self) -> Iterator[tuple[int, np.ndarray]]:
        for lo in range(0, self.n, CHUNK):
            yield lo, self.chunk(lo)


def exact_top10(data: Data, qs: np.ndarray) -> list[set[int]]:
    """Brute-force cosine top 10 of every query (ids from 1), one chunk at a time."""
    best_ids = np.zeros((len(qs), 0), dtype=np.int64)
    best_scores = np.zeros((len(qs), 0), dtype=np.float32)
    for lo, chunk in data.chunks():
        ids = np.concatenate(
            [best_ids, np.broadcast_to(np.arange(lo + 1, lo + len(chunk) + 1), (len(qs), len(chunk)))], 1
        )
        scores = np.concatenate([best_scores, qs @ chunk.T], 1)
        keep = np.argsort(-scores, axis=1, kind="stable")[:, :10]
        best_ids, best_scores = np.take_along_axis(ids, keep, 1), np.take_along_axis(scores, keep, 1)
    return [set(row.tolist()) for row in best_ids]


def run(n: int, dim: int, queries: int, factor: int) -> None:
    data = Data(n, dim)
    rng = np.random.default_rng([n, 1])  # the queries
    picks = np.sort(rng.choice(n, queries, replace=False))
    with tempfile.TemporaryDirectory() as folder:
        conn = connect(Path(folder) / "bench.db")
        conn.execute("CREATE TABLE images (id INTEGER PRIMARY KEY)")  # vectors belong to images (a foreign key)
        conn.executemany("INSERT INTO images (id) VALUES (?)", ((i,) for i in range(1, n + 1)))
        start = time.perf_counter()
        picked = []
        for lo, chunk in data.chunks():
            vectors.put(conn, "bench", list(range(lo + 1, lo + len(chunk) + 1)), chunk)
            picked += [chunk[p - lo].copy() for p in picks if lo <= p < lo + len(chunk)]
        load_s = time.perf_counter() - start
        qs = vectors.normalise(np.stack(picked) + 0.05 * rng.standard_normal((queries, dim), dtype=np.float32))
        latencies, found = [], []
        for q in qs:
            t0 = time.perf_counter()
            found.append({i for i, _ in vectors.knn(conn, "bench", q, 10, prefilter_factor=factor)})
            latencies.append((time.perf_counter() - t0) * 1000)
        conn.close()
    recalls = [len(truth & got) / 10 for truth, got in zip(exact_top10(data, qs), found, strict=True)]
    mode = f"bit prefilter x{factor} + exact re-score"
    print(
        f"n={n:>7} dim={dim} mode={mode}: median {statistics.median(latencies):.1f} ms, "
        f"p95 {sorted(latencies)[int(0.95 * len(latencies)) - 1]:.1f} ms, recall@10 {statistics.mean(recalls):.3f} "
        f"(insert {n / load_s:.0f} vectors/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--factor", type=int, default=10)
    args = parser.parse_args()
    for n in (int(s) for s in args.sizes.split(",")):
        run(n, args.dim, args.queries, args.factor)


if __name__ == "__main__":
    main()
