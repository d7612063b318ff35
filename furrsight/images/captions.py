"""Read "before"/"after" captions on a collage's panels, cheaply, with Tesseract.

Tesseract runs in-process through ``tesserocr`` (its PyPI wheel bundles libtesseract) with the
English model of the Debian package ``tesseract-ocr-eng``; nothing is downloaded at run time.
Without either, :func:`available` is False and collage detection reads no captions.

OCR is dear (about 10-20 ms a line), so it never runs on a whole photo: a pre-check first finds
lines of text-like strokes (rows of a bright or dark mask crossed by many short runs, a few to
sixty pixels tall) and only those bands, binarised, go to Tesseract.
"""

from __future__ import annotations

import contextlib
import os
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

BEFORE_WORDS = ("before", "antes", "vorher", "avant", "pre")
AFTER_WORDS = ("after", "despues", "nachher", "apres", "post")
_BLOCK = 64  # columns per block when counting strokes
_MIN_STROKES = 6  # mask edges per row in a block that look like letters
_LINE_ROWS = (7, 64)  # height of a caption line on the working image
_EDGE_SHARE = 0.25  # a caption is in the top or bottom quarter of its panel  # OCR at most this many bands per image
_TESSDATA_GUESSES = (
    "/usr/share/tesseract-ocr/5/tessdata",
    "/usr/share/tesseract-ocr/4.00/tessdata",
    "/usr/share/tessdata",
)


@dataclass(frozen=True)
class Word:
    kind: str  # before / after
    text: str
    box: tuple[int, int, int, int]  # left, top, right, bottom on the working image

    @property
    def x(self) -> float:
        return (self.box[0] + self.box[2]) / 2

    @property
    def y(self) -> float:
        return (self.box[1] + self.box[3]) / 2


def classify(text: str) -> str | None:
    """``before`` or ``after`` for a caption word in one of the known languages, else None."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    word = "".join(ch for ch in plain if ch.isalpha())
    for kind, words in (("before", BEFORE_WORDS), ("after", AFTER_WORDS)):
        for known in words:
            if word == known or (len(known) >= 5 and (_one_edit(word, known) or known in word)):
                return kind
    return None


def _one_edit(a: str, b: str) -> bool:
    """At most one letter substituted, dropped or added (an OCR slip on a long word)."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) <= 1
    short, long_ = sorted((a, b), key=len)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def tessdata() -> Path | None:
    """The folder holding ``eng.traineddata``: $TESSDATA_PREFIX, else the Debian package's."""
    env = os.environ.get("TESSDATA_PREFIX")
    for folder in ([env] if env else []) + list(_TESSDATA_GUESSES):
        for candidate in (Path(folder), Path(folder) / "tessdata"):
            if (candidate / "eng.traineddata").is_file():
                return candidate
    return None


_local = threading.local()  # one Tesseract instance per thread: an instance is not thread-safe
_status: tuple[bool, str] | None = None


def status() -> tuple[bool, str]:
    """Whether captions can be read, and in words why (or why not)."""
    global _status
    if _status is None:
        try:
            import tesserocr
        except ImportError as exc:
            _status = (False, f"tesserocr is not installed ({exc})")
            return _status
        data = tessdata()
        if data is None:
            _status = (False, "no eng.traineddata (Debian package tesseract-ocr-eng, or set TESSDATA_PREFIX)")
        else:
            _status = (True, f"Tesseract {tesserocr.tesseract_version().split()[1]} with {data}/eng.traineddata")
    return _status


def available() -> bool:
    return status()[0]


