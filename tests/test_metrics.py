"""``/metrics``: Prometheus text that prometheus_client's own parser reads, with values that match
the database after a known import, and the lock on it (admin token, or an allowed address)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from furrsight.db.setup import database_bytes
from furrsight.images.service import run_import, start_import
from furrsight.inference.onnx_runtime import OnnxModel
from furrsight.jobs.runner import run_job
from furrsight.jobs.service import counts_by_kind_status
from furrsight.jobs.tables import Job
from furrsight.metrics.exposition import exposition
from furrsight.pairs.service import status_counts
from furrsight.scraping.http import ClientConfig, FetchError, PoliteClient
from furrsight.settings import Settings
from furrsight.supervisor import free_port
from tests.conftest import ROOT, app_client, own_data, user_with_token
from tests.images import photo
from tests.sites import Site, jpeg
from tests.tiny_models import image_tower

GOOD, REFUSED = 3, 2  # the known import: three photos, an empty file and a text file
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def job_gauges(samples: Samples) -> dict[tuple[str, ...], float]:
    """``furrsight_jobs`` as {(kind, status): n}."""
    return {
        tuple(dict(k[1])[label] for label in ("kind", "status")): n
        for k, n in samples.items()
        if k[0] == "furrsight_jobs"
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
async def own(migrated: Settings, tmp_root: Path) -> AsyncIterator[Settings]:
    # a broker namespace no worker serves: what is queued stays queued, and is counted
    async with own_data(tmp_root / "metrics", migrated, broker_namespace="metrics-test") as settings:
        yield settings


def _known_files(tmp_root: Path) -> Path:
    folder = tmp_root / "imports" / "metrics-known"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(GOOD):
        (folder / f"dog-{i}.jpg").write_bytes(photo(7100 + i))
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_bytes(b"just some words, not a picture\n" * 4)
    return folder


async def test_metrics_match_the_database_after_a_known_import(own: Settings, tmp_root: Path) -> None:
    _, token = await user_with_token("admin", "metrics-admin")
    async with app_client(own, token) as client:
        before = parse((await client.get("/metrics")).text)
        job = await start_import(client.app.state.broker, own, "metrics-admin", path=str(_known_files(tmp_root)))
        run_token = (await Job.select(Job.run_token).where(Job.id == job.id).first())["run_token"]
        await run_job(job.id, run_token, run_import, own)  # the worker's code path, run here
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=")
        after = parse(response.text)
        size = database_bytes(own)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("furrsight_images_ingested_total", outcome="new") == GOOD
    assert grew("furrsight_images_ingested_total", outcome="duplicate") == 0
    assert grew("furrsight_images_refused_total", reason="empty") == 1
    assert grew("furrsight_images_refused_total", reason="not_an_image") == 1
    assert grew("furrsight_jobs_finished_total", kind="images.import", status="succeeded") == 1
    # gauges: exactly what the services count in this data directory now
    assert job_gauges(after) == await counts_by_kind_status()
    assert (
        job_gauges(after)[("images.import", "succeeded")] - job_gauges(before).get(("images.import", "succeeded"), 0)
        == 1
    )
    for status, n in (await status_counts()).items():
        assert value(after, "furrsight_pairs", status=status) == n == 0
    assert grew("furrsight_queue_depth", queue="default") == 1  # the message no worker took
    assert value(after, "furrsight_queue_depth", queue="gpu") == 0
    assert value(after, "furrsight_queue_delayed", queue="default") == 0
    assert value(after, "furrsight_queue_oldest_age_seconds", queue="default") >= 0
    assert ("furrsight_queue_oldest_age_seconds", frozenset({("queue", "gpu")})) not in after  # none waits
    assert value(after, "furrsight_broker_up") == 1
    assert value(after, "furrsight_database_bytes") == size > 0
    # the request that read the first scrape was timed under its route
    assert value(after, "furrsight_http_request_seconds_count", method="GET", route="/metrics", status="200") >= 1


async def test_metrics_answer_while_the_broker_is_down(own: Settings) -> None:
    _, token = await user_with_token("admin", "metrics-admin")
    gone = msgspec.structs.replace(own, broker_url=f"redis://127.0.0.1:{free_port()}/0")  # nothing listens
    async with app_client(gone, token) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    samples = parse(response.text)
    assert value(samples, "furrsight_broker_up") == 0
    assert not [k for k in samples if k[0].startswith("furrsight_queue_")]
    assert job_gauges(samples) == await counts_by_kind_status()


async def test_metrics_needs_an_admin(own: Settings) -> None:
    _, viewer = await user_with_token("viewer", "metrics-viewer")  # past first run in this data directory
    async with app_client(own) as anonymous:
        response = await anonymous.get("/metrics", follow_redirects=False)
        assert response.status_code == 401  # a scraper is told in words, not sent to the sign-in page
        assert "sign in first" in response.json()["error"]
    async with app_client(own, viewer) as client:
        response = await client.get("/metrics")
        assert response.status_code == 403
        assert "needs the admin role" in response.json()["error"]


async def test_metrics_not_in_the_api_schema(own: Settings) -> None:
    _, token = await user_with_token("admin", "metrics-admin")
    async with app_client(own, token) as client:
        spec = (await client.get("/schema/openapi.json")).json()
    assert "/metrics" not in spec["paths"]


class Command:
    """``python -m furrsight ARGS`` on this module's data directory, as a service would run it."""

    def __init__(self, own: Settings, log: Path, *args: str, **env: str) -> None:
        full = {**os.environ, "FURRSIGHT_DATA": own.data_dir, **env}
        full.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the command prepares its own folder
        self.log = log
        self.out = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "furrsight", *args], env=full, cwd=ROOT, stdout=self.out, stderr=self.out,
            start_new_session=True,
        )  # fmt: skip

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"exited {self.proc.returncode}: " + self.log.read_text()[-3000:])

    def stop(self) -> None:
        self.proc.terminate()  # the supervisor of `worker` stops its children with it
        self.proc.wait(60)
        self.out.close()


