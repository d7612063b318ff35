"""Every built-in plugin against answers recorded from its real service (tests/recorded/), served
from loopback as recorded, through the plugin alone and through a real scrape job."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import msgspec

from furrsight.images.tables import Source
from furrsight.scraping.contract import Scraper
from furrsight.scraping.discovery import check_plugin, discover
from furrsight.scraping.tables import ScrapeUrl
from furrsight.settings import Settings
from tests import sites
from tests.conftest import app_client, user_with_token
from tests.images import photo
from tests.sites import Site, collect, json_answer, loopback_settings, recorded, relocated, robots, run_inline

UA = "FurrSight/0.1 (+https://github.com/furrsight; dataset research crawler)"


def test_every_plugin_meets_the_contract() -> None:
    registry = discover()
    assert {"web_page", "url_list", "openverse", "wikimedia_commons", "reddit", "searxng", "local_folder"} <= set(
        registry.scrapers
    )
    assert registry.broken == []
    for name, plugin in registry.scrapers.items():
        assert plugin.name == name and plugin.description and plugin.rules
        assert issubclass(plugin.Params, msgspec.Struct)
        assert msgspec.json.schema(plugin.Params)["$defs"]
        assert inspect.isasyncgenfunction(type(plugin).scrape)
        assert check_plugin(type(plugin)).name == name
        source = inspect.getsource(inspect.getmodule(plugin))  # type: ignore[arg-type]
        assert "furrsight.db" not in source and "furrsight.store" not in source and "import httpx" not in source


async def _sources(job_id: int) -> list[dict]:  # type: ignore[type-arg]
    return await Source.select().where(Source.job == job_id).order_by(Source.id)


# -- Openverse ---------------------------------------------------------------------------------------
def openverse_api(site: Site, pages: dict[int, Any], token: dict[str, Any] | None = None) -> None:
    """Openverse's /v1/images/ answering the recorded pages; anonymous page_size over 20 gets the
    recorded 401, as Openverse's serializer does; /v1/auth_tokens/token/ the documented token."""

    def search(query: dict[str, list[str]], s: Site) -> sites.Answer:
        authed = (s.requests[-1].headers.get("authorization") or "").startswith("Bearer ")
        if int(query["page_size"][0]) > 20 and not authed:
            return json_answer(recorded("openverse", "page_size_over_20_anonymous_401.json"), 401)
        return json_answer(pages[int(query["page"][0])])

    site.routes["/v1/images/"] = search
    if token is not None:
        site.routes["/v1/auth_tokens/token/"] = json_answer(token)


async def test_openverse_scrapes_anonymously_within_20_a_page(migrated: Settings) -> None:
    with Site() as api, Site() as flickr:
        pages = {n: relocated(recorded("openverse", f), flickr, ("live.staticflickr.com",), 81000 + 10 * n)
                 for n, f in ((1, "search_dog_page1.json"), (2, "search_cat_page2.json"))}  # fmt: skip
        openverse_api(api, {**pages, 3: recorded("openverse", "search_no_results.json")})
        settings = loopback_settings(migrated, openverse_url=api.base)
        job = await run_inline(settings, {"plugin": "openverse", "params": {"query": "dog"}})  # the defaults
        asked = [(r.query["page"], r.query["page_size"], r.headers.get("authorization")) for r in api.requests]
    assert job.status == "succeeded", job
    assert asked == [(["1"], ["20"], None), (["2"], ["20"], None), (["3"], ["20"], None)]  # within the anonymous 20
    assert job.counters["found"] == 11 and job.counters["new"] == 11
    rows = {r["page_url"].removeprefix("https://www.flickr.com/photos/"): r for r in await _sources(job.id)}
    assert [(rows[p]["title"], rows[p]["author"], rows[p]["license"]) for p in (
        "48453366@N08/8728178651", "18090920@N07/6114260088", "91501748@N07/25989424636", "21394564@N04/4375598499")
    ] == [("A cute Dog 4", "Chen Vision", "cc-by-nc-2.0"), ("Dog", "Sean MacEntee", "cc-by-2.0"),
          ("dog", "Mathias Appel", "cc0"), ("Cats in Milano", "br1dotcom", "cc-by-2.0")]  # fmt: skip
    cat = rows["19951543@N00/169329862"]
    assert cat["title"] == "Cat" and cat["alt_text"].startswith("2006, cats, colour, home, animal, cat")
    assert cat["url"] == flickr.url("/live.staticflickr.com/51/169329862_b3b297c7a9_b.jpg")
    assert {r["group_key"] for r in rows.values()} == {None} and {r["query"] for r in rows.values()} == {"dog"}


