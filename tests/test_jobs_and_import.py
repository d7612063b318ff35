"""Issue 2's end-to-end behaviour: upload and import jobs, cancel, retry, a killed worker."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from furrsight.settings import Settings
from tests.conftest import WorkerProcess, user_with_token, wait_for_job, worker_env
from tests.images import photo


async def test_upload_three_files_two_identical(client: AsyncTestClient, worker: WorkerProcess) -> None:
    a, b = photo(101), photo(102)
    files = [("files", ("a.jpg", a, "image/jpeg")), ("files", ("b.jpg", b, "image/jpeg")),
             ("files", ("a-copy.jpg", a, "image/jpeg"))]  # fmt: skip
    response = await client.post("/api/v1/images", files=files)
    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/api/v1/jobs/{job['id']}"
    done = await wait_for_job(client, job["id"])
    assert done["status"] == "succeeded", done
    assert done["counters"] == {"new": 2, "duplicate": 1}
    assert (done["progress_done"], done["progress_total"]) == (3, 3)

    listed = (await client.get("/api/v1/images", params={"limit": 500})).json()["items"]
    by_sha = {i["sha256"]: i for i in listed}
    for content, names in ((a, ["a-copy.jpg", "a.jpg"]), (b, ["b.jpg"])):  # a: one image, seen twice
        image = by_sha[hashlib.sha256(content).hexdigest()]
        thumb = await client.get(f"/api/v1/images/{image['id']}/thumb")
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        original = await client.get(f"/api/v1/images/{image['id']}/file")
        assert original.headers["content-type"] == "image/jpeg"
        assert original.content == content
        detail = (await client.get(f"/api/v1/images/{image['id']}")).json()
        assert sorted(s["file_name"] for s in detail["sources"] if s["job_id"] == job["id"]) == names


async def test_upload_without_files_is_a_clear_400(client: AsyncTestClient) -> None:
    response = await client.post("/api/v1/images", files=[("other", ("x.jpg", b"123", "image/jpeg"))])
    assert response.status_code == 400
    assert "files" in response.json()["error"]


async def test_upload_over_the_size_limit_is_413(client: AsyncTestClient, settings: Settings) -> None:
    big = b"\0" * (settings.ingest.max_upload_bytes + 1)
    response = await client.post("/api/v1/images", files=[("files", ("big.jpg", big, "image/jpeg"))])
    assert response.status_code == 413


async def test_import_a_folder_recursively(client: AsyncTestClient, worker: WorkerProcess, settings: Settings) -> None:
    root = Path(settings.import_roots[0]) / "shoot-1"
    (root / "day2").mkdir(parents=True)
    (root / "one.jpg").write_bytes(photo(201))
    (root / "day2" / "two.png").write_bytes(photo(202, fmt="PNG"))
    (root / "notes.txt").write_text("not an image")
    response = await client.post("/api/v1/imports", json={"path": str(root)})
    assert response.status_code == 202
    done = await wait_for_job(client, response.json()["id"])
    assert done["status"] == "succeeded"
    assert done["counters"]["new"] == 2
    assert done["counters"]["refused:not_an_image"] == 1
    log = (await client.get(f"/jobs/{done['id']}")).text
    assert "notes.txt" in log


def test_the_folder_walk_takes_regular_files_and_only_links_that_stay_inside(tmp_path: Path) -> None:
    """Sorted per folder, then subfolders in order; hidden files and folders skipped; a linked
    folder not entered; a linked file taken only if it leads to a file inside the import roots."""
    import os

    from furrsight.images.service import walk_folder

    root, outside = tmp_path / "root", tmp_path / "outside"
    for folder in (root / "b", root / "a" / "deep", root / ".hidden", outside):
        folder.mkdir(parents=True)
    for name in ("z.jpg", "m.jpg", ".secret.jpg", "b/x.jpg", "a/y.jpg", "a/deep/w.jpg", ".hidden/h.jpg"):
        (root / name).write_bytes(b"x")
    (outside / "o.jpg").write_bytes(b"x")
    (root / "to-outside.jpg").symlink_to(outside / "o.jpg")
    (root / "to-inside.jpg").symlink_to(root / "b" / "x.jpg")
    (root / "to-gone.jpg").symlink_to(root / "nothing.jpg")
    (root / "linked-folder").symlink_to(outside)
    os.mkfifo(root / "pipe.jpg")
    found = walk_folder(root, [root])
    assert [p.relative_to(root).as_posix() for p in found] == [
        "m.jpg", "to-inside.jpg", "z.jpg", "a/y.jpg", "a/deep/w.jpg", "b/x.jpg",
    ]  # fmt: skip
    assert [p.name for p in walk_folder(root, [tmp_path])] == [
        "m.jpg", "to-inside.jpg", "to-outside.jpg", "z.jpg", "y.jpg", "w.jpg", "x.jpg",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "why"),
    [("/etc", "is outside the import roots"), ("relative/path", "is not an absolute path"),
     ("/tmp/../etc", "is outside the import roots")],
)  # fmt: skip
async def test_import_outside_the_roots_is_refused(client: AsyncTestClient, path: str, why: str) -> None:
    response = await client.post("/api/v1/imports", json={"path": path})
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"{path!r} {why}")


async def test_import_with_malformed_body_is_400(client: AsyncTestClient) -> None:
    response = await client.post("/api/v1/imports", json={"folder": "/x"})
    assert response.status_code == 400


async def test_unknown_job_is_404_and_finished_job_cannot_be_cancelled(
    client: AsyncTestClient, worker: WorkerProcess
) -> None:
    assert (await client.get("/api/v1/jobs/999999")).status_code == 404
    response = await client.post("/api/v1/images", files=[("files", ("c.jpg", photo(301), "image/jpeg"))])
    done = await wait_for_job(client, response.json()["id"])
    cancel = await client.post(f"/api/v1/jobs/{done['id']}/cancel")
    assert cancel.status_code == 409
    assert "already succeeded" in cancel.json()["error"]
    assert (await client.post(f"/api/v1/jobs/{done['id']}/retry")).status_code == 409


def _make_folder(root: Path, name: str, count: int, size: tuple[int, int] = (640, 480), seed: int = 0) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"{i:04d}.jpg").write_bytes(photo(seed + i, size=size))
    return folder


async def test_cancel_then_retry(client: AsyncTestClient, worker: WorkerProcess, settings: Settings) -> None:
    folder = _make_folder(Path(settings.import_roots[0]), "cancel-me", 60, seed=10_000)
    job = (await client.post("/api/v1/imports", json={"path": str(folder)})).json()
    cancelled = await client.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["cancel_requested"]
    done = await wait_for_job(client, job["id"])
    assert done["status"] == "cancelled"
    retried = await client.post(f"/api/v1/jobs/{job['id']}/retry")
    assert retried.status_code == 202
    done = await wait_for_job(client, job["id"])
    assert done["status"] == "succeeded"
    assert done["counters"].get("new", 0) + done["counters"].get("duplicate", 0) == 60


async def test_job_pages_show_progress_and_log(client: AsyncTestClient, worker: WorkerProcess) -> None:
    response = await client.post("/api/v1/images", files=[("files", ("p.jpg", photo(401), "image/jpeg"))])
    job = await wait_for_job(client, response.json()["id"])
    page = await client.get(f"/jobs/{job['id']}")
    assert page.status_code == 200 and "<progress" in page.text and "started images.import" in page.text
    fragment = await client.get(f"/jobs/{job['id']}/progress", headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<div id="job-progress"')
    assert "<html" not in fragment.text
    listing = await client.get("/jobs")
    assert f'href="/jobs/{job["id"]}"' in listing.text
    gallery = await client.get("/images")
    assert "/thumb" in gallery.text


async def test_worker_killed_mid_job_is_redelivered_and_finishes(
    migrated: Settings, settings_env: dict[str, str], tmp_root: Path
) -> None:
    """SIGKILL the only worker while it imports; a new worker picks the message up after the
    heartbeat timeout and the job finishes with every file stored exactly once.

    It runs on its own broker namespace, so that the session's worker cannot take the job."""
    import msgspec

    from furrsight.app import create_app
    from furrsight.images.tables import Source

    folder = _make_folder(Path(migrated.import_roots[0]), "killed", 600, size=(1024, 768), seed=20_000)
    env = worker_env({**settings_env, "FURRSIGHT_BROKER_NAMESPACE": "killtest"})
    app = create_app(msgspec.structs.replace(migrated, broker_namespace="killtest"))
    victim = WorkerProcess(env, log=tmp_root / "victim.log").start()
    async with AsyncTestClient(app=app, timeout=30) as client:
        client.headers["Authorization"] = f"Bearer {(await user_with_token('admin'))[1]}"
        job = (await client.post("/api/v1/imports", json={"path": str(folder)})).json()
        deadline = time.monotonic() + 60
        while True:
            state = (await client.get(f"/api/v1/jobs/{job['id']}")).json()
            if state["status"] == "running" and state["progress_done"] > 0:
                break
            assert state["status"] in ("queued", "running"), state
            assert time.monotonic() < deadline, "the job never started"
            await asyncio.sleep(0.05)
        victim.kill()
        assert (await client.get(f"/api/v1/jobs/{job['id']}")).json()["status"] == "running"
        rescuer = WorkerProcess(env, log=tmp_root / "rescuer.log").start()
        try:
            done = await wait_for_job(client, job["id"], timeout=90)
        finally:
            rescuer.stop()
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 2  # delivered again after the kill
    sources = await Source.select(Source.file_name).where(Source.job == job["id"])
    assert sorted(s["file_name"] for s in sources) == sorted(str(p) for p in folder.iterdir())


async def test_health_is_503_naming_the_broker_when_it_stops(migrated: Settings, tmp_root: Path) -> None:
    import msgspec

    from furrsight.app import create_app
    from tests.conftest import BrokerServer

    server = BrokerServer(tmp_root / "broker-health")
    server.start()
    app = create_app(msgspec.structs.replace(migrated, broker_url=server.url))
    async with AsyncTestClient(app=app, timeout=30) as client:
        before = await client.get("/health")
        assert before.json()["database"]["ok"] and before.json()["broker"]["ok"]
        server.stop()
        after = await client.get("/health")
    assert after.status_code == 503
    assert "broker" in after.json()["down"]
    assert "unreachable" in after.json()["broker"]["error"]


async def test_health_is_200_with_a_worker(client: AsyncTestClient, worker: WorkerProcess) -> None:
    response = await client.get("/health")
    assert response.status_code == 200, response.json()
    assert response.json()["workers"]["alive"] >= 1
