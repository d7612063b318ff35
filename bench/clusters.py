"""Near-duplicate clusters: the kNN graph + scipy connected components (the clusters job) against
the previous way (every pair above the threshold, union-find in Python), same vectors, same run.

    PYTHONPATH=. python bench/clusters.py [--sizes 5000,20000] [--dim 1280] [--distance 0.05]

Vectors are shaped like the default model's features (non-negative, clustered, see bench/knn.py)
with near-duplicate groups planted: 5% of the images get 1-4 re-encoded copies (tiny noise), and
with ``--burst N`` one image gets N copies (a photo re-posted everywhere).
Both ways must give the same clusters; the figures are wall time and peak traced memory.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from bench.knn import Data
from furrsight.search import vectors
from furrsight.search.clusters import knn_clusters


def pairwise(ids: list[int], data: np.ndarray, max_distance: float, block: int = 2048) -> list[list[int]]:
    """The code the job replaced (search/service.py before issue 10)."""
    parent = list(range(len(ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for lo in range(0, len(ids), block):
        sims = data[lo : lo + block] @ data.T
        rows, cols = np.nonzero(sims >= 1.0 - max_distance)
        for r, c in zip(rows + lo, cols, strict=True):
            if r < c:
                parent[root(int(r))] = root(int(c))
    groups: dict[int, list[int]] = {}
    for i, image_id in enumerate(ids):
        groups.setdefault(root(i), []).append(image_id)
    return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def planted(n: int, dim: int, rng: np.random.Generator, burst: int) -> np.ndarray:
    data = np.concatenate([chunk for _, chunk in Data(n, dim).chunks()])  # as bench/knn.py makes them
    picks = rng.choice(n, n // 20, replace=False)
    copies = [data[i] + 0.003 * rng.standard_normal((int(rng.integers(1, 5)), dim)) for i in picks]
    copies.append(data[0] + 0.003 * rng.standard_normal((burst, dim)))  # one photo re-posted many times
    return vectors.normalise(np.concatenate([data, *copies]).astype(np.float32))


def measure(fn: object, *args: object) -> tuple[list[list[int]], float, float]:
    tracemalloc.start()
    start = time.perf_counter()
    out = fn(*args)  # type: ignore[operator]
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return out, seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="5000,20000")
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--distance", type=float, default=0.05)
    parser.add_argument("--burst", type=int, default=0, help="copies of one image (a viral re-post)")
    args = parser.parse_args()
    for n in (int(s) for s in args.sizes.split(",")):
        data = planted(n, args.dim, np.random.default_rng(n), args.burst)
        ids = list(range(1, len(data) + 1))
        old, old_s, old_mb = measure(pairwise, ids, data, args.distance)
        new, new_s, new_mb = measure(knn_clusters, ids, data, args.distance)
        assert new == old, "the kNN graph must find the same clusters"
        print(f"{len(data):>6} vectors, {len(new)} clusters: pairwise {old_s:.2f} s / {old_mb:.0f} MB peak, "
              f"kNN graph {new_s:.2f} s / {new_mb:.0f} MB peak ({old_s / new_s:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
