"""What the working image says: its perceptual hash and its quality flags."""

from __future__ import annotations

from dataclasses import dataclass

import imagehash
import numpy as np
from PIL import Image
from scipy import ndimage

from furrsight.settings import IngestSettings

FLAGS = ("small", "blurry", "extreme_aspect", "mostly_text")


@dataclass(frozen=True)
class Analysis:
    phash: str  # 16 hex digits
    blur: float
    flags: list[str]


def gray(work: Image.Image) -> np.ndarray:
    return np.asarray(work.convert("L"), dtype=np.float32)


def laplacian_variance(g: np.ndarray) -> float:
    """Sharpness: the variance of the Laplacian of the grey image (low: blurry)."""
    return float(ndimage.laplace(g).var())


def mostly_text(g: np.ndarray) -> bool:
    """Cheap: a flat background (most pixels one light or dark tone) broken by many small,
    sharp strokes, like a screenshot, a text card or a big watermark on a plain field."""
    g = g[::2, ::2]  # every other pixel is plenty for a background share and a stroke count
    hist = np.bincount((g // 16).astype(np.int64).ravel(), minlength=16) / g.size
    background = float(hist.max())
    edges = np.abs(np.diff(g, axis=1)) > 60
    return background > 0.6 and float(edges.mean()) > 0.02


def analyse(work: Image.Image, g: np.ndarray, width: int, height: int, limits: IngestSettings) -> Analysis:
    """``width``/``height`` are the full image's (upright); ``work`` is the shared working image."""
    blur = laplacian_variance(g)
    flags = []
    if min(width, height) < limits.small_side:
        flags.append("small")
    if blur < limits.blur_threshold:
        flags.append("blurry")
    if max(width, height) / max(1, min(width, height)) > limits.max_aspect:
        flags.append("extreme_aspect")
    if mostly_text(g):
        flags.append("mostly_text")
    return Analysis(str(imagehash.phash(work)), blur, flags)


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()
