"""Every built-in plugin against a loopback server shaped like its service, through a real scrape."""

from __future__ import annotations

import inspect
from pathlib import Path

import msgspec

from furrsight.images.tables import Source
from furrsight.scraping.contract import Scraper
from furrsight.scraping.discovery import check_plugin, discover
from furrsight.settings import Settings
from tests import sites
from tests.images import photo
from tests.sites import Site, loopback_settings, run_inline


def test_every_plugin_meets_the_contract() -> None:
    registry = discover()
    assert {"web_page", "url_list", "openverse", "wikimedia_commons", "reddit", "searxng", "local_folder"} <= set(
        registry.scrapers
    )
    assert registry.broken == []
    for name, plugin in registry.scrapers.items():
        assert plugin.name == name and plugin.description
        assert issubclass(plugin.Params, msgspec.Struct)
        assert msgspec.json.schema(plugin.Params)["$defs"]
        assert inspect.isasyncgenfunction(type(plugin).scrape)
        assert check_plugin(type(plugin)).name == name
        source = inspect.getsource(inspect.getmodule(plugin))  # type: ignore[arg-type]
        assert "furrsight.db" not in source and "furrsight.store" not in source and "import httpx" not in source


async def _sources(job_id: int) -> list[dict]:  # type: ignore[type-arg]
    return await Source.select().where(Source.job == job_id).order_by(Source.id)


async def test_openverse_keeps_licence_and_creator(migrated: Settings) -> None:
    with Site() as site:
        sites.openverse(site, n=5, seed=62000)
        settings = loopback_settings(migrated, openverse_url=site.base)
        job = await run_inline(settings, {"plugin": "openverse", "params": {"query": "poodle bath", "max_results": 5}})
    assert job.status == "succeeded", job
    assert job.counters["found"] == 5 and job.counters["new"] == 5
    rows = await _sources(job.id)
    assert {r["license"] for r in rows} == {"cc-by-sa-4.0"}
    assert rows[0]["author"].startswith("photographer") and rows[0]["page_url"].startswith("https://flickr.example/")
    assert rows[0]["plugin"] == "openverse" and rows[0]["query"] == "poodle bath" and rows[0]["kind"] == "scrape"


async def test_wikimedia_commons_follows_continue_and_reads_extmetadata(migrated: Settings) -> None:
    with Site() as site:
        sites.mediawiki(site, n=5, seed=62100)
        settings = loopback_settings(migrated, wikimedia_url=site.url("/w/api.php"))
        job = await run_inline(settings, {"plugin": "wikimedia_commons", "params": {"query": "groomed dog"}})
    assert job.status == "succeeded", job
    assert job.counters["new"] == 5  # three API pages of two, one and two files
    rows = await _sources(job.id)
    assert {r["license"] for r in rows} == {"CC BY 4.0"}
    assert {r["author"] for r in rows} == {f"Artist {i}" for i in range(5)}  # HTML stripped
    assert rows[0]["alt_text"].startswith("A groomed dog")


async def test_reddit_gallery_images_share_one_group(migrated: Settings) -> None:
    with Site() as site:
        sites.reddit(site, seed=62200)
        settings = loopback_settings(migrated, reddit_url=site.base)
        job = await run_inline(
            settings, {"plugin": "reddit", "params": {"subreddits": ["doggrooming"], "query": "before after"}}
        )
    assert job.status == "succeeded", job
    assert job.counters["found"] == 4 and job.counters["new"] == 4
    groups: dict[str, int] = {}
    for row in await _sources(job.id):
        groups[row["group_key"]] = groups.get(row["group_key"], 0) + 1
        assert row["author"] in ("groomer1", "groomer2")
    assert groups == {"reddit:t3_gal": 3, "reddit:t3_one": 1}


async def test_searxng_json_image_search(migrated: Settings) -> None:
    with Site() as site:
        sites.searxng(site, n=3, seed=62300)
        settings = loopback_settings(migrated, searxng_url=site.base)
        job = await run_inline(settings, {"plugin": "searxng", "params": {"query": "shih tzu teddy cut"}})
    assert job.status == "succeeded", job
    assert job.counters["new"] == 3
    assert all(r["page_url"].startswith("https://blog.example/") for r in await _sources(job.id))