async def test_openverse_with_a_registered_application_fetches_a_token_once_and_renews_it(migrated: Settings) -> None:
    token = recorded("openverse", "auth_token.json")
    page = recorded("openverse", "search_dog_page1.json")
    with Site() as api:
        openverse_api(api, {1: page}, token)
        creds = {"client_id": "ov-id", "client_secret": "ov-secret-value"}
        first, _, _ = await collect("openverse", {"query": "dog", "max_results": 6}, settings=creds,
                                    base_urls={"openverse": api.base})  # fmt: skip
        second, _, _ = await collect("openverse", {"query": "dog", "max_results": 3}, settings=creds,
                                     base_urls={"openverse": api.base})  # fmt: skip
        revoked = {"n": 0}

        def once_refused(query: dict[str, list[str]], s: Site) -> sites.Answer:
            revoked["n"] += 1
            return json_answer({"detail": "Authentication credentials were not provided."}, 401) \
                if revoked["n"] == 1 else json_answer(page)  # fmt: skip

        api.routes["/v1/images/"] = once_refused
        third, _, _ = await collect("openverse", {"query": "dog", "max_results": 2}, settings=creds,
                                    base_urls={"openverse": api.base})  # fmt: skip
        grants = api.requests_to("/v1/auth_tokens/token/")
        searches = api.requests_to("/v1/images/")
    assert [len(first), len(second), len(third)] == [6, 3, 2]
    assert len(grants) == 2  # one token for both runs, a new one after the 401
    assert grants[0].method == "POST" and grants[0].query == {
        "grant_type": ["client_credentials"],
        "client_id": ["ov-id"],
        "client_secret": ["ov-secret-value"],
    }
    assert {r.headers["authorization"] for r in searches} == {f"Bearer {token['access_token']}"}
    assert searches[0].query["page_size"] == ["6"]
    assert first[0].license_terms == {"license": "by-nc", "license_version": "2.0",
                                      "license_url": "https://creativecommons.org/licenses/by-nc/2.0/"}  # fmt: skip


async def test_openverse_refused_credentials_name_the_settings(migrated: Settings) -> None:
    with Site() as api:
        openverse_api(api, {1: recorded("openverse", "search_dog_page1.json")})
        api.routes["/v1/auth_tokens/token/"] = json_answer({"error": "invalid_client"}, 401)
        settings = loopback_settings(migrated, openverse_url=api.base, openverse_client_id="x",
                                     openverse_client_secret="wrong-secret")  # fmt: skip
        job = await run_inline(settings, {"plugin": "openverse", "params": {"query": "dog"}})
    assert job.status == "failed"
    assert "scraping.openverse_client_id and scraping.openverse_client_secret" in (job.error or "")
    assert "wrong-secret" not in (job.error or "")


async def test_openverse_throttled_says_the_budget_is_spent(migrated: Settings) -> None:
    with Site() as api:
        headers = {
            "x-ratelimit-limit-anon_burst": "5/hour",
            "x-ratelimit-available-anon_burst": "3",
            "x-ratelimit-limit-anon_sustained": "100/day",
            "x-ratelimit-available-anon_sustained": "98",
        }
        api.routes["/v1/images/"] = json_answer(recorded("openverse", "throttled_429.json"), 429, headers)
        job = await run_inline(loopback_settings(migrated, openverse_url=api.base),
                               {"plugin": "openverse", "params": {"query": "dog"}})  # fmt: skip
        tries = len(api.requests_to("/v1/images/"))
    assert job.status == "failed" and tries == 2  # one retry (the setting), then the plain reason
    assert "answered 429: Openverse's request budget is spent for now" in (job.error or "")
    assert "scraping.openverse_client_id" in (job.error or "")


