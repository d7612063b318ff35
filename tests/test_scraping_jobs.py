"""Scrape runs: the API, forms from params, counters, skip-fetched, retry failed only, cancel."""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from furrsight.doctor import check_scrapers
from furrsight.images.ingest import FAULT_ENV
from furrsight.images.tables import Source
from furrsight.jobs.service import cancel_job, get_job
from furrsight.scraping.handoff import staging_folder
from furrsight.scraping.service import failures, list_scrapers, retry_params
from furrsight.settings import Settings
from tests import corpus, sites
from tests.conftest import WorkerProcess, wait_for_job
from tests.images import photo
from tests.sites import Site, loopback_settings, run_inline, start_inline


async def test_scrapers_api_lists_plugins_with_their_params_schema(client: AsyncTestClient) -> None:
    answer = (await client.get("/api/v1/scrapers")).json()
    by_name = {s["name"]: s for s in answer["items"]}
    web = by_name["web_page"]["params"]
    assert web["required"] == ["start_urls"]
    assert web["properties"]["depth"]["type"] == "integer"
    assert by_name["openverse"]["query_driven"] and not by_name["url_list"]["query_driven"]
    assert answer["broken"] == []


async def test_scrape_with_a_bad_field_is_a_400_naming_it(client: AsyncTestClient) -> None:
    bad = await client.post(
        "/api/v1/scrapes", json={"plugin": "web_page", "params": {"start_urls": ["x"], "depth": "deep"}}
    )
    assert bad.status_code == 400 and "params.depth" in bad.json()["error"]
    missing = await client.post("/api/v1/scrapes", json={"plugin": "openverse", "params": {}})
    assert missing.status_code == 400 and "params.query" in missing.json()["error"]
    unknown = await client.post("/api/v1/scrapes", json={"plugin": "nope", "params": {}})
    assert unknown.status_code == 400 and "plugin" in unknown.json()["error"]
    extra = await client.post("/api/v1/scrapes", json={"plugin": "url_list", "params": {"colour": "red"}})
    assert extra.status_code == 400 and "params.colour" in extra.json()["error"]


async def test_scrape_api_runs_a_job_on_the_worker(
    client: AsyncTestClient, worker: WorkerProcess, settings: Settings
) -> None:
    root = Path(settings.import_roots[0]) / "scrape-api"
    root.mkdir(parents=True, exist_ok=True)
    for seed in (63000, 63001):
        (root / f"{seed}.jpg").write_bytes(photo(seed))
    response = await client.post("/api/v1/scrapes", json={"plugin": "local_folder", "params": {"path": str(root)}})
    assert response.status_code == 202 and response.headers["location"].startswith("/api/v1/jobs/")
    done = await wait_for_job(client, response.json()["id"])
    assert done["status"] == "succeeded", done
    assert done["counters"]["new"] == 2
    run_page = await client.get(f"/scrapes/{done['id']}")
    assert run_page.status_code == 200 and "Failures (0)" in run_page.text


async def test_scrape_page_renders_a_form_per_plugin_from_its_params(client: AsyncTestClient) -> None:
    picker = (await client.get("/scrape")).text  # a plugin first, with its description; then its form alone
    assert 'href="/scrape?plugin=web_page"' in picker and 'name="start_urls"' not in picker
    page = (await client.get("/scrape?plugin=web_page")).text
    assert 'action="/scrape/web_page"' in page and 'name="start_urls"' in page and 'name="depth"' in page
    assert 'action="/scrape/url_list"' not in page
    assert 'type="file" name="file"' in (await client.get("/scrape?plugin=url_list")).text  # its list upload
    assert 'name="over_queries"' in (await client.get("/scrape?plugin=openverse")).text
    assert (await client.get("/scrape?plugin=nope")).status_code == 404


