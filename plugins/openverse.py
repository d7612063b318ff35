"""``openverse``: Openverse's image search API — openly licensed images with licence and creator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec

from furrsight.scraping.contract import Candidate, ScrapeContext, Scraper


class OpenverseParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    query: str
    max_results: int = msgspec.field(default=100)
    license_type: str = ""  # commercial, modification, or empty for all


class Openverse(Scraper):
    name = "openverse"
    description = "Search Openverse for openly licensed images (licence and creator included)."
    Params = OpenverseParams

    async def scrape(self, params: OpenverseParams, ctx: ScrapeContext) -> AsyncIterator[Candidate]:
        base = ctx.base_urls["openverse"].rstrip("/")
        found, page = 0, 1
        while found < params.max_results:
            size = min(50, params.max_results - found)
            answer = await ctx.http.get_json(
                f"{base}/v1/images/",
                {"q": params.query, "page": page, "page_size": size, "license_type": params.license_type or None},
            )
            results = answer.get("results") or []
            for item in results:
                license = "-".join(p for p in ("cc", item.get("license"), item.get("license_version")) if p)
                if item.get("license") in ("cc0", "pdm"):
                    license = str(item["license"])
                found += 1
                yield Candidate(
                    url=item["url"], page_url=item.get("foreign_landing_url"), title=item.get("title"),
                    author=item.get("creator"), license=license, query=params.query,
                    alt_text=", ".join(t["name"] for t in item.get("tags") or [] if t.get("name")) or None,
                )  # fmt: skip
            ctx.progress(f"openverse page {page}: {len(results)} images")
            if not results or page >= int(answer.get("page_count") or page):
                return
            page += 1