async def test_openverse_renews_a_token_about_to_expire(migrated: Settings) -> None:
    page = recorded("openverse", "search_dog_page1.json")
    issued = {"n": 0}

    def short_lived(query: dict[str, list[str]], s: Site) -> sites.Answer:
        issued["n"] += 1  # not a recorded answer: a token that expires within the renewal margin
        return json_answer({"access_token": f"t{issued['n']}", "expires_in": 30, "token_type": "Bearer"})

    with Site() as api:
        openverse_api(api, {1: page, 2: page})
        api.routes["/v1/auth_tokens/token/"] = short_lived
        creds = {"client_id": "ov-short", "client_secret": "s"}
        found, _, _ = await collect("openverse", {"query": "dog", "max_results": 12}, settings=creds,
                                    base_urls={"openverse": api.base})  # fmt: skip
        used = [r.headers["authorization"] for r in api.requests_to("/v1/images/")]
    assert len(found) == 12 and used == ["Bearer t1", "Bearer t2"]  # renewed before the second page


# -- Reddit --------------------------------------------------------------------------------------------
REDDIT_MEDIA = ("i.redd.it", "preview.redd.it", "external-preview.redd.it")


def reddit_api(site: Site, images: Site, seed: int) -> None:
    """Reddit: robots.txt turning every crawler away, the token endpoint, and two listing pages."""
    page1 = relocated(recorded("reddit", "popular_hot_page1.json"), images, REDDIT_MEDIA, seed)
    page2 = relocated(recorded("reddit", "crossposts_page2.json"), images, REDDIT_MEDIA, seed + 100)
    limits = {"x-ratelimit-remaining": "997.0", "x-ratelimit-reset": "15", "x-ratelimit-used": "3"}

    def listing(query: dict[str, list[str]], s: Site) -> sites.Answer:
        return json_answer(page2 if query.get("after") == ["t3_1skbyfv"] else page1, headers=limits)

    site.routes["/robots.txt"] = robots(recorded("reddit", "robots.txt").decode())
    site.routes["/api/v1/access_token"] = json_answer(recorded("reddit", "access_token_client_credentials.json"))
    site.routes["/r/popular/hot"] = listing
    site.routes["/r/popular/new"] = listing
    site.routes["/r/doggrooming/search"] = json_answer({"kind": "Listing", "data": {"after": None, "children": []}})


def reddit_settings(migrated: Settings, site: Site, **extra: Any) -> Settings:
    return loopback_settings(  # type: ignore[no-any-return]
        migrated, reddit_url=site.base, reddit_api_url=site.base, reddit_client_id="app-id",
        reddit_client_secret="app-secret-value", reddit_username="furrsight_lab", **extra,
    )  # fmt: skip


