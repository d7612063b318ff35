"""Leak-free splits: pairs are grouped into components, and a whole component goes to one split.

Two pairs are in one component when they share an image, or their images are near-duplicates
(perceptual hash within ``leak_hamming`` bits, or embedding cosine at or above ``leak_cosine``),
or were seen in the same post or page (a source group key, the pair's own group key), or are
panels of the same collage. A component's key is its smallest pair id, and its split is drawn
from a hash of (seed, key) — no shuffle — so a component that only gains pairs keeps its split in
the next version; only a merge of two components can move one of them. Drawing the split from a
hash that knows nothing of the breed keeps each breed's expected share per split at the ratio;
the version reports the real distribution.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable

import msgspec
import numpy as np

from furrsight.search.clusters import knn_clusters

SPLITS = ("train", "validation", "test")
BLOCK = 2048  # rows of the Hamming matrix compared at once


class Member(msgspec.Struct, kw_only=True):
    """One pair as the split sees it: its two images and the keys that tie it to others."""

    pair_id: int
    images: tuple[int, int]
    keys: list[str]  # post:…, collage:…, dup:… — pairs sharing any key are one component
    breed: str | None = None


class _Union:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def join(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def phash_neighbours(ids: list[int], hashes: list[str], max_bits: int) -> list[tuple[int, int]]:
    """Pairs of ``ids`` whose 64-bit hashes differ in at most ``max_bits`` bits (blockwise XOR
    and popcount in numpy: 20,000 images are 200 million comparisons, about a second)."""
    if len(ids) < 2:
        return []
    values = np.array([int(h, 16) for h in hashes], dtype=np.uint64)
    out: list[tuple[int, int]] = []
    for lo in range(0, len(ids), BLOCK):
        block = values[lo : lo + BLOCK]
        bits = np.bitwise_count(block[:, None] ^ values[None, :])
        rows, cols = np.nonzero(bits <= max_bits)
        for r, c in zip(rows + lo, cols, strict=True):
            if r < c:
                out.append((ids[r], ids[c]))
    return out


def embedding_neighbours(vectors: dict[int, np.ndarray], min_cosine: float) -> list[list[int]]:
    """Groups of images whose unit vectors are within the cosine threshold (search's clusters)."""
    if len(vectors) < 2:
        return []
    ids = sorted(vectors)
    data = np.stack([vectors[i] for i in ids]).astype(np.float32)
    return knn_clusters(ids, data, 1.0 - min_cosine)


def components(members: list[Member], duplicate_groups: Iterable[Iterable[int]]) -> dict[int, str]:
    """pair id -> its component's key (``pair:<smallest pair id>``)."""
    union = _Union()
    for group in duplicate_groups:
        group = list(group)
        for other in group[1:]:
            union.join(f"image:{group[0]}", f"image:{other}")
    for m in members:
        node = f"pair:{m.pair_id:012d}"
        for key in (*(f"image:{i}" for i in m.images), *m.keys):
            union.join(node, key)
    roots: dict[str, int] = {}
    for m in members:
        root = union.find(f"pair:{m.pair_id:012d}")
        roots[root] = min(roots.get(root, m.pair_id), m.pair_id)
    return {m.pair_id: f"pair:{roots[union.find(f'pair:{m.pair_id:012d}')]}" for m in members}


def split_of(key: str, seed: str, ratios: tuple[float, float, float]) -> str:
    """The split a component's key draws: a point in [0, 1) from SHA-256 of (seed, key)."""
    point = int(hashlib.sha256(f"{seed}\0{key}".encode()).hexdigest(), 16) / 2**256
    total = sum(ratios)
    edge = 0.0
    for name, ratio in zip(SPLITS, ratios, strict=True):
        edge += ratio / total
        if point < edge:
            return name
    return SPLITS[-1]


def assign(
    members: list[Member], groups: Iterable[Iterable[int]], seed: str, ratios: tuple[float, float, float]
) -> dict[int, tuple[str, str]]:
    """pair id -> (split, component key)."""
    keys = components(members, groups)
    return {pid: (split_of(key, seed, ratios), key) for pid, key in keys.items()}


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
) -> dict[str, int]:
    """Measured afresh: images in two splits, near-duplicates by perceptual hash and by
    embedding that sit in different splits. Every figure must be 0."""
    ids = sorted(i for i in hashes if i in image_splits)
    by_hash = phash_neighbours(ids, [hashes[i] for i in ids], max_bits)
    by_vector = [(g[0], other) for g in embedding_neighbours(vectors, min_cosine) for other in g[1:]]
    return {
        "images_in_two_splits": sum(1 for s in image_splits.values() if len(s) > 1),
        "phash_cross_split": sum(1 for a, b in by_hash if image_splits.get(a) != image_splits.get(b)),
        "embedding_cross_split": sum(1 for a, b in by_vector if image_splits.get(a) != image_splits.get(b)),
        "images_checked": len(image_splits),
        "images_with_embedding": len(vectors),
    }
