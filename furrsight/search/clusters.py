"""Near-duplicate clusters from image vectors: a k-nearest-neighbour graph, cut at a cosine
distance, split into connected components with scipy.

Among the images within ``max_distance`` (cosine) of it, each image keeps only its ``NEIGHBOURS``
nearest (exact: one matrix product per block of rows, so memory stays near ``BLOCK_FLOATS``
similarities however many images there are). A larger
group of near-duplicates still ends up in one cluster through chains of neighbours. The graph has
at most n x k edges, and ``scipy.sparse.csgraph.connected_components`` labels it in one pass —
instead of walking every pair above the threshold in Python.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

NEIGHBOURS = 10
BLOCK_FLOATS = 1 << 25  # similarities held at once (128 MB of float32) ...
MIN_ROWS, MAX_ROWS = 512, 2048  # ... within these rows per block (fewer rows make BLAS slower)


def block_size(n: int) -> int:
    """Rows per block: 2048 up to 16k images, then fewer (205 MB of similarities at 100k)."""
    return max(MIN_ROWS, min(MAX_ROWS, BLOCK_FLOATS // max(n, 1)))


def block_edges(
    data: np.ndarray, lo: int, hi: int, max_distance: float, k: int = NEIGHBOURS
) -> tuple[np.ndarray, np.ndarray]:
    """The kNN-graph edges of rows ``lo:hi``: each row's k nearest other rows among those within
    ``max_distance`` (cosine). Rows with no such neighbour cost one comparison per column; only
    the pairs above the threshold are sorted (by row, then similarity) and cut at rank k."""
    sims = data[lo:hi] @ data.T
    sims[np.arange(hi - lo), np.arange(lo, hi)] = -np.inf  # an image is not its own neighbour
    rows, cols = np.nonzero(sims >= 1.0 - max_distance)
    order = np.lexsort((-sims[rows, cols], rows))
    rows, cols = rows[order], cols[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows, side="left")
    keep = rank < k
    return rows[keep] + lo, cols[keep]


def components(ids: list[int], rows: list[np.ndarray], cols: list[np.ndarray]) -> list[list[int]]:
    """Connected components of 2 or more images, each sorted, ordered by their first image id."""
    n = len(ids)
    if n == 0:
        return []
    r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    graph = coo_matrix((np.ones(len(r), np.int8), (r, c)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=False)
    groups: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(int(label), []).append(ids[i])
    return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def knn_clusters(ids: list[int], data: np.ndarray, max_distance: float, k: int = NEIGHBOURS) -> list[list[int]]:
    """All of it in one call (the job runs the same steps block by block, with progress)."""
    rows, cols = [], []
    step = block_size(len(ids))
    for lo in range(0, len(ids), step):
        hi = min(lo + step, len(ids))
        r, c = block_edges(data, lo, hi, max_distance, k)
        rows.append(r)
        cols.append(c)
    return components(ids, rows, cols)
