"""Collage detection on generated collages and real photos: captions read, joins found, and
ordinary photos left whole (collage.detect is pure: no database, no worker)."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image, ImageOps

from furrsight.doctor import check_ocr
from furrsight.images import captions, collage
from furrsight.settings import Settings
from tests import collages, corpus

# `make test` installs Tesseract and darknet: under CI (CI=true) these tests run, and fail if missing
IN_CI = bool(os.environ.get("CI"))
needs_ocr = pytest.mark.skipif(not captions.available() and not IN_CI, reason=f"no OCR: {captions.status()[1]}")
needs_darknet = pytest.mark.skipif(
    not collages.DARKNET_PHOTOS and not IN_CI, reason="Debian package darknet (real photos) missing"
)


def detect(img: Image.Image, ocr: bool = True) -> collage.Cut | None:
    g, rgb = collages.work_image(img)
    return collage.detect(g, rgb if ocr else None)


def test_the_font_for_captions_is_there() -> None:
    assert collages.FONT.is_file(), "install the Debian package fonts-dejavu-core"


@pytest.mark.parametrize(
    ("text", "kind"),
    [("BEFORE", "before"), ("After:", "after"), ("Después", "after"), ("despues", "after"), ("NACHHER", "after"),
     ("vorher", "before"), ("Avant", "before"), ("après", "after"), ("PRE", "before"), ("post", "after"),
     ("BEFOR", "before"), ("AFTFR", "after"), ("Beforee", "before"), ("preview", None), ("poster", None),
     ("dog", None), ("", None)],
)  # fmt: skip
def test_caption_words_in_five_languages_and_an_ocr_slip(text: str, kind: str | None) -> None:
    assert captions.classify(text) == kind


@needs_ocr
@pytest.mark.parametrize(("words", "first"), [(("AFTER", "BEFORE"), "after"), (("BEFORE", "AFTER"), "before")])
def test_captions_side_by_side_set_the_order_both_ways(words: tuple[str, str], first: str) -> None:
    cut = detect(collages.captioned(3, words))
    assert cut is not None and cut.direction == "vertical" and 0.45 <= cut.start <= 0.55
    assert cut.first == first and cut.order_confidence == collage.READ_ORDER_CONFIDENCE


@needs_ocr
@pytest.mark.parametrize(
    ("words", "style", "first"), [(("Vorher", "Nachher"), "box", "before"), (("AFTER", "BEFORE"), "outline", "after")]
)
def test_stacked_captions_set_the_order(words: tuple[str, str], style: str, first: str) -> None:
    cut = detect(collages.captioned(7, words, stacked=True, where="bottom", style=style))
    assert cut is not None and cut.direction == "horizontal"
    assert cut.first == first and cut.order_confidence > collage.FIRST_IS_BEFORE_CONFIDENCE


@needs_ocr
@needs_darknet
def test_captions_make_the_cut_where_the_layout_alone_is_too_weak() -> None:
    img = collages.captioned(44, ("avant", "après"))
    g, rgb = collages.work_image(img)
    assert collage.layout(g) is None  # the join is there but weak: the picture alone is not enough
    cut = collage.detect(g, rgb)
    assert cut is not None and cut.method == "captions" and cut.direction == "vertical"
    assert cut.first == "before" and cut.order_confidence == collage.READ_ORDER_CONFIDENCE
    assert cut.confidence >= Settings().ingest.collage_min_confidence


def test_side_by_side_and_stacked_without_divider_are_found() -> None:
    side = [detect(collages.no_divider(s), ocr=False) for s in range(10)]
    stacked = [detect(collages.no_divider(s, stacked=True), ocr=False) for s in range(10)]
    assert sum(c is not None and c.direction == "vertical" and 0.4 < c.start < 0.6 for c in side) >= 9
    assert sum(c is not None and c.direction == "horizontal" and 0.4 < c.start < 0.6 for c in stacked) >= 9


def test_the_ingest_corpus_collages_are_still_found_with_ocr() -> None:
    for data, direction in [(corpus.side_by_side(70), "vertical"), (corpus.stacked(71), "horizontal")]:
        cut = detect(Image.open(io.BytesIO(data)))
        assert cut is not None and cut.direction == direction


def test_ordinary_photos_are_not_split() -> None:
    photos = [collages.ordinary(s) for s in range(60)] + [Image.open(io.BytesIO(corpus.ordinary(s))) for s in range(40)]
    split = [i for i, img in enumerate(photos) if detect(img) is not None]
    assert split == []


def test_striped_patterns_are_not_split() -> None:
    assert [s for s in range(6) if detect(collages.stripes(s)) is not None] == []


@needs_darknet
def test_real_photos_are_not_split() -> None:
    for path in collages.DARKNET_PHOTOS:
        img = Image.open(path).convert("RGB")
        for variant in (img, ImageOps.mirror(img), img.rotate(90, expand=True)):
            assert detect(variant) is None, path.name


def test_without_ocr_the_layout_still_splits_with_the_default_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(captions, "_status", (False, "tesserocr is not installed (test)"))
    cut = detect(collages.captioned(3, ("AFTER", "BEFORE")))
    assert cut is not None and cut.direction == "vertical"
    assert cut.first == "before" and cut.order_confidence == collage.FIRST_IS_BEFORE_CONFIDENCE
    assert detect(collages.no_divider(1)) is not None
    monkeypatch.undo()
    unread = detect(collages.captioned(3, ("AFTER", "BEFORE")), ocr=False)  # rgb=None: no OCR either
    assert unread is not None and unread.first == "before" and unread.method != "captions"
    monkeypatch.setattr(captions, "_status", (False, "tesserocr is not installed (test)"))
    check = check_ocr(Settings())
    assert not check.ok and not check.required and "layout only" in check.detail and "tesseract-ocr" in check.fix


def test_boxes_of_a_read_cut_are_unchanged() -> None:
    cut = collage.Cut("vertical", 0.5, 0.5, 0.8, "captions", first="after", order_confidence=0.95)
    assert collage.boxes(cut, 800, 400) == [[0, 0, 400, 400], [400, 0, 800, 400]]


@needs_ocr
def test_doctor_says_captions_are_read() -> None:
    check = check_ocr(Settings())
    assert check.ok and "Tesseract" in check.detail
