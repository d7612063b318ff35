"""Dataset versions and exports, read back with the real readers (``datasets``, ``webdataset``).

This module works in its own data directory (its own database) with its own worker process on its
own broker namespace, so its versions hold exactly the pairs it made."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import random
import tarfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from litestar.testing import AsyncTestClient
from PIL import Image, ImageOps

from furrsight.exports import service as exports
from furrsight.exports.pictures import strip_jpeg
from furrsight.exports.splits import Member, components, leak_check, phash_neighbours
from furrsight.exports.stratify import deviation, stratify
from furrsight.images.ingest import ingest
from furrsight.images.schemas import Provenance
from furrsight.pairs import service as pairs
from furrsight.pairs.schemas import PairPatch
from furrsight.search import service as search
from furrsight.settings import Settings
from furrsight.store import FileStore
from furrsight.taxonomy import service as taxonomy
from tests import corpus
from tests.conftest import (
    WorkerProcess,
    app_client,
    beating_workers,
    own_data,
    user_with_token,
    wait_for_job,
    worker_env,
)
from tests.images import photo
from tests.sites import run_inline

NAMESPACE = "exportstest"


@pytest.fixture(scope="module")
async def own(migrated: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Settings]:
    async with own_data(tmp_path_factory.mktemp("exports-data"), migrated, broker_namespace=NAMESPACE) as settings:
        yield settings


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh cache for ``datasets`` (it caches local folders by name)."""
    folder = tmp_path_factory.mktemp("hf-home")
    old = os.environ.get("HF_HOME")
    os.environ["HF_HOME"] = str(folder)
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    yield folder
    if old is None:
        os.environ.pop("HF_HOME", None)
    else:
        os.environ["HF_HOME"] = old


def gps_jpeg(seed: int) -> bytes:
    """A photo whose EXIF says where it was taken (and that it is turned: orientation 6)."""
    img = Image.open(io.BytesIO(photo(seed, size=(480, 360))))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 0.0)}
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


async def image(settings: Settings, data: bytes, **source: Any) -> int:
    source.setdefault("license", "CC BY 2.0")
    source.setdefault("author", "Ann Groomer")
    source.setdefault("url", f"https://photos.example/{hashlib.sha256(data).hexdigest()[:12]}.jpg")
    result = await ingest(FileStore(settings.data_path), settings, data, Provenance(kind="scrape", **source))
    assert result.image_id is not None, result
    return result.image_id


async def accepted(before: int, after: int, breed: str = "Poodle", services: tuple[str, ...] = ("bath",)) -> int:
    made = await pairs.create_pair(before, after, "post", "exports-test", "api")
    change = PairPatch(version=1, status="accepted", breed=breed, services=list(services), caption="after the groom")
    await pairs.change_pair(made.id, change, "exports-test", "review")
    return made.id


def seed(n: int) -> bytes:
    return photo(n, size=(480, 360))


class World(msgspec.Struct, kw_only=True):
    shared: list[int]  # two pairs with the same photo
    neardup: list[int]  # two pairs whose photos are near-duplicates
    post: list[int]  # two pairs from one post
    plain: list[int]
    gps_pair: int
    gps_image: int
    png_pair: int
    unknown_licence: int
    non_commercial: int


@pytest.fixture(scope="module")
async def world(own: Settings) -> World:
    a = await image(own, seed(8001), title="Max, before")
    shared = [await accepted(a, await image(own, seed(8002))), await accepted(a, await image(own, seed(8003)))]
    d = seed(8004)
    neardup = [
        await accepted(await image(own, d), await image(own, seed(8005))),
        await accepted(await image(own, corpus.near_duplicate(d)), await image(own, seed(8006)), breed="Maltese"),
    ]
    post = {"group_key": "post:kennel-42", "page_url": "https://kennel.example/42"}
    one_post = [
        await accepted(await image(own, seed(8007), **post), await image(own, seed(8008), **post)),
        await accepted(await image(own, seed(8009), **post), await image(own, seed(8010), **post), breed="Shih Tzu"),
    ]
    breeds = ("Poodle", "Shih Tzu", "Maltese", "Bichon Frise")
    plain = [
        await accepted(
            await image(own, seed(8100 + 2 * i), license="cc-by-sa-4.0", author=f"Groomer {i}"),
            await image(own, seed(8101 + 2 * i), license="CC0"),
            breed=breeds[i % 4],
            services=("bath", "nail trim") if i % 2 else ("full haircut",),
        )
        for i in range(16)
    ]
    gps_image = await image(own, gps_jpeg(8200), title="Taken at the salon")
    gps_pair = await accepted(gps_image, await image(own, seed(8201)))
    png = await image(own, photo(8202, size=(420, 300), fmt="PNG"), license="Public domain")
    png_pair = await accepted(png, await image(own, seed(8203)))
    unknown = await accepted(await image(own, seed(8300), license="All rights reserved"), await image(own, seed(8301)))
    nc = await accepted(await image(own, seed(8302), license="CC BY-NC 2.0"), await image(own, seed(8303)))
    await pairs.create_pair(
        await image(own, seed(8400)), await image(own, seed(8401)), "post", None, "mining"
    )  # a candidate
    embedded = await run_inline(own, {"model": own.search.model}, search.run_embed, kind=search.EMBED_KIND)
    assert embedded.status == "succeeded", embedded
    return World(
        shared=shared, neardup=neardup, post=one_post, plain=plain, gps_pair=gps_pair, gps_image=gps_image,
        png_pair=png_pair, unknown_licence=unknown, non_commercial=nc,
    )  # fmt: skip


