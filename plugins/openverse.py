"""``openverse``: Openverse's image search API — openly licensed images with licence and creator.

Anonymous requests may ask for at most 20 results a page (more answers 401) and have a small daily
budget; a registered application (settings ``scraping.openverse_client_id`` / ``_secret``) gets a
bearer token through the client-credentials grant and up to 500 a page. Openverse indexes some
titles as their source gave them (Wikimedia Commons' HTML): titles and creators are reduced to
their visible text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec

from furrsight.scraping.contract import Candidate, FetchError, ScrapeContext, Scraper
from plugins._api import ClientCredentials, TokenCache, api_user_agent
from plugins._html import visible_text

ANONYMOUS_PAGE_SIZE = 20  # Openverse's MAX_ANONYMOUS_PAGE_SIZE
AUTHED_PAGE_SIZE = 500  # MAX_AUTHED_PAGE_SIZE
MAX_PAGE = 20  # MAX_PAGINATION_DEPTH: deeper pages are refused


class OpenverseParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    query: str
    max_results: int = msgspec.field(default=100)
    license_type: Annotated[str, msgspec.Meta(description="commercial, modification, or empty for all")] = ""


def licence(item: dict[str, Any]) -> str:
    if item.get("license") in ("cc0", "pdm"):
        return str(item["license"])
    return "-".join(p for p in ("cc", item.get("license"), item.get("license_version")) if p)


def candidate(item: dict[str, Any], query: str) -> Candidate:
    terms = {k: str(item[k]) for k in ("license", "license_version", "license_url") if item.get(k)}
    return Candidate(
        url=item["url"], page_url=item.get("foreign_landing_url"), title=visible_text(item.get("title")),
        author=visible_text(item.get("creator")), license=licence(item), license_terms=terms or None, query=query,
        alt_text=", ".join(t["name"] for t in item.get("tags") or [] if t.get("name")) or None,
    )  # fmt: skip


class Openverse(Scraper):
    name = "openverse"
    description = "Search Openverse for openly licensed images (licence and creator included)."
    Params = OpenverseParams
    rules = (
        "Openverse's API terms: anonymous, 20 results a page and a small daily budget; a registered application "
        "(client credentials) gets more. Image downloads follow each host's robots.txt."
    )
    credentials = ("client_id", "client_secret")

    def __init__(self) -> None:
        self.tokens = TokenCache()

    def _app(self, ctx: ScrapeContext, base: str) -> ClientCredentials | None:
        client_id, secret = str(ctx.settings.get("client_id") or ""), str(ctx.settings.get("client_secret") or "")
        if not (client_id and secret):
            return None
        hint = "scraping.openverse_client_id and scraping.openverse_client_secret"
        return self.tokens.get(f"{base}/v1/auth_tokens/token/", client_id, secret, basic_auth=False, settings_hint=hint)

    async def _page(self, ctx: ScrapeContext, url: str, query: dict[str, Any], app: ClientCredentials | None) -> Any:
        headers = {"User-Agent": api_user_agent(ctx)}
        for attempt in (1, 2):
            auth = await app.header(ctx, headers) if app else {}
            try:
                return await ctx.http.get_json(url, query, headers={**headers, **auth}, api=True)
            except FetchError as exc:
                if exc.reason == "http_401" and app and attempt == 1:
                    app.invalidate()  # the token expired or was revoked: fetch a new one, once
                    continue
                if exc.reason in ("http_429", "retry_after_too_long"):  # throttled past what retries wait out
                    more = "" if app else " (a registered application gets more: scraping.openverse_client_id)"
                    spent = f"{exc.message}: Openverse's request budget is spent for now{more}"
                    raise FetchError(exc.reason, spent) from exc
                raise
        raise AssertionError("unreachable")

    async def scrape(self, params: OpenverseParams, ctx: ScrapeContext) -> AsyncIterator[Candidate]:
        base = ctx.base_urls["openverse"].rstrip("/")
        app = self._app(ctx, base)
        limit = AUTHED_PAGE_SIZE if app else ANONYMOUS_PAGE_SIZE
        ctx.log.info("openverse: %s, %d results a page", "registered application" if app else "anonymous", limit)
        found, page = 0, 1
        size = min(limit, params.max_results)  # the same on every page, or pages would overlap
        while found < params.max_results and page <= MAX_PAGE:
            query = {"q": params.query, "page": page, "page_size": size, "license_type": params.license_type or None}
            try:
                answer = await self._page(ctx, f"{base}/v1/images/", query, app)
            except FetchError as exc:
                if page > 1 and exc.reason == "http_400":  # past the deepest page Openverse serves
                    ctx.log.info("openverse: no page %d (%s)", page, exc.message)
                    return
                raise
            results = answer.get("results") or []
            for item in results[: params.max_results - found]:
                if item.get("url"):
                    found += 1
                    yield candidate(item, params.query)
            ctx.progress(f"openverse page {page}: {len(results)} images")
            if not results or page >= int(answer.get("page_count") or page):
                return
            page += 1
