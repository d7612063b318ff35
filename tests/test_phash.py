"""Ingest's perceptual hash is imagehash's pHash, bit for bit, of the 64x64 box-filtered working
image, whichever of its two paths runs (the integral-image box filter when the sides are
multiples of 64, OpenCV's INTER_AREA otherwise); and the in-place pixel view equals the copy."""

from __future__ import annotations

import io

import cv2
import imagehash
import numpy as np
import pytest
from PIL import Image

from furrsight.images.analysis import gray8, lanczos_32, perceptual_hash
from furrsight.images.pixels import rgbx_view
from tests.corpus import blurred, side_by_side
from tests.images import photo

DARKNET = "/usr/share/darknet/data/dog.jpg"


def _images() -> list[np.ndarray]:
    rng = np.random.default_rng(64)
    shapes = [(512, 384), (384, 512), (512, 320), (511, 383), (448, 448), (64, 64), (97, 512)]
    made = [
        np.asarray(Image.open(io.BytesIO(photo(7000 + i, size=shape))).convert("RGB")) for i, shape in enumerate(shapes)
    ]
    made += [np.asarray(Image.open(io.BytesIO(blurred(3))).convert("RGB"))]
    made += [np.asarray(Image.open(io.BytesIO(side_by_side(5))).convert("RGB"))]
    made += [rng.integers(0, 256, (384, 512, 3), dtype=np.uint8), np.full((256, 320, 3), 200, np.uint8)]
    with Image.open(DARKNET) as dog:
        made.append(np.asarray(dog.convert("RGB").resize((512, 384))))
    return made


@pytest.mark.parametrize("index", range(12))
def test_perceptual_hash_is_imagehash_phash_bit_for_bit(index: int) -> None:
    rgb = _images()[index]
    g8 = gray8(rgb)
    g = g8.astype(np.float32)
    small = cv2.resize(g, (64, 64), interpolation=cv2.INTER_AREA)
    expected = str(imagehash.phash(Image.fromarray(np.clip(small, 0, 255).astype(np.uint8), "L")))
    assert perceptual_hash(g) == expected
    assert perceptual_hash(g, g8) == expected


def test_the_lanczos_reduction_is_pillows_bit_for_bit() -> None:
    """The pHash's 64 -> 32 reduction reimplemented as matrix products: every output pixel as
    Pillow's LANCZOS makes it, on noise, hard black-and-white edges (whose ringing must be
    clipped in both passes) and smooth ramps."""
    rng = np.random.default_rng(32)
    kinds = [
        lambda: rng.integers(0, 256, (64, 64), dtype=np.uint8),
        lambda: (rng.integers(0, 2, (64, 64)) * 255).astype(np.uint8),
        lambda: np.clip(rng.normal(128, 50, (64, 64)).cumsum(axis=1) / 6 + 128, 0, 255).astype(np.uint8),
        lambda: np.kron(rng.integers(0, 2, (8, 8)) * 255, np.ones((8, 8))).astype(np.uint8),
    ]
    for i in range(800):
        pixels = kinds[i % len(kinds)]()
        expected = np.asarray(Image.fromarray(pixels, "L").resize((32, 32), Image.Resampling.LANCZOS))
        assert np.array_equal(lanczos_32(pixels.astype(np.float64)), expected), i


def test_the_in_place_view_is_the_copy_and_outlives_its_image() -> None:
    img = Image.open(io.BytesIO(photo(7100, size=(640, 480)))).convert("RGB")
    copied = np.asarray(img).copy()
    view = rgbx_view(img)
    assert view is not None and view.shape == (480, 640, 4) and not view.flags.writeable
    del img  # the view keeps Pillow's block alive through pyarrow's buffer
    assert np.array_equal(view[..., :3], copied)
    assert rgbx_view(Image.new("L", (8, 8))) is None
    assert rgbx_view(Image.new("RGB", (4000, 3000))) is None  # several blocks: the caller copies
