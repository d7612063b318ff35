"""Issue 10, items 2 and 3: rows never outlive their image, image ids are never reused, and each
column has one owner (image state is the images feature's; search keeps what it embedded).

Every test here runs on a data directory of its module's own: they count and remove images."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from piccolo.apps.migrations.commands.base import BaseMigrationManager
from piccolo.apps.migrations.commands.forwards import run_forwards

from furrsight.db.engine import connect
from furrsight.db.setup import migrate, open_database
from furrsight.images.ingest import Ingestor, ingest
from furrsight.images.process import reprocess_image, unsplit
from furrsight.images.recorder import Recorder, Tx
from furrsight.images.sanity import deep_check
from furrsight.images.schemas import IngestResult, Provenance
from furrsight.images.tables import Image, Source
from furrsight.jobs.runner import JobContext
from furrsight.jobs.tables import Job
from furrsight.search import service as search
from furrsight.search import vectors
from furrsight.search.breeds import BreedResult
from furrsight.search.tables import BreedTag
from furrsight.search.tagging import put_tags
from furrsight.settings import Settings, load_settings
from furrsight.store import FileStore
from tests import corpus
from tests.conftest import own_data
from tests.images import photo

MODEL = "efficientnet-lite0"  # the bundled model: vectors and breed tags in one pass


@pytest.fixture(scope="module")
async def own(migrated: Settings, tmp_root: Path) -> AsyncIterator[Settings]:
    async with own_data(tmp_root / "integrity", migrated) as settings:
        yield settings


async def _in(settings: Settings, data: bytes, name: str) -> IngestResult:
    return await ingest(FileStore(settings.data_path), settings, data, Provenance(kind="upload", file_name=name))


async def _embed(settings: Settings) -> dict[str, int]:
    """The embedding job's handler, run here on this module's store; returns its counters."""
    job = Job(kind=search.EMBED_KIND, params={"model": MODEL}, run_token="t")
    await job.save()
    ctx = JobContext(job.id, search.EMBED_KIND, {"model": MODEL}, settings)
    await search.run_embed(ctx)
    return ctx.counters


def _vector(settings: Settings, image_id: int) -> np.ndarray | None:
    conn = connect(settings.db_path)
    try:
        return vectors.get(conn, MODEL, image_id)
    finally:
        conn.close()


def _signatures_match_vectors(settings: Settings) -> bool:
    conn = connect(settings.db_path)
    try:
        name = vectors.table_name(MODEL)
        bits = {r[0] for r in conn.execute(f"SELECT rowid FROM {name}")}
        floats = {r[0] for r in conn.execute(f"SELECT id FROM {name}_f")}
        return bits == floats
    finally:
        conn.close()


async def _derived(image_id: int) -> tuple[int, int]:
    return await Source.count().where(Source.image == image_id), await BreedTag.count().where(
        BreedTag.image == image_id
    )


async def test_a_new_image_after_the_highest_id_was_removed_gets_its_own_vector(own: Settings) -> None:
    store = FileStore(own.data_path)
    await _in(own, photo(9001), "first.jpg")
    collage = await _in(own, corpus.side_by_side(9002), "collage.jpg")
    panels = collage.children
    highest = await Image.select(Image.id).order_by(Image.id, ascending=False).first()
    assert len(panels) == 2 and highest == {"id": max(panels)}
    assert (await _embed(own)).get("embedded") == 4
    removed = {i: _vector(own, i) for i in panels}
    assert all(v is not None for v in removed.values()) and await _derived(panels[0]) == (1, 1)

    assert await unsplit(store, own, collage.image_id or 0) == 2  # the panels were seen nowhere else
    for panel in panels:
        assert _vector(own, panel) is None and await _derived(panel) == (0, 0)
    assert _signatures_match_vectors(own)

    new = await _in(own, photo(9003), "after.jpg")
    assert new.image_id is not None and new.image_id > max(panels)  # ids are never handed out twice
    assert (await _embed(own)).get("embedded") == 1  # the new image was not taken for embedded
    mine = _vector(own, new.image_id)
    assert mine is not None and all(not np.allclose(mine, v) for v in removed.values() if v is not None)
    assert await search.embedded_models(own, new.image_id) == [MODEL]


async def test_doctor_deep_removes_a_lost_image_with_everything_derived_from_it(own: Settings) -> None:
    store = FileStore(own.data_path)
    original = photo(9010, size=(800, 600))
    a = await _in(own, original, "a.jpg")
    b = await _in(own, corpus.near_duplicate(original), "b.jpg")
    c = await _in(own, corpus.near_duplicate(corpus.near_duplicate(original)), "c.jpg")
    ids = [a.image_id, b.image_id, c.image_id]
    assert a.image_id == min(ids) and c.near_dup_group == a.image_id  # one group, named after a
    await _embed(own)
    assert _vector(own, a.image_id or 0) is not None

    store.file_path(hashlib.sha256(original).hexdigest()).unlink()  # a's original is lost
    found = {f.name: f.count for f in await deep_check(own, grace_seconds=0)}
    assert found["rows whose file is missing"] == 1
    assert not await Image.exists().where(Image.id == a.image_id)
    assert _vector(own, a.image_id or 0) is None and await _derived(a.image_id or 0) == (0, 0)
    assert _signatures_match_vectors(own)
    rest = await Image.select(Image.id, Image.near_dup_group).where(Image.id.is_in([b.image_id, c.image_id]))
    assert {r["near_dup_group"] for r in rest} == {b.image_id}  # renamed after its next smallest id

    store.file_path(hashlib.sha256(corpus.near_duplicate(original)).hexdigest()).unlink()
    await deep_check(own, grace_seconds=0)
    assert await Image.select(Image.near_dup_group).where(Image.id == c.image_id).first() == {"near_dup_group": None}


async def test_a_scraped_url_whose_image_is_removed_can_be_fetched_again(own: Settings) -> None:
    """A URL's row names the image it gave (a foreign key): when ``doctor --deep`` removes the
    image (its file was lost), the row lets go of it and becomes a failure that "retry failed"
    and later runs fetch again; the other URLs of the run keep theirs."""
    from furrsight.scraping.service import failures

    store = FileStore(own.data_path)
    lost, kept = await _in(own, photo(9030), "lost.jpg"), await _in(own, photo(9031), "kept.jpg")
    job = Job(kind="scrape", params={}, run_token="t")
    await job.save()
    conn = connect(own.db_path)
    try:  # as the scrape runner records what it fetched (``scrape_urls`` is written in plain SQL there too)
        conn.executemany(
            "INSERT INTO scrape_urls (key, url, plugin, status, image_id, candidate, job, updated_at)"
            " VALUES (?, ?, 'url_list', 'fetched', ?, '{}', ?, 'now')",
            [
                (f"{job.id} https://x.test/{i}", f"https://x.test/{i}", i, job.id)
                for i in (lost.image_id, kept.image_id)
            ],
        )
        conn.commit()
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            conn.execute("UPDATE scrape_urls SET image_id = 987654321 WHERE job = ?", (job.id,))
    finally:
        conn.close()
    assert await failures(job.id) == []
    store.file_path(hashlib.sha256(photo(9030)).hexdigest()).unlink()
    await deep_check(own, grace_seconds=0)
    [failed] = await failures(job.id)
    assert (failed.url, failed.status, failed.reason) == (f"https://x.test/{lost.image_id}", "failed", "image_removed")
    assert failed.message is not None and "retry to fetch it again" in failed.message
    conn = connect(own.db_path)
    try:
        rows = conn.execute("SELECT status, image_id FROM scrape_urls WHERE job = ? ORDER BY id", (job.id,)).fetchall()
    finally:
        conn.close()
    assert [tuple(r) for r in rows] == [("failed", None), ("fetched", kept.image_id)]


async def test_a_scrape_recording_an_image_removed_meanwhile_keeps_every_url(own: Settings, tmp_path: Path) -> None:
    """The runner records its URLs in batches: an image removed between its ingest and the batch
    (``doctor --deep``, an un-split) must not lose the batch to the foreign key; that URL is
    recorded as a failure to fetch again, the others as they were."""
    from furrsight.images.ingest import Ingestor
    from furrsight.scraping.contract import Candidate
    from furrsight.scraping.handoff import Handoff
    from furrsight.scraping.http import ClientConfig, PoliteClient
    from furrsight.scraping.runner import ScrapeRun
    from furrsight.scraping.service import failures

    gone, there = await _in(own, photo(9040), "gone.jpg"), await _in(own, photo(9041), "there.jpg")
    job = Job(kind="scrape", params={}, run_token="t")
    await job.save()
    async with Ingestor(FileStore(own.data_path), own) as engine:
        run = ScrapeRun(
            JobContext(job.id, "scrape", {}, own), PoliteClient(ClientConfig.from_settings(own.scraping)),
            Handoff(engine, tmp_path), "url_list",
        )  # fmt: skip
        run._record(Candidate(url="https://x.test/gone"), "fetched", image_id=gone.image_id)
        run._record(Candidate(url="https://x.test/there"), "fetched", image_id=there.image_id)
        await Image.delete().where(Image.id == gone.image_id)  # removed before the batch is written
        await run.flush()
    [failed] = await failures(job.id)
    assert (failed.url, failed.reason) == ("https://x.test/gone", "image_removed")
    conn = connect(own.db_path)
    try:
        rows = conn.execute("SELECT url, status, image_id FROM scrape_urls WHERE job = ? ORDER BY id", (job.id,))
        assert [tuple(r) for r in rows] == [
            ("https://x.test/gone", "failed", None),
            ("https://x.test/there", "fetched", there.image_id),
        ]
    finally:
        conn.close()


async def test_reprocessing_leaves_what_search_knows_and_state_is_the_images_own(own: Settings) -> None:
    image = await _in(own, photo(9020), "again.jpg")
    image_id = image.image_id or 0
    await _embed(own)
    states = {r["state"] for r in await Image.select(Image.state)}
    assert states <= {"stored", "processed", "failed"}  # search never writes an image's state
    async with Ingestor(FileStore(own.data_path), own) as engine:
        assert await reprocess_image(engine, image_id) == "processed"
    assert await search.embedded_models(own, image_id) == [MODEL]
    assert (await _embed(own)).get("embedded") is None  # still embedded: nothing to redo


async def test_foreign_keys_are_enforced_on_every_connection(own: Settings) -> None:
    assert (await Image.raw("PRAGMA foreign_keys"))[0]["foreign_keys"] == 1  # piccolo's connections
    recorder = Recorder(own)
    try:
        assert await recorder.run(lambda tx: tx.conn.execute("PRAGMA foreign_keys").fetchone()[0]) == 1

        def orphan_source(tx: Tx) -> None:
            tx.conn.execute("INSERT INTO sources (image, kind, seen_at) VALUES (987654321, 'upload', 'now')")

        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            await recorder.run(orphan_source)
    finally:
        await recorder.aclose()
    conn = connect(own.db_path)
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    conn.close()


async def test_an_image_removed_while_its_batch_was_embedding_gets_no_vector_nor_tag(own: Settings) -> None:
    kept = (await _in(own, photo(9040), "kept.jpg")).image_id or 0
    gone = (await _in(own, photo(9041), "gone.jpg")).image_id or 0
    await Image.delete().where(Image.id == gone)  # after the batch was read, before its vectors are written
    tag = BreedResult(breed="poodle", confidence=0.9, top=[], dog_probability=0.95, is_dog=True)
    conn = connect(own.db_path)
    try:
        stored = vectors.put(conn, "race", [kept, gone], np.ones((2, 8), np.float32))
        put_tags(conn, "race", [kept, gone], [tag, tag])  # the rest of the batch still goes in
        assert stored == [kept] and vectors.count(conn, "race") == 1
        assert conn.execute("SELECT count(*) FROM vec_race").fetchone()[0] == 1  # the signature too
        assert conn.execute("SELECT image FROM breed_tags WHERE model = 'race'").fetchall() == [(kept,)]
    finally:
        conn.close()


# -- the migration, on a database made by the previous schema ------------------------------------
PREVIOUS = {"images": "2026-11-24T03:40:00:000000", "search": "2026-11-24T01:21:11:378164"}
OLD_MODEL = "old-model"


async def _previous_schema(settings: Settings) -> None:
    open_database(settings)
    for app in BaseMigrationManager().get_sorted_app_names():
        result = await run_forwards(app_name=app, migration_id=PREVIOUS.get(app, "all"))
        assert result.success, result.message


def _fill_old_database(path: Path) -> None:
    """Rows as the previous version wrote them, including what it got wrong: state 'embedded',
    and a removed image's vector left behind under its id."""
    conn = connect(path)
    rows = [
        (1, "a" * 64, "embedded", "00ff00ff00ff00ff", 1, None),
        (2, "b" * 64, "processed", "00ff00ff00ff00fe", 1, None),
        (3, "c" * 64, "stored", None, None, 1),
        (4, "d" * 64, "embedded", None, None, None),
    ]
    conn.executemany(
        "INSERT INTO images (id, sha256, format, mime, width, height, bytes, state, phash, near_dup_group, parent_id, "
        "flags, created_at) VALUES (?, ?, 'JPEG', 'image/jpeg', 10, 10, 100, ?, ?, ?, ?, ',small,', '2026-11-30')",
        rows,
    )
    conn.executemany(
        "INSERT INTO sources (image, kind, file_name, seen_at) VALUES (?, 'upload', ?, '2026-11-30')",
        [(i, f"{i}.jpg") for i in range(1, 5)],
    )
    conn.execute("INSERT INTO breed_tags (image, model, breed, confidence) VALUES (1, 'old-model', 'poodle', 0.9)")
    conn.execute("INSERT INTO pairs (before, after, origin) VALUES (1, 2, 'manual')")
    name = vectors.table_name(OLD_MODEL)  # the previous version's vector tables: no link to images
    conn.execute(f"CREATE VIRTUAL TABLE {name} USING vec0(bits bit[64])")
    conn.execute(f"CREATE TABLE {name}_f (id INTEGER PRIMARY KEY, embedding BLOB NOT NULL)")
    conn.execute("CREATE TABLE IF NOT EXISTS vec_meta (model TEXT PRIMARY KEY, dim INTEGER, centre BLOB, n INTEGER)")
    conn.execute("INSERT INTO vec_meta VALUES (?, 4, ?, 4)", (OLD_MODEL, np.zeros(4, np.float32).tobytes()))
    for i in range(1, 5):
        conn.execute(f"INSERT INTO {name}_f VALUES (?, ?)", (i, np.full(4, i, np.float32).tobytes()))
        conn.execute(f"INSERT INTO {name} (rowid, bits) VALUES (?, vec_bit(?))", (i, bytes(8)))
    conn.execute("DELETE FROM images WHERE id = 4")  # removed the old way: its vector stayed behind
    conn.close()