def wait_until_serving(server: Command, base: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{base}/health", timeout=2)
            return
        except httpx.TransportError:
            server.check()
            if time.monotonic() > deadline:
                raise TimeoutError(server.log.read_text()[-3000:]) from None
            time.sleep(0.2)


async def test_an_allowed_address_reads_metrics_from_a_real_server(own: Settings, tmp_root: Path) -> None:
    """``furrsight serve`` with ``metrics.allow`` naming loopback: no user needed for /metrics (and
    for nothing else); the values come from the multiprocess folder the command prepared."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = Command(
        own, tmp_root / "metrics-serve.log", "serve", "--host", "127.0.0.1", "--port", str(port),
        FURRSIGHT_METRICS_ALLOW="127.0.0.0/8", FURRSIGHT_BROKER_NAMESPACE="metrics-test",
    )  # fmt: skip
    try:
        wait_until_serving(server, base)
        first = httpx.get(f"{base}/metrics", timeout=10)
        assert first.status_code == 200, first.text
        samples = parse(httpx.get(f"{base}/metrics", timeout=10).text)
        assert job_gauges(samples) == await counts_by_kind_status()
        # the first scrape, as the web process wrote it to its folder and the second one read it
        assert value(samples, "furrsight_http_request_seconds_count", method="GET", route="/metrics", status="200") == 1
        assert list((Path(own.data_dir) / "run" / "metrics" / "web").glob("*.db"))
        assert httpx.get(f"{base}/api/v1/jobs", timeout=10).status_code == 401  # the allow-list opens /metrics only
    finally:
        server.stop()


async def test_web_and_worker_processes_report_together(own: Settings, tmp_root: Path) -> None:
    """An import run by a real ``furrsight worker`` (its Dramatiq child processes) is counted in
    the ``/metrics`` of a real ``furrsight serve``: two commands, one set of figures."""
    _, token = await user_with_token("admin", "metrics-admin")
    folder = tmp_root / "imports" / "metrics-together"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(GOOD):
        (folder / f"dog-{i}.jpg").write_bytes(photo(7200 + i))
    (folder / "empty.jpg").write_bytes(b"")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"FURRSIGHT_BROKER_NAMESPACE": "metrics-together"}
    worker = Command(own, tmp_root / "metrics-worker.log", "worker", **env)
    server = Command(own, tmp_root / "metrics-serve2.log", "serve", "--host", "127.0.0.1", "--port", str(port), **env)
    auth = {"authorization": f"Bearer {token}"}
    try:
        wait_until_serving(server, base)
        job = httpx.post(f"{base}/api/v1/imports", json={"path": str(folder)}, headers=auth, timeout=10).json()
        deadline = time.monotonic() + 120
        while httpx.get(f"{base}/api/v1/jobs/{job['id']}", headers=auth, timeout=10).json()["status"] != "succeeded":
            worker.check()
            assert time.monotonic() < deadline, worker.log.read_text()[-3000:]
            time.sleep(0.3)
        samples = parse(httpx.get(f"{base}/metrics", headers=auth, timeout=10).text)
    finally:
        server.stop()
        worker.stop()
    # both commands started from zero: these are exactly this import's figures
    assert value(samples, "furrsight_images_ingested_total", outcome="new") == GOOD
    assert value(samples, "furrsight_images_refused_total", reason="empty") == 1
    assert value(samples, "furrsight_jobs_finished_total", kind="images.import", status="succeeded") == 1
    assert (
        value(samples, "furrsight_http_request_seconds_count", method="POST", route="/api/v1/imports", status="202")
        == 1
    )


def test_the_example_dashboard_has_the_documented_queries() -> None:
    """docs/grafana-dashboard.json is valid JSON with one panel per query of the docs' table."""
    import json
    import re

    documented = re.findall(r"^\| [^|]+ \| `(.+)` \|$", (ROOT / "docs" / "operations.md").read_text(), re.M)
    documented = [q.replace("\\|", "|") for q in documented if "furrsight_" in q]
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(documented) == 10
    assert [e for e in exprs if e in documented] == documented


def _now(data_path: Path) -> Samples:
    """This process's event metrics, as ``/metrics`` writes them (no gauges)."""
    return parse(exposition(data_path, []).decode())


async def test_scrape_fetches_and_model_calls_are_counted(tmp_path: Path) -> None:
    before = _now(tmp_path)
    with Site(routes={"/robots.txt": (404, {}, b""), "/a.jpg": jpeg(1)}) as site:
        config = ClientConfig(user_agent="FurrSight-test/1.0", allowed_networks=["127.0.0.0/8"], per_host_delay=0.0)
        async with PoliteClient(config) as http:
            await http.get(site.url("/a.jpg"), accept=("image/",))
            await http.get(site.url("/a.jpg"), accept=("image/",))
            with pytest.raises(FetchError):
                await http.get(site.url("/missing.jpg"))
    image_tower(tmp_path / "tower.onnx")
    model = OnnxModel(tmp_path / "tower.onnx", providers=["CPUExecutionProvider"], name="metrics-tiny")
    for _ in range(3):
        model.run(np.zeros((1, 3, 32, 32), dtype=np.float32))
    after = _now(tmp_path)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("furrsight_scrape_fetches_total", result="ok") == 2
    assert grew("furrsight_scrape_fetches_total", result="http_404") == 1
    assert value(after, "furrsight_inference_seconds_count", model="metrics-tiny") == 3
    assert value(after, "furrsight_inference_seconds_bucket", model="metrics-tiny", le="+Inf") == 3


async def test_a_cancelled_queued_job_is_counted(own: Settings, tmp_root: Path) -> None:
    _, token = await user_with_token("admin", "metrics-admin")
    async with app_client(own, token) as client:
        before = parse((await client.get("/metrics")).text)
        job = await start_import(client.app.state.broker, own, "metrics-admin", path=str(_known_files(tmp_root)))
        assert (await client.post(f"/api/v1/jobs/{job.id}/cancel")).status_code < 300
        after = parse((await client.get("/metrics")).text)
    labels = {"kind": "images.import", "status": "cancelled"}
    assert (
        value(after, "furrsight_jobs_finished_total", **labels)
        - value(before, "furrsight_jobs_finished_total", **labels)
        == 1
    )
    assert job_gauges(after) == await counts_by_kind_status()
