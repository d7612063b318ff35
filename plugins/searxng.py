"""``searxng``: image search through the lab's own SearXNG instance (its JSON output)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec

from furrsight.scraping.contract import Candidate, ScrapeContext, Scraper


class SearXNGParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    query: str
    pages: int = msgspec.field(default=2)
    language: str = "all"


class SearXNG(Scraper):
    name = "searxng"
    description = "Image search through a self-hosted SearXNG instance (setting scraping.searxng_url)."
    Params = SearXNGParams

    async def scrape(self, params: SearXNGParams, ctx: ScrapeContext) -> AsyncIterator[Candidate]:
        base = ctx.base_urls.get("searxng", "").rstrip("/")
        if not base:
            raise ValueError("no SearXNG instance configured (setting scraping.searxng_url)")
        for page in range(1, params.pages + 1):
            answer = await ctx.http.get_json(
                f"{base}/search",
                {
                    "q": params.query,
                    "categories": "images",
                    "format": "json",
                    "pageno": page,
                    "language": params.language,
                },
            )
            results = answer.get("results") or []
            for item in results:
                if not item.get("img_src"):
                    continue
                yield Candidate(
                    url=item["img_src"], page_url=item.get("url"), title=item.get("title"),
                    author=item.get("author") or None, query=params.query, alt_text=item.get("content") or None,
                )  # fmt: skip
            ctx.progress(f"searxng page {page}: {len(results)} results")
            if not results:
                return