async def test_reddit_takes_every_gallery_crossposted_parent_and_preview(migrated: Settings) -> None:
    with Site() as api, Site() as media:
        reddit_api(api, media, seed=82000)
        settings = reddit_settings(migrated, api)
        job = await run_inline(settings, {"plugin": "reddit", "params": {"subreddits": ["popular"], "sort": "hot"}})
        grants, listings = api.requests_to("/api/v1/access_token"), api.requests_to("/r/popular/hot")
    assert job.status == "succeeded", job
    assert job.counters["found"] == 27 and job.counters["new"] == 27
    assert job.counters["no_images:video"] == 1 and job.counters["no_images:text"] == 2
    rows = await _sources(job.id)
    groups: dict[str, int] = {}
    for row in rows:
        groups[row["group_key"]] = groups.get(row["group_key"], 0) + 1
    assert groups == {"reddit:t3_1skii2f": 1, "reddit:t3_1skh6dk": 2, "reddit:t3_1skbgql": 1,
                      "reddit:t3_1skf644": 20, "reddit:t3_1tvs5jj": 2, "reddit:t3_jowv2r": 1}  # fmt: skip
    crossposted = [r for r in rows if r["group_key"] == "reddit:t3_1skf644"]
    recorded_gallery = recorded("reddit", "crossposts_page2.json")["data"]["children"][0]["data"]
    parent = recorded_gallery["crosspost_parent_list"][0]
    expected = [parent["media_metadata"][i["media_id"]]["s"]["u"].split("?")[0].removeprefix("https://")
                for i in parent["gallery_data"]["items"]]  # fmt: skip
    assert sorted(r["url"].removeprefix(media.base + "/").split("?")[0] for r in crossposted) == sorted(expected)
    assert crossposted[0]["page_url"] == f"{api.base}{parent['permalink']}" and crossposted[0]["author"] == parent[
        "author"]  # fmt: skip
    escaped = next(r for r in rows if r["group_key"] == "reddit:t3_jowv2r")
    assert "&amp;" not in escaped["url"] and escaped["url"].endswith(
        "?auto=webp&s=ed716ceb9f991838d30e2c9f707d028b8648753a"
    )
    assert len(grants) == 1 and grants[0].query == {"grant_type": ["client_credentials"]}
    assert grants[0].headers["authorization"] == "Basic YXBwLWlkOmFwcC1zZWNyZXQtdmFsdWU="  # app-id:app-secret-value
    assert [r.query.get("after") for r in listings] == [None, ["t3_1skbyfv"]]
    assert {r.headers["authorization"] for r in listings} == {"Bearer <ACCESS_TOKEN>"}
    assert re.fullmatch(r"server:furrsight:\S+ \(by /u/furrsight_lab\)", listings[0].headers["user-agent"])
    assert listings[0].query["raw_json"] == ["1"] and listings[0].query["limit"] == ["100"]
    assert "/robots.txt" not in api.hits  # the API is used on its own terms, not robots.txt's


async def test_reddit_default_sort_is_a_listing_reddit_has(migrated: Settings) -> None:
    with Site() as api, Site() as media:
        reddit_api(api, media, seed=82500)
        found, counters, said = await collect(
            "reddit", {"subreddits": ["popular"], "max_posts": 3},
            settings={"client_id": "a", "client_secret": "b", "api_url": api.base}, base_urls={"reddit": api.base},
        )  # fmt: skip
        await collect("reddit", {"subreddits": ["doggrooming"], "query": "teddy bear cut"},
                      settings={"client_id": "a", "client_secret": "b", "api_url": api.base},
                      base_urls={"reddit": api.base})  # fmt: skip
        searched = api.requests_to("/r/doggrooming/search")
    assert [r.path for r in api.requests if r.path.startswith("/r/popular")] == ["/r/popular/new"]
    assert len(found) == 3 and counters == {"no_images:video": 1}  # the first 3 posts: video, image, 2-image gallery
    assert said[-1] == "r/popular: 3 posts, 3 images; posts without images: videos 1"
    assert searched[0].query["sort"] == ["relevance"] and searched[0].query["restrict_sr"] == ["1"]


async def test_reddit_crossposted_gallery_keeps_its_order_and_captions(migrated: Settings) -> None:
    with Site() as api, Site() as media:
        reddit_api(api, media, seed=82700)
        found, _, _ = await collect(
            "reddit", {"subreddits": ["popular"], "sort": "hot"},
            settings={"client_id": "a", "client_secret": "b", "api_url": api.base}, base_urls={"reddit": api.base},
        )  # fmt: skip
    parent = recorded("reddit", "crossposts_page2.json")["data"]["children"][0]["data"]["crosspost_parent_list"][0]
    items = parent["gallery_data"]["items"]
    gallery = [c for c in found if c.group_key == "reddit:t3_1skf644"]
    assert [c.url.removeprefix(media.base + "/") for c in gallery] == [
        parent["media_metadata"][i["media_id"]]["s"]["u"].removeprefix("https://") for i in items
    ]
    assert [c.alt_text for c in gallery] == [i.get("caption") or None for i in items]
    assert {c.title for c in gallery} == {parent["title"]}


