"""The API contract is the API: every /api/ operation, fuzzed from its OpenAPI document by
schemathesis against a real server, answers without a server error and as the document says;
integers out of range are a 400 in words; the document covers the JSON API only."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from furrsight.web.api import MAX_INT
from tests.conftest import WorkerProcess
from tests.images import photo
from tests.live_server import LiveServer

CONFIG = Path(__file__).parent / "contract" / "schemathesis.toml"
ACCOUNTS = r"^/api/v1/(users|tokens)"
EXAMPLES = "20"  # per operation and phase: about 40 s for the whole API on two cores


@pytest.fixture(scope="module")
def live(tmp_root: Path, settings_env: dict[str, str]) -> Iterator[LiveServer]:
    server = LiveServer(tmp_root / "contract").start()
    try:
        seed_images(server)
        yield server
    finally:
        server.stop()


def seed_images(live: LiveServer) -> None:
    """Two ingested photos, so that the image operations answer more than 404. The worker stops
    before the fuzzing: the jobs the fuzzer starts stay queued instead of loading the machine."""
    token = live.user_token("seeder", "curator")
    files = [("files", (f"seed{i}.jpg", photo(8800 + i, size=(640, 480)), "image/jpeg")) for i in range(2)]
    worker = WorkerProcess(live.env, log=live.folder / "worker.log").start()
    try:
        job = httpx.post(f"{live.url}/api/v1/images", files=files, headers={"Authorization": f"Bearer {token}"}).json()
        deadline = time.monotonic() + 90
        while (status := _job(live, token, job["id"])["status"]) in ("queued", "running"):
            assert time.monotonic() < deadline, f"seeding job still {status}"
            time.sleep(0.2)
        assert status == "succeeded", _job(live, token, job["id"])
    finally:
        worker.stop()


def _job(live: LiveServer, token: str, job_id: int) -> dict:  # type: ignore[type-arg]
    return httpx.get(f"{live.url}/api/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"}).json()  # type: ignore[no-any-return]


def _schema(live: LiveServer, token: str) -> dict:  # type: ignore[type-arg]
    answer = httpx.get(f"{live.url}/schema/openapi.json", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    return answer.json()  # type: ignore[no-any-return]


def _operations(schema: dict, pattern: str) -> int:  # type: ignore[type-arg]
    methods = {"get", "post", "put", "patch", "delete"}
    return sum(len(methods & set(item)) for path, item in schema["paths"].items() if re.match(pattern, path))


def _schemathesis(live: LiveServer, env: dict[str, str], *filters: str) -> tuple[int, str]:
    command = [
        str(Path(sys.executable).parent / "st"), "--config-file", str(CONFIG), "--no-color", "run",
        f"{live.url}/schema/openapi.json", "-H", f"Authorization: Bearer {env['FURRSIGHT_FUZZ_ADMIN_TOKEN']}",
        "--max-examples", EXAMPLES, "--workers", "1", "--phases", "examples,coverage,fuzzing",
        "--output-truncate", "false", *filters,
    ]  # fmt: skip
    done = subprocess.run(command, env=env, cwd=live.folder, capture_output=True, text=True, timeout=600)
    return done.returncode, done.stdout + done.stderr


def test_every_api_operation_keeps_its_contract(live: LiveServer) -> None:
    tokens = live.user_tokens({"fuzz-admin": "admin", "fuzz-accounts": "admin", "fuzz-viewer": "viewer"})
    env = dict(live.env)
    env["FURRSIGHT_FUZZ_ADMIN_TOKEN"] = tokens["fuzz-admin"]
    env["FURRSIGHT_FUZZ_ADMIN2_TOKEN"] = tokens["fuzz-accounts"]
    env["FURRSIGHT_FUZZ_VIEWER_TOKEN"] = tokens["fuzz-viewer"]
    schema = _schema(live, env["FURRSIGHT_FUZZ_ADMIN_TOKEN"])
    # the account routes last, each with its own token (see contract/schemathesis.toml)
    for filters, pattern in (
        (("--include-path-regex", "^/api/", "--exclude-path-regex", ACCOUNTS), r"^/api/(?!v1/(users|tokens))"),
        (("--include-path-regex", ACCOUNTS), ACCOUNTS),
    ):
        code, output = _schemathesis(live, env, *filters)
        tested = re.search(r"Tested: (\d+)", output)
        assert code == 0, output[-20000:] + "\n--- server log ---\n" + live.log_tail()
        assert tested and int(tested.group(1)) == _operations(schema, pattern), output[-3000:]
    assert "Traceback" not in live.log.read_text(errors="replace"), live.log_tail(80)


def test_schema_covers_the_json_api_only(live: LiveServer) -> None:
    token = live.user_token("schema-reader", "viewer")
    schema = _schema(live, token)
    paths = set(schema["paths"])
    assert {p for p in paths if not p.startswith("/api/")} <= {"/health"}
    assert {"/api/v1/images", "/api/v1/jobs/{job_id}", "/api/v1/breeds/identify"} <= paths
    operations = [(p, op) for p, item in schema["paths"].items() if p.startswith("/api/") for op in item.values()]
    undocumented = [p for p, op in operations if not {"400", "401", "403"} <= set(op["responses"])]
    assert not undocumented, f"declare responses=answers(...) on {undocumented}"
    assert httpx.get(f"{live.url}/schema/swagger").status_code in (303, 404)  # no CDN viewers


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/images/{big}"),
        ("GET", "/api/v1/images/{big}/file"),
        ("GET", "/api/v1/images/{big}/thumb"),
        ("GET", "/api/v1/images/{big}/similar"),
        ("POST", "/api/v1/images/{big}/split"),
        ("DELETE", "/api/v1/images/{big}/split"),
        ("GET", "/api/v1/jobs/{big}"),
        ("POST", "/api/v1/jobs/{big}/cancel"),
        ("POST", "/api/v1/jobs/{big}/retry"),
        ("GET", "/api/v1/scrapes/{big}/failures"),
        ("POST", "/api/v1/scrapes/{big}/retry-failed"),
        ("PATCH", "/api/v1/queries/{big}"),
        ("DELETE", "/api/v1/tokens/{big}"),
        ("GET", "/api/v1/pairs/{big}"),
        ("PATCH", "/api/v1/pairs/{big}"),
        ("GET", "/api/v1/pairs/{big}/history"),
        ("GET", "/api/v1/pairs?cursor={big}"),
        ("GET", "/api/v1/pairs?image={big}"),
        ("PATCH", "/api/v1/taxonomy/breeds/{big}"),
        ("POST", "/api/v1/taxonomy/services/{big}/merge"),
        ("GET", "/api/v1/datasets/versions/{big}"),
        ("GET", "/api/v1/datasets/versions/1/diff/{big}"),
        ("POST", "/api/v1/datasets/exports/{big}/rebuild"),
        ("POST", "/api/v1/images/{big}/takedown"),
        ("GET", "/pairs/{big}"),
        ("GET", "/api/v1/schedules/{big}"),
        ("PATCH", "/api/v1/schedules/{big}"),
        ("DELETE", "/api/v1/schedules/{big}"),
        ("POST", "/api/v1/schedules/{big}/run"),
        ("POST", "/schedules/{big}/run"),
        ("GET", "/api/v1/jobs?cursor={big}"),
        ("GET", "/api/v1/audit?cursor={big}"),
        ("GET", "/api/v1/images?near_dup_group={big}"),
        ("GET", "/api/v1/images?cursor={big}"),
        ("GET", "/api/v1/images?parent={big}"),
        ("GET", "/api/v1/breeds/images?cursor={big}"),
        ("GET", "/jobs/{big}"),
        ("GET", "/images/{big}"),
        ("GET", "/images/groups/{big}"),
    ],
)
async def test_an_integer_beyond_64_bits_is_a_400_in_words(client, method: str, path: str) -> None:  # type: ignore[no-untyped-def]
    answer = await client.request(method, path.format(big=9223372036854775809), json={})
    assert answer.status_code == 400, answer.text
    assert f"Expected `int` <= {MAX_INT}" in [d["message"] for d in answer.json()["detail"]]


async def test_the_largest_id_is_a_plain_404(client) -> None:  # type: ignore[no-untyped-def]
    answer = await client.get(f"/api/v1/images/{MAX_INT}")
    assert answer.status_code == 404
    assert answer.json() == {"error": f"image {MAX_INT} does not exist", "status": 404}


async def test_an_image_whose_file_is_gone_is_a_404(client, worker, settings) -> None:  # type: ignore[no-untyped-def]
    """A row read just before an un-split removed its file: 404 in words, not a 500."""
    from furrsight.store import FileStore
    from tests.conftest import wait_for_job

    job = (await client.post("/api/v1/images", files=[("files", ("gone.jpg", photo(8810), "image/jpeg"))])).json()
    assert (await wait_for_job(client, job["id"]))["counters"] == {"new": 1}
    image = (await client.get("/api/v1/images", params={"source": "upload", "limit": 1})).json()["items"][0]
    path = FileStore(settings.data_path).file_path(image["sha256"])
    path.unlink()
    try:
        answer = await client.get(f"/api/v1/images/{image['id']}/file")
    finally:
        path.write_bytes(photo(8810))  # the session's other tests (embedding all images) find it whole
    assert answer.status_code == 404
    assert answer.json()["error"] == f"image {image['id']}'s file is not in the store (removed meanwhile?)"


async def test_an_anonymous_api_post_is_asked_to_sign_in_but_a_session_still_needs_csrf(anon_client) -> None:  # type: ignore[no-untyped-def]
    from tests.test_auth_local import browser_login, make_user

    anonymous = await anon_client.post("/api/v1/imports", json={"path": "/nowhere"})
    assert anonymous.status_code == 401 and anonymous.json()["error"].startswith("sign in first")
    assert (await browser_login(anon_client, "api-csrf", await make_user("api-csrf", "curator"))).status_code == 303
    forged = await anon_client.post("/api/v1/imports", json={"path": "/nowhere"})
    assert forged.status_code == 403 and forged.json()["error"] == "CSRF token verification failed"
