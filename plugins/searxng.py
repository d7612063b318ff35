"""``searxng``: image search through the lab's own SearXNG instance (its JSON output).

SearXNG answers ``format=json`` only when the instance lists ``json`` under ``search.formats``
in its settings.yml; the default list is ``[html]``, and then every search answers 403. Some
engines hand out protocol-relative image URLs (``//host/x.jpg``): they are read as https.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec

from furrsight.scraping.contract import Candidate, FetchError, ScrapeContext, Scraper
from plugins._api import api_user_agent
from plugins._html import visible_text


class SearXNGParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    query: str
    pages: int = msgspec.field(default=2)
    language: str = "all"


def image_url(item: dict[str, Any]) -> str | None:
    src = str(item.get("img_src") or "").strip()
    if src.startswith("//"):
        src = "https:" + src
    return src if src.startswith(("http://", "https://")) else None


class SearXNG(Scraper):
    name = "searxng"
    description = "Image search through a self-hosted SearXNG instance (setting scraping.searxng_url)."
    Params = SearXNGParams
    rules = (
        "The lab's own SearXNG instance, through its JSON API (its settings.yml must list json under "
        "search.formats). Image downloads follow each host's robots.txt."
    )

    async def scrape(self, params: SearXNGParams, ctx: ScrapeContext) -> AsyncIterator[Candidate]:
        base = ctx.base_urls.get("searxng", "").rstrip("/")
        if not base:
            raise ValueError("no SearXNG instance configured (setting scraping.searxng_url)")
        headers = {"User-Agent": api_user_agent(ctx)}
        for page in range(1, params.pages + 1):
            query = {"q": params.query, "categories": "images", "format": "json", "pageno": page,
                     "language": params.language}  # fmt: skip
            try:
                answer = await ctx.http.get_json(f"{base}/search", query, headers=headers, api=True)
            except FetchError as exc:
                if exc.reason == "http_403":
                    raise FetchError(exc.reason, f"{base} refuses JSON (403): add json to search.formats in the "
                                     "instance's settings.yml") from exc  # fmt: skip
                raise
            results = answer.get("results") or []
            for item in results:
                url = image_url(item)
                if url:
                    yield Candidate(
                        url=url, page_url=item.get("url"), title=visible_text(item.get("title")),
                        author=item.get("author") or None, query=params.query,
                        alt_text=visible_text(item.get("content")),
                    )  # fmt: skip
            if answer.get("unresponsive_engines"):
                ctx.log.warning("searxng: engines that did not answer: %s", answer["unresponsive_engines"])
            ctx.progress(f"searxng page {page}: {len(results)} results")
            if not results:
                return
