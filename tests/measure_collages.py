"""Collage detection rates and cost on generated and real photos (not a test: prints figures).

    PYTHONPATH=$PWD python -m tests.measure_collages [--old] [--many]

--old also times the detector of the last commit before captions (git show of that file);
--many also tries 1000 more ordinary photos."""

from __future__ import annotations

import random
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageOps

from furrsight.images import captions, collage
from tests import collages, corpus

WORDS = [("BEFORE", "AFTER"), ("AFTER", "BEFORE"), ("Vorher", "Nachher"), ("Antes", "Después"), ("avant", "après"),
         ("PRE", "POST"), ("Nachher", "Vorher"), ("After", "Before")]  # fmt: skip


def _rate(name: str, images: list[Image.Image], ok: Callable[[collage.Cut | None], bool], rgb: bool = True) -> None:
    good = 0
    for img in images:
        g, colour = collages.work_image(img)
        good += ok(collage.detect(g, colour if rgb else None))
    print(f"{name}: {good} of {len(images)}")


def _ms(detect: Callable[..., object], images: list[Image.Image], rgb: bool) -> float:
    work = [collages.work_image(img) for img in images]
    start = time.perf_counter()
    for g, colour in work:
        detect(g, colour) if rgb else detect(g)
    return (time.perf_counter() - start) / len(work) * 1000


def main() -> None:
    print(f"OCR: {captions.status()[1]}")
    ordinary = [collages.ordinary(s) for s in range(200)]
    plain = [Image.open(__import__("io").BytesIO(corpus.ordinary(s))).convert("RGB") for s in range(200, 300)]
    real = [Image.open(p).convert("RGB") for p in collages.DARKNET_PHOTOS]
    real += [ImageOps.mirror(i) for i in real] + [i.rotate(90, expand=True) for i in real]
    none = lambda c: c is None  # noqa: E731
    _rate("ordinary photos (generated + real crops) not split", ordinary, none)
    _rate("tests.corpus.ordinary not split", plain, none)
    if "--many" in sys.argv:  # 1000 more: generated and real crops, some mirrored or turned
        many = [collages.ordinary(s) for s in range(1000, 2000)]
        many = [ImageOps.mirror(i) if s % 4 == 0 else i.rotate(90, expand=True) if s % 8 == 1 else i
                for s, i in enumerate(many, 1000)]  # fmt: skip
        _rate("1000 more ordinary photos not split", many, none)
    _rate("darknet photos (as is, mirrored, turned) not split", real, none)
    walls = [p for p in sorted(Path("/usr/share/backgrounds").glob("**/*")) if p.suffix in (".jpg", ".png", ".webp")]
    if walls:  # Debian wallpaper packages, when installed (not a dependency): graphics and a few photos
        variants = []
        for path in walls:
            img, rng = Image.open(path).convert("RGB"), random.Random(str(path))
            w, h = img.size
            variants += [img, ImageOps.mirror(img), img.rotate(90, expand=True)]
            for _ in range(3):
                cw, ch = int(w * rng.uniform(0.4, 0.9)), int(h * rng.uniform(0.4, 0.9))
                x, y = rng.randrange(w - cw), rng.randrange(h - ch)
                variants.append(img.crop((x, y, x + cw, y + ch)))
        _rate(f"{len(walls)} wallpapers (as is, mirrored, turned, 3 crops) not split", variants, none)
    side = [collages.no_divider(s) for s in range(50)]
    stacked = [collages.no_divider(s, stacked=True) for s in range(50)]
    _rate("side by side, no divider: found vertical", side, lambda c: c is not None and c.direction == "vertical")
    _rate("stacked, no divider: found horizontal", stacked, lambda c: c is not None and c.direction == "horizontal")
    capt = [collages.captioned(s, WORDS[s % len(WORDS)], stacked=s % 3 == 1, where=("top", "bottom")[s % 2],
                        style=("outline", "box")[s % 5 == 0]) for s in range(48)]  # fmt: skip
    want = [("after" if WORDS[s % len(WORDS)][0].lower() in ("after", "nachher") else "before") for s in range(48)]
    good = found = both = 0
    for img, first in zip(capt, want, strict=True):
        g, colour = collages.work_image(img)
        cut = collage.detect(g, colour)
        found += cut is not None
        good += cut is not None and cut.first == first and cut.order_confidence > collage.FIRST_IS_BEFORE_CONFIDENCE
        both += cut is not None and cut.first == first and cut.order_confidence == collage.READ_ORDER_CONFIDENCE
    print(f"captioned collages: found {found} of {len(capt)}, order read right {good} of {len(capt)} "
          f"(both captions read: {both})")  # fmt: skip
    wrong = sum(1 for img, first in zip(capt, want, strict=True)
                if (c := collage.detect(*collages.work_image(img))) is not None and c.first != first)  # fmt: skip
    print(f"captioned collages with the order wrong: {wrong} of {len(capt)}")
    calls = 0
    ocr = captions._ocr

    def counted(*args: object) -> list[captions.Word]:
        nonlocal calls
        calls += 1
        return ocr(*args)  # type: ignore[arg-type]

    captions._ocr = counted  # type: ignore[assignment]
    ran = 0
    for img in ordinary:
        before = calls
        collage.detect(*collages.work_image(img))
        ran += calls > before
    captions._ocr = ocr  # type: ignore[assignment]
    print(f"ordinary photos on which OCR ran: {ran} of {len(ordinary)} ({calls} OCR calls)")
    methods: dict[str, int] = {}
    for img in capt:
        c = collage.detect(*collages.work_image(img))
        methods[c.method if c else "none"] = methods.get(c.method if c else "none", 0) + 1
    print(f"captioned collages by method: {methods}")
    print(f"ms per detect, 200 ordinary photos: no OCR {_ms(collage.detect, ordinary, False):.2f}, "
          f"with rgb {_ms(collage.detect, ordinary, True):.2f}")  # fmt: skip
    print(f"ms per detect, 48 captioned collages: no OCR {_ms(collage.detect, capt, False):.2f}, "
          f"with rgb {_ms(collage.detect, capt, True):.2f}")  # fmt: skip
    print(f"ms per detect, 50 collages without captions: no OCR {_ms(collage.detect, side, False):.2f}, "
          f"with rgb {_ms(collage.detect, side, True):.2f}")  # fmt: skip
    if "--old" in sys.argv:
        source = subprocess.run(["git", "show", "bc4a175:furrsight/images/collage.py"], capture_output=True,
                                text=True, check=True).stdout  # fmt: skip
        old = types.ModuleType("old_collage")
        sys.modules["old_collage"] = old
        exec(compile(source, "old_collage", "exec"), old.__dict__)
        print(f"ms per detect before (bc4a175), 200 ordinary photos: {_ms(old.detect, ordinary, False):.2f}")
        old_found = sum(old.detect(collages.work_image(i)[0]) is not None for i in side + stacked)
        print(f"before (bc4a175): no-divider collages found {old_found} of {len(side) + len(stacked)}")


if __name__ == "__main__":
    main()