async def test_reddit_without_credentials_is_refused_plainly(migrated: Settings) -> None:
    _, token = await user_with_token("admin")
    async with app_client(migrated, token) as client:
        page = (await client.get("/scrape?plugin=reddit")).text  # the plugin's own page
        assert "credentials missing" in (await client.get("/scrape")).text  # and already in the picker
        refused = await client.post("/api/v1/scrapes", json={"plugin": "reddit", "params": {}})
    card = page[page.index('id="plugin-reddit"') :].split('<div class="card"', 1)[0]
    assert "Credentials missing" in card and "cannot run" in card and "disabled" in card
    assert "scraping.reddit_client_id" in card and "FURRSIGHT_SCRAPING_REDDIT_CLIENT_SECRET" in card
    assert refused.status_code == 400
    assert "scraping.reddit_client_id and scraping.reddit_client_secret" in refused.json()["error"]
    half = loopback_settings(migrated, reddit_client_id="app-id")
    both = loopback_settings(migrated, reddit_client_id="app-id", reddit_client_secret="app-secret-value")
    async with app_client(half, token) as client:
        no_secret = await client.post("/api/v1/scrapes", json={"plugin": "reddit", "params": {}})
    async with app_client(both, token) as client:
        search_sort = await client.post("/api/v1/scrapes", json={"plugin": "reddit", "params": {"sort": "relevance"}})
    assert no_secret.status_code == 400 and no_secret.json()["error"].endswith(
        "set scraping.reddit_client_secret (see docs/scraping.md)"
    )
    assert search_sort.status_code == 400  # relevance sorts a search; a listing has hot, new, top, rising…
    assert "sort 'relevance' is not one of hot, new, top, rising, controversial" in search_sort.json()["error"]


# -- Wikimedia Commons ---------------------------------------------------------------------------------
def commons_api(site: Site, images: Site, seed: int, maxlag_first: bool = False) -> None:
    """MediaWiki's api.php under Wikimedia's robots.txt (``Disallow: /w/``), answering three recorded
    batches in the order their ``continue`` values chain them."""
    answers = [relocated(recorded("wikimedia_commons", f), images, ("upload.wikimedia.org",), seed + 50 * i)
               for i, f in enumerate(("allimages_batch1.json", "allimages_batch2.json",
                                      "search_batch3_constructed.json"))]  # fmt: skip
    lagged = {"pending": maxlag_first}

    def api(query: dict[str, list[str]], s: Site) -> sites.Answer:
        if lagged["pending"]:
            lagged["pending"] = False
            return json_answer(recorded("wikimedia_commons", "maxlag_error.json"),
                               headers={"Retry-After": "1", "X-Database-Lag": "7"})  # fmt: skip
        for answer in answers[:-1]:
            if query.get("gaicontinue") == [answer["continue"]["gaicontinue"]]:
                return json_answer(answers[answers.index(answer) + 1])
        return json_answer(answers[0])

    site.routes["/robots.txt"] = robots(recorded("wikimedia_commons", "robots.txt").decode())
    site.routes["/w/api.php"] = api