async def test_counters_failures_skip_and_retry_failed_only(migrated: Settings) -> None:
    robots = (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n")
    with Site(routes={"/robots.txt": robots}) as site:
        for i in range(3):
            site.routes[f"/ok{i}.jpg"] = sites.jpeg(63100 + i)
        site.routes["/dup.jpg"] = sites.jpeg(63100)
        site.routes["/notimage.jpg"] = (200, {"Content-Type": "image/jpeg"}, b"this is not a jpeg")
        urls = [site.url(p) for p in ("/ok0.jpg", "/ok1.jpg", "/ok2.jpg", "/dup.jpg", "/missing.jpg",
                                       "/notimage.jpg", "/private/x.jpg", "/ok0.jpg")]  # fmt: skip
        settings = loopback_settings(migrated)
        params = {"plugin": "url_list", "params": {"urls": "\n".join(urls)}}
        first = await run_inline(settings, params)
        assert first.status == "succeeded", first
        assert first.counters == {"found": 8, "skipped": 1, "fetched": 5, "new": 3, "duplicate": 1, "robots": 1,
                                  "failed": 2, "failed:http_404": 1, "failed:not_an_image": 1}  # fmt: skip
        assert (first.progress_done, first.progress_total) == (8, 8)
        listed = {f.url.removeprefix(site.base): f for f in await failures(first.id)}
        assert set(listed) == {"/missing.jpg", "/notimage.jpg", "/private/x.jpg"}
        assert listed["/private/x.jpg"].status == "robots"

        again = await run_inline(settings, params)  # fetched URLs are skipped on the next run
        assert again.counters["skipped"] == 5 and "new" not in again.counters

        site.routes["/missing.jpg"] = sites.jpeg(63110)  # the server is fixed
        hits = len(site.hits)
        retry = await run_inline(settings, retry_params(first.params, first.id))
        assert retry.status == "succeeded", retry
        assert retry.counters["found"] == 3 and retry.counters["new"] == 1
        assert all("/ok" not in h for h in site.hits[hits:])  # only the failures were re-fetched
        assert {f.url.removeprefix(site.base) for f in await failures(retry.id)} == {"/notimage.jpg", "/private/x.jpg"}


async def test_retry_failed_only_api(client: AsyncTestClient, migrated: Settings) -> None:
    job = await run_inline(
        loopback_settings(migrated), {"plugin": "url_list", "params": {"urls": "http://127.0.0.1:9/a.jpg"}}
    )
    assert job.counters["failed"] == 1
    listed = (await client.get(f"/api/v1/scrapes/{job.id}/failures")).json()
    assert listed[0]["reason"] == "connection"
    response = await client.post(f"/api/v1/scrapes/{job.id}/retry-failed")
    assert response.status_code == 202 and response.json()["params"]["retry_of"] == job.id


async def test_a_scrape_can_be_cancelled(migrated: Settings) -> None:
    """One fetch at a time; the first is held until the cancel is asked for, then answers after
    0.6 s (longer than the runner waits between checks): the run stops with that one request, whose
    candidate is cancelled in the air (not counted), and no other request goes out."""
    asked = threading.Event()

    def held(handler: BaseHTTPRequestHandler) -> None:
        asked.wait(30)
        sites.slow(0.6)(handler)

    with Site() as site:
        for i in range(40):
            site.streams[f"/slow{i}.jpg"] = held
        settings = loopback_settings(migrated, concurrency=1, read_timeout=30.0)
        urls = "\n".join(site.url(f"/slow{i}.jpg") for i in range(40))
        job_id, task = await start_inline(settings, {"plugin": "url_list", "params": {"urls": urls}})
        for _ in range(300):
            if any(h.startswith("/slow") for h in site.hits):
                break
            await asyncio.sleep(0.05)
        await cancel_job(job_id)
        asked.set()
        await asyncio.wait_for(task, 30)
        job = await get_job(job_id)
    assert job.status == "cancelled"
    assert [h for h in site.hits if h.startswith("/slow")] == ["/slow0.jpg"]
    assert job.counters == {"found": 40}


async def test_many_candidates_go_through_the_process_pool(migrated: Settings) -> None:
    with Site() as site:
        for i in range(60):
            site.routes[f"/p{i}.jpg"] = sites.jpeg(63200 + i)
        settings = loopback_settings(migrated, processes=2)
        urls = "\n".join(site.url(f"/p{i}.jpg") for i in range(60))
        job = await run_inline(settings, {"plugin": "url_list", "params": {"urls": urls}})
    assert job.status == "succeeded", job
    assert job.counters["new"] == 60 and (job.progress_done, job.progress_total) == (60, 60)
    assert (await get_job(job.id)).counters == job.counters
    assert not staging_folder(settings, job.id).exists()  # the bodies' staging folder is gone


async def test_bodies_go_to_ingest_as_staged_files_in_batches(migrated: Settings, tmp_path: Path) -> None:
    """Bodies that arrive together share a trip to a worker (at most eight); each file's outcome
    comes back to its own candidate, a refused one (not an image) included."""
    from furrsight.images.ingest import FILES_PER_BATCH as BATCH
    from furrsight.images.ingest import Ingestor
    from furrsight.images.schemas import Provenance
    from furrsight.scraping.handoff import Handoff
    from furrsight.store import FileStore

    settings = loopback_settings(migrated)
    ingester = Ingestor(FileStore(settings.data_path), settings, processes=1)
    handoff = Handoff(ingester, tmp_path / "staging")
    bodies = [sites.jpeg(63400 + i)[2] for i in range(11)] + [b"<html>not an image</html>"]
    results = await asyncio.gather(*(handoff.ingest(body, Provenance(kind="scrape")) for body in bodies))
    await handoff.aclose()
    await ingester.aclose()
    assert [r.outcome for r in results] == ["new"] * 11 + ["refused"]
    assert results[-1].reason == "not_an_image"
    assert handoff.trip_sizes == [BATCH, len(bodies) - BATCH]
    assert not (tmp_path / "staging").exists()


def test_a_broken_plugin_is_reported_not_fatal(tmp_path: Path, settings: Settings) -> None:
    import msgspec

    folder = tmp_path / "lab-plugins"
    folder.mkdir()
    (folder / "broken_one.py").write_text("import not_a_module_anywhere\n")
    (folder / "no_scrape.py").write_text(
        "from furrsight.scraping.contract import Scraper\n"
        "class NoScrape(Scraper):\n    name = 'no_scrape'\n    description = 'forgot scrape'\n"
    )
    (folder / "fine.py").write_text(
        "from furrsight.scraping.contract import Candidate, Scraper\n"
        "class Fine(Scraper):\n    name = 'fine'\n    description = 'one candidate'\n"
        "    async def scrape(self, params, ctx):\n        yield Candidate(url='http://example.org/a.jpg')\n"
    )
    lab = msgspec.structs.replace(
        settings, scraping=msgspec.structs.replace(settings.scraping, plugin_dirs=[str(folder)])
    )
    listed = list_scrapers(lab)
    errors = {b.source.rsplit("/", 1)[-1]: b.error for b in listed.broken}
    assert "not_a_module_anywhere" in errors["broken_one.py"]
    assert "scrape is not an async generator" in errors["no_scrape.py"]
    assert {"fine", "url_list", "web_page"} <= {s.name for s in listed.items}  # the others still load
    check = check_scrapers(lab)
    assert not check.ok and not check.required and "broken_one.py" in check.detail
    assert check_scrapers(settings).ok


async def test_over_queries_runs_the_plugin_once_per_enabled_query(migrated: Settings) -> None:
    from furrsight.queries.service import add_queries, list_queries, set_enabled

    mine = ["corgi de-shedding before after zq1", "corgi bath glow up zq2", "corgi nail trim zq3"]
    await add_queries([{"text": t, "breed": "corgi"} for t in mine], "manual")
    ids = {q.text: q.id for q in await list_queries() if q.text in mine}
    await set_enabled(ids[mine[2]], False)

    def search(query: dict, s: Site) -> sites.Answer:  # type: ignore[type-arg]
        q = query["q"][0]
        path = f"/img/{abs(hash(q))}.jpg"
        s.routes[path] = sites.jpeg(65000 + sum(map(ord, q)))
        item = {"url": s.url(path), "title": q, "creator": "c", "license": "cc0", "foreign_landing_url": "https://x"}
        return sites.as_json({"page_count": 1, "results": [item]})

    with Site(routes={"/v1/images/": search}) as site:
        settings = loopback_settings(migrated, openverse_url=site.base)
        params = {"plugin": "openverse", "params": {"max_results": 1}, "over_queries": True}
        job = await run_inline(settings, params)
    assert job.status == "succeeded", job
    queries = {r["query"] for r in await Source.select(Source.query).where(Source.job == job.id)}
    assert {mine[0], mine[1]} <= queries and mine[2] not in queries
    counts = {q.text: q.images for q in await list_queries() if q.text in mine}
    assert counts[mine[0]] >= 1 and counts[mine[1]] >= 1 and counts[mine[2]] == 0


async def test_the_form_posts_a_scrape_with_an_uploaded_list(client: AsyncTestClient, settings: Settings) -> None:
    files = {"file": ("urls.csv", b"url,caption\nhttp://192.0.2.1/a.jpg,a dog\n", "text/csv")}
    response = await client.post(
        "/scrape/url_list", data={"urls": "", "url_column": "url"}, files=files, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    job_id = int(response.headers["location"].rsplit("/", 1)[-1])
    job = await get_job(job_id)
    staged = Path(job.params["params"]["file"])
    assert staged.is_relative_to(settings.data_path / "incoming") and staged.read_bytes().startswith(b"url,caption")
    bad = await client.post("/scrape/web_page", data={"start_urls": "http://x.example/", "depth": "two"})
    assert bad.status_code == 400 and "params.depth" in bad.text


async def test_a_candidate_that_raises_is_counted_failed_and_the_run_goes_on(
    migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception nobody planned for while ingesting one candidate (here: injected while a
    collage's panel goes in) fails that candidate, with its reason, not the run."""
    with Site() as site:
        site.routes["/collage.jpg"] = (200, {"Content-Type": "image/jpeg"}, corpus.side_by_side(63300))
        site.routes["/plain.jpg"] = sites.jpeg(63301)
        urls = "\n".join(site.url(p) for p in ("/collage.jpg", "/plain.jpg"))
        monkeypatch.setenv(FAULT_ENV, "raise:child.check_bytes")
        job = await run_inline(loopback_settings(migrated), {"plugin": "url_list", "params": {"urls": urls}})
    assert job.status == "succeeded", job
    assert job.counters == {"found": 2, "fetched": 2, "new": 1, "failed": 1, "failed:unexpected": 1}
    [failure] = await failures(job.id)
    assert failure.url.endswith("/collage.jpg") and failure.reason == "unexpected"
    assert failure.message == "InjectedFault: injected fault before child.check_bytes"


async def test_a_page_with_a_bogus_charset_is_still_scraped(migrated: Settings) -> None:
    page = "<html><head><title>Toilettage</title></head><body><img src='/a.jpg' alt='après'></body></html>"
    with Site() as site:
        site.routes["/"] = (200, {"Content-Type": "text/html; charset=x-no-such-charset"}, page.encode())
        site.routes["/a.jpg"] = sites.jpeg(63310)
        params = {"plugin": "web_page", "params": {"start_urls": [site.url("/")]}}
        job = await run_inline(loopback_settings(migrated), params)
    assert job.status == "succeeded", job
    assert job.counters["new"] == 1
    rows = await Source.select(Source.title, Source.alt_text).where(Source.job == job.id)
    assert rows == [{"title": "Toilettage", "alt_text": "après"}]
