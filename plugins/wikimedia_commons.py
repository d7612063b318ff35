"""``wikimedia_commons``: file pages from the MediaWiki API, with licence and author metadata."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from furrsight.scraping.contract import Candidate, ScrapeContext, Scraper

TAGS = re.compile(r"<[^>]+>")


class CommonsParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    query: str
    max_results: int = 100


def _meta(info: dict[str, Any], key: str) -> str | None:
    value = (info.get("extmetadata") or {}).get(key, {}).get("value")
    return html.unescape(TAGS.sub("", str(value))).strip() or None if value else None


class WikimediaCommons(Scraper):
    name = "wikimedia_commons"
    description = "Search Wikimedia Commons files (MediaWiki API) with their licence and author."
    Params = CommonsParams

    async def scrape(self, params: CommonsParams, ctx: ScrapeContext) -> AsyncIterator[Candidate]:
        api = ctx.base_urls["wikimedia_commons"]
        query: dict[str, Any] = {
            "action": "query", "format": "json", "generator": "search", "gsrsearch": params.query,
            "gsrnamespace": 6, "gsrlimit": min(50, params.max_results), "prop": "imageinfo",
            "iiprop": "url|extmetadata|user|mime",
        }  # fmt: skip
        found = 0
        while found < params.max_results:
            answer = await ctx.http.get_json(api, query)
            pages = sorted((answer.get("query") or {}).get("pages", {}).values(), key=lambda p: p.get("index", 0))
            for page in pages:
                for info in page.get("imageinfo") or []:
                    if not str(info.get("mime", "image/")).startswith("image/") or found >= params.max_results:
                        continue
                    found += 1
                    yield Candidate(
                        url=info["url"], page_url=info.get("descriptionurl"),
                        title=_meta(info, "ObjectName") or page.get("title"),
                        alt_text=_meta(info, "ImageDescription"), author=_meta(info, "Artist") or info.get("user"),
                        license=_meta(info, "LicenseShortName"), query=params.query,
                    )  # fmt: skip
            ctx.progress(f"commons: {found} files")
            if "continue" not in answer or not pages:
                return
            query.update(answer["continue"])
