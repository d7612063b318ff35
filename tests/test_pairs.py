"""Pairs: the database's guarantees, the API (versions, history), mining on real photos.

This module works in its own data directory (its own database), so mining's counts are exact."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from furrsight.db.engine import connect
from furrsight.images.ingest import ingest
from furrsight.images.schemas import Provenance
from furrsight.inference.install import ModelStore
from furrsight.pairs import analysis, mining, model_labels
from furrsight.pairs.offline import combine_breeds
from furrsight.pairs.tables import Pair
from furrsight.pairs.verdict import LabelScore
from furrsight.search import facts as search_facts
from furrsight.search import service as search
from furrsight.settings import Settings
from furrsight.store import FileStore
from tests import collages, corpus
from tests.conftest import app_client, own_data, user_with_token
from tests.sites import run_inline
from tests.tiny_models import make_tiny_gguf, make_tiny_mmproj

DARKNET = Path("/usr/share/darknet/data")


@pytest.fixture(scope="module")
async def own(migrated: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Settings]:
    """This module's own data directory and database (the session's is restored after)."""
    async with own_data(tmp_path_factory.mktemp("pairs-data"), migrated) as settings:
        yield settings


@pytest.fixture(scope="module")
async def admin(own: Settings) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    _, token = await user_with_token("admin", "pairs-admin")
    async with app_client(own, token) as client:
        yield client


async def _image(settings: Settings, data: bytes, **source: object) -> int:
    result = await ingest(FileStore(settings.data_path), settings, data, Provenance(kind="scrape", **source))  # type: ignore[arg-type]
    assert result.image_id is not None, result
    return result.image_id


def _jpeg(seed: int) -> bytes:
    return corpus.ordinary(seed)


async def test_the_database_refuses_mirrored_repeated_and_one_image_pairs(own: Settings) -> None:
    a, b = await _image(own, _jpeg(7001)), await _image(own, _jpeg(7002))
    conn = connect(own.db_path)
    try:
        conn.execute("INSERT INTO pairs (before, after, origin) VALUES (?, ?, 'manual')", (a, b))
        for before, after in ((b, a), (a, b)):
            with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
                conn.execute("INSERT INTO pairs (before, after, origin) VALUES (?, ?, 'manual')", (before, after))
        with pytest.raises(sqlite3.IntegrityError, match="two different images"):
            conn.execute("INSERT INTO pairs (before, after, origin) VALUES (?, ?, 'manual')", (a, a))
        with pytest.raises(sqlite3.IntegrityError, match="two different images"):
            conn.execute("UPDATE pairs SET after = before WHERE before = ?", (a,))
        assert conn.execute("SELECT count(*) FROM pairs WHERE before IN (?, ?)", (a, b)).fetchone() == (1,)
    finally:
        conn.close()


async def test_manual_pairs_versions_conflicts_and_history(own: Settings, admin: AsyncTestClient) -> None:
    a, b = await _image(own, _jpeg(7011), license="CC-BY-4.0", author="Ann"), await _image(own, _jpeg(7012))
    made = await admin.post("/api/v1/pairs", json={"before_id": a, "after_id": b})
    assert made.status_code == 201, made.text
    pair = made.json()
    assert (pair["origin"], pair["status"], pair["version"], pair["before_id"], pair["after_id"]) == (
        "manual",
        "candidate",
        1,
        a,
        b,
    )
    assert pair["before"]["thumb_url"] == f"/api/v1/images/{a}/thumb" and pair["before"]["license"] == "CC-BY-4.0"
    again = await admin.post("/api/v1/pairs", json={"before_id": b, "after_id": a})
    assert again.status_code == 409 and again.json()["error"] == f"these two images are pair {pair['id']} already"
    assert (await admin.post("/api/v1/pairs", json={"before_id": a, "after_id": a})).status_code == 400
    assert (await admin.post("/api/v1/pairs", json={"before_id": a, "after_id": 10**12})).status_code == 400
    change = {
        "version": 1,
        "swap": True,
        "breed": "Zwergschnauzer",
        "services": ["bath", "nail trim"],
        "caption": "Max after his bath",
    }
    changed = await admin.patch(f"/api/v1/pairs/{pair['id']}", json=change)
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["version"], body["before_id"], body["after_id"]) == (2, b, a)
    assert (body["breed"], body["breed_source"], body["breed_confidence"]) == ("Miniature Schnauzer", "human", 1.0)
    assert [(s["name"], s["source"]) for s in body["services"]] == [
        ("Bath and blow-dry", "human"),
        ("Nail trim", "human"),
    ]
    assert (body["order_source"], body["caption_source"]) == ("human", "human")
    stale = await admin.patch(f"/api/v1/pairs/{pair['id']}", json={"version": 1, "status": "accepted"})
    assert stale.status_code == 409
    conflict = stale.json()
    assert conflict["current"]["version"] == 2 and "now version 2, by pairs-admin" in conflict["error"]
    assert {c["field"] for c in conflict["changes"]} == {"order", "breed", "services", "caption"}
    unknown = await admin.patch(f"/api/v1/pairs/{pair['id']}", json={"version": 2, "breed": "a cat"})
    assert unknown.status_code == 400 and "no breed matches 'a cat'" in unknown.json()["error"]
    no_reason = await admin.patch(f"/api/v1/pairs/{pair['id']}", json={"version": 2, "status": "rejected"})
    assert no_reason.status_code == 400 and "needs a reason" in no_reason.json()["error"]
    rejected = await admin.patch(
        f"/api/v1/pairs/{pair['id']}", json={"version": 2, "status": "rejected", "reject_reason": "poor_quality"}
    )
    assert (rejected.json()["status"], rejected.json()["reject_reason"], rejected.json()["reviewed_by"]) == (
        "rejected",
        "poor_quality",
        "pairs-admin",
    )
    history = (await admin.get(f"/api/v1/pairs/{pair['id']}/history")).json()
    assert [(h["field"], h["user"], h["via"]) for h in history] == [
        ("created", "pairs-admin", "api"),
        ("order", "pairs-admin", "api"),
        ("breed", "pairs-admin", "api"),
        ("services", "pairs-admin", "api"),
        ("caption", "pairs-admin", "api"),
        ("status", "pairs-admin", "api"),
        ("reject_reason", "pairs-admin", "api"),
    ]
    assert history[1]["old"] == [a, b] and history[1]["new"] == [b, a]
    assert (history[5]["old"], history[5]["new"]) == ("candidate", "rejected")
    assert (await admin.get(f"/api/v1/pairs/{2**53 - 1}")).status_code == 404  # the largest id (web.api.MAX_INT)
    assert (await admin.get(f"/api/v1/pairs/{2**53}")).status_code == 400


@pytest.mark.skipif(not DARKNET.is_dir(), reason="needs Debian's darknet photos (make installs them)")
async def test_mining_collages_and_posts_of_real_photos(own: Settings, admin: AsyncTestClient) -> None:
    collage = await ingest(
        FileStore(own.data_path),
        own,
        collages.save(collages.captioned(0)),
        Provenance(kind="upload", file_name="collage.jpg"),
    )
    assert len(collage.children) == 2, collage
    first, second = (collages.save(p) for p in collages.panels(7))  # two photos of the dog, framed differently
    post = {"group_key": "post:dog", "page_url": "https://groomer.example/max", "author": "Ann"}
    a = await _image(own, first, url="https://groomer.example/1.jpg", **post)
    b = await _image(own, second, url="https://groomer.example/2.jpg", **post)
    repost = await _image(own, corpus.near_duplicate(first), url="https://groomer.example/1b.jpg", **post)
    eagle = await _image(own, (DARKNET / "eagle.jpg").read_bytes(), url="https://groomer.example/3.jpg", **post)
    drawings = [await _image(own, _jpeg(7021)), await _image(own, _jpeg(7022))]  # no post, no collage: not mined
    embedded = await run_inline(own, {"model": own.search.model}, search.run_embed, kind=search.EMBED_KIND)
    assert embedded.status == "succeeded", embedded

    job = await run_inline(own, {}, mining.run_mine, kind=mining.MINE_KIND)
    assert job.status == "succeeded", job
    assert job.counters == {
        "new": 2,
        "found:collage": 1,
        "found:post": 1,
        "skipped:near_duplicate": 1,
        "skipped:not_a_dog": 1,
    }
    pairs = {(p["before"], p["after"]): p for p in await Pair.select().where(Pair.origin != "manual")}
    panel_before, panel_after = collage.children
    assert set(pairs) == {(panel_before, panel_after), (a, b)}
    assert pairs[(a, b)]["origin"] == "post" and pairs[(a, b)]["group_key"] == "post:dog"
    assert pairs[(panel_before, panel_after)]["origin"] == "collage"
    assert pairs[(panel_before, panel_after)]["order_confidence"] == 0.95  # both captions read
    assert repost not in {i for k in pairs for i in k} and eagle not in {i for k in pairs for i in k}

    again = await run_inline(own, {}, mining.run_mine, kind=mining.MINE_KIND)
    assert again.status == "succeeded" and again.counters == {"new": 0}  # nothing new since the first run
    full = await run_inline(own, {"full": True}, mining.run_mine, kind=mining.MINE_KIND)
    assert full.counters["new"] == 0 and full.counters["existing"] == 2

    listed = (await admin.get("/api/v1/pairs", params={"origin": "post"})).json()
    assert [p["id"] for p in listed["items"]] == [pairs[(a, b)]["id"]]
    assert listed["counts"]["candidate"] == 1
    page = await admin.get("/pairs")
    assert page.status_code == 200 and f"/pairs/{pairs[(a, b)]['id']}" in page.text
    detail = await admin.get(f"/pairs/{pairs[(a, b)]['id']}")
    assert detail.status_code == 200 and "groomer.example/max" in detail.text
    assert (await admin.get("/pairs/new", params={"image": a})).status_code == 200

    made = await admin.post("/api/v1/pairs", json={"before_id": drawings[0], "after_id": drawings[1]})
    assert made.status_code == 201, made.text
    ids = [pairs[(a, b)]["id"], pairs[(panel_before, panel_after)]["id"], made.json()["id"]]  # this test's own
    params = {"status": ["candidate"], "ids": ids}
    analysed = await run_inline(own, params, analysis.run_analyse, kind=analysis.ANALYSE_KIND)
    assert analysed.status == "succeeded", analysed
    # the post and the collage pair are judged the same dog; the pair of two drawings is no dog
    assert analysed.counters == {"analysed": 2, "rejected:not_a_dog": 1}
    post_pair = (await admin.get(f"/api/v1/pairs/{pairs[(a, b)]['id']}")).json()
    tag = await search_facts.breed_facts([a, b])
    assert (post_pair["status"], post_pair["model"], post_pair["version"]) == ("analysed", "efficientnet-lite0", 2)
    # the offline rule (tested on its own in test_pair_analysis) over the two images' breed tags
    breed, both = combine_breeds(
        [LabelScore(tag[a].breed, tag[a].confidence)], [LabelScore(tag[b].breed, tag[b].confidence)]
    )
    assert (post_pair["breed"], post_pair["breed_confidence"]) == (breed, both) and post_pair["breed_source"] == "model"
    assert post_pair["same_dog"] is True
    assert (post_pair["order_source"], post_pair["order_confidence"]) == ("model", 0.55)
    assert post_pair["confidence"] == min(both, 0.55, post_pair["same_dog_confidence"])
    log = (own.data_path / "logs" / "jobs" / f"{analysed.id}.log").read_text()
    assert "no vision-language model installed" in log
    assert "labels not given: before, breed, caption, is_grooming_before_after, services" in log
    again = await run_inline(own, {"ids": ids}, analysis.run_analyse, kind=analysis.ANALYSE_KIND)
    assert again.counters == {}  # none is a candidate any more: re-analysis only when asked


async def test_analysis_with_a_vision_language_model(own: Settings, admin: AsyncTestClient, tmp_path: Path) -> None:
    folder = tmp_path / "tiny-vlm"
    folder.mkdir()
    make_tiny_gguf(folder / "tiny-vlm.gguf", n_ctx=4096)
    make_tiny_mmproj(folder / "mmproj-tiny.gguf")
    (folder / "manifest.toml").write_text(
        'name = "tiny-vlm"\ntask = "vlm"\nruntime = "gguf"\nlicense = "Apache-2.0"\nsource = "tests"\nlarge = true\n'
        '[[files]]\npath = "tiny-vlm.gguf"\n[[files]]\npath = "mmproj-tiny.gguf"\nrole = "mmproj"\n'
    )
    models = ModelStore(own.data_path / "models")
    models.import_files("tiny-vlm", folder)
    try:
        a, b = await _image(own, _jpeg(7031)), await _image(own, _jpeg(7032))
        pair = (await admin.post("/api/v1/pairs", json={"before_id": a, "after_id": b})).json()
        job = await run_inline(
            own, {"ids": [pair["id"]], "status": ["candidate"]}, analysis.run_analyse, kind=analysis.ANALYSE_KIND
        )
        assert job.status == "succeeded", job
        assert job.counters == {"rejected:not_a_dog": 1}  # a random tiny model, greedy: it sees no dog
        after = (await admin.get(f"/api/v1/pairs/{pair['id']}")).json()
        assert (after["status"], after["reject_reason"], after["model"], after["prompt_version"]) == (
            "rejected",
            "not_a_dog",
            "tiny-vlm",
            "analyse-v1",
        )
        assert after["reason"].startswith("the model sees no dog") and after["reviewed_by"] is None
        assert after["analysis"]["model"] == "tiny-vlm" and "is_dog" in after["analysis"]["raw"]
        log = (own.data_path / "logs" / "jobs" / f"{job.id}.log").read_text()
        assert "vision-language model tiny-vlm, prompt analyse-v1" in log
        history = (await admin.get(f"/api/v1/pairs/{pair['id']}/history")).json()
        assert {h["via"] for h in history[1:]} == {"model"} and all(h["user"] is None for h in history[1:])
        undone = await admin.patch(
            f"/api/v1/pairs/{pair['id']}", json={"version": after["version"], "status": "accepted"}
        )
        assert undone.json()["status"] == "accepted"  # a person overrules the model
        c, d = await _image(own, _jpeg(7033)), await _image(own, _jpeg(7034))
        other = (await admin.post("/api/v1/pairs", json={"before_id": c, "after_id": d})).json()
        await model_labels.record_failure(other["id"], "no usable answer in two attempts: cut short", "{", "tiny-vlm")
        failed = (await admin.get(f"/api/v1/pairs/{other['id']}")).json()
        assert (failed["status"], failed["reason"], failed["version"]) == (
            "analysis_failed",
            "no usable answer in two attempts: cut short",
            2,
        )
    finally:
        models.remove("tiny-vlm")  # the module's other tests analyse without a VLM