async def make_version(settings: Settings, name: str, **request: Any) -> exports.VersionOut:
    job = await run_inline(settings, {"request": {"name": name, **request}, "creator": "tests"}, exports.run_version,
                           kind=exports.VERSION_KIND)  # fmt: skip
    assert job.status == "succeeded", job
    return await exports.get_version(job.counters["version_id"])


async def test_a_version_freezes_accepted_pairs_leaves_out_licences_and_never_splits_a_leak(
    own: Settings, world: World
) -> None:
    version = await make_version(own, "v1", notes="first")
    items = {i["pair_id"]: i for i in await exports.all_items(version.id)}
    expected = {*world.shared, *world.neardup, *world.post, *world.plain, world.gps_pair, world.png_pair}
    assert set(items) == expected
    assert version.excluded == [
        {"pair_id": world.unknown_licence, "reason": "license:unknown"},
        {"pair_id": world.non_commercial, "reason": "license:cc-by-nc-2.0"},
    ]
    assert version.counts["pairs"] == len(expected)
    assert sum(version.counts[s] for s in ("train", "validation", "test")) == len(expected)
    for crafted in (world.shared, world.neardup, world.post):
        assert len({items[p]["component"] for p in crafted}) == 1, crafted
        assert len({items[p]["split"] for p in crafted}) == 1, crafted
    assert version.report["leaks"]["images_in_two_splits"] == 0
    assert version.report["leaks"]["phash_cross_split"] == 0
    assert version.report["leaks"]["embedding_cross_split"] == 0
    assert version.report["leaks"]["images_with_embedding"] == version.counts["images"] == 47
    assert items[world.plain[1]]["labels"]["services"] == ["Bath and blow-dry", "Nail trim"]
    assert items[world.plain[1]]["before"]["license"] == "cc-by-sa-4.0"
    assert items[world.plain[1]]["before"]["attribution"].startswith(
        "Untitled image by Groomer 1 (https://photos.example/"
    )
    assert version.class_names == [b.name for b in await taxonomy.list_entries("breeds")]
    from furrsight.exports.versions import content_hash

    stored = await exports.all_items(version.id)
    assert content_hash(
        {"items": stored, "class_names": version.class_names, "selection": version.selection,
         "settings": version.settings, "excluded": version.excluded}
    ) == version.content_hash  # fmt: skip


async def export_inline(settings: Settings, version_id: int, fmt: str) -> exports.ExportOut:
    from furrsight.exports.tables import DatasetExport

    row = (await DatasetExport.insert(DatasetExport(version=version_id, format=fmt)).returning(DatasetExport.id))[0]
    job = await run_inline(settings, {"export_id": row["id"]}, exports.run_export, kind=exports.EXPORT_KIND)
    assert job.status == "succeeded", job
    return await exports.get_export(row["id"])


def folder_of(settings: Settings, export: exports.ExportOut) -> Path:
    from furrsight.exports.exporter import final_path

    return final_path(settings, export.version_id, export.id, export.format)


def stored_pixels(settings: Settings, item_image: dict[str, Any]) -> np.ndarray:
    data = FileStore(settings.data_path).file_path(item_image["sha256"]).read_bytes()
    return np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))


def same_picture(settings: Settings, item_image: dict[str, Any], loaded: Image.Image) -> None:
    """Byte-identical pixels for a JPEG kept as stored; within JPEG noise for a re-encoded one."""
    want, got = stored_pixels(settings, item_image), np.asarray(loaded.convert("RGB"))
    assert want.shape == got.shape
    stored = Image.open(FileStore(settings.data_path).file_path(item_image["sha256"]))
    if item_image["format"] == "JPEG" and stored.getexif().get(0x0112, 1) == 1:
        assert (want == got).all()
    else:
        assert np.abs(want.astype(int) - got.astype(int)).mean() < 3


