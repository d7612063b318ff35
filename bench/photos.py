"""Photo-like JPEGs for the benchmarks: smooth colour fields plus sensor-like noise, so that they
compress like camera photos (a 1024x768 one is about 210 KiB, a 1600x1200 one about 500 KiB)
rather than like flat drawings. Cached on disk between runs."""

from __future__ import annotations

import io
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image


def make_photo(args: tuple[Path, int, tuple[int, int]]) -> None:
    path, seed, (width, height) = args
    if path.exists():
        return
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)  # smooth colour fields, like a photo
    img = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
    noise = rng.normal(0, 9, (height, width, 3))
    pixels = np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=88)
    path.write_bytes(out.getvalue())


def make_photos(folder: Path, count: int, size: tuple[int, int] = (1024, 768)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i:06d}.jpg" for i in range(count)]
    with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(make_photo, [(p, 1_000_000 + i, size) for i, p in enumerate(paths)], chunksize=32))
    return paths
