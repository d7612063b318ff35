"""Images that tests generate: distinct content on demand, no files checked in."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw


def photo(seed: int, size: tuple[int, int] = (320, 240), fmt: str = "JPEG") -> bytes:
    """A distinct, photo-like image: a gradient with random shapes."""
    rng = random.Random(seed)
    img = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = rng.randrange(size[0]), rng.randrange(size[1])
        x1, y1 = x0 + rng.randrange(10, size[0] // 2), y0 + rng.randrange(10, size[1] // 2)
        draw.ellipse((x0, y0, x1, y1), fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    out = io.BytesIO()
    img.save(out, fmt, quality=90) if fmt == "JPEG" else img.save(out, fmt)
    return out.getvalue()
