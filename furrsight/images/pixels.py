"""A Pillow RGB image's pixels seen by numpy in place, without a copy.

``np.asarray(img)`` copies the pixels through ``tobytes`` (0.4 ms for an 800x600 draft, about
4 % of ingest's CPU per photo). Pillow keeps an RGB image as 4 bytes a pixel (RGBX) in one block
and exports that block through the Arrow C data interface (``__arrow_c_array__``, a stable C
ABI: https://arrow.apache.org/docs/format/CDataInterface.html); read through ``ctypes``, it is a
height x width x 4 view that OpenCV can resize directly (each channel on its own: the RGB
channels come out bit for bit those of the copied image). pyarrow would read it too, but it is a
60-MB dependency for three pointers.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image


class _Schema(ctypes.Structure):
    pass


_Schema._fields_ = [
    ("format", ctypes.c_char_p), ("name", ctypes.c_char_p), ("metadata", ctypes.c_char_p),
    ("flags", ctypes.c_int64), ("n_children", ctypes.c_int64),
    ("children", ctypes.POINTER(ctypes.POINTER(_Schema))), ("dictionary", ctypes.c_void_p),
    ("release", ctypes.c_void_p), ("private_data", ctypes.c_void_p),
]  # fmt: skip


class _Array(ctypes.Structure):
    pass


_Array._fields_ = [
    ("length", ctypes.c_int64), ("null_count", ctypes.c_int64), ("offset", ctypes.c_int64),
    ("n_buffers", ctypes.c_int64), ("n_children", ctypes.c_int64),
    ("buffers", ctypes.POINTER(ctypes.c_void_p)), ("children", ctypes.POINTER(ctypes.POINTER(_Array))),
    ("dictionary", ctypes.c_void_p), ("release", ctypes.c_void_p), ("private_data", ctypes.c_void_p),
]  # fmt: skip

_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_pointer.restype = ctypes.c_void_p
_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]


def with_rgbx(img: Image.Image, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray | None:
    """``fn`` applied to a height x width x 4 uint8 view of an RGB image's own pixels (the 4th
    byte is padding); ``fn`` must return a new array (the view is gone when this returns).
    None if Pillow cannot export this image in one block (the caller copies it instead)."""
    if img.mode != "RGB":
        return None
    try:
        schema_capsule, array_capsule = img.__arrow_c_array__()
    except Exception:  # an image in several blocks, an older Pillow
        return None
    schema = ctypes.cast(_pointer(schema_capsule, b"arrow_schema"), ctypes.POINTER(_Schema)).contents
    array = ctypes.cast(_pointer(array_capsule, b"arrow_array"), ctypes.POINTER(_Array)).contents
    width, height = img.size
    if (
        schema.format != b"+w:4" or schema.n_children != 1 or schema.children[0].contents.format != b"C"
        or array.offset != 0 or array.n_children != 1
    ):  # fmt: skip
        return None
    child = array.children[0].contents
    if child.offset != 0 or child.length != width * height * 4 or child.n_buffers != 2 or not child.buffers[1]:
        return None
    buffer: Any = (ctypes.c_uint8 * (width * height * 4)).from_address(child.buffers[1])
    view = np.frombuffer(buffer, np.uint8).reshape(height, width, 4)
    result = fn(view)
    del view, buffer  # before the capsules release Pillow's block
    del schema_capsule, array_capsule
    return result
