"""Read "before"/"after" captions on a collage's panels with Tesseract.

Tesseract runs in-process through ``tesserocr`` (its PyPI wheel bundles libtesseract) with the
English model of the Debian package ``tesseract-ocr-eng``; nothing is downloaded at run time.
Without either, :func:`available` is False and collage detection reads no captions.

OCR costs about 5 ms a strip, so it never runs on a whole photo: only on the top and bottom
quarter of each panel of a cut (binarised: white letters, then dark ones), or, to make a cut,
on the rows where ``textlines`` found caption-like lines on both sides.
"""

from __future__ import annotations

import contextlib
import os
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from furrsight.images.textlines import EDGE_SHARE, Band

BEFORE_WORDS = ("before", "antes", "vorher", "avant", "pre")
AFTER_WORDS = ("after", "despues", "nachher", "apres", "post")
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


def read_panels(
    g: np.ndarray, panels: list[tuple[int, int, int, int]], near: list[Band] | None = None, both: bool = False
) -> list[tuple[int, Word]]:
    """The before/after words of each panel (left, top, right, bottom on the working image):
    OCR of the top quarter of each, then of the bottom one if the top had no word, as bright
    letters then as dark ones.

    With ``near`` (caption-like bands), only the rows of those bands in the quarters are read.
    With ``both``, reading stops at the first panel that has no word (a cut made from captions
    needs both)."""
    if not available():
        return []
    found: list[tuple[int, Word]] = []
    for i, (left, top, right, bottom) in enumerate(panels):
        tall = max(1, int((bottom - top) * EDGE_SHARE))
        for y0 in (top, bottom - tall):
            y1 = y0 + tall
            if near is not None:  # only quarters with a band (with ``both``: only its rows)
                inside = [b for b in near if b.top < y1 and b.bottom >= y0 and b.left < right and b.right > left]
                if not inside:
                    continue
                if both:
                    pad = max(6, max(b.bottom - b.top for b in inside) // 2)
                    y0, y1 = max(y0, min(b.top for b in inside) - pad), min(y1, max(b.bottom for b in inside) + pad + 1)
            words = _read_strip(g, left, y0, right, y1)
            found.extend((i, word) for word in words)
            if words:
                break  # this panel's caption is read: its other quarter is not
        if both and not any(j == i for j, _ in found):
            break
    return found


def _read_strip(g: np.ndarray, left: int, top: int, right: int, bottom: int) -> list[Word]:
    """White letters, then dark ones, then white letters with a dark outline among other bright
    things (white water, sky): each as black on white, until one reading finds a word."""
    crop = g[top:bottom, left:right]
    if crop.size == 0:
        return []
    for ink in _inks(crop):
        if 0.005 < float(ink.mean()) < 0.8:  # else: no letters in it
            words = _ocr(Image.fromarray(np.where(ink, 0, 255).astype(np.uint8)), left, top)
            if words:
                return words
    return []


def _inks(crop: np.ndarray) -> Iterator[np.ndarray]:
    bright = crop > 200
    yield bright
    yield crop < 55
    if bright.mean() > 0.005:
        from scipy.ndimage import minimum_filter

        yield bright & (minimum_filter(crop, size=9) < 60)  # within 4 px of a dark outline


def _ocr(img: Image.Image, x0: int, y0: int) -> list[Word]:
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
            left, top, right, bottom = box
            out.append(Word(kind, text, (left + x0, top + y0, right + x0, bottom + y0)))
    return out
