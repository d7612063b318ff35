"""Issue 4 through the web: API shape, filters, pages, manual split, re-processing, upload jobs."""

from __future__ import annotations

import hashlib

import msgspec
from litestar.testing import AsyncTestClient

from furrsight.images.ingest import Ingestor, ingest
from furrsight.images.process import reprocess_image
from furrsight.images.schemas import Provenance
from furrsight.images.tables import Image
from furrsight.settings import Settings
from furrsight.store import FileStore
from tests import corpus
from tests.conftest import WorkerProcess, wait_for_job
from tests.images import photo

FIELDS = {"id", "sha256", "width", "height", "format", "bytes", "state", "flags", "phash", "near_dup_group",
          "parent_id", "crop", "children", "sources"}  # fmt: skip
SOURCE_FIELDS = {"kind", "url", "page_url", "title", "alt_text", "author", "license", "plugin", "query", "group_key",
                 "seen_at", "file_name"}  # fmt: skip


async def _ingest(settings: Settings, data: bytes, source: Provenance) -> int:
    result = await ingest(FileStore(settings.data_path), settings, data, source)
    assert result.image_id is not None, result
    return result.image_id


async def test_image_api_has_every_field_of_the_issue(client: AsyncTestClient, migrated: Settings) -> None:
    source = Provenance(kind="scrape", url="https://example.org/a.jpg", page_url="https://example.org/a",
                        title="Poodle groom", alt_text="a poodle", author="Ann", license="CC-BY-4.0",
                        plugin="apitest", query="poodle groom", group_key="post-1")  # fmt: skip
    image_id = await _ingest(migrated, corpus.side_by_side(5001), source)
    body = (await client.get(f"/api/v1/images/{image_id}")).json()
    assert body.keys() >= FIELDS
    assert len(body["children"]) == 2 and body["parent_id"] is None and body["crop"] is None
    (seen,) = body["sources"]
    assert seen.keys() >= SOURCE_FIELDS and seen["plugin"] == "apitest" and seen["license"] == "CC-BY-4.0"
    child = (await client.get(f"/api/v1/images/{body['children'][0]['id']}")).json()
    assert child["parent_id"] == image_id and len(child["crop"]) == 4 and child["panel"] == "before"


async def test_list_filters_and_cursor_paging(client: AsyncTestClient, migrated: Settings) -> None:
    original = photo(5010, size=(800, 600))
    src = Provenance(kind="scrape", url="https://example.org/x", plugin="filtertest")
    a = await _ingest(migrated, original, src)
    b = await _ingest(migrated, corpus.near_duplicate(original), src)
    blurry = await _ingest(migrated, corpus.blurred(5011), src)
    collage = await _ingest(migrated, corpus.stacked(5012), src)

    async def ids(**params: object) -> list[int]:
        response = await client.get("/api/v1/images", params={"limit": 500, **params})
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()["items"]]

    assert sorted(await ids(source="filtertest")) == sorted([a, b, blurry, collage])
    group = (await client.get(f"/api/v1/images/{a}")).json()["near_dup_group"]
    assert sorted(await ids(near_dup_group=group)) == sorted([a, b])
    assert blurry in await ids(flag="blurry") and a not in await ids(flag="blurry")
    assert len(await ids(parent=collage)) == 2
    assert collage in await ids(state="processed")
    first = (await client.get("/api/v1/images", params={"source": "filtertest", "limit": 3})).json()
    assert len(first["items"]) == 3 and first["next_cursor"] == first["items"][-1]["id"]
    rest = (await client.get("/api/v1/images", params={"source": "filtertest", "cursor": first["next_cursor"]})).json()
    assert [i["id"] for i in rest["items"]] == [min(a, b, blurry, collage)] and rest["next_cursor"] is None


async def test_gallery_flag_filter_group_page_and_image_page(client: AsyncTestClient, migrated: Settings) -> None:
    original = photo(5020, size=(800, 600))
    a = await _ingest(migrated, original, Provenance(kind="upload", file_name="pageA.jpg"))
    b = await _ingest(migrated, corpus.near_duplicate(original), Provenance(kind="upload", file_name="pageB.jpg"))
    blurry = await _ingest(migrated, corpus.blurred(5021), Provenance(kind="upload", file_name="blur.jpg"))
    page = await client.get("/images", params={"flag": "blurry"})
    assert page.status_code == 200 and f'href="/images/{blurry}"' in page.text
    assert f'href="/images/{a}"' not in page.text
    group = (await client.get(f"/api/v1/images/{a}")).json()["near_dup_group"]
    members = await client.get(f"/images/groups/{group}")
    assert members.status_code == 200
    assert f"/api/v1/images/{a}/file" in members.text and f"/api/v1/images/{b}/file" in members.text
    assert (await client.get("/images/groups/999999")).status_code == 404
    detail = await client.get(f"/images/{a}")
    assert f"/images/groups/{group}" in detail.text and "Split by hand" in detail.text


