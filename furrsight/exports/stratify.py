"""Which split each component goes to: anchored on the earlier versions, breeds stratified.

1. **Anchored components keep their split.** A pair's *anchor* is its split in the newest earlier
   version (up to the version's ``base``, with the same seed and ratios) that held it. A component
   with anchored pairs goes where they were; when it merged parts that were in different splits,
   it goes where most of its anchored pairs were (ties: the split of its oldest anchored pair), so
   the fewest pairs move. Every other anchored pair keeps its split.
2. **New components are stratified greedily.** Largest first (they are the hardest to place),
   then in the order of ``sha256(seed, key)`` — a stable hash of the component's key, never a
   shuffle — each goes to the split where it lowers the squared distance to the targets most: per
   breed ``ratio × the breed's pairs`` and per split ``ratio × all pairs``. For a one-breed
   component that is the split whose count of that breed lies furthest below its target (the
   deficit rule of iterative stratification, Sechidis et al. 2011); the split-size term keeps
   rare breeds from all landing in train.

A first version (no anchors) is stratified the same way. Everything here is a function of the
record (components, breeds, anchors, seed, ratios), so a version's splits can be derived again.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Mapping

from furrsight.exports.splits import SPLITS

NO_BREED = "(none)"


def _point(seed: str, key: str) -> int:
    return int(hashlib.sha256(f"{seed}\0{key}".encode()).hexdigest(), 16)


def _anchored_split(pairs: list[int], anchors: dict[int, str]) -> str | None:
    held = sorted((p, anchors[p]) for p in pairs if p in anchors)
    if not held:
        return None
    votes = Counter(split for _, split in held)
    oldest = {split: p for p, split in reversed(held)}  # the oldest anchored pair per split
    return min(votes, key=lambda s: (-votes[s], oldest[s]))


def stratify(
    keys: dict[int, str], breeds: dict[int, str | None], anchors: dict[int, str], seed: str,
    ratios: tuple[float, float, float],
) -> dict[int, str]:  # fmt: skip
    """pair id -> split, for pairs grouped by component ``keys`` (pair id -> component key)."""
    shares = [r / sum(ratios) for r in ratios]
    members: dict[str, list[int]] = defaultdict(list)
    for pid in sorted(keys):
        members[keys[pid]].append(pid)
    totals = Counter(breeds.get(p) or NO_BREED for p in keys)
    counts = {s: Counter[str]() for s in SPLITS}
    sizes = dict.fromkeys(SPLITS, 0)
    placed: dict[str, str] = {}
    fresh = []
    for key, pairs in members.items():
        if (split := _anchored_split(pairs, anchors)) is None:
            fresh.append(key)
            continue
        placed[key] = split
        counts[split].update(breeds.get(p) or NO_BREED for p in pairs)
        sizes[split] += len(pairs)
    for key in sorted(fresh, key=lambda k: (-len(members[k]), _point(seed, k))):
        need = Counter(breeds.get(p) or NO_BREED for p in members[key])
        costs = [
            _cost(need, counts[s], totals, share)
            + _cost({"": len(members[key])}, {"": sizes[s]}, {"": len(keys)}, share)
            for s, share in zip(SPLITS, shares, strict=True)
        ]
        split = SPLITS[costs.index(min(costs))]  # a tie: the first in train, validation, test
        placed[key] = split
        counts[split].update(need)
        sizes[split] += len(members[key])
    return {pid: placed[key] for pid, key in keys.items()}


def _cost(need: Mapping[str, int], have: Mapping[str, int], totals: Mapping[str, int], share: float) -> float:
    """How much adding ``need`` to a split changes its squared distance to the targets
    ``share × totals``: Σ need·(need − 2·deficit). Used per breed, and for the split's size."""
    return sum(k * (k - 2 * (share * totals[b] - have.get(b, 0))) for b, k in need.items())


def deviation(
    breeds: dict[int, str | None], splits: dict[int, str], ratios: tuple[float, float, float]
) -> dict[str, object]:
    """How far the splits are from the ratios: per breed and split ``count − ratio × breed's
    pairs``, and the share of pairs that would have to move for every breed to match the ratios
    exactly (half the sum of absolute deviations over all pairs; 0 is perfect)."""
    shares = dict(zip(SPLITS, (r / sum(ratios) for r in ratios), strict=True))
    totals = Counter(b or NO_BREED for b in breeds.values())
    counts = Counter((splits[p], b or NO_BREED) for p, b in breeds.items())
    exact = {b: {s: counts[(s, b)] - shares[s] * totals[b] for s in SPLITS} for b in sorted(totals)}
    n = len(breeds)
    off = sum(abs(d) for row in exact.values() for d in row.values())
    sizes = Counter(splits[p] for p in breeds)
    return {
        "targets": {s: round(shares[s] * n, 2) for s in SPLITS},
        "breeds": {b: {s: round(d, 2) for s, d in row.items()} for b, row in exact.items()},
        "misplaced_share": round(off / 2 / n, 4) if n else 0.0,
        "sizes": {s: round(sizes[s] - shares[s] * n, 2) for s in SPLITS},
    }