async def test_commons_follows_continuation_and_keeps_visible_text(migrated: Settings) -> None:
    with Site() as wiki, Site() as upload:
        commons_api(wiki, upload, seed=83000)
        settings = loopback_settings(migrated, wikimedia_url=wiki.url("/w/api.php"), contact="lab@example.org")
        job = await run_inline(settings, {"plugin": "wikimedia_commons", "params": {"query": "groomed poodle"}})
        calls = wiki.requests_to("/w/api.php")
    assert job.status == "succeeded", job
    assert job.counters["found"] == 6 and job.counters["new"] == 6
    rows = sorted(await _sources(job.id), key=lambda r: r["url"])
    assert sorted((r["title"], r["author"], r["license"]) for r in rows) == sorted(
        [
            ("Minchinmavida Volcano", "The original uploader was Elvezio at Italian Wikipedia.", "Public domain"),
            ("2002-04-02 Hauptstraße, Heidelberg IMG 0404", "Eckhard Henkel", "CC BY-SA 3.0 de"),
            ("TorreFerrer", "Dulceld69", "CC BY-SA 3.0 es"),
            ("Vom Nordpol zum Aequator BHL36881774", "Alfred Brehm", "Public domain"),
            ("Night in Nice", "Edvard Munch", "Public domain"),
            (
                "German: Askaris, die mit eingesetzt waren Askaris used during the operation",
                "Uploader",
                "Public domain",
            ),
        ]
    )
    heidelberg = next(r for r in rows if r["license"] == "CC BY-SA 3.0 de")
    assert heidelberg["alt_text"] == (
        "Blick in die Hauptstraße in Richtung Westen, etwas westlich des Universitätsplatzes, Heidelberg"
    )
    assert heidelberg["page_url"] == (
        "https://commons.wikimedia.org/wiki/File:2002-04-02_Hauptstra%C3%9Fe,_Heidelberg_IMG_0404.jpg"
    )
    record = (
        await ScrapeUrl.select(ScrapeUrl.candidate).where(ScrapeUrl.url == heidelberg["url"]).output(load_json=True)
    )
    assert record[0]["candidate"]["license_terms"] == {  # the licence fields as given, HTML and all
        "LicenseShortName": "CC BY-SA 3.0 de", "LicenseUrl": "https://creativecommons.org/licenses/by-sa/3.0/de/deed.en",
        "AttributionRequired": "true", "Credit": '<span class="int-own-work" lang="en">Own work</span>',
    }  # fmt: skip
    assert [c.query.get("gaicontinue") for c in calls] == [
        None, [recorded("wikimedia_commons", "allimages_batch1.json")["continue"]["gaicontinue"]],
        [recorded("wikimedia_commons", "allimages_batch2.json")["continue"]["gaicontinue"]],
    ]  # fmt: skip
    assert all(c.query["maxlag"] == ["5"] for c in calls) and "continue" not in calls[0].query
    assert calls[1].query["continue"] == ["gaicontinue||"] and calls[0].query["gsrsearch"] == [
        "groomed poodle filetype:bitmap"
    ]
    assert {c.headers["user-agent"] for c in calls} == {UA[:-1] + "; lab@example.org)"}
    assert "/robots.txt" not in wiki.hits  # the API is not crawled: robots.txt is never asked


async def test_commons_waits_out_maxlag_as_told(migrated: Settings) -> None:
    with Site() as wiki, Site() as upload:
        commons_api(wiki, upload, seed=83500, maxlag_first=True)
        found, _, said = await collect("wikimedia_commons", {"query": "poodle", "max_results": 2},
                                       base_urls={"wikimedia_commons": wiki.url("/w/api.php")})  # fmt: skip
        calls = wiki.requests_to("/w/api.php")
    assert [c.title for c in found] == ["Minchinmavida Volcano", "2002-04-02 Hauptstraße, Heidelberg IMG 0404"]
    assert len(calls) == 2 and calls[0].query == calls[1].query
    assert said[0] == "commons: databases lag (7 s), waiting 1 s as asked"


# -- SearXNG -------------------------------------------------------------------------------------------
async def test_searxng_reads_its_json_pages(migrated: Settings) -> None:
    with Site() as searx, Site() as flickr:
        answers = {str(n): relocated(recorded("searxng", f"images_dog_page{n}.json"), flickr,
                                     ("live.staticflickr.com",), 84000 + 10 * n) for n in (1, 2)}  # fmt: skip
        searx.routes["/search"] = lambda query, s: json_answer(answers[query["pageno"][0]])
        settings = loopback_settings(migrated, searxng_url=searx.base)
        job = await run_inline(settings, {"plugin": "searxng", "params": {"query": "dog"}})
        calls = searx.requests_to("/search")
    assert job.status == "succeeded", job
    assert job.counters["found"] == 11 and job.counters["new"] == 11
    assert [(c.query["pageno"], c.query["format"], c.query["categories"]) for c in calls] == [
        (["1"], ["json"], ["images"]),
        (["2"], ["json"], ["images"]),
    ]
    rows = {r["url"].removeprefix(flickr.base): r for r in await _sources(job.id)}
    first = rows["/live.staticflickr.com/7396/8728178651_912c2fa554_b.jpg"]
    assert (
        first["title"] == "A cute Dog 4"
        and first["page_url"] == "https://www.flickr.com/photos/48453366@N08/8728178651"
    )


