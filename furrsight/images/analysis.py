"""What the working image says: its perceptual hash and its quality flags."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np
import scipy.fftpack

from furrsight.settings import IngestSettings

FLAGS = ("small", "blurry", "extreme_aspect", "mostly_text")


@dataclass(frozen=True)
class Analysis:
    phash: str  # 16 hex digits
    blur: float
    flags: list[str]


def gray8(rgb: np.ndarray) -> np.ndarray:
    """The grey working image (uint8) from the RGB one (uint8, height x width x 3; or x 4, RGBX:
    the same grey, the padding byte ignored)."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGBA2GRAY if rgb.shape[2] == 4 else cv2.COLOR_RGB2GRAY)


def as_gray8(g: np.ndarray | None, g8: np.ndarray | None) -> np.ndarray:
    """The uint8 grey image: ``g8`` when the caller has it, else made from ``g`` (whole tones)."""
    if g8 is not None:
        return g8
    assert g is not None, "the grey image is needed, as float32 or uint8"
    return np.ascontiguousarray(g).astype(np.uint8)


def gray(rgb: np.ndarray) -> np.ndarray:
    """The grey working image as float32, what the analysis steps compute with."""
    return gray8(rgb).astype(np.float32)


def laplacian_variance(g: np.ndarray | None, g8: np.ndarray | None = None) -> float:
    """Sharpness: the variance of the Laplacian of the grey image (low: blurry). OpenCV's filter
    (0.06 ms at 512 px where scipy.ndimage took 1.9) and its sums, kept in float64: 0.1 ms where
    numpy's float32 ``var`` took 0.2 (the two agree to 1e-7, numpy's float32 rounding). From
    ``g8`` (the same image as uint8) the filter runs in int16: the Laplacian of whole tones is
    whole numbers under 2,041, so its sums, and the variance, are those of the float32 filter
    to the last bit, a little cheaper."""
    if g8 is not None:
        lap = cv2.Laplacian(g8, cv2.CV_16S)
    else:
        assert g is not None
        lap = cv2.Laplacian(g, cv2.CV_32F)
    mean = cv2.sumElems(lap)[0] / lap.size
    return max(0.0, cv2.norm(lap, cv2.NORM_L2SQR) / lap.size - mean * mean)


def perceptual_hash(g: np.ndarray | None, g8: np.ndarray | None = None) -> str:
    """imagehash's pHash (DCT of a 32x32 grey image), handed a 64x64 box-filtered copy: its own
    Lanczos resize of the full working image cost 0.9 ms, this 0.15 ms (0.05 from ``g8``, the
    same grey image as uint8, when the sides are multiples of 64). The same steps as
    ``imagehash.phash``, bit for bit, without its per-call import and bit-string formatting."""
    small = _box64(g8) if g8 is not None and (g is None or g.shape == g8.shape) else None
    if small is None:
        grey = g if g is not None else g8.astype(np.float32)  # type: ignore[union-attr]
        small = cv2.resize(grey, (64, 64), interpolation=cv2.INTER_AREA)
    pixels = lanczos_32(np.floor(np.clip(small, 0, 255, dtype=np.float64)))  # the uint8 cast truncates
    dct = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)
    low = dct[:8, :8]
    return np.packbits(low > np.median(low)).tobytes().hex()  # imagehash's str(): 16 hex digits


_HALF, _UNIT = float(1 << 21), 1.0 / (1 << 22)  # Pillow's 8-bit resampling: 22 fraction bits


def lanczos_32(pixels: np.ndarray) -> np.ndarray:
    """Pillow's LANCZOS resize of a 64x64 grey image (whole tones 0-255, as float64) to 32x32,
    bit for bit, as two small matrix products (0.017 ms where Pillow, with the copies in and
    out of an image, took 0.05). Pillow resamples 8-bit images in fixed point: each output is
    an integer weighted sum rounded down after adding half, clipped to 0-255, rows first, then
    columns of that. The sums are of integers under 2^35, exact in float64."""
    weights = _lanczos_weights()
    across = np.floor((pixels @ weights.T + _HALF) * _UNIT)
    np.clip(across, 0, 255, out=across)
    down = np.floor((weights @ across + _HALF) * _UNIT)
    return np.clip(down, 0, 255, out=down)


