"""kNN latency and recall@10 of ``furrsight.search.vectors`` at 10k and 100k vectors.

    PYTHONPATH=. python bench/knn.py [--sizes 10000,100000] [--dim 1280] [--queries 50]

Vectors are synthetic but shaped like the default model's features: 1280-d, non-negative
(post-activation), in clusters (images of the same kind of dog), with per-image noise. Recall@10
compares the appliance's search (bit-signature prefilter in sqlite-vec + exact re-scoring)
with brute-force exact cosine search in NumPy, on the same data, in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import furrsight  # noqa: F401  (chooses the sqlite3 module that can load sqlite-vec)
from furrsight.db.engine import connect
from furrsight.search import vectors


def make_data(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    centers = np.abs(rng.standard_normal((max(10, n // 100), dim))).astype(np.float32)
    which = rng.integers(0, len(centers), n)
    data = centers[which] + 0.6 * np.abs(rng.standard_normal((n, dim))).astype(np.float32)
    return vectors.normalise(np.maximum(data, 0))


def run(n: int, dim: int, queries: int, factor: int) -> None:
    rng = np.random.default_rng(n)
    data = make_data(n, dim, rng)
    with tempfile.TemporaryDirectory() as folder:
        conn = connect(Path(folder) / "bench.db")
        conn.execute("CREATE TABLE images (id INTEGER PRIMARY KEY)")  # vectors belong to images (a foreign key)
        conn.executemany("INSERT INTO images (id) VALUES (?)", [(i,) for i in range(1, n + 1)])
        start = time.perf_counter()
        for lo in range(0, n, 5000):
            vectors.put(conn, "bench", list(range(lo + 1, min(n, lo + 5000) + 1)), data[lo : lo + 5000])
        load_s = time.perf_counter() - start
        picks = rng.choice(n, queries, replace=False)
        qs = vectors.normalise(data[picks] + 0.05 * rng.standard_normal((queries, dim)).astype(np.float32))
        latencies, recalls = [], []
        for q in qs:
            t0 = time.perf_counter()
            got = vectors.knn(conn, "bench", q, 10, prefilter_factor=factor)
            latencies.append((time.perf_counter() - t0) * 1000)
            truth = set((np.argsort(-(data @ q))[:10] + 1).tolist())
            recalls.append(len(truth & {i for i, _ in got}) / 10)
        conn.close()
    mode = f"bit prefilter x{factor} + exact re-score"
    print(
        f"n={n:>7} dim={dim} mode={mode}: median {statistics.median(latencies):.1f} ms, "
        f"p95 {sorted(latencies)[int(0.95 * len(latencies)) - 1]:.1f} ms, recall@10 {statistics.mean(recalls):.3f} "
        f"(insert {n / load_s:.0f} vectors/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--factor", type=int, default=10)
    args = parser.parse_args()
    for n in (int(s) for s in args.sizes.split(",")):
        run(n, args.dim, args.queries, args.factor)


if __name__ == "__main__":
    main()
