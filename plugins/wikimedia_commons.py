"""``wikimedia_commons``: file search through the MediaWiki Action API, with licence and author.

The API is used under Wikimedia's API etiquette, not robots.txt (which turns crawlers away from
``/w/``): a User-Agent with the lab's contact (setting ``scraping.contact``), ``maxlag=5`` with
a pause of the answer's ``Retry-After`` when the databases lag, continuation followed as the API
hands it out. ``extmetadata`` values are HTML: titles, authors and descriptions are reduced to
their visible text; the licence fields are kept exactly as given.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec

from furrsight.scraping.contract import Candidate, FetchError, ScrapeContext, Scraper
from plugins._api import api_user_agent
from plugins._html import visible_text

MAXLAG = 5  # seconds of replication lag we accept; Wikimedia's recommended value
MAXLAG_TRIES = 5
LICENCE_FIELDS = ("LicenseShortName", "LicenseUrl", "AttributionRequired", "Credit")
WANTED = ("ObjectName", "Artist", "ImageDescription", *LICENCE_FIELDS)


class CommonsParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    query: str
    max_results: int = 100


def _meta(info: dict[str, Any], key: str) -> Any:
    return ((info.get("extmetadata") or {}).get(key) or {}).get("value")


def _pages(answer: dict[str, Any]) -> list[dict[str, Any]]:
    pages = (answer.get("query") or {}).get("pages") or {}
    listed = list(pages.values()) if isinstance(pages, dict) else list(pages)  # formatversion 1 or 2
    return sorted(listed, key=lambda p: p.get("index", 0))


def candidates(page: dict[str, Any], query: str) -> Iterator[Candidate]:
    for info in page.get("imageinfo") or []:
        if not info.get("url") or not str(info.get("mime", "image/")).startswith("image/"):
            continue
        terms = {k: str(v) for k in LICENCE_FIELDS if (v := _meta(info, k)) not in (None, "")}
        yield Candidate(
            url=info["url"], page_url=info.get("descriptionurl"),
            title=visible_text(_meta(info, "ObjectName")) or str(page.get("title", "")).removeprefix("File:") or None,
            alt_text=visible_text(_meta(info, "ImageDescription")),
            author=visible_text(_meta(info, "Artist")) or info.get("user"),
            license=terms.get("LicenseShortName"), license_terms=terms or None, query=query,
        )  # fmt: skip


class WikimediaCommons(Scraper):
    name = "wikimedia_commons"
    description = "Search Wikimedia Commons files (MediaWiki API) with their licence and author."
    Params = CommonsParams
    rules = (
        "MediaWiki's API etiquette: a User-Agent with the lab's contact (scraping.contact), maxlag=5 and its "
        "Retry-After, one request at a time. Image downloads from upload.wikimedia.org follow its robots.txt."
    )

    async def _query(self, ctx: ScrapeContext, api: str, query: dict[str, Any]) -> dict[str, Any]:
        headers = {"User-Agent": api_user_agent(ctx)}
        for _ in range(MAXLAG_TRIES):
            response = await ctx.http.get(api, params=query, headers=headers, api=True, accept=("application/json",))
            answer = response.json()
            error = answer.get("error") or {}
            if error.get("code") != "maxlag":
                if error:
                    raise FetchError("api_error", f"MediaWiki API error {error.get('code')}: {error.get('info')}")
                return dict(answer)
            wait = float(response.headers.get("retry-after") or MAXLAG)
            ctx.progress(f"commons: databases lag ({error.get('lag')} s), waiting {wait:.0f} s as asked")
            await asyncio.sleep(wait)
        raise FetchError("maxlag", f"Wikimedia's databases kept lagging over {MAXLAG} s: try the scrape later")

    async def scrape(self, params: CommonsParams, ctx: ScrapeContext) -> AsyncIterator[Candidate]:
        api = ctx.base_urls["wikimedia_commons"]
        first: dict[str, Any] = {
            "action": "query", "format": "json", "maxlag": MAXLAG, "generator": "search",
            "gsrsearch": f"{params.query} filetype:bitmap", "gsrnamespace": 6, "gsrlimit": min(50, params.max_results),
            "prop": "imageinfo", "iiprop": "url|extmetadata|user|mime", "iiextmetadatafilter": "|".join(WANTED),
        }  # fmt: skip
        found, seen, query = 0, set(), dict(first)
        while found < params.max_results:
            answer = await self._query(ctx, api, query)
            pages = _pages(answer)
            for page in pages:
                key = page.get("pageid") or page.get("title")
                if key in seen or not page.get("imageinfo"):
                    continue  # a page repeats while its properties continue over several answers
                seen.add(key)
                for candidate in candidates(page, params.query):
                    if found < params.max_results:
                        found += 1
                        yield candidate
            ctx.progress(f"commons: {found} files")
            if "continue" not in answer:
                return
            query = {**first, **answer["continue"]}  # MediaWiki: send back exactly what "continue" holds
