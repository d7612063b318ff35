"""Leak-free splits: pairs are grouped into components, and a whole component goes to one split.

Two pairs are in one component when they share an image, or their images are near-duplicates
(perceptual hash within ``leak_hamming`` bits, or embedding cosine at or above ``leak_cosine``),
or were seen in the same post or page (a source group key, the pair's own group key), or are
panels of the same collage. A component's key is its smallest pair id. Which split a component
goes to is decided in ``stratify.py`` (anchored on the previous version, breeds stratified).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

import msgspec
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from furrsight.search.clusters import knn_clusters

SPLITS = ("train", "validation", "test")
BLOCK = 2048  # rows of the Hamming matrix compared at once


class Member(msgspec.Struct, kw_only=True):
    """One pair as the split sees it: its two images and the keys that tie it to others."""

    pair_id: int
    images: tuple[int, int]
    keys: list[str]  # post:…, collage:…, dup:… — pairs sharing any key are one component
    breed: str | None = None


def phash_neighbours(
    ids: list[int], hashes: list[str], max_bits: int, only: set[int] | None = None
) -> list[tuple[int, int]]:
    """Pairs ``(a, b)``, ``a < b``, of ``ids`` whose 64-bit hashes differ in at most ``max_bits``
    bits — every pair, or (``only``) those with at least one image in ``only``. Blockwise XOR and
    popcount in numpy: 20,000 images are 200 million comparisons, about a second."""
    if len(ids) < 2:
        return []
    values = np.array([int(h, 16) for h in hashes], dtype=np.uint64)
    rows = (
        np.arange(len(ids)) if only is None else np.array([k for k, i in enumerate(ids) if i in only], dtype=np.int64)
    )
    out: set[tuple[int, int]] = set()
    for lo in range(0, len(rows), BLOCK):
        block = rows[lo : lo + BLOCK]
        bits = np.bitwise_count(values[block][:, None] ^ values[None, :])
        r, c = np.nonzero(bits <= max_bits)
        for x, y in zip(block[r].tolist(), c.tolist(), strict=True):
            if x != y:
                out.add((min(ids[x], ids[y]), max(ids[x], ids[y])))
    return sorted(out)


def embedding_neighbours(vectors: dict[int, np.ndarray], min_cosine: float) -> list[list[int]]:
    """Groups of images whose unit vectors are within the cosine threshold (search's clusters)."""
    if len(vectors) < 2:
        return []
    ids = sorted(vectors)
    data = np.stack([vectors[i] for i in ids]).astype(np.float32)
    return knn_clusters(ids, data, 1.0 - min_cosine)


def components(members: list[Member], duplicate_groups: Iterable[Iterable[int]]) -> dict[int, str]:
    """pair id -> its component's key (``pair:<smallest pair id>``): the connected components
    of a graph whose nodes are pairs, images and keys (scipy's, rather than a hand-kept union-find)."""
    index: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []

    def edge(a: str, b: str) -> None:
        rows.append(index.setdefault(a, len(index)))
        cols.append(index.setdefault(b, len(index)))

    for m in members:
        node = f"pair:{m.pair_id}"
        edge(node, node)  # every pair is a node, even one tied to nothing
        for key in (*(f"image:{i}" for i in m.images), *m.keys):
            edge(node, key)
    for group in duplicate_groups:
        group = list(group)
        for other in group[1:]:
            edge(f"image:{group[0]}", f"image:{other}")
    n = len(index)
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    smallest: dict[int, int] = {}
    for m in members:
        label = int(labels[index[f"pair:{m.pair_id}"]])
        smallest[label] = min(smallest.get(label, m.pair_id), m.pair_id)
    return {m.pair_id: f"pair:{smallest[int(labels[index[f'pair:{m.pair_id}']])]}" for m in members}


def breed_distribution(members: list[Member], splits: dict[int, str]) -> dict[str, dict[str, int]]:
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for m in members:
        out[splits[m.pair_id]][m.breed or "(none)"] += 1
    return {s: dict(sorted(out[s].items())) for s in SPLITS}


def leak_check(
    image_splits: dict[int, set[str]],
    hashes: dict[int, str],
    vectors: dict[int, np.ndarray],
    max_bits: int,
    min_cosine: float,
    only: set[int] | None = None,
) -> dict[str, int]:
    """Measured afresh: images in two splits, near-duplicates by perceptual hash and by
    embedding that sit in different splits (by hash: pairs with an image in ``only``, if given).
    Every figure must be 0."""
    ids = sorted(i for i in hashes if i in image_splits)
    by_hash = phash_neighbours(ids, [hashes[i] for i in ids], max_bits, only)
    by_vector = [(g[0], other) for g in embedding_neighbours(vectors, min_cosine) for other in g[1:]]
    return {
        "images_in_two_splits": sum(1 for s in image_splits.values() if len(s) > 1),
        "phash_cross_split": sum(1 for a, b in by_hash if image_splits.get(a) != image_splits.get(b)),
        "embedding_cross_split": sum(1 for a, b in by_vector if image_splits.get(a) != image_splits.get(b)),
        "images_checked": len(image_splits),
        "images_with_embedding": len(vectors),
    }