async def test_hf_parquet_loads_with_datasets_images_and_class_labels(
    own: Settings, world: World, hf_home: Path
) -> None:
    import datasets

    version = (await exports.list_versions()).items[-1]
    items = {i["pair_id"]: i for i in await exports.all_items(version.id)}
    export = await export_inline(own, version.id, "hf-parquet")
    folder = folder_of(own, export)
    assert sorted(p.name for p in (folder / "data").iterdir()) == [
        "test-00000-of-00001.parquet", "train-00000-of-00001.parquet", "validation-00000-of-00001.parquet"
    ]  # fmt: skip
    loaded = datasets.load_dataset(str(folder))
    assert {s: len(loaded[s]) for s in loaded} == {s: version.counts[s] for s in ("train", "validation", "test")}
    features = loaded["train"].features
    assert isinstance(features["before"], datasets.Image) and isinstance(features["after"], datasets.Image)
    assert features["breed"].names == [b.name for b in await taxonomy.list_entries("breeds")]
    for split in loaded:
        for row in loaded[split]:
            item = items[row["pair_id"]]
            assert item["split"] == split
            assert features["breed"].int2str(row["breed"]) == item["labels"]["breed"]
            assert row["services"] == item["labels"]["services"]
            assert row["before_license"] == item["before"]["license"]
            assert row["after_attribution"] == item["after"]["attribution"]
            same_picture(own, item["before"], row["before"])
            same_picture(own, item["after"], row["after"])
    card = (folder / "README.md").read_text()
    assert 'license: ["cc-by-2.0", "cc-by-sa-4.0", "cc0-1.0", "other"]' in card
    assert 'license_name: "Public Domain"' in card
    attribution = (folder / "ATTRIBUTION").read_text()
    assert '"Taken at the salon" by Ann Groomer (https://photos.example/' in attribution
    assert export.report["leaks_exported"] == {
        "images_in_two_splits": 0, "phash_cross_split": 0, "images_checked": version.counts["images"],
        "images_measured": 2,  # re-encoded (the turned GPS photo, the PNG): the others are the version's hashes
    }  # fmt: skip
    single = datasets.load_dataset("parquet", data_files=str(folder / "data" / "train-*.parquet"))["train"]
    assert isinstance(single.features["before"], datasets.Image)  # the Parquet metadata alone types it


async def test_a_version_that_lets_unknown_licences_in_says_so_on_its_card(own: Settings, world: World) -> None:
    version = await make_version(
        own, "with-unknown", allow_unknown_license=True, licenses=["cc-by", "cc-by-sa", "cc0", "public-domain"]
    )
    assert world.unknown_licence in {i["pair_id"] for i in await exports.all_items(version.id)}
    assert version.excluded == [{"pair_id": world.non_commercial, "reason": "license:cc-by-nc-2.0"}]
    card = (folder_of(own, await export_inline(own, version.id, "webdataset")) / "README.md").read_text()
    assert 'license: ["cc-by-2.0", "cc-by-sa-4.0", "cc0-1.0", "other", "unknown"]' in card
    assert "**This version lets in images whose licence is unknown**" in card
    assert "non-commercial" not in card
    nc = await make_version(own, "with-nc", licenses=["cc-by", "cc-by-sa", "cc0", "public-domain", "cc-by-nc"])
    assert world.non_commercial in {i["pair_id"] for i in await exports.all_items(nc.id)}
    card = (folder_of(own, await export_inline(own, nc.id, "webdataset")) / "README.md").read_text()
    assert 'license: ["cc-by-2.0", "cc-by-nc-2.0", "cc-by-sa-4.0", "cc0-1.0", "other"]' in card
    assert "**Some images are under a non-commercial licence**" in card


async def test_imagefolder_loads_with_datasets_both_columns_as_images(
    own: Settings, world: World, hf_home: Path
) -> None:
    import datasets

    version = (await exports.list_versions()).items[-1]
    items = {i["pair_id"]: i for i in await exports.all_items(version.id)}
    folder = folder_of(own, await export_inline(own, version.id, "imagefolder"))
    loaded = datasets.load_dataset("imagefolder", data_dir=str(folder))
    assert {s: len(loaded[s]) for s in loaded} == {s: version.counts[s] for s in ("train", "validation", "test")}
    assert isinstance(loaded["train"].features["before"], datasets.Image)
    assert isinstance(loaded["train"].features["after"], datasets.Image)
    names = {b.name for b in await taxonomy.list_entries("breeds")}
    for split in loaded:
        for row in loaded[split]:
            item = items[row["pair_id"]]
            assert row["breed"] == item["labels"]["breed"] and row["breed"] in names
            assert row["before_page_url"] == (item["before"]["page_url"] or "")
            same_picture(own, item["before"], row["before"])
            same_picture(own, item["after"], row["after"])
    assert (folder / "ATTRIBUTION").exists() and (folder / "README.md").exists()
    as_folder = datasets.load_dataset(str(folder))  # the card's configs: no builder name needed
    assert {s: len(as_folder[s]) for s in as_folder} == {s: len(loaded[s]) for s in loaded}
    assert isinstance(as_folder["train"].features["after"], datasets.Image)


