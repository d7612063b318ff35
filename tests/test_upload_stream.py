"""Uploads are streamed to the staging folder with the byte cap enforced while reading: a chunked
upload (no Content-Length) three times the cap gets 413, stores nothing, and the web process's
memory does not grow with it. Runs against a real uvicorn server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.images import photo
from tests.live_server import LiveServer

CAP = 16 * 1024 * 1024
CHUNK = 256 * 1024


@pytest.fixture(scope="module")
def live(tmp_root: Path, settings_env: dict[str, str]) -> Iterator[LiveServer]:
    server = LiveServer(tmp_root / "upload-stream", FURRSIGHT_INGEST_MAX_UPLOAD_BYTES=str(CAP)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def token(live: LiveServer) -> str:
    return live.user_token("uploader", "curator")


def multipart_chunks(files: list[tuple[str, bytes | int]], boundary: str) -> Iterator[bytes]:
    """A multipart/form-data body in chunks, as a client streams it; an int is that many bytes of filler."""
    for name, content in files:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        if isinstance(content, int):
            for sent in range(0, content, CHUNK):
                yield b"\xa5" * min(CHUNK, content - sent)
        else:
            yield content
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


def post_chunked(live: LiveServer, token: str, files: list[tuple[str, bytes | int]]) -> httpx.Response:
    boundary = uuid.uuid4().hex
    headers = {"Authorization": f"Bearer {token}", "Content-Type": f"multipart/form-data; boundary={boundary}"}
    # a generator body is sent with Transfer-Encoding: chunked, without Content-Length
    return httpx.post(f"{live.url}/api/v1/images", content=multipart_chunks(files, boundary), headers=headers,
                      timeout=120)  # fmt: skip


def staged(live: LiveServer) -> list[Path]:
    incoming = live.data / "incoming"
    return sorted(incoming.iterdir()) if incoming.exists() else []


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def test_a_chunked_upload_three_times_the_cap_is_refused_in_bounded_memory(live: LiveServer, token: str) -> None:
    assert live.proc is not None
    before = staged(live)
    jobs_before = httpx.get(f"{live.url}/api/v1/jobs", headers={"Authorization": f"Bearer {token}"}).json()["items"]
    Path(f"/proc/{live.proc.pid}/clear_refs").write_text("5")  # the peak RSS starts again from now
    start = memory_kib(live.proc.pid, "VmRSS")
    answer = post_chunked(live, token, [("big.jpg", 3 * CAP)])
    peak = memory_kib(live.proc.pid, "VmHWM")
    assert answer.status_code == 413
    assert answer.json() == {"error": f"the upload is over {CAP} bytes, over the limit of {CAP} bytes", "status": 413}
    assert staged(live) == before  # nothing stored, not even a partial file
    jobs = httpx.get(f"{live.url}/api/v1/jobs", headers={"Authorization": f"Bearer {token}"}).json()["items"]
    assert jobs == jobs_before  # and no job
    assert (peak - start) * 1024 < CAP // 2, f"the web process grew by {peak - start} KiB"


def test_an_upload_over_the_cap_with_content_length_is_refused_before_reading(live: LiveServer, token: str) -> None:
    before = staged(live)
    body = b"".join(multipart_chunks([("big.jpg", CAP + 1)], "b0undary"))
    answer = httpx.post(
        f"{live.url}/api/v1/images", content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "multipart/form-data; boundary=b0undary"},
    )  # fmt: skip
    assert answer.status_code == 413
    assert answer.json()["error"] == f"the upload is {len(body)} bytes, over the limit of {CAP} bytes"
    assert staged(live) == before


def test_a_chunked_upload_under_the_cap_is_staged_byte_for_byte(live: LiveServer, token: str) -> None:
    before = set(staged(live))
    first, second = photo(7301), photo(7302, fmt="PNG")
    answer = post_chunked(live, token, [("a.jpg", first), ("b.png", second)])
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert answer.headers["location"] == f"/api/v1/jobs/{job['id']}"
    (folder,) = set(staged(live)) - before
    assert [(f["name"], (live.data / f["path"]).read_bytes()) for f in job["params"]["files"]] == [
        ("a.jpg", first), ("b.png", second)
    ]  # fmt: skip
    assert job["params"]["staging"] == str(folder.relative_to(live.data))


def test_a_form_without_files_is_a_400_and_leaves_nothing(live: LiveServer, token: str) -> None:
    before = staged(live)
    answer = httpx.post(f"{live.url}/api/v1/images", files={"other": ("x.txt", b"x")},
                        headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert answer.status_code == 400
    assert answer.json()["error"] == "no files: send them as multipart form field 'files'"
    assert staged(live) == before


def test_a_body_that_is_not_multipart_is_a_400(live: LiveServer, token: str) -> None:
    answer = httpx.post(f"{live.url}/api/v1/images", json={"files": []}, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 400
    assert answer.json()["error"] == "send the files as multipart/form-data, field 'files'"


def test_a_cut_off_multipart_body_is_a_400_and_leaves_nothing(live: LiveServer, token: str) -> None:
    before = staged(live)
    body = b"".join(multipart_chunks([("a.jpg", photo(7303))], "cutcut"))[:-40]
    answer = httpx.post(
        f"{live.url}/api/v1/images", content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "multipart/form-data; boundary=cutcut"},
    )  # fmt: skip
    assert answer.status_code == 400 and answer.json()["error"].startswith("not a valid multipart/form-data body")
    assert staged(live) == before


def test_a_plain_browser_form_upload_is_staged_and_capped(live: LiveServer) -> None:
    """Without htmx the CSRF token travels as a form field, so the CSRF check parses the form
    before the handler: the files are copied from that parse, under the same cap."""
    live.user_token("browser", "curator")  # the account; the browser signs in with its password
    with httpx.Client(base_url=live.url, follow_redirects=False) as browser:
        browser.get("/login")
        form = {
            "username": "browser",
            "password": "password-of-browser-1234",
            "_csrf_token": browser.cookies["furrsight_csrf"],
        }
        assert browser.post("/login", data=form).status_code == 303
        browser.get("/upload")
        csrf = {"_csrf_token": browser.cookies["furrsight_csrf"]}
        before = set(staged(live))
        done = browser.post("/upload", data=csrf, files=[("files", ("p.jpg", photo(7304), "image/jpeg"))])
        assert done.status_code == 303 and done.headers["location"].startswith("/jobs/")
        (folder,) = set(staged(live)) - before
        assert (folder / "000000").read_bytes() == photo(7304)
        big = browser.post("/upload", data=csrf, files=[("files", ("big.jpg", b"\xa5" * (CAP + 1), "image/jpeg"))])
        assert big.status_code == 413 and set(staged(live)) - before == {folder}
