"""The cheap pre-check before any OCR: lines of caption-like strokes on a grey working image.

A caption is bright letters (often with a dark outline) or dark letters on a light box: in the
mask of very bright (or very dark) pixels, its rows are crossed by many short runs within a
few 64-pixel blocks, for 7 to 64 rows in a row. Two masks and a few sums: about 0.5 ms.
Photos have such lines too (foliage, fur, fences), so a line alone proves nothing: only a
*pair* of them placed like two panels' captions lets OCR run (``paired``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_BLOCK = 64  # columns per block when counting strokes
_MIN_STROKES = 6  # mask edges per row in a block that look like letters
_LINE_ROWS = (7, 64)  # height of a caption line on the working image
EDGE_SHARE = 0.25  # a caption is in the top or bottom quarter of its panel


@dataclass(frozen=True)
class Band:
    polarity: str  # bright: light letters; dark: dark letters
    top: int
    bottom: int
    left: int
    right: int


def text_bands(g: np.ndarray) -> list[Band]:
    """Bands that look like a line of caption text, tallest first."""
    blocks = g.shape[1] // _BLOCK
    if blocks < 1:
        return []
    found: list[Band] = []
    for polarity, mask in (("bright", g > 200), ("dark", g < 55)):
        edges = np.abs(np.diff(mask[:, : blocks * _BLOCK].astype(np.int8), axis=1))
        per_block = np.add.reduceat(edges, np.arange(0, blocks * _BLOCK - 1, _BLOCK), axis=1)
        busy = per_block >= _MIN_STROKES  # rows x blocks
        cells = [(b, top, bottom) for b in range(blocks) for top, bottom in _lines(busy[:, b])]
        found.extend(_merged(polarity, cells))
    found.sort(key=lambda b: b.bottom - b.top, reverse=True)
    return found


def _lines(rows: np.ndarray) -> list[tuple[int, int]]:
    """Runs of busy rows (a one-row gap, the middle of an E, does not end one) of a line's height."""
    out = []
    y, h = 0, len(rows)
    while y < h:
        if not rows[y]:
            y += 1
            continue
        end = y
        while end + 1 < h and (rows[end + 1] or (end + 2 < h and rows[end + 2])):
            end += 1
        if _LINE_ROWS[0] <= end - y + 1 <= _LINE_ROWS[1]:
            out.append((y, end))
        y = end + 1
    return out


def _merged(polarity: str, cells: list[tuple[int, int, int]]) -> list[Band]:
    """Neighbouring blocks' lines on the same rows are one band."""
    bands: list[Band] = []
    for b, top, bottom in sorted(cells):
        for i, band in enumerate(bands):
            overlap = min(band.bottom, bottom) - max(band.top, top) + 1
            if band.right == b * _BLOCK and overlap >= (bottom - top + 1) / 2:
                bands[i] = Band(polarity, min(band.top, top), max(band.bottom, bottom), band.left, (b + 1) * _BLOCK)
                break
        else:
            bands.append(Band(polarity, top, bottom, b * _BLOCK, (b + 1) * _BLOCK))
    return bands


def paired(bands: list[Band], h: int, w: int, direction: str, at: float) -> list[Band]:
    """Bands that could be the two panels' captions of a cut (``direction``, at share ``at`` of
    the side): one on each side, placed alike (the same rows side by side; a panel's height
    apart when stacked), near the top or bottom of their panel. Only these can make a cut."""
    keep: set[Band] = set()
    cut = at * (w if direction == "vertical" else h)
    for a in bands:
        for b in bands:
            ha, hb = a.bottom - a.top + 1, b.bottom - b.top + 1
            if a.polarity != b.polarity or a == b or not 0.5 <= ha / hb <= 2:
                continue
            if direction == "vertical":
                rows = min(a.bottom, b.bottom) - max(a.top, b.top) + 1
                halves = a.right <= cut + _BLOCK // 2 and b.left >= cut - _BLOCK // 2
                ok = halves and rows >= min(ha, hb) / 2 and _near_edge(a, 0, h) and _near_edge(b, 0, h)
            else:
                cols = min(a.right, b.right) - max(a.left, b.left)
                alike = abs((b.top - a.top) - cut) <= 0.15 * h
                ok = a.bottom <= cut < b.top and cols > 0 and alike
                ok = ok and _near_edge(a, 0, int(cut)) and _near_edge(b, int(cut), h)
            if ok:
                keep.update((a, b))
    return sorted(keep, key=lambda b: (b.top, b.left))


def _near_edge(band: Band, top: int, bottom: int) -> bool:
    """Captions sit near the top or the bottom of their panel (rows top..bottom)."""
    margin = (bottom - top) * EDGE_SHARE
    return band.top <= top + margin or band.bottom >= bottom - margin
