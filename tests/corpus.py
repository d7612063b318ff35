"""The hostile and odd files ingest must handle, generated on demand (nothing checked in)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from tests.images import photo


def _save(img: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def truncated_jpeg(seed: int) -> bytes:
    data = photo(seed, size=(640, 480))
    return data[: len(data) // 2]


def text_named_jpg() -> bytes:
    return b"Dear groomer, this is a text file that pretends to be a photo.\n" * 20


def svg() -> bytes:
    return b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="640" height="480"></svg>'


def png_bomb(side: int = 50_000) -> bytes:
    """A valid PNG header declaring side x side RGB pixels, followed by a tiny stream."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def cmyk_jpeg(seed: int) -> bytes:
    return _save(_open(photo(seed, size=(480, 360))).convert("CMYK"), "JPEG", quality=90)


def png16(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 65535, 480 * 360).reshape(360, 480)
    arr = (base + rng.integers(0, 4000, size=(360, 480))).clip(0, 65535).astype(np.uint16)
    return _save(Image.fromarray(arr), "PNG")  # mode I;16


def exif_rotated_jpeg(seed: int) -> bytes:
    """Stored 480x360 with orientation 6 (turn 90° clockwise to view): upright it is 360x480."""
    img = _open(photo(seed, size=(480, 360)))
    ImageDraw.Draw(img).rectangle((0, 0, 60, 60), fill=(255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6
    return _save(img, "JPEG", quality=90, exif=exif.tobytes())


def animated_gif(seed: int) -> bytes:
    frames = [_open(photo(seed + i, size=(320, 240))).convert("P") for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def alpha_png(seed: int) -> bytes:
    img = _open(photo(seed, size=(400, 300))).convert("RGBA")
    img.putalpha(Image.linear_gradient("L").resize((400, 300)))
    return _save(img, "PNG")


def palette_png(seed: int) -> bytes:
    return _save(_open(photo(seed, size=(400, 300))).convert("P", palette=Image.Palette.ADAPTIVE), "PNG")


def webp(seed: int) -> bytes:
    return _save(_open(photo(seed, size=(400, 300))), "WEBP", quality=85)


def avif(seed: int) -> bytes:
    return _save(_open(photo(seed, size=(400, 300))), "AVIF", quality=70)


def heic(seed: int) -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    return _save(_open(photo(seed, size=(400, 300))), "HEIF", quality=70)


def broken_exif_jpeg(seed: int) -> bytes:
    """A JPEG whose EXIF block lies about its own length: readers must not trip on it."""
    data = photo(seed, size=(400, 300))
    app1 = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff\x01\x12\x00\x03" + b"\x00" * 8
    return data[:2] + b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1 + data[2:]


def near_duplicate(original: bytes) -> bytes:
    """The same picture re-encoded smaller and at a lower quality: other bytes, same look."""
    img = _open(original)
    return _save(img.resize((img.width * 3 // 4, img.height * 3 // 4)), "JPEG", quality=60)


def blurred(seed: int) -> bytes:
    return _save(_open(photo(seed, size=(640, 480))).filter(ImageFilter.GaussianBlur(8)), "JPEG", quality=90)


def side_by_side(seed: int, divider: int = 8) -> bytes:
    """Two panels next to each other with a white divider: the commonest collage."""
    left, right = _open(photo(seed, size=(480, 480))), _open(photo(seed + 1, size=(480, 480)))
    img = Image.new("RGB", (960 + divider, 480), (255, 255, 255))
    img.paste(left, (0, 0))
    img.paste(right, (480 + divider, 0))
    return _save(img, "JPEG", quality=92)


def stacked(seed: int) -> bytes:
    """The same scene twice, one above the other, the lower one brighter: no divider, a seam."""
    top = _open(photo(seed, size=(600, 400)))
    bottom = ImageEnhance.Brightness(top).enhance(1.4)
    img = Image.new("RGB", (600, 800))
    img.paste(top, (0, 0))
    img.paste(bottom, (0, 400))
    return _save(img, "JPEG", quality=92)


def ordinary(seed: int) -> bytes:
    return photo(seed, size=(800, 600))
