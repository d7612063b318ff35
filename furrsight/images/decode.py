"""Open, check and decode an image once: the header first (limits before any pixel is decoded),
then one decode (JPEG draft mode: at reduced scale) into an upright 8-bit RGB working image that
the perceptual hash, the quality flags, collage detection and the thumbnail all share.

Odd images are normalised for the derived images only; the original bytes are never changed:
EXIF orientation applied, CMYK to RGB, palette and alpha flattened onto white, 16-bit scaled.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from furrsight.images.pixels import with_rgbx

pillow_heif.register_heif_opener()  # HEIC through Pillow; AVIF is Pillow's own
cv2.setNumThreads(1)  # ingest spreads files over processes; OpenCV's own threads would only contend

ANALYSIS_SIZE = 512  # longest side of the working image the analysis steps see
_SWAPS_SIDES = {5, 6, 7, 8}  # EXIF orientations that turn the image by 90 degrees


class Refused(Exception):
    """Ingest stops here: ``reason`` is a short code, ``message`` a sentence."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Header:
    image: Image.Image
    width: int  # upright (EXIF orientation applied)
    height: int
    frames: int


@dataclass(frozen=True)
class Decoded:
    array: np.ndarray  # upright RGB, longest side at most ANALYSIS_SIZE (height x width x 3, uint8; or x 4: RGBX)
    thumb: bytes  # JPEG


def open_header(data: bytes, max_pixels: int) -> Header:
    """Read the header only; refuse bombs and unreadable files before decoding any pixel."""
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise Refused("decompression_bomb", f"the image declares too many pixels to decode safely: {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise Refused("not_an_image", f"the image header cannot be read: {exc}") from exc
    except Exception as exc:  # a plugin choking on a hostile header
        raise Refused("not_an_image", f"the image header cannot be read: {exc!r}") from exc
    width, height = img.size
    if width * height > max_pixels:
        raise Refused(
            "decompression_bomb", f"it declares {width}×{height} pixels, over the limit of {max_pixels} pixels"
        )
    if _orientation(img) in _SWAPS_SIDES:
        width, height = height, width
    return Header(img, width, height, getattr(img, "n_frames", 1))


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(0x0112) or 1)
    except Exception:  # malformed EXIF: treat the image as upright
        return 1


def _upright(img: Image.Image) -> Image.Image:
    """EXIF orientation applied; a malformed EXIF block leaves the image as stored. An upright
    image is returned as is (``exif_transpose`` would copy it: 0.5 ms at 1024x768)."""
    if _orientation(img) == 1:
        return img
    try:
        return ImageOps.exif_transpose(img) or img
    except Exception:
        return img


def upright_rgb(img: Image.Image) -> Image.Image:
    """The image as the derived images see it: EXIF orientation applied, 8-bit RGB; an upright
    RGB image is returned as is (``exif_transpose`` and ``convert`` each copy it: 0.15 ms at
    800x600)."""
    return _to_rgb(_upright(img))


def draft(img: Image.Image, side: int) -> None:
    """Ask the JPEG decoder for the smallest 1/2, 1/4 or 1/8 scale whose longest side is still at
    least ``side``. The request is the target's own shape: asking (512, 512) of a 1024x768 photo
    gets no reduction at all (its height is under 512 at half scale)."""
    if img.format != "JPEG":
        return
    width, height = img.size
    scale = side / max(width, height)
    if scale < 1:
        img.draft("RGB", (max(1, int(width * scale)), max(1, int(height * scale))))


def _to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB from any mode: 16-bit and float scaled, alpha and palettes flattened on white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB") if img.mode != "RGB" else img