def _quiet_leptonica(tesserocr: Any) -> None:
    """Leptonica prints harmless "Error in boxClipToRectangle" lines on stderr for some crops:
    set its message severity to none (its own call; the environment variable alone does not)."""
    import ctypes
    import ctypes.util

    bundled = sorted(Path(tesserocr.__file__).parent.parent.glob("tesserocr.libs/libleptonica*.so*"))
    name = str(bundled[0]) if bundled else ctypes.util.find_library("leptonica") or ctypes.util.find_library("lept")
    with contextlib.suppress(OSError, AttributeError, TypeError):  # else only the noise stays
        ctypes.CDLL(name).setMsgSeverity(6)  # L_SEVERITY_NONE


def _api() -> Any:
    api = getattr(_local, "api", None)
    if api is None:
        import tesserocr

        _quiet_leptonica(tesserocr)

        api = tesserocr.PyTessBaseAPI(path=str(tessdata()), lang="eng", psm=tesserocr.PSM.SPARSE_TEXT)
        api.SetVariable("tessedit_char_whitelist", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        _local.api = api
    return api


@dataclass(frozen=True)
class Band:
    polarity: str  # bright: light letters; dark: dark letters
    top: int
    bottom: int
    left: int
    right: int


def text_bands(g: np.ndarray) -> list[Band]:
    """Bands that look like a line of caption text, tallest first.

    A caption is bright letters (often with a dark outline) or dark letters on a light box: in
    the mask of very bright (or very dark) pixels, its rows are crossed by many short runs
    within a few blocks, for a few to sixty rows in a row. Cheap: two masks and a few sums."""
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
    margin = (bottom - top) * _EDGE_SHARE
    return band.top <= top + margin or band.bottom >= bottom - margin


def read_panels(
    g: np.ndarray, panels: list[tuple[int, int, int, int]], near: list[Band] | None = None
) -> list[tuple[int, Word]]:
    """The before/after words of each panel (left, top, right, bottom on the working image):
    OCR of the top and the bottom quarter of each, as bright letters then as dark ones.

    With ``near`` (caption-like bands), only the rows of those bands in the quarters are read,
    and reading stops at the first panel that has no word (a cut made from captions needs both)."""
    if not available():
        return []
    found: list[tuple[int, Word]] = []
    for i, (left, top, right, bottom) in enumerate(panels):
        tall = max(1, int((bottom - top) * _EDGE_SHARE))
        for y0 in (top, bottom - tall):
            y1 = y0 + tall
            if near is not None:  # only the rows of the bands in this strip, with a margin
                inside = [b for b in near if b.top < y1 and b.bottom >= y0 and b.left < right and b.right > left]
                if not inside:
                    continue
                pad = max(6, max(b.bottom - b.top for b in inside) // 2)
                y0, y1 = max(y0, min(b.top for b in inside) - pad), min(y1, max(b.bottom for b in inside) + pad + 1)
            found.extend((i, word) for word in _read_strip(g, left, y0, right, y1))
        if near is not None and not any(j == i for j, _ in found):
            break
    return found


def _read_strip(g: np.ndarray, left: int, top: int, right: int, bottom: int) -> list[Word]:
    crop = g[top:bottom, left:right]
    words: list[Word] = []
    for ink in (crop > 200, crop < 55):  # white captions (often outlined), then dark ones
        if crop.size and 0.005 < float(ink.mean()) < 0.8:  # else: no letters in it
            words.extend(_ocr(Image.fromarray(np.where(ink, 0, 255).astype(np.uint8)), left, top, 1))
    return words


def _ocr(img: Image.Image, x0: int, y0: int, scale: int) -> list[Word]:
    import tesserocr

    api = _api()
    api.SetImage(img)
    api.Recognize()
    out = []
    it = api.GetIterator()
    level = tesserocr.RIL.WORD
    for word in tesserocr.iterate_level(it, level):
        try:
            text = word.GetUTF8Text(level) or ""
            box = word.BoundingBox(level)
        except RuntimeError:  # an empty word
            continue
        kind = classify(text)
        if kind and box:
            left, top, right, bottom = (v // scale for v in box)
            out.append(Word(kind, text, (left + x0, top + y0, right + x0, bottom + y0)))
    return out
