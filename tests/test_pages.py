"""The browser's way in: the upload form, the import form, pages and fragments."""

from __future__ import annotations

from pathlib import Path

from litestar.testing import AsyncTestClient

from furrsight.settings import Settings
from tests.conftest import WorkerProcess, wait_for_job
from tests.images import photo


async def test_upload_form_with_several_files_redirects_to_the_job(
    client: AsyncTestClient, worker: WorkerProcess
) -> None:
    files = [("files", (f"f{i}.jpg", photo(5500 + i), "image/jpeg")) for i in range(3)]  # seeds no other test uses
    response = await client.post("/upload", files=files, follow_redirects=False)
    assert response.status_code == 303
    job_id = int(response.headers["location"].rsplit("/", 1)[1])
    assert (await wait_for_job(client, job_id))["counters"] == {"new": 3}


async def test_htmx_upload_answers_with_hx_redirect(client: AsyncTestClient, worker: WorkerProcess) -> None:
    response = await client.post(
        "/upload", files=[("files", ("h.jpg", photo(510), "image/jpeg"))], headers={"HX-Request": "true"}
    )
    assert response.status_code == 204
    assert response.headers["hx-redirect"].startswith("/jobs/")


async def test_import_form_outside_roots_shows_the_reason(client: AsyncTestClient) -> None:
    response = await client.post(
        "/imports", data={"path": "/etc"}, headers={"HX-Request": "true", "Accept": "text/html"}
    )
    assert response.status_code == 400
    assert "outside the import roots" in response.text
    assert "<html" not in response.text  # a fragment for the form's error box


async def test_upload_page_lists_the_import_roots(client: AsyncTestClient, settings: Settings) -> None:
    page = await client.get("/upload")
    assert page.status_code == 200
    assert 'name="files" multiple' in page.text
    assert str(Path(settings.import_roots[0])) in page.text


async def test_gallery_pages_newest_first_with_load_more(client: AsyncTestClient, worker: WorkerProcess) -> None:
    files = [("files", (f"g{i}.jpg", photo(600 + i), "image/jpeg")) for i in range(25)]
    job = (await client.post("/api/v1/images", files=files)).json()
    await wait_for_job(client, job["id"])
    first = (await client.get("/api/v1/images", params={"limit": 10})).json()
    ids = [i["id"] for i in first["items"]]
    assert ids == sorted(ids, reverse=True)
    second = (await client.get("/api/v1/images", params={"limit": 10, "cursor": first["next_cursor"]})).json()
    assert max(i["id"] for i in second["items"]) < min(ids)
    page = await client.get("/images")
    assert "Load more" in page.text  # page_size is 20 in tests
    more = await client.get(f"/images?cursor={first['next_cursor']}", headers={"HX-Request": "true"})
    assert "<html" not in more.text and "/thumb" in more.text


async def test_missing_image_is_404_json_and_page(client: AsyncTestClient) -> None:
    api = await client.get("/api/v1/images/987654")
    assert api.status_code == 404 and "does not exist" in api.json()["error"]
    page = await client.get("/images/987654", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "does not exist" in page.text and "<html" in page.text


async def test_openapi_document_is_served(client: AsyncTestClient) -> None:
    spec = (await client.get("/schema/openapi.json")).json()
    assert "/api/v1/jobs/{job_id}" in spec["paths"]
    assert "/api/v1/images" in spec["paths"]