async def test_searxng_with_json_turned_off_says_which_setting(migrated: Settings) -> None:
    with Site() as searx:
        body = recorded("searxng", "json_format_disabled_403.html")
        searx.routes["/search"] = (403, {"Content-Type": "text/html; charset=utf-8"}, body)
        job = await run_inline(loopback_settings(migrated, searxng_url=searx.base),
                               {"plugin": "searxng", "params": {"query": "dog"}})  # fmt: skip
    assert job.status == "failed" and "add json to search.formats" in (job.error or "")


async def test_searxng_without_an_instance_fails_with_the_setting_named(migrated: Settings) -> None:
    job = await run_inline(loopback_settings(migrated, searxng_url=""), {"plugin": "searxng", "params": {"query": "x"}})
    assert job.status == "failed" and "scraping.searxng_url" in (job.error or "")


# -- the plugins page ----------------------------------------------------------------------------------
async def test_the_plugins_page_says_whose_rules_apply_and_never_shows_a_secret(migrated: Settings) -> None:
    _, token = await user_with_token("admin")
    lab = loopback_settings(migrated, openverse_client_id="ov-id", openverse_client_secret="ov-secret-9f2c")
    async with app_client(lab, token) as client:
        page = "".join([(await client.get(f"/scrape?plugin={n}")).text for n in ("reddit", "web_page", "openverse")])
        listed = (await client.get("/api/v1/scrapers")).json()
    by_name = {s["name"]: s for s in listed["items"]}
    assert "Reddit's Data API terms" in by_name["reddit"]["rules"] and "robots.txt" in by_name["web_page"]["rules"]
    assert "MediaWiki's API etiquette" in by_name["wikimedia_commons"]["rules"]
    assert by_name["openverse"]["credentials_missing"] == [] and by_name["reddit"]["credentials_required"]
    assert by_name["reddit"]["credentials_missing"] == ["scraping.reddit_client_id", "scraping.reddit_client_secret"]
    for name in ("reddit", "web_page", "openverse"):
        assert by_name[name]["rules"] in page.replace("&#39;", "'")
    assert "ov-secret-9f2c" not in page and "ov-secret-9f2c" not in str(listed)
    assert 'id="contact-missing"' in page


# -- web pages, URL lists, folders (robots.txt's rules) ---------------------------------------------------
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


async def test_web_page_obeys_robots_txt(migrated: Settings) -> None:
    with Site() as site:
        sites.lazy_site(site, seed=62450)
        site.routes["/robots.txt"] = robots("User-agent: *\nDisallow: /\n")
        job = await run_inline(loopback_settings(migrated),
                               {"plugin": "web_page", "params": {"start_urls": [site.url("/")]}})  # fmt: skip
        asked = [p for p in site.hits if p != "/robots.txt"]
    assert job.status == "succeeded" and job.counters.get("found", 0) == 0 and asked == []


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


def test_furrsight_settings_never_prints_a_secret(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "FURRSIGHT_DATA": str(tmp_path),
        "COLUMNS": "400",
        "FURRSIGHT_SCRAPING_REDDIT_CLIENT_SECRET": "rd-secret-77e1",
        "FURRSIGHT_SCRAPING_REDDIT_CLIENT_ID": "rd-id",
    }
    shown = subprocess.run([sys.executable, "-m", "furrsight.cli", "settings"], env=env, capture_output=True,
                           text=True, timeout=120, check=True).stdout  # fmt: skip
    assert "rd-secret-77e1" not in shown and "rd-id" in shown and "(set)" in shown
