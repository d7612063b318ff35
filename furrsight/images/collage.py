"""Two-panel before/after collages: find the cut, and the two crop boxes it makes.

Detection looks at the grey working image (longest side 512) for, in order of confidence:
a divider (a thin band of uniform colour across the whole image near the middle), a hard seam
(a jump in brightness along a full line that the rest of the image does not have), or two
halves of similar content meeting at the middle with a visible step. Captions ("before",
"after") are not read: the left/top panel is taken as "before" with a modest confidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FIRST_IS_BEFORE_CONFIDENCE = 0.6  # the usual layout, not read from captions
_MIDDLE = (0.3, 0.7)  # where a cut may be, as a share of the side


@dataclass(frozen=True)
class Cut:
    direction: str  # vertical: panels side by side; horizontal: stacked
    start: float  # where the first panel ends (share of the side)
    end: float  # where the second begins (after a divider; == start for a seam)
    confidence: float
    method: str  # divider, seam, similar_halves, manual


def _contrasted(g: np.ndarray, first: int, last: int, left: int, right: int) -> bool:
    """A divider stands out from both panels along most of its length (a plain background line
    in a photo does not: its neighbours are the same background)."""
    band = g[:, first : last + 1].mean(axis=1)
    return all(float((np.abs(g[:, side] - band) > 20).mean()) > 0.5 for side in (left, right))


def _divider(g: np.ndarray) -> Cut | None:
    w = g.shape[1]
    lo, hi = int(w * _MIDDLE[0]), int(w * _MIDDLE[1])
    std = g.std(axis=0)
    uniform = std < 6.0
    x = lo
    while x < hi:
        if not uniform[x]:
            x += 1
            continue
        end = x
        while end + 1 < w and uniform[end + 1]:
            end += 1
        left, right = x - 2, end + 2
        narrow = end - x + 1 <= max(2, w // 10)
        if narrow and left >= 0 and right < w and _contrasted(g, x, end, left, right):
            return Cut("vertical", x / w, (end + 1) / w, 0.9, "divider")
        x = end + 1
    return None


def _step_profile(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    diff = np.abs(np.diff(g, axis=1))
    return diff.mean(axis=0), (diff > 25).mean(axis=0)


def _seam(g: np.ndarray) -> Cut | None:
    w = g.shape[1]
    step, strong = _step_profile(g)
    lo, hi = int(w * _MIDDLE[0]), int(w * _MIDDLE[1])
    typical = float(np.median(step)) + 1e-3
    x = lo + int(np.argmax(step[lo:hi]))
    if strong[x] > 0.6 and step[x] > 5 * typical:
        return Cut("vertical", (x + 1) / w, (x + 1) / w, 0.75, "seam")
    return None


def _similar_halves(g: np.ndarray) -> Cut | None:
    w = g.shape[1]
    mid = w // 2
    step, strong = _step_profile(g)
    near = slice(mid - 2, mid + 2)
    if step[near].max() < 3 * (float(np.median(step)) + 1e-3) or strong[near].max() < 0.35:
        return None
    left, right = g[:, :mid], g[:, w - mid :]

    def small(a: np.ndarray) -> np.ndarray:
        ys = np.linspace(0, a.shape[0] - 1, 16).astype(int)
        xs = np.linspace(0, a.shape[1] - 1, 16).astype(int)
        v = a[np.ix_(ys, xs)].ravel()
        return (v - v.mean()) / (v.std() + 1e-3)

    corr = float(np.mean(small(left) * small(right)))
    return Cut("vertical", 0.5, 0.5, 0.65, "similar_halves") if corr > 0.8 else None


def _detect_vertical(g: np.ndarray) -> Cut | None:
    for finder in (_divider, _seam, _similar_halves):
        cut = finder(g)
        if cut:
            return cut
    return None


def detect(g: np.ndarray) -> Cut | None:
    """The most confident cut of a grey image into two panels, or None for an ordinary photo."""
    if g.std() < 5 or min(g.shape) < 32:
        return None
    found = []
    side = _detect_vertical(g)
    if side:
        found.append(side)
    stacked = _detect_vertical(g.T)
    if stacked:
        found.append(Cut("horizontal", stacked.start, stacked.end, stacked.confidence, stacked.method))
    return max(found, key=lambda c: c.confidence) if found else None


def boxes(cut: Cut, width: int, height: int) -> list[list[int]]:
    """The two panels' [left, top, right, bottom] boxes in the full upright image."""
    if cut.direction == "vertical":
        a, b = round(cut.start * width), round(cut.end * width)
        return [[0, 0, a, height], [b, 0, width, height]]
    a, b = round(cut.start * height), round(cut.end * height)
    return [[0, 0, width, a], [0, b, width, height]]
