"""Before/after collages the collage tests generate: captions, no divider, real photos' crops."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

from tests.images import photo

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")  # Debian fonts-dejavu-core
DARKNET = Path("/usr/share/darknet/data")  # Debian darknet: real photos, none a collage
DARKNET_PHOTOS = sorted(DARKNET.glob("*.jpg")) if DARKNET.is_dir() else []


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def work_image(img: Image.Image) -> tuple[np.ndarray, Image.Image]:
    """What ingest hands collage.detect: the float32 grey and the RGB image, longest side 512."""
    rgb = img.convert("RGB")
    rgb.thumbnail((512, 512), Image.Resampling.BILINEAR)
    return np.asarray(rgb.convert("L"), dtype=np.float32), rgb


def decode(data: bytes) -> tuple[np.ndarray, Image.Image]:
    return work_image(_open(data))


def _source(seed: int, size: tuple[int, int]) -> Image.Image:
    """A real photo when the Debian darknet package is there, else a generated one."""
    if DARKNET_PHOTOS:
        img = Image.open(DARKNET_PHOTOS[seed % len(DARKNET_PHOTOS)]).convert("RGB")
        return img.resize(size, Image.Resampling.BILINEAR)
    return _open(photo(seed, size=size))


def _recoloured(img: Image.Image, rng: random.Random) -> Image.Image:
    img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.85, 1.2))
    img = ImageEnhance.Color(img).enhance(rng.uniform(0.6, 1.5))
    return ImageEnhance.Contrast(img).enhance(rng.uniform(0.85, 1.2))


def panels(seed: int, side: int = 400) -> tuple[Image.Image, Image.Image]:
    """Two panels of one scene: two different crops of it, the second recoloured (a groomed dog
    photographed again: the same subject, framed and lit a little differently)."""
    rng = random.Random(seed)
    big = _source(seed, (side * 3 // 2, side * 3 // 2))
    boxes = []
    for _ in range(2):
        x, y = rng.randrange(0, side // 2), rng.randrange(0, side // 2)
        boxes.append((x, y, x + side, y + side))
    first = big.crop(boxes[0])
    second = _recoloured(big.crop(boxes[1]), rng)
    return first, second


def joined(first: Image.Image, second: Image.Image, stacked: bool = False, divider: int = 0) -> Image.Image:
    w, h = first.size
    size = (w, 2 * h + divider) if stacked else (2 * w + divider, h)
    img = Image.new("RGB", size, (255, 255, 255))
    img.paste(first, (0, 0))
    img.paste(second, (0, h + divider) if stacked else (w + divider, 0))
    return img


def caption(img: Image.Image, word: str, where: str = "top", style: str = "outline", size: int = 0) -> Image.Image:
    """A caption on a panel: white with a black outline (the commonest), or black on a white box."""
    img = img.copy()
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(FONT), size or max(18, img.width // 9))
    left, top, right, bottom = draw.textbbox((0, 0), word, font=font)
    tw, th = right - left, bottom - top
    x = (img.width - tw) // 2
    y = img.height // 20 if where == "top" else img.height - th - img.height // 12
    if style == "box":
        draw.rectangle((x - 10, y - 6, x + tw + 10, y + th + 12), fill=(255, 255, 255))
        draw.text((x - left, y - top), word, font=font, fill=(0, 0, 0))
    else:
        draw.text((x - left, y - top), word, font=font, fill=(255, 255, 255), stroke_width=3, stroke_fill=(0, 0, 0))
    return img


def captioned(
    seed: int,
    words: tuple[str, str] = ("BEFORE", "AFTER"),
    stacked: bool = False,
    where: str = "top",
    style: str = "outline",
    size: int = 0,
) -> Image.Image:
    """Two panels without divider, each with its caption: words[0] on the left (or top) one."""
    first, second = panels(seed)
    one, two = (caption(p, word, where, style, size) for p, word in zip((first, second), words, strict=True))
    return joined(one, two, stacked)


def no_divider(seed: int, stacked: bool = False) -> Image.Image:
    """Two crops/recolourings of one photo side by side (or stacked), no divider, no caption."""
    return joined(*panels(seed), stacked=stacked)


def ordinary(seed: int) -> Image.Image:
    """An ordinary photo (not a collage): the generated one, or a crop of a real photo."""
    if seed % 2 or not DARKNET_PHOTOS:
        return _open(photo(seed, size=(800, 600)))
    rng = random.Random(seed)
    real = Image.open(DARKNET_PHOTOS[seed % len(DARKNET_PHOTOS)]).convert("RGB")
    w, h = real.size
    cw, ch = int(w * rng.uniform(0.6, 1.0)), int(h * rng.uniform(0.6, 1.0))
    x, y = rng.randrange(0, w - cw + 1), rng.randrange(0, h - ch + 1)
    return real.crop((x, y, x + cw, y + ch))


def save(img: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def stripes(seed: int) -> Image.Image:
    """A striped pattern (planks, a fence, corduroy): many lines like a seam, none a cut."""
    rng = np.random.default_rng(seed)
    w, h = 900, 600
    period = int(rng.integers(10, 30))
    x = np.arange(w)
    base = 150 + 50 * np.sign(np.sin(2 * np.pi * x / period)) + rng.normal(0, 4, size=(h, w))
    vignette = 1 - 0.5 * ((x - w / 2) / (w / 2)) ** 2
    grey = np.clip(base * vignette, 0, 255).astype(np.uint8)
    img = Image.fromarray(grey).convert("RGB")
    return img.rotate(90, expand=True) if seed % 2 else img
