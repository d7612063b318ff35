"""``reddit``: subreddit listings and search through Reddit's OAuth API; a post's images share one group.

Reddit's Data API needs a registered app (settings ``scraping.reddit_client_id`` / ``_secret``):
the plugin fetches an application-only token (client-credentials grant) and calls
``oauth.reddit.com`` with a User-Agent of the form Reddit asks for, waiting when its
``X-Ratelimit-Remaining`` runs out. What a post holds is read by :mod:`plugins._reddit_posts`.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
from collections import Counter
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec

from furrsight.scraping.contract import Candidate, FetchError, Response, ScrapeContext, Scraper
from plugins._api import ClientCredentials, TokenCache
from plugins._reddit_posts import REASONS, post_media

SEARCH_SORTS = ("relevance", "hot", "top", "new", "comments")
LISTING_SORTS = ("hot", "new", "top", "rising", "controversial")
SORT_HELP = "empty: relevance for a search, new for a listing; a listing takes hot, new, top, rising, controversial"
MAX_RATE_WAIT = 600.0  # longest wait for Reddit's rate-limit window, seconds


class RedditParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    subreddits: list[str] = msgspec.field(default_factory=lambda: ["doggrooming"])
    query: str = ""
    sort: Annotated[str, msgspec.Meta(description=SORT_HELP)] = ""
    max_posts: int = 100

    def __post_init__(self) -> None:
        allowed = SEARCH_SORTS if self.query else LISTING_SORTS
        if self.sort and self.sort not in allowed:
            kind = "a search" if self.query else "a listing (no query)"
            raise ValueError(f"sort {self.sort!r} is not one of {', '.join(allowed)} for {kind}")


def user_agent(ctx: ScrapeContext) -> str:
    """``<platform>:<app ID>:<version> (by /u/<username>)``, the form Reddit's API rules ask for."""
    try:
        version = importlib.metadata.version("furrsight")
    except importlib.metadata.PackageNotFoundError:
        version = "dev"
    username = str(ctx.settings.get("username") or "").strip().removeprefix("/u/").removeprefix("u/")
    who = f"by /u/{username}" if username else str(ctx.settings.get("contact") or "FurrSight dataset research")
    return f"server:furrsight:{version} ({who})"


class Reddit(Scraper):
    name = "reddit"
    description = "Posts from subreddits (listing or search) via Reddit's OAuth API; galleries stay grouped."
    Params = RedditParams
    rules = (
        "Reddit's Data API terms: OAuth with a registered app, a User-Agent naming the app and its Reddit account, "
        "its X-Ratelimit headers honoured. Image downloads follow each host's robots.txt."
    )
    credentials = ("client_id", "client_secret")
    credentials_required = True

    def __init__(self) -> None:
        self.tokens = TokenCache()

    def _app(self, ctx: ScrapeContext, base: str) -> ClientCredentials:
        client_id, secret = str(ctx.settings.get("client_id") or ""), str(ctx.settings.get("client_secret") or "")
        hint = "scraping.reddit_client_id and scraping.reddit_client_secret"
        if not (client_id and secret):
            raise ValueError(f"Reddit's API needs a registered app: set {hint} (see docs/scraping.md)")
        return self.tokens.get(f"{base}/api/v1/access_token", client_id, secret, basic_auth=True, settings_hint=hint)

    async def _get(self, ctx: ScrapeContext, app: ClientCredentials, url: str, query: dict[str, Any]) -> Response:
        headers = {"User-Agent": user_agent(ctx)}
        for attempt in (1, 2):
            auth = await app.header(ctx, headers)
            try:
                response = await ctx.http.get(url, params=query, headers={**headers, **auth}, api=True,
                                              accept=("application/json",))  # fmt: skip
            except FetchError as exc:
                if exc.reason == "http_401" and attempt == 1:
                    app.invalidate()
                    continue
                raise
            await self._respect_rate_limit(ctx, response)
            return response
        raise AssertionError("unreachable")

    @staticmethod
    async def _respect_rate_limit(ctx: ScrapeContext, response: Response) -> None:
        try:
            remaining = float(response.headers.get("x-ratelimit-remaining", "1"))
            reset = float(response.headers.get("x-ratelimit-reset", "0"))
        except ValueError:
            return
        if remaining < 1 and reset > 0:
            ctx.progress(f"reddit: rate limit used up, waiting {reset:.0f} s")
            await asyncio.sleep(min(reset, MAX_RATE_WAIT))

    def _request(self, params: RedditParams, sub: str, api: str) -> tuple[str, dict[str, Any]]:
        prefix = f"{api}/r/{sub}" if sub else api
        query: dict[str, Any] = {"limit": 100, "raw_json": 1, "after": None}
        if params.query:
            sort = params.sort or "relevance"
            query.update(q=params.query, sort=sort, restrict_sr=1 if sub else None, type="link")
            url = f"{prefix}/search"
        else:
            sort = params.sort or "new"
            url = f"{prefix}/{sort}"
        if sort in ("top", "controversial"):
            query["t"] = "all"
        return url, query

    async def scrape(self, params: RedditParams, ctx: ScrapeContext) -> AsyncIterator[Candidate]:
        base = ctx.base_urls["reddit"].rstrip("/")
        api = str(ctx.settings.get("api_url") or "https://oauth.reddit.com").rstrip("/")
        app = self._app(ctx, base)
        for sub in params.subreddits or [""]:
            url, query = self._request(params, sub.strip().removeprefix("r/"), api)
            seen, images, empty = 0, 0, Counter[str]()
            while seen < params.max_posts:
                listing = (await self._get(ctx, app, url, query)).json().get("data") or {}
                children = [c for c in listing.get("children") or [] if c.get("kind", "t3") == "t3"]
                for child in children[: params.max_posts - seen]:
                    seen += 1
                    media = post_media(child.get("data") or {})
                    if media.reason:
                        empty[media.reason] += 1
                        ctx.count(f"no_images:{media.reason}", 1)
                    for found in media.images:
                        images += 1
                        yield Candidate(
                            url=found.url, alt_text=found.caption, page_url=f"{base}{media.permalink}",
                            title=media.title, author=media.author, query=params.query or None,
                            group_key=f"reddit:{media.name}",
                        )  # fmt: skip
                query["after"] = listing.get("after")
                if not children or not query["after"]:
                    break
            skipped = ", ".join(f"{REASONS[r]} {n}" for r, n in sorted(empty.items())) or "none"
            ctx.progress(f"r/{sub or 'all'}: {seen} posts, {images} images; posts without images: {skipped}")