@functools.cache
def _lanczos_weights() -> np.ndarray:
    """Pillow's fixed-point LANCZOS weights from 64 samples to 32 (``precompute_coeffs`` and
    ``normalize_coeffs_8bpc`` in its Resample.c): a 32 x 64 matrix of integers, as float64."""

    def sinc(x: float) -> float:
        return 1.0 if x == 0.0 else math.sin(x * math.pi) / (x * math.pi)

    def lanczos(x: float) -> float:
        return sinc(x) * sinc(x / 3.0) if -3.0 <= x < 3.0 else 0.0

    size_in, size_out = 64, 32
    scale = size_in / size_out
    support = 3.0 * scale  # the filter's support (3) stretched by the reduction
    weights = np.zeros((size_out, size_in))
    for out in range(size_out):
        center = (out + 0.5) * scale
        first = max(int(center - support + 0.5), 0)
        last = min(int(center + support + 0.5), size_in)
        taps = [lanczos((x - center + 0.5) / scale) for x in range(first, last)]
        total = 0.0
        for tap in taps:  # summed in order, as Pillow does
            total += tap
        for x, tap in zip(range(first, last), taps, strict=True):
            value = tap / total * (1 << 22)
            weights[out, x] = int(value + 0.5) if value >= 0 else int(value - 0.5)
    return weights


def _box64(g8: np.ndarray) -> np.ndarray | None:
    """OpenCV's INTER_AREA reduction to 64x64, bit for bit, when both sides are whole multiples
    of 64 (its fast path: the mean of each block, ``sum * (1/area)`` in float32): the block
    sums are exact integers from an integral image (0.05 ms where the resize took 0.14)."""
    height, width = g8.shape
    if height % 64 or width % 64:
        return None
    fy, fx = height // 64, width // 64
    total = cv2.integral(g8)  # int32, (height + 1) x (width + 1)
    corners = total[::fy][:, ::fx]
    blocks = corners[1:, 1:] - corners[:-1, 1:] - corners[1:, :-1] + corners[:-1, :-1]
    return blocks.astype(np.float32) * np.float32(1.0 / (fx * fy))


def mostly_text(g: np.ndarray | None, g8: np.ndarray | None = None) -> bool:
    """Cheap: a flat background (most pixels one light or dark tone) broken by many small,
    sharp strokes, like a screenshot, a text card or a big watermark on a plain field. ``g8``
    is the same grey image as uint8, when there is one (its histogram is four times cheaper;
    then ``g`` may be None)."""
    half = np.ascontiguousarray(as_gray8(g, g8)[::2, ::2])  # every other pixel: plenty for a share and a stroke count
    hist = cv2.calcHist([half], [0], None, [16], [0, 256]).ravel() / half.size  # 16 bins of 16 tones
    if float(hist.max()) <= 0.6:  # no flat background (most photos): no need to count strokes
        return False
    edges = np.abs(np.diff(half.astype(np.int16), axis=1)) > 60
    return float(edges.mean()) > 0.02


def analyse(
    g: np.ndarray | None, width: int, height: int, limits: IngestSettings, g8: np.ndarray | None = None
) -> Analysis:
    """``width``/``height`` are the full image's (upright); ``g`` the grey working image as
    float32, ``g8`` the same as uint8 (either may be None, not both: from ``g8`` alone no
    float32 copy is made unless the pHash's sides are not multiples of 64)."""
    blur = laplacian_variance(g, g8)
    flags = []
    if min(width, height) < limits.small_side:
        flags.append("small")
    if blur < limits.blur_threshold:
        flags.append("blurry")
    if max(width, height) / max(1, min(width, height)) > limits.max_aspect:
        flags.append("extreme_aspect")
    if mostly_text(g, g8):
        flags.append("mostly_text")
    return Analysis(perceptual_hash(g, g8), blur, flags)
