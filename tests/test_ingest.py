"""Issue 4: every image through one safe, deduplicating path (the service called directly)."""

from __future__ import annotations

import hashlib
import io

import msgspec
import pytest
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

from furrsight.images.ingest import ingest
from furrsight.images.schemas import Provenance
from furrsight.images.tables import Image, Source
from furrsight.settings import Settings
from furrsight.store import FileStore
from tests import corpus
from tests.images import photo


def _up(name: str) -> Provenance:
    return Provenance(kind="upload", file_name=name)


async def _row(sha: str) -> dict | None:  # type: ignore[type-arg]
    return await Image.select().output(load_json=True).where(Image.sha256 == sha).first()


def _tiny() -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (40, 30), (200, 10, 10)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "make", "reason", "says"),
    [
        ("empty.jpg", lambda: b"", "empty", "the file is empty"),
        ("cut.jpg", lambda: corpus.truncated_jpeg(4001), "truncated", "the file ends before the image does"),
        ("letter.jpg", corpus.text_named_jpg, "not_an_image", "the content is not an image of an accepted type"),
        ("drawing.svg", corpus.svg, "unsupported_type", "SVG files are not accepted"),
        ("bomb.png", corpus.png_bomb, "decompression_bomb", "the image declares too many pixels to decode"),
        ("icon.png", _tiny, "too_small", "40×30 pixels: the shorter side is under the minimum"),
    ],
)
async def test_hostile_files_are_refused_with_a_reason_and_nothing_is_stored(
    migrated: Settings, name: str, make: object, reason: str, says: str
) -> None:
    data = make()  # type: ignore[operator]
    store = FileStore(migrated.data_path)
    result = await ingest(store, migrated, data, _up(name))
    assert (result.outcome, result.reason) == ("refused", reason), result
    assert says in (result.message or ""), result.message
    sha = hashlib.sha256(data).hexdigest()
    assert await _row(sha) is None
    assert not store.exists(sha) and not store.thumb_path(sha).exists()


async def test_declared_size_over_the_pixel_limit_is_a_bomb_before_decoding(migrated: Settings) -> None:
    strict = msgspec.structs.replace(migrated, ingest=msgspec.structs.replace(migrated.ingest, max_pixels=100_000))
    result = await ingest(FileStore(migrated.data_path), strict, photo(4002, size=(640, 480)), _up("big.jpg"))
    assert result.reason == "decompression_bomb" and "640×480" in (result.message or "")


async def test_file_over_the_byte_limit_is_too_large(migrated: Settings) -> None:
    strict = msgspec.structs.replace(migrated, ingest=msgspec.structs.replace(migrated.ingest, max_file_bytes=1000))
    result = await ingest(FileStore(migrated.data_path), strict, photo(4003), _up("heavy.jpg"))
    assert result.reason == "too_large"


@pytest.mark.parametrize(
    ("make", "fmt"),
    [
        (lambda: corpus.cmyk_jpeg(4010), "JPEG"),
        (lambda: corpus.png16(4011), "PNG"),
        (lambda: corpus.alpha_png(4012), "PNG"),
        (lambda: corpus.palette_png(4013), "PNG"),
        (lambda: corpus.animated_gif(4014), "GIF"),
        (lambda: corpus.webp(4015), "WEBP"),
        (lambda: corpus.avif(4016), "AVIF"),
        (lambda: corpus.heic(4017), "HEIF"),
        (lambda: corpus.broken_exif_jpeg(4018), "JPEG"),
    ],
)
async def test_odd_images_are_normalised_and_originals_kept_byte_for_byte(
    migrated: Settings, make: object, fmt: str
) -> None:
    data = make()  # type: ignore[operator]
    store = FileStore(migrated.data_path)
    result = await ingest(store, migrated, data, _up(f"odd.{fmt.lower()}"))
    assert result.outcome == "new" and result.state == "processed", result
    row = await _row(hashlib.sha256(data).hexdigest())
    assert row and row["format"] == fmt and row["phash"] and len(row["phash"]) == 16
    assert (await store.read(row["sha256"])) == data
    thumb = PILImage.open(store.thumb_path(row["sha256"]))
    assert thumb.format == "JPEG" and thumb.mode == "RGB"


async def test_exif_orientation_is_applied_to_derived_images_only(migrated: Settings) -> None:
    data = corpus.exif_rotated_jpeg(4020)
    store = FileStore(migrated.data_path)
    result = await ingest(store, migrated, data, _up("rotated.jpg"))
    row = await _row(hashlib.sha256(data).hexdigest())
    assert result.outcome == "new" and row
    assert (row["width"], row["height"]) == (360, 480)  # upright
    thumb = PILImage.open(store.thumb_path(row["sha256"])).convert("RGB")
    assert thumb.height > thumb.width
    r, g, b = thumb.getpixel((thumb.width - 5, 5))  # the red corner turned to the top right
    assert r > 180 and g < 80 and b < 80
    assert (await store.read(row["sha256"])) == data