async def test_webdataset_shards_decode_with_webdataset_and_carry_no_location(own: Settings, world: World) -> None:
    import webdataset as wds

    small = msgspec.structs.replace(own, exports=msgspec.structs.replace(own.exports, webdataset_shard_pairs=5))
    version = (await exports.list_versions()).items[-1]
    items = {i["pair_id"]: i for i in await exports.all_items(version.id)}
    folder = folder_of(own, await export_inline(small, version.id, "webdataset"))
    train = sorted(p.name for p in folder.glob("train-*.tar"))
    assert train == [f"train-{i:06d}.tar" for i in range(-(-version.counts["train"] // 5))]
    seen = {}
    for split in ("train", "validation", "test"):
        shards = sorted(str(p) for p in folder.glob(f"{split}-*.tar"))
        for sample in wds.WebDataset(shards, shardshuffle=False, empty_check=False).decode("pil"):
            meta = sample["json"]
            item = items[meta["pair_id"]]
            assert sample["__key__"] == f"p{meta['pair_id']:08d}" and meta["split"] == item["split"] == split
            assert meta["breed"] == item["labels"]["breed"]
            same_picture(own, item["before"], sample["before.jpg"])
            same_picture(own, item["after"], sample["after.jpg"])
            seen[meta["pair_id"]] = sample
    assert set(seen) == set(items)
    raw = wds.WebDataset(sorted(str(p) for p in folder.glob("*.tar")), shardshuffle=False, empty_check=False)
    gps = next(s["before.jpg"] for s in raw if s["__key__"] == f"p{world.gps_pair:08d}")
    exif = Image.open(io.BytesIO(gps)).getexif()
    assert dict(exif) == {} and Image.open(io.BytesIO(gps)).size == (360, 480)  # upright, and no place
    kept = next(s["before.jpg"] for s in raw if s["__key__"] == f"p{world.plain[0]:08d}")
    assert kept == strip_jpeg(
        FileStore(own.data_path).file_path(items[world.plain[0]]["before"]["sha256"]).read_bytes()
    )
    assert items[world.gps_pair]["before"]["id"] == world.gps_image


async def test_an_export_is_byte_for_byte_reproducible_from_its_version(own: Settings, world: World) -> None:
    version = (await exports.list_versions()).items[-1]
    for fmt in ("hf-parquet", "webdataset"):
        first = folder_of(own, await export_inline(own, version.id, fmt))
        second = folder_of(own, await export_inline(own, version.id, fmt))
        files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
        assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files), fmt


async def test_resized_exports_keep_the_picture_within_the_longest_side(own: Settings, world: World) -> None:
    import webdataset as wds

    small = msgspec.structs.replace(own, exports=msgspec.structs.replace(own.exports, max_side=200))
    version = (await exports.list_versions()).items[-1]
    items = {i["pair_id"]: i for i in await exports.all_items(version.id)}
    export = await export_inline(small, version.id, "webdataset")
    assert export.report["leaks_exported"]["images_measured"] == version.counts["images"]  # all resized
    assert export.report["leaks_exported"]["phash_cross_split"] == 0
    folder = folder_of(own, export)
    for sample in wds.WebDataset(sorted(str(p) for p in folder.glob("*.tar")), shardshuffle=False).decode("pil"):
        item = items[sample["json"]["pair_id"]]
        picture = sample["before.jpg"]
        assert max(picture.size) == 200 and not picture.getexif()
        want = Image.fromarray(stored_pixels(own, item["before"]))
        want.thumbnail((200, 200), Image.Resampling.LANCZOS)
        assert want.size == picture.size
        assert np.abs(np.asarray(want, dtype=int) - np.asarray(picture.convert("RGB"), dtype=int)).mean() < 4


async def test_splits_stay_put_when_a_new_version_adds_pairs(own: Settings, world: World) -> None:
    from furrsight.exports.lineage import derive_splits

    first = (await exports.list_versions()).items[-1]
    added = [
        await accepted(await image(own, seed(8500 + 2 * i)), await image(own, seed(8501 + 2 * i))) for i in range(8)
    ]
    second = await make_version(own, "v2")
    assert second.selection["base"] == (await exports.list_versions()).items[1].id  # the newest before it
    before = {i["pair_id"]: i["split"] for i in await exports.all_items(first.id)}
    after = {i["pair_id"]: i["split"] for i in await exports.all_items(second.id)}
    assert {p: after[p] for p in before} == before
    assert second.report["anchors"] == {"kept": len(before), "moved_by_merge": 0, "new": len(added)}
    diff = await exports.diff(first.id, second.id)
    assert (diff.added, diff.removed, diff.relabelled, diff.moved) == (sorted(added), [], [], [])
    # a new pair that joins two components of different splits: the younger one moves, nothing else
    items = {i["pair_id"]: i for i in await exports.all_items(second.id)}
    sizes = Counter(i["component"] for i in items.values())
    alone = [p for p in world.plain if sizes[items[p]["component"]] == 1]
    older = next(p for p in alone if after[p] == "train")
    younger = next(p for p in alone if after[p] != "train" and p > older)
    joining = await accepted(items[older]["before"]["id"], items[younger]["after"]["id"], breed="Poodle")
    await pairs.change_pair(world.plain[0], PairPatch(version=2, breed="Maltese"), "exports-test", "review")
    third = await make_version(own, "v3")
    moved = await exports.diff(second.id, third.id)
    assert (moved.added, moved.moved) == ([joining], [younger])
    final = {i["pair_id"]: i["split"] for i in await exports.all_items(third.id)}
    assert final[younger] == final[joining] == "train"
    assert {p: s for p, s in final.items() if p not in (younger, joining)} == {
        p: s for p, s in after.items() if p != younger
    }
    assert third.report["anchors"] == {"kept": len(after) - 1, "moved_by_merge": 1, "new": 1}
    relabelled = moved.relabelled
    assert [(r.pair_id, r.fields["breed"]) for r in relabelled] == [(world.plain[0], ["Poodle", "Maltese"])]
    for version in (first, second, third):  # each version's splits follow from its record alone
        assert await derive_splits(version.id) == {
            i["pair_id"]: i["split"] for i in await exports.all_items(version.id)
        }, version.name
    fresh = await make_version(own, "fresh", base=0)
    assert fresh.selection["base"] == 0 and fresh.report["anchors"]["kept"] == 0


def test_three_uneven_breeds_are_stratified_exactly_where_components_allow() -> None:
    """Breed A 10 pairs, B 20, C 30 (one component of C holds 3 pairs, one mixes A and B):
    every breed lands in train, validation and test at exactly 80/10/10."""
    members, groups = [], []
    for pid in range(1, 61):
        breed = "A" if pid <= 10 else "B" if pid <= 30 else "C"
        keys = ["post:c3"] if pid in (31, 32, 33) else ["post:ab"] if pid in (1, 11) else []
        members.append(Member(pair_id=pid, images=(2 * pid, 2 * pid + 1), keys=keys, breed=breed))
    groups.append([500, 501])  # near-duplicate images of no pair here: they join nothing
    keys = components(members, groups)
    assert len(set(keys.values())) == 57 and keys[32] == keys[33] == "pair:31" and keys[11] == "pair:1"
    placed = stratify({m.pair_id: keys[m.pair_id] for m in members}, {m.pair_id: m.breed for m in members}, {},
                      "seed", (0.8, 0.1, 0.1))  # fmt: skip
    counts = Counter((placed[m.pair_id], m.breed) for m in members)
    assert counts == {
        ("train", "A"): 8, ("validation", "A"): 1, ("test", "A"): 1,
        ("train", "B"): 16, ("validation", "B"): 2, ("test", "B"): 2,
        ("train", "C"): 24, ("validation", "C"): 3, ("test", "C"): 3,
    }  # fmt: skip
    assert len({placed[31], placed[32], placed[33]}) == 1 and placed[1] == placed[11]
    report = deviation({m.pair_id: m.breed for m in members}, placed, (0.8, 0.1, 0.1))
    assert report["misplaced_share"] == 0.0 and report["sizes"] == {"train": 0.0, "validation": 0.0, "test": 0.0}
    again = stratify({m.pair_id: keys[m.pair_id] for m in members}, {m.pair_id: m.breed for m in members}, {},
                     "seed", (0.8, 0.1, 0.1))  # fmt: skip
    assert again == placed


def test_the_exported_leak_check_compares_only_re_measured_images_and_still_finds_their_leaks() -> None:
    rng = random.Random(3)
    hashes = {i: rng.getrandbits(64) for i in range(1, 301)}
    hashes[7] = hashes[3] ^ 0b101  # near-duplicates of 3 and 5
    hashes[9] = hashes[5] ^ 0b1
    text = {i: f"{h:016x}" for i, h in hashes.items()}
    where = {i: {"train"} for i in hashes} | {7: {"test"}}  # 3 and 7 across splits: a leak
    full = phash_neighbours(sorted(text), [text[i] for i in sorted(text)], 6)
    assert (3, 7) in full and (5, 9) in full
    for only in ({7}, {9}, set(), set(rng.sample(range(1, 301), 40)) | {3}):
        some = phash_neighbours(sorted(text), [text[i] for i in sorted(text)], 6, only)
        assert some == [p for p in full if p[0] in only or p[1] in only]
    assert leak_check(where, text, {}, 6, 0.95)["phash_cross_split"] == 1
    assert leak_check(where, text, {}, 6, 0.95, only={7})["phash_cross_split"] == 1
    assert leak_check(where, text, {}, 6, 0.95, only={9})["phash_cross_split"] == 0


def test_webdataset_shards_are_the_bytes_tarfile_writes(tmp_path: Path) -> None:
    from furrsight.exports.wds import _member, _Tar

    members = [("p1.before.jpg", os.urandom(90_001)), ("p1.after.jpg", os.urandom(512)), ("p1.json", b"{}"),
               ("p2.json", b"")]  # fmt: skip
    with tarfile.open(tmp_path / "by-tarfile.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            tar.addfile(_member(name, len(data), 1_700_000_000), io.BytesIO(data))
    ours = _Tar(tmp_path / "ours.tar")
    for name, data in members:
        ours.add(_member(name, len(data), 1_700_000_000), data)
    ours.close()
    assert (tmp_path / "ours.tar").read_bytes() == (tmp_path / "by-tarfile.tar").read_bytes()


def test_anchored_components_keep_their_split_and_a_merge_follows_its_larger_part() -> None:
    keys = {1: "pair:1", 2: "pair:1", 3: "pair:1", 4: "pair:1", 5: "pair:5", 6: "pair:6", 7: "pair:6"}
    anchors = {1: "test", 2: "test", 3: "train", 5: "validation", 6: "train"}  # 1-3 were two components
    breeds: dict[int, str | None] = dict.fromkeys(keys, "A")
    placed = stratify(keys, breeds, anchors, "seed", (0.8, 0.1, 0.1))
    assert placed == {1: "test", 2: "test", 3: "test", 4: "test", 5: "validation", 6: "train", 7: "train"}
    tie = stratify({1: "pair:1", 2: "pair:1"}, {1: "A", 2: "A"}, {1: "test", 2: "train"}, "s", (0.8, 0.1, 0.1))
    assert tie == {1: "test", 2: "test"}  # a tie goes to the oldest anchored pair's split


# -- through the API, with a real worker -------------------------------------------------------
@pytest.fixture(scope="module")
def own_env(own: Settings, settings_env: dict[str, str]) -> dict[str, str]:
    return worker_env({
        **settings_env, "FURRSIGHT_DATA": own.data_dir, "FURRSIGHT_BROKER_NAMESPACE": NAMESPACE,
        "FURRSIGHT_EXPORTS_MAX_SIDE": "512", "FURRSIGHT_EXPORTS_WEBDATASET_SHARD_PAIRS": "10",
    })  # fmt: skip


def start_worker(env: dict[str, str], log: Path) -> WorkerProcess:
    url = env["FURRSIGHT_BROKER_URL"]
    beating = beating_workers(url, NAMESPACE)
    proc = WorkerProcess(env, log=log).start()
    deadline = time.monotonic() + 60
    while not beating_workers(url, NAMESPACE) - beating:
        assert proc.proc is not None and proc.proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "the worker sent no heartbeat"
        time.sleep(0.1)
    return proc


@pytest.fixture(scope="module")
def own_worker(own_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """This module's worker: its data directory, its broker namespace (the session's worker
    never takes these jobs), resized images and small shards."""
    proc = start_worker(own_env, tmp_path_factory.mktemp("exports-worker") / "worker.log")
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
async def admin(own: Settings) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    _, token = await user_with_token("admin", "exports-admin")
    async with app_client(own, token) as client:
        yield client


async def finished(client: AsyncTestClient, response: Any) -> dict[str, Any]:  # type: ignore[type-arg]
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/api/v1/jobs/{response.json()['id']}"
    job = await wait_for_job(client, response.json()["id"], timeout=90)
    assert job["status"] == "succeeded", job
    return job


async def test_versions_and_exports_through_the_api_and_a_worker_streamed_as_one_archive(
    own: Settings,
    world: World,
    own_worker: WorkerProcess,
    admin: AsyncTestClient,  # type: ignore[type-arg]
) -> None:
    job = await finished(
        admin,
        await admin.post("/api/v1/datasets/versions", json={"name": "api-1", "notes": "by API", "breed": "Poodle"}),
    )
    version_id = job["counters"]["version_id"]
    listed = (await admin.get("/api/v1/datasets/versions")).json()["items"]
    assert {"id": version_id, "name": "api-1"}.items() <= listed[0].items()
    assert listed[0]["counts"]["pairs"] == len(await exports.all_items(version_id))
    assert {i["labels"]["breed"] for i in await exports.all_items(version_id)} == {"Poodle"}
    no_base = await admin.post("/api/v1/datasets/versions", json={"name": "api-x", "base": 999999})
    assert no_base.status_code == 400 and "there is no version 999999" in no_base.json()["error"]
    again = await admin.post("/api/v1/datasets/versions", json={"name": "api-1"})
    assert again.status_code == 409 and "exists already" in again.json()["error"]
    bad = await admin.post(f"/api/v1/datasets/versions/{version_id}/exports", json={"format": "zip"})
    assert bad.status_code == 400
    assert (
        await admin.post("/api/v1/datasets/versions/999999/exports", json={"format": "webdataset"})
    ).status_code == 404
    await finished(
        admin, await admin.post(f"/api/v1/datasets/versions/{version_id}/exports", json={"format": "hf-parquet"})
    )
    made = (await admin.get(f"/api/v1/datasets/versions/{version_id}/exports")).json()
    assert [(e["format"], e["status"]) for e in made] == [("hf-parquet", "ready")]
    response = await admin.get(made[0]["download_url"])
    assert response.status_code == 200 and response.headers["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(response.content)) as tar:
        names = sorted(n.split("/", 1)[1] for n in tar.getnames())
        folder = folder_of(own, await exports.get_export(made[0]["id"]))
        assert names == sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        assert (
            tar.extractfile(tar.getmember(f"{tar.getnames()[0].split('/')[0]}/ATTRIBUTION")).read()
            == (folder / "ATTRIBUTION").read_bytes()
        )  # type: ignore[union-attr]
    first = (await make_version(own, "api-base")).id
    diff = (await admin.get(f"/api/v1/datasets/versions/{first}/diff/{version_id}")).json()
    everything = {i["pair_id"] for i in await exports.all_items(first)}
    poodles = {i["pair_id"] for i in await exports.all_items(version_id)}
    assert diff["removed"] == sorted(everything - poodles) and world.neardup[1] in diff["removed"]
    assert diff["added"] == [] and diff["moved"] == []
    form = await admin.post("/datasets", data={"name": "form-1", "notes": "from the page"}, follow_redirects=False)
    assert form.status_code == 303 and form.headers["location"].startswith("/jobs/")
    made_by_form = await wait_for_job(admin, int(form.headers["location"].rsplit("/", 1)[1]), timeout=90)
    assert made_by_form["status"] == "succeeded", made_by_form
    bad_form = await admin.post("/datasets", data={"name": "../etc"}, follow_redirects=False)
    assert bad_form.status_code == 400
    for page in ("/datasets", f"/datasets/{version_id}", f"/datasets/{first}/diff/{version_id}"):
        assert (await admin.get(page)).status_code == 200, page
    assert "api-1" in (await admin.get("/datasets")).text


def test_furrsight_export_makes_a_version_and_writes_it_with_a_progress_bar(
    own: Settings, world: World, own_env: dict[str, str], own_worker: WorkerProcess
) -> None:
    import subprocess
    import sys

    run = [sys.executable, "-m", "furrsight", "export"]
    made = subprocess.run(
        [*run, "version", "cli-1", "--breed", "Maltese", "--format", "imagefolder"],
        env=own_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    assert "version" in made.stdout and "cli-1" in made.stdout and "imagefolder" in made.stdout
    folder = Path(made.stdout.strip().splitlines()[-1].split(": ", 1)[1])
    assert (folder / "train" / "metadata.jsonl").exists() or (folder / "test" / "metadata.jsonl").exists()
    listed = subprocess.run([*run, "list"], env=own_env, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "cli-1" in listed.stdout
    taken = subprocess.run([*run, "version", "cli-1"], env=own_env, capture_output=True, text=True, timeout=60)
    assert taken.returncode == 1 and "exists already" in taken.stderr


async def test_a_takedown_leaves_the_image_out_lists_what_holds_it_and_rebuilds(
    own: Settings,
    world: World,
    own_worker: WorkerProcess,
    admin: AsyncTestClient,  # type: ignore[type-arg]
) -> None:
    from furrsight.auth.audit import list_entries

    first = await make_version(own, "takedown-base")
    victim = next(i for i in await exports.all_items(first.id) if i["pair_id"] == world.shared[0])
    image_id = victim["before"]["id"]
    holding = [(await export_inline(own, first.id, "webdataset")).id]
    assert f'action="/images/{image_id}/takedown"' in (await admin.get(f"/images/{image_id}")).text
    assert (await admin.post(f"/api/v1/images/{image_id}/purge")).status_code == 400  # not taken down yet
    answer = await admin.post(f"/api/v1/images/{image_id}/takedown", json={"reason": "the owner asked"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert first.id in body["versions"] and holding[0] in body["exports"] and body["reason"] == "the owner asked"
    ready = [e.id for v in body["versions"] for e in await exports.list_exports(v) if e.status == "ready"]
    assert body["exports"] == sorted(ready)
    assert (await admin.post(f"/api/v1/images/{image_id}/takedown", json={"reason": ""})).status_code == 400
    job = await finished(admin, await admin.post("/api/v1/datasets/versions", json={"name": "after-takedown"}))
    later = await exports.get_version(job["counters"]["version_id"])
    await finished(admin, await admin.post(f"/api/v1/datasets/exports/{holding[0]}/rebuild"))
    gone = [
        {"pair_id": i["pair_id"], "reason": "taken_down"}
        for i in await exports.all_items(first.id)
        if image_id in (i["before"]["id"], i["after"]["id"])
    ]
    assert len(gone) == 2  # the shared photo: both its pairs
    assert [e for e in later.excluded if e["reason"] == "taken_down"] == gone
    assert not {g["pair_id"] for g in gone} & {i["pair_id"] for i in await exports.all_items(later.id)}
    rebuilt = await exports.get_export(holding[0])
    assert rebuilt.status == "ready" and rebuilt.left_out == gone
    assert victim["before"]["attribution"] not in (folder_of(own, rebuilt) / "ATTRIBUTION").read_text()
    assert holding[0] not in (await admin.post(f"/api/v1/images/{image_id}/purge")).json()["exports"]
    assert not FileStore(own.data_path).exists(victim["before"]["sha256"])
    split = await admin.post(f"/api/v1/images/{image_id}/split", json={"direction": "vertical"})
    assert split.status_code == 404 and "not in the store" in split.json()["error"]  # in words, not a 500
    actions = [e.action for e in (await list_entries(50)).items if e.target == f"image:{image_id}"]
    assert actions == ["image.purge", "image.takedown"]


async def test_an_export_killed_midway_leaves_no_complete_looking_file_and_its_redelivery_finishes(
    own: Settings,
    world: World,
    own_worker: WorkerProcess,
    admin: AsyncTestClient,  # type: ignore[type-arg]
) -> None:
    """SIGKILL the worker while it writes a heavy export (large photos resized by the worker's
    settings): only a hidden temp folder is left; the redelivered job writes the whole export."""
    photos = [await image(own, photo(9000 + i, size=(1600, 1200))) for i in range(24)]
    heavy = [
        await accepted(photos[i], photos[j], breed="Samoyed")
        for i in range(24)
        for j in range(i + 1, 24)
        if (i + j) % 3 == 0
    ][:150]
    version = await make_version(own, "heavy", breed="Samoyed")
    assert version.counts["pairs"] == len(heavy)
    response = await admin.post(f"/api/v1/datasets/versions/{version.id}/exports", json={"format": "webdataset"})
    assert response.status_code == 202
    export_id = (await exports.list_exports(version.id))[0].id
    root = own.data_path / "exports" / str(version.id)
    tmp, final = root / f".tmp-{export_id}-webdataset", root / f"{export_id}-webdataset"
    deadline = time.monotonic() + 60
    while not (tmp.is_dir() and any(tmp.glob("*.tar"))):
        assert not final.exists(), "the export finished before it could be killed"
        assert time.monotonic() < deadline, "the export never started"
        await asyncio.sleep(0.01)
    own_worker.kill()
    assert not final.exists() and tmp.is_dir()
    assert [p.name for p in root.iterdir() if not p.name.startswith(".")] == []  # nothing that looks complete
    assert (await exports.get_export(export_id)).status == "building"
    own_worker.start()  # the module's worker again (its other tests need it): it takes the redelivery
    done = await wait_for_job(admin, response.json()["id"], timeout=120)
    assert done["status"] == "succeeded" and done["attempts"] == 2, done
    assert not tmp.exists() and final.is_dir()
    import webdataset as wds

    keys = [s["__key__"] for s in wds.WebDataset(sorted(str(p) for p in final.glob("*.tar")), shardshuffle=False)]
    assert sorted(keys) == [f"p{p:08d}" for p in sorted(heavy)]
    assert (await exports.get_export(export_id)).status == "ready"
