"""A Pillow RGB image's pixels seen by numpy in place, without a copy.

``np.asarray(img)`` copies the pixels through ``tobytes`` (0.4 ms for an 800x600 draft, about
4 % of ingest's CPU per photo). Pillow keeps an RGB image as 4 bytes a pixel (RGBX) in one block
and exports that block through the Arrow C data interface (``__arrow_c_array__``); pyarrow (a
dependency already, for the exports) imports it in about 3 µs and the numpy view keeps pyarrow's
buffer — and so Pillow's block — alive for as long as the view lives: no lifetime to manage by
hand, unlike reading the C structs through ctypes. The view is height x width x 4 and OpenCV
resizes it directly (each channel on its own: the RGB channels come out bit for bit those of the
copied image).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
from PIL import Image

_RGBX = pa.list_(pa.field("RGB", pa.uint8(), nullable=False), 4)  # Pillow's format "+w:4", child "C"


def rgbx_view(img: Image.Image) -> np.ndarray | None:
    """A read-only height x width x 4 uint8 view of an RGB image's own pixels (the 4th byte is
    padding), or None when Pillow cannot export this image in one block (the caller copies)."""
    if img.mode != "RGB":
        return None
    try:
        array = pa.Array._import_from_c_capsule(*img.__arrow_c_array__())
    except Exception:  # an image in several blocks, an older Pillow
        return None
    width, height = img.size
    if array.type != _RGBX or array.offset != 0 or len(array) != width * height:
        return None
    values = array.values
    data = values.buffers()[1]
    if values.offset != 0 or data is None or data.size < width * height * 4:
        return None
    return np.frombuffer(data, np.uint8, count=width * height * 4).reshape(height, width, 4)


def with_rgbx(img: Image.Image, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray | None:
    """``fn`` applied to :func:`rgbx_view` of ``img``; None when there is no such view."""
    view = rgbx_view(img)
    return None if view is None else fn(view)