def shrink(img: Image.Image | np.ndarray, side: int, padded: bool = False) -> np.ndarray:
    """An RGB image with its longest side at most ``side``, as an array: an integer box reduction
    while the factor is 2 or more, then one bilinear step (OpenCV), whose factor is then under 2,
    where bilinear does not alias. Measured on an 800x600 draft: 0.6 ms, against 5.9 ms for
    Pillow's bicubic ``thumbnail`` that ingest used before (most of its time). An RGBX array
    (a 4th padding byte, as Pillow keeps RGB) is resized as it is and the padding dropped after;
    with ``padded`` a resized Pillow image is returned as RGBX (its padding not dropped yet)."""
    height, width = (img.size[1], img.size[0]) if isinstance(img, Image.Image) else img.shape[:2]
    scale = side / max(width, height)
    if scale >= 1:
        return _unpadded(np.asarray(img))
    factor = int(1 / scale)
    if factor >= 2:
        if isinstance(img, Image.Image):
            img = img.reduce(factor)
        else:
            img = cv2.resize(img, (width // factor, height // factor), interpolation=cv2.INTER_AREA)
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    if isinstance(img, Image.Image) and img.size != target:  # resized in place, not copied first
        resized = with_rgbx(img, lambda rgbx: cv2.resize(rgbx, target, interpolation=cv2.INTER_LINEAR))
        if resized is not None:
            return resized if padded else _unpadded(resized)
    array = np.asarray(img)
    if (array.shape[1], array.shape[0]) != target:
        array = cv2.resize(array, target, interpolation=cv2.INTER_LINEAR)  # each channel alike
    return _unpadded(array)


def _unpadded(array: np.ndarray) -> np.ndarray:
    """RGB from RGBX (OpenCV resizes four channels faster than three, so the padding goes last)."""
    return cv2.cvtColor(array, cv2.COLOR_RGBA2RGB) if array.ndim == 3 and array.shape[2] == 4 else array


def thumbnail_jpeg(img: Image.Image | np.ndarray, thumb_size: int) -> bytes:
    """The gallery's thumbnail: JPEG, quality 85. Measured at 320 px: 0.2 ms to encode, where
    WebP took 1.3 ms at its fastest method and 2.2 ms at the default (a sixth of ingest's CPU
    per image), for files about 1.6 times larger (15-25 KiB)."""
    out = io.BytesIO()
    Image.fromarray(shrink(img, thumb_size)).save(out, "JPEG", quality=85)
    return out.getvalue()


def decode(header: Header, thumb_size: int) -> Decoded:
    """Decode the first frame once (reduced scale for JPEG) into the working image and thumbnail."""
    img = header.image
    try:
        draft(img, max(ANALYSIS_SIZE, thumb_size))  # decode at 1/2..1/8 scale: much faster
        img.seek(0)  # GIF and other animations: the first frame
        img.load()
        upright = upright_rgb(img)
    except Image.DecompressionBombError as exc:
        raise Refused("decompression_bomb", f"too many pixels to decode safely: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        text = str(exc)
        if "truncated" in text or "broken data stream" in text or isinstance(exc, EOFError):
            raise Refused("truncated", f"the file ends before the image does: {text}") from exc
        raise Refused("corrupt", f"the image data cannot be decoded: {text}") from exc
    except Exception as exc:  # any other decoder failure is this file's problem, not the job's
        raise Refused("corrupt", f"the image data cannot be decoded: {exc!r}") from exc
    array = shrink(upright, ANALYSIS_SIZE, padded=True)  # RGBX when resized: grey and thumbnail take it as is
    thumb = thumbnail_jpeg(array if thumb_size <= ANALYSIS_SIZE else upright, thumb_size)
    return Decoded(array, thumb)


def decode_full(data: bytes) -> Image.Image:
    """The whole image, upright, 8-bit RGB (for cutting collage panels at full resolution)."""
    with Image.open(io.BytesIO(data)) as img:
        img.seek(0)
        img.load()
        return _to_rgb(_upright(img))


def encode_panel(img: Image.Image) -> bytes:
    """A collage panel as a file of its own: high-quality JPEG."""
    out = io.BytesIO()
    img.save(out, "JPEG", quality=95)
    return out.getvalue()