async def test_the_migration_keeps_every_row_and_ids_are_never_reused_after_it(
    migrated: Settings, tmp_root: Path
) -> None:
    settings = load_settings({"FURRSIGHT_DATA": str(tmp_root / "previous-schema")})
    try:
        await _previous_schema(settings)
        _fill_old_database(settings.db_path)
        conn = connect(settings.db_path)
        before = conn.execute("SELECT * FROM images ORDER BY id").fetchall()
        conn.close()

        await migrate(settings)
        conn = connect(settings.db_path)
        (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'images'").fetchone()
        assert '"id" INTEGER PRIMARY KEY AUTOINCREMENT' in sql
        (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'sources'").fetchone()
        assert '"id" INTEGER PRIMARY KEY AUTOINCREMENT' in sql and 'REFERENCES "images"' in sql
        after = conn.execute("SELECT * FROM images ORDER BY id").fetchall()
        assert [r[0] for r in after] == [1, 2, 3]
        state = [r[1] for r in conn.execute("PRAGMA table_info(images)")].index("state")
        assert [r[state] for r in after] == ["processed", "processed", "stored"]  # 'embedded' handed back
        assert [r[:state] + r[state + 1 :] for r in after] == [r[:state] + r[state + 1 :] for r in before]
        assert conn.execute("SELECT image, file_name FROM sources ORDER BY image").fetchall() == [
            (1, "1.jpg"), (2, "2.jpg"), (3, "3.jpg"),
        ]  # fmt: skip
        assert conn.execute("SELECT image, breed FROM breed_tags").fetchall() == [(1, "poodle")]
        assert conn.execute("SELECT before, after FROM pairs").fetchall() == [(1, 2)]  # not cascaded by the rebuild
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE tbl_name IN ('images', 'sources')")}
        assert {"images_state", "images_parent_id", "images_near_dup_group", "phash_log_insert"} <= names
        assert {"sources_image", "sources_group_key"} <= names
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        name = vectors.table_name(OLD_MODEL)
        assert [r[0] for r in conn.execute(f"SELECT id FROM {name}_f ORDER BY id")] == [1, 2, 3]
        assert [r[0] for r in conn.execute(f"SELECT rowid FROM {name} ORDER BY rowid")] == [1, 2, 3]
        assert np.array_equal(vectors.get(conn, OLD_MODEL, 2), np.full(4, 2, np.float32))
        conn.close()

        fresh = await _in(settings, photo(9030), "fresh.jpg")
        assert _vector_of(settings, fresh.image_id or 0) is None  # no stale vector under its id
        fresh_source = await Source.select(Source.id).where(Source.image == fresh.image_id).first()
        await Image.delete().where(Image.id == fresh.image_id)
        assert await Source.count().where(Source.image == fresh.image_id) == 0
        newer = await _in(settings, photo(9031), "newer.jpg")
        assert (newer.image_id or 0) > (fresh.image_id or 0)  # from now on, never reused
        newer_source = await Source.select(Source.id).where(Source.image == newer.image_id).first()
        assert newer_source["id"] > fresh_source["id"]  # source ids neither (mining keeps marks on them)
        await Image.delete().where(Image.id == 1)
        conn = connect(settings.db_path)
        assert vectors.get(conn, OLD_MODEL, 1) is None  # the rebuilt vector table follows its image
        assert conn.execute("SELECT count(*) FROM pairs").fetchone()[0] == 0  # and so does the pair
        assert conn.execute("SELECT count(*) FROM breed_tags").fetchone()[0] == 0
        assert conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0] == 2
        conn.close()
    finally:
        open_database(migrated)


def _vector_of(settings: Settings, image_id: int) -> np.ndarray | None:
    conn = connect(settings.db_path)
    try:
        return vectors.get(conn, OLD_MODEL, image_id)
    finally:
        conn.close()