async def test_split_and_unsplit_by_hand(client: AsyncTestClient, migrated: Settings) -> None:
    store = FileStore(migrated.data_path)
    image_id = await _ingest(migrated, corpus.ordinary(5030), Provenance(kind="upload", file_name="manual.jpg"))
    bad = await client.post(f"/api/v1/images/{image_id}/split", json={"direction": "vertical", "position": 0.99})
    assert bad.status_code == 400
    done = await client.post(
        f"/api/v1/images/{image_id}/split", json={"direction": "vertical", "position": 0.25, "first": "after"}
    )
    assert done.status_code == 200, done.text
    kids = done.json()["children"]
    assert [k["crop"] for k in kids] == [[0, 0, 200, 600], [200, 0, 800, 600]]
    assert [k["panel"] for k in kids] == ["after", "before"]
    shas = [(await client.get(f"/api/v1/images/{k['id']}")).json()["sha256"] for k in kids]
    form = await client.post(
        f"/images/{image_id}/split", data={"direction": "horizontal", "position": "0.5"}, follow_redirects=False
    )
    assert form.status_code == 303 and form.headers["location"] == f"/images/{image_id}"
    again = (await client.get(f"/api/v1/images/{image_id}")).json()
    assert [k["crop"] for k in again["children"]] == [[0, 0, 800, 300], [0, 300, 800, 600]]
    assert not any(store.exists(s) for s in shas)  # the earlier panels are gone, files too
    undone = await client.delete(f"/api/v1/images/{image_id}/split")
    assert undone.status_code == 200 and undone.json()["children"] == [] and undone.json()["split_mode"] == "never"
    gone = await client.post(f"/api/v1/images/{kids[0]['id']}/split", json={"direction": "vertical"})
    assert gone.status_code == 404  # the first split's panels were removed by the second
    assert (await client.delete("/api/v1/images/999999/split")).status_code == 404


async def test_reprocess_after_a_setting_changes(migrated: Settings) -> None:
    store = FileStore(migrated.data_path)
    image_id = await _ingest(migrated, corpus.ordinary(5040), Provenance(kind="upload", file_name="re.jpg"))
    stricter = msgspec.structs.replace(migrated, ingest=msgspec.structs.replace(migrated.ingest, small_side=1000))
    assert await _reprocess(store, stricter, image_id) == "processed"
    row = await Image.select(Image.flags).where(Image.id == image_id).first()
    assert row and row["flags"] == ",small,"
    bigger = msgspec.structs.replace(migrated, ingest=msgspec.structs.replace(migrated.ingest, min_side=700))
    assert await _reprocess(store, bigger, image_id) == "failed"
    row = await Image.select(Image.state, Image.reason).where(Image.id == image_id).first()
    assert row and row["reason"].startswith("too_small")
    assert await _reprocess(store, migrated, image_id) == "processed"


async def _reprocess(store: FileStore, settings: Settings, image_id: int) -> str:
    async with Ingestor(store, settings) as engine:
        return await reprocess_image(engine, image_id)


async def test_reprocess_job_and_upload_job_list_refusals_by_name(
    client: AsyncTestClient, worker: WorkerProcess
) -> None:
    files = [("files", ("zero.jpg", b"", "image/jpeg")),
             ("files", ("half.jpg", corpus.truncated_jpeg(5050), "image/jpeg")),
             ("files", ("letter.jpg", corpus.text_named_jpg(), "image/jpeg")),
             ("files", ("bomb.png", corpus.png_bomb(), "image/png")),
             ("files", ("pair.jpg", corpus.side_by_side(5051), "image/jpeg")),
             ("files", ("fine.jpg", corpus.ordinary(5052), "image/jpeg"))]  # fmt: skip
    response = await client.post("/api/v1/images", files=files)
    done = await wait_for_job(client, response.json()["id"])
    assert done["status"] == "succeeded", done
    counters = done["counters"]
    assert counters["new"] == 2 and counters["refused"] == 4 and counters["collages_split"] == 1
    for reason in ("empty", "truncated", "not_an_image", "decompression_bomb"):
        assert counters[f"refused:{reason}"] == 1
    page = (await client.get(f"/jobs/{done['id']}")).text
    for name in ("zero.jpg", "half.jpg", "letter.jpg", "bomb.png"):
        assert name in page
    sha = hashlib.sha256(corpus.side_by_side(5051)).hexdigest()
    pair = await Image.select(Image.id).where(Image.sha256 == sha).first()
    assert pair and await Image.count().where(Image.parent_id == pair["id"]) == 2

    job = await client.post("/api/v1/images/reprocess", json={"state": "failed"})
    assert job.status_code == 202
    assert (await wait_for_job(client, job.json()["id"]))["status"] == "succeeded"
    assert (await client.post("/api/v1/images/reprocess", json={"state": "bogus"})).status_code == 400