async def test_searxng_without_an_instance_fails_with_the_setting_named(migrated: Settings) -> None:
    job = await run_inline(loopback_settings(migrated, searxng_url=""), {"plugin": "searxng", "params": {"query": "x"}})
    assert job.status == "failed" and "scraping.searxng_url" in (job.error or "")


async def test_web_page_finds_every_lazy_load_pattern(migrated: Settings) -> None:
    with Site() as site:
        sites.lazy_site(site, seed=62400)
        settings = loopback_settings(migrated)
        job = await run_inline(settings, {"plugin": "web_page", "params": {"start_urls": [site.url("/")], "depth": 1}})
        fetched = {p for p in site.hits if p.endswith((".jpg", ".webp"))}
    assert job.status == "succeeded", job
    assert fetched == {*sites.LAZY_IMAGES, "/p2.jpg"}  # largest srcset entries only, the off-site link not followed
    rows = {r["url"].removeprefix(site.base): r for r in await _sources(job.id)}
    assert rows["/plain.jpg"]["alt_text"] == "plain img — Max after his bath"
    assert rows["/plain.jpg"]["title"] == "Grooming gallery"
    assert rows["/plain.jpg"]["license"] == "https://creativecommons.org/licenses/by/4.0/"
    assert rows["/plain.jpg"]["group_key"] == f"page:{site.url('/')}"
    assert rows["/p2.jpg"]["title"] == "Page 2"


async def test_url_list_from_csv_jsonl_and_parquet(migrated: Settings) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(migrated.import_roots[0]) / "lists"
    folder.mkdir(parents=True, exist_ok=True)
    with Site() as site:
        for i in range(6):
            site.routes[f"/u{i}.jpg"] = sites.jpeg(62500 + i)
        (folder / "a.csv").write_text(
            f"url,caption,license\n{site.url('/u0.jpg')},a poodle,CC0\n{site.url('/u1.jpg')},,\n"
        )
        (folder / "b.jsonl").write_text(f'{{"url": "{site.url("/u2.jpg")}", "caption": "jsonl dog"}}\n\n')
        pq.write_table(pa.table({"url": [site.url("/u3.jpg"), site.url("/u4.jpg")], "caption": ["pq", None]}),
                       folder / "c.parquet")  # fmt: skip
        settings = loopback_settings(migrated)
        counters, ids = {}, {}
        for name in ("a.csv", "b.jsonl", "c.parquet"):
            job = await run_inline(settings, {"plugin": "url_list", "params": {"file": str(folder / name)}})
            assert job.status == "succeeded", job
            counters[name], ids[name] = job.counters["new"], job.id
        pasted = await run_inline(settings, {"plugin": "url_list", "params": {"urls": site.url("/u5.jpg") + "\n# c\n"}})
    assert counters == {"a.csv": 2, "b.jsonl": 1, "c.parquet": 2} and pasted.counters["new"] == 1
    rows = await _sources(ids["a.csv"])
    assert sorted((r["alt_text"] or "", r["license"] or "") for r in rows) == [("", ""), ("a poodle", "CC0")]


async def test_url_list_file_outside_the_import_roots_is_refused(migrated: Settings, tmp_path: Path) -> None:
    outside = tmp_path / "list.txt"
    outside.write_text("http://127.0.0.1:1/x.jpg\n")
    job = await run_inline(loopback_settings(migrated), {"plugin": "url_list", "params": {"file": str(outside)}})
    assert job.status == "failed" and "import roots" in (job.error or "")


async def test_local_folder_groups_by_sub_folder(migrated: Settings) -> None:
    root = Path(migrated.import_roots[0]) / "local-folder-test"
    for sub, seeds in (("visit1", (62600, 62601)), ("visit2", (62602,))):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for seed in seeds:
            (root / sub / f"{seed}.jpg").write_bytes(photo(seed))
    (root / "notes.txt").write_text("not an image")
    job = await run_inline(migrated, {"plugin": "local_folder", "params": {"path": str(root)}})
    assert job.status == "succeeded", job
    assert job.counters == {"found": 3, "new": 3}
    keys = sorted(r["group_key"].rsplit("/", 1)[-1] for r in await _sources(job.id))
    assert keys == ["visit1", "visit1", "visit2"]


def test_a_scraper_subclass_is_the_whole_contract() -> None:
    class Empty(Scraper):
        name = "empty"
        description = "yields nothing"

        async def scrape(self, params, ctx):  # type: ignore[no-untyped-def]
            return
            yield

    assert check_plugin(Empty).name == "empty"
