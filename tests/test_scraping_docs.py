"""The example plugin in docs/scraping.md is complete: under 60 lines, it loads and it scrapes."""

from __future__ import annotations

import re
from pathlib import Path

from furrsight.images.tables import Source
from furrsight.settings import Settings
from tests import sites
from tests.sites import Site, loopback_settings, run_inline

DOC = Path(__file__).resolve().parent.parent / "docs" / "scraping.md"


async def test_the_documented_example_plugin_runs(migrated: Settings, tmp_path: Path) -> None:
    section = DOC.read_text().split("## Writing a plugin", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    assert len(code.splitlines()) < 60
    folder = tmp_path / "lab-plugins"
    folder.mkdir()
    (folder / "json_feed.py").write_text(code)
    with Site() as site:
        site.routes["/a.jpg"], site.routes["/b.jpg"] = sites.jpeg(64000), sites.jpeg(64001)
        images = [{"url": site.url("/a.jpg"), "alt": "before"}, {"url": site.url("/b.jpg")}]
        feed = {"entries": [{"link": "https://blog.example/max", "title": "Max", "author": "Ann", "images": images}]}
        site.routes["/feed.json"] = sites.as_json(feed)
        settings = loopback_settings(migrated, plugin_dirs=[str(folder)])
        job = await run_inline(settings, {"plugin": "json_feed", "params": {"feed_url": site.url("/feed.json"),
                                                                         "licence": "CC-BY-4.0"}})  # fmt: skip
    assert job.status == "succeeded", job
    assert job.counters["new"] == 2
    rows = await Source.select().where(Source.job == job.id)
    assert {r["group_key"] for r in rows} == {"feed:https://blog.example/max"}
    assert {r["license"] for r in rows} == {"CC-BY-4.0"} and {r["plugin"] for r in rows} == {"json_feed"}