async def test_the_same_bytes_are_stored_once_and_each_sighting_is_a_source(migrated: Settings) -> None:
    data = photo(4030, size=(640, 480))
    store = FileStore(migrated.data_path)
    first = await ingest(store, migrated, data, _up("one.jpg"))
    url = "https://example.org/dog.jpg"
    again = await ingest(store, migrated, data, Provenance(kind="scrape", url=url, plugin="example", query="poodle"))
    assert first.outcome == "new" and again.outcome == "duplicate" and again.image_id == first.image_id
    sources = await Source.select().where(Source.image == first.image_id).order_by(Source.id)
    assert [(s["kind"], s["file_name"], s["url"], s["plugin"]) for s in sources] == [
        ("upload", "one.jpg", None, None),
        ("scrape", None, url, "example"),
    ]


async def test_a_reencoded_copy_joins_the_originals_near_duplicate_group(migrated: Settings) -> None:
    original = photo(4040, size=(800, 600))
    store = FileStore(migrated.data_path)
    a = await ingest(store, migrated, original, _up("orig.jpg"))
    b = await ingest(store, migrated, corpus.near_duplicate(original), _up("copy.jpg"))
    other = await ingest(store, migrated, photo(4041, size=(800, 600)), _up("other.jpg"))
    assert a.outcome == b.outcome == "new"
    assert b.near_dup_group == min(a.image_id or 0, b.image_id or 0)
    rows = await Image.select(Image.id, Image.near_dup_group).where(Image.id.is_in([a.image_id, b.image_id]))
    assert {r["near_dup_group"] for r in rows} == {b.near_dup_group}
    assert other.near_dup_group != b.near_dup_group


def _text_card() -> bytes:
    img = PILImage.new("RGB", (800, 600), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=28)
    for i in range(14):
        draw.text((20, 20 + i * 40), f"BEFORE and AFTER: book your groom today {i}", fill="black", font=font)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("make", "flags"),
    [
        (lambda: corpus.blurred(4050), ["blurry"]),
        (lambda: photo(4051, size=(300, 220)), ["small"]),
        (lambda: photo(4052, size=(1600, 300)), ["small", "extreme_aspect"]),  # 300 px is small too
        (_text_card, ["mostly_text"]),
    ],
)
async def test_quality_flags(migrated: Settings, make: object, flags: list[str]) -> None:
    result = await ingest(FileStore(migrated.data_path), migrated, make(), _up(f"{flags[-1]}.img"))  # type: ignore[operator]
    assert result.flags == flags, result


async def test_an_ordinary_photo_has_no_flags_and_is_not_split(migrated: Settings) -> None:
    result = await ingest(FileStore(migrated.data_path), migrated, corpus.ordinary(4060), _up("ordinary.jpg"))
    assert result.outcome == "new" and result.flags == [] and result.children == []
    assert result.state == "processed"


@pytest.mark.parametrize(("make", "direction"), [(corpus.side_by_side, "vertical"), (corpus.stacked, "horizontal")])
async def test_a_collage_becomes_two_panels_through_the_same_path(
    migrated: Settings, make: object, direction: str
) -> None:
    data = make(4070 if direction == "vertical" else 4071)  # type: ignore[operator]
    store = FileStore(migrated.data_path)
    result = await ingest(store, migrated, data, _up("collage.jpg"))
    assert result.outcome == "new" and len(result.children) == 2 and result.state == "processed", result
    parent = await _row(hashlib.sha256(data).hexdigest())
    assert parent
    kids = await Image.select().output(load_json=True).where(Image.parent_id == parent["id"]).order_by(Image.id)
    assert [k["panel"] for k in kids] == ["before", "after"]
    first, second = (k["crop"] for k in kids)
    if direction == "vertical":  # side by side, split at the divider
        assert first[:2] == [0, 0] and first[3] == parent["height"] and 470 <= first[2] <= 490
        assert second[2] == parent["width"] and second[0] >= first[2]
    else:
        assert first[3] == second[1] == 400 and first[2] == parent["width"]
    for kid in kids:
        assert kid["state"] == "processed" and kid["phash"] and 0 < kid["panel_confidence"] <= 1
        assert store.exists(kid["sha256"]) and store.thumb_path(kid["sha256"]).exists()
        box = kid["crop"]
        assert (kid["width"], kid["height"]) == (box[2] - box[0], box[3] - box[1])
        kinds = await Source.select(Source.kind).where(Source.image == kid["id"])
        assert [s["kind"] for s in kinds] == ["split"]
