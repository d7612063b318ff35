"""Issue 5, search: the CLIP-type path end to end with tiny ONNX towers (import, embedding job,
similar / text / image search, clusters), the bundled model on real photos (breeds, not-a-dog),
new images embedded after ingest, cancellation, bad input."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from litestar.testing import AsyncTestClient
from PIL import Image

from furrsight.db.engine import connect
from furrsight.inference.install import ModelStore
from furrsight.jobs.runner import JobCancelled, JobContext
from furrsight.jobs.tables import Job
from furrsight.search import service, vectors
from furrsight.search.breeds import breed_names
from furrsight.settings import Settings
from tests.conftest import WorkerProcess, wait_for_job
from tests.images import photo
from tests.tiny_models import make_tiny_clip

DARKNET = Path("/usr/share/darknet/data")


def real_photo(name: str) -> bytes:
    path = DARKNET / name
    assert path.exists(), f"{path} is missing: install Debian's darknet package (make system-deps does)"
    return path.read_bytes()


async def upload(client: AsyncTestClient, files: dict[str, bytes]) -> tuple[dict[str, int], int]:
    """Upload through the API, wait for the import; returns image ids by file name and the job id."""
    response = await client.post("/api/v1/images", files=[("files", (n, d, "image/jpeg")) for n, d in files.items()])
    job = await wait_for_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job
    listed = (await client.get("/api/v1/images", params={"limit": 500})).json()["items"]
    by_sha = {i["sha256"]: i["id"] for i in listed}
    return {n: by_sha[hashlib.sha256(d).hexdigest()] for n, d in files.items()}, job["id"]


def png_copy(data: bytes) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).save(out, "PNG")
    return out.getvalue()


async def test_clip_type_path_end_to_end(
    client: AsyncTestClient, worker: WorkerProcess, gpu_worker: WorkerProcess, settings: Settings, tmp_root: Path
) -> None:
    image_dir, text_dir = make_tiny_clip(tmp_root / "carried-models")
    for name, folder in (("tiny-clip", image_dir), ("tiny-clip-text", text_dir)):
        response = await client.post(f"/api/v1/models/{name}/import", json={"path": str(folder)})
        assert response.status_code == 202
        assert (await wait_for_job(client, response.json()["id"]))["status"] == "succeeded"
    a = photo(501)
    files = {"a.jpg": a, "a.png": png_copy(a), **{f"p{s}.jpg": photo(s) for s in range(502, 507)}}
    ids, _ = await upload(client, files)

    response = await client.post("/api/v1/embeddings", json={"model": "tiny-clip"})
    assert response.status_code == 202
    job = await wait_for_job(client, response.json()["id"], timeout=120)
    assert job["status"] == "succeeded", job
    assert job["counters"]["embedded"] >= len(files)

    similar = (await client.get(f"/api/v1/images/{ids['a.jpg']}/similar", params={"k": 3, "model": "tiny-clip"})).json()
    assert similar["model"] == "tiny-clip"
    assert similar["items"][0]["id"] == ids["a.png"]  # the re-encoded copy is nearest
    assert ids["a.jpg"] not in [h["id"] for h in similar["items"]]
    scores = [h["score"] for h in similar["items"]]
    assert scores == sorted(scores, reverse=True)

    text = (
        await client.get("/api/v1/search", params={"q": "red poodle after cut", "k": 5, "model": "tiny-clip"})
    ).json()
    assert len(text["items"]) == 5
    assert [h["score"] for h in text["items"]] == sorted((h["score"] for h in text["items"]), reverse=True)

    by_image = await client.post(
        "/api/v1/search/image", params={"k": 3, "model": "tiny-clip"}, files={"file": ("q.jpg", files["p503.jpg"])}
    )
    assert by_image.status_code == 200
    assert by_image.json()["items"][0]["id"] == ids["p503.jpg"] and by_image.json()["items"][0]["score"] > 0.999

    response = await client.post("/api/v1/search/clusters", json={"model": "tiny-clip", "max_distance": 0.001})
    assert response.status_code == 202 and response.headers["location"] == f"/api/v1/jobs/{response.json()['id']}"
    job = await wait_for_job(client, response.json()["id"], timeout=60)
    assert job["status"] == "succeeded" and job["progress_done"] == job["progress_total"], job
    clusters = (await client.get("/api/v1/search/clusters", params={"model": "tiny-clip"})).json()
    assert clusters["job_id"] == job["id"] and clusters["max_distance"] == 0.001
    assert any({ids["a.jpg"], ids["a.png"]} <= set(c) for c in clusters["clusters"])
    assert (await client.get("/search/duplicates?model=tiny-clip")).status_code == 200
    again = await client.post("/search/duplicates", data={"model": "tiny-clip"}, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"].startswith("/jobs/")  # the page follows the job
    await wait_for_job(client, int(again.headers["location"].rsplit("/", 1)[1]), timeout=60)

    again = await client.post("/api/v1/embeddings", json={"model": "tiny-clip"})
    done = await wait_for_job(client, again.json()["id"], timeout=60)
    assert done["status"] == "succeeded" and "embedded" not in done["counters"]  # never recomputed


async def test_new_images_are_embedded_and_tagged_after_ingest(
    client: AsyncTestClient, worker: WorkerProcess, gpu_worker: WorkerProcess, settings: Settings
) -> None:
    ids, import_job = await upload(client, {"dog.jpg": real_photo("dog.jpg"), "eagle.jpg": real_photo("eagle.jpg")})
    embed_jobs = (await client.get("/api/v1/jobs", params={"kind": "search.embed", "limit": 50})).json()["items"]
    chained = [j for j in embed_jobs if j["creator"] == "pipeline" and j["id"] > import_job]
    assert chained, "the import should have queued an embedding job"
    for job in chained:
        assert (await wait_for_job(client, job["id"], timeout=180))["status"] in ("succeeded",)
    dog = (await client.get(f"/api/v1/images/{ids['dog.jpg']}")).json()
    assert dog["state"] == "processed"  # image state is the images feature's; search knows its own
    assert "efficientnet-lite0" in await service.embedded_models(settings, ids["dog.jpg"])
    similar = (await client.get(f"/api/v1/images/{ids['dog.jpg']}/similar", params={"k": 5})).json()
    assert similar["model"] == "efficientnet-lite0" and similar["items"]

    tagged = (await client.get("/api/v1/breeds/images", params={"dogs": "true"})).json()["items"]
    dog_tag = next(t for t in tagged if t["id"] == ids["dog.jpg"])
    assert dog_tag["breed"] in breed_names() and dog_tag["is_dog"]
    flagged = (await client.get("/api/v1/breeds/images", params={"dogs": "false"})).json()["items"]
    assert ids["eagle.jpg"] in [t["id"] for t in flagged]
    same_breed = (await client.get("/api/v1/breeds/images", params={"breed": dog_tag["breed"]})).json()["items"]
    assert ids["dog.jpg"] in [t["id"] for t in same_breed]

    # The breed tags filter the gallery and GET /api/v1/images (combined with the other filters).
    by_breed = (await client.get("/api/v1/images", params={"breed": dog_tag["breed"], "limit": 500})).json()
    assert ids["dog.jpg"] in [i["id"] for i in by_breed["items"]]
    assert ids["eagle.jpg"] not in [i["id"] for i in by_breed["items"]]
    not_dogs = (await client.get("/api/v1/images", params={"breed": "(not a dog)", "limit": 500})).json()
    assert ids["eagle.jpg"] in [i["id"] for i in not_dogs["items"]]
    gallery = await client.get("/images", params={"breed": dog_tag["breed"]})
    assert f'href="/images/{ids["dog.jpg"]}"' in gallery.text
    assert f'href="/images/{ids["eagle.jpg"]}"' not in gallery.text

    response = await client.post("/api/v1/breeds/tag")
    assert response.status_code == 202
    assert (await wait_for_job(client, response.json()["id"], timeout=180))["status"] == "succeeded"
    page = await client.get("/breeds", params={"breed": dog_tag["breed"]})
    assert page.status_code == 200 and f"/images/{ids['dog.jpg']}" in page.text
    detail = await client.get(f"/images/{ids['dog.jpg']}")
    assert f'hx-get="/images/{ids["dog.jpg"]}/similar"' in detail.text  # "More like this"
    fragment = await client.get(f"/images/{ids['dog.jpg']}/similar", headers={"HX-Request": "true"})
    assert "/thumb" in fragment.text and "<html" not in fragment.text


async def test_the_default_model_names_the_breed_of_a_real_dog(client: AsyncTestClient) -> None:
    response = await client.post("/api/v1/breeds/identify", files={"file": ("dog.jpg", real_photo("dog.jpg"))})
    assert response.status_code == 200
    result = response.json()
    assert result["breed"] in breed_names() and result["is_dog"]
    assert result["dog_probability"] > 0.5 and 0 < result["confidence"] <= 1
    assert len(result["top"]) == 5 and result["top"][0]["breed"] == result["breed"]


async def test_an_eagle_is_flagged_not_given_a_breed(client: AsyncTestClient) -> None:
    result = (await client.post("/api/v1/breeds/identify", files={"file": ("e.jpg", real_photo("eagle.jpg"))})).json()
    assert result["is_dog"] is False and result["breed"] is None and result["dog_probability"] < 0.5
    page = await client.post("/breeds/identify", files={"file": ("e.jpg", real_photo("eagle.jpg"))})
    assert "Not a dog" in page.text


@pytest.mark.parametrize(
    ("files", "status", "words"),
    [
        ({"other": ("x.jpg", b"123")}, 400, "'file'"),
        ({"file": ("x.jpg", b"")}, 400, "empty"),
        ({"file": ("notes.txt", b"just some text, not a photo")}, 415, "not a readable image"),
    ],
)
async def test_identify_bad_input_is_a_clear_error(
    client: AsyncTestClient, files: dict, status: int, words: str
) -> None:  # type: ignore[type-arg]
    response = await client.post("/api/v1/breeds/identify", files=files)
    assert response.status_code == status
    assert words in response.json()["error"]


async def test_text_search_with_the_default_model_says_which_model_to_pull(client: AsyncTestClient) -> None:
    response = await client.get("/api/v1/search", params={"q": "schnauzer after a summer cut"})
    assert response.status_code == 409
    assert "no text tower" in response.json()["error"] and "clip-vit-b32" in response.json()["error"]
    assert (await client.get("/api/v1/search", params={"q": "  "})).status_code == 400
    page = await client.get("/search", params={"q": "poodle"})
    assert page.status_code == 200 and "furrsight models pull clip-vit-b32" in page.text


async def test_similar_needs_an_existing_embedded_image(client: AsyncTestClient, worker: WorkerProcess) -> None:
    assert (await client.get("/api/v1/images/99999999/similar")).status_code == 404
    ids, _ = await upload(client, {"lonely.jpg": photo(777)})
    response = await client.get(f"/api/v1/images/{ids['lonely.jpg']}/similar", params={"model": "never-embedded"})
    assert response.status_code == 409 and "no never-embedded vector" in response.json()["error"]
    response = await client.post("/api/v1/embeddings", json={"model": "clip-vit-b32"})
    assert response.status_code == 409 and "furrsight models pull clip-vit-b32" in response.json()["error"]


async def test_the_embedding_job_stops_between_batches_when_cancelled(
    client: AsyncTestClient, worker: WorkerProcess, settings: Settings, tmp_root: Path
) -> None:
    image_dir, _ = make_tiny_clip(tmp_root / "carried-b", name="tiny-cancel")
    ModelStore(settings.data_path / "models").import_files("tiny-cancel", image_dir)
    await upload(client, {f"c{s}.jpg": photo(s) for s in range(801, 804)})
    job = Job(kind=service.EMBED_KIND, params={"model": "tiny-cancel"}, run_token="t", cancel_requested=True)
    await job.save()
    ctx = JobContext(job.id, service.EMBED_KIND, {"model": "tiny-cancel"}, settings)
    with pytest.raises(JobCancelled):
        await service.run_embed(ctx)
    conn = connect(settings.db_path)
    assert vectors.count(conn, "tiny-cancel") == 0
    conn.close()


def test_bit_prefilter_with_exact_rescoring_finds_the_true_neighbours(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    centres = np.abs(rng.standard_normal((30, 96)))
    data = vectors.normalise(centres[rng.integers(0, 30, 3000)] + 0.5 * np.abs(rng.standard_normal((3000, 96))))
    conn = connect(tmp_path / "v.db")
    conn.execute("CREATE TABLE images (id INTEGER PRIMARY KEY)")  # vectors belong to images (a foreign key)
    conn.executemany("INSERT INTO images (id) VALUES (?)", [(i,) for i in range(1, 3001)])
    for lo in range(0, 3000, 500):  # small batches: the centre is re-estimated as the table grows
        vectors.put(conn, "m", list(range(lo + 1, lo + 501)), data[lo : lo + 500])
    hits = 0
    for q in data[:40]:
        got = {i for i, _ in vectors.knn(conn, "m", q, 10, prefilter_factor=10)}
        truth = set((np.argsort(-(data @ q))[:10] + 1).tolist())
        hits += len(got & truth)
    assert hits / 400 >= 0.9
    assert vectors.count(conn, "m") == 3000
    vectors.put(conn, "m", [1], data[1:2])  # replacing a vector keeps one row
    assert vectors.count(conn, "m") == 3000 and np.allclose(vectors.get(conn, "m", 1), data[1], atol=1e-6)
    conn.close()


async def test_an_unreadable_file_is_counted_and_the_others_are_embedded(
    client: AsyncTestClient, worker: WorkerProcess, settings: Settings, tmp_root: Path
) -> None:
    from furrsight.store import FileStore

    image_dir, _ = make_tiny_clip(tmp_root / "carried-c", name="tiny-broken")
    ModelStore(settings.data_path / "models").import_files("tiny-broken", image_dir)
    good, bad = photo(901), photo(902)
    ids, _ = await upload(client, {"good.jpg": good, "bad.jpg": bad})
    path = FileStore(settings.data_path).file_path(hashlib.sha256(bad).hexdigest())
    path.write_bytes(b"garbage")  # the file went bad on disk
    try:
        job = Job(kind=service.EMBED_KIND, params={"model": "tiny-broken"}, run_token="t")
        await job.save()
        ctx = JobContext(job.id, service.EMBED_KIND, {"model": "tiny-broken"}, settings)
        # this test's own images only: other tests' images in the shared store are not counted
        await service.process_images(ctx, "tiny-broken", [ids["good.jpg"], ids["bad.jpg"]])
    finally:
        path.write_bytes(bad)
    assert ctx.counters == {"failed": 1, "embedded": 1}
    conn = connect(settings.db_path)
    assert vectors.get(conn, "tiny-broken", ids["good.jpg"]) is not None
    assert vectors.get(conn, "tiny-broken", ids["bad.jpg"]) is None
    conn.close()
    log = (settings.data_path / "logs" / "jobs" / f"{job.id}.log").read_text()
    assert f"image {ids['bad.jpg']}: cannot decode" in log
