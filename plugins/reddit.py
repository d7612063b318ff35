"""``reddit``: public JSON listings and search; a gallery post's images share one group key."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec

from furrsight.scraping.contract import Candidate, ScrapeContext, Scraper

IMAGE_EXT = (".jpg", ".jpeg", ".png", ".webp", ".gif")


class RedditParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    subreddits: list[str] = msgspec.field(default_factory=lambda: ["doggrooming"])
    query: str = ""
    sort: str = "relevance"  # relevance, new, top (search); new, hot, top (listing)
    max_posts: int = 100


def post_images(post: dict[str, Any]) -> Iterator[str]:
    """Every image of one post: a gallery's items in order, or the post's own image."""
    if post.get("is_gallery") and post.get("media_metadata"):
        media = post["media_metadata"]
        for item in (post.get("gallery_data") or {}).get("items", []):
            source = (media.get(item.get("media_id")) or {}).get("s") or {}
            if source.get("u"):
                yield html.unescape(source["u"])
        return
    url = str(post.get("url_overridden_by_dest") or post.get("url") or "")
    if url.lower().split("?")[0].endswith(IMAGE_EXT):
        yield html.unescape(url)
    elif post.get("preview"):
        for image in post["preview"].get("images", [])[:1]:
            yield html.unescape(image["source"]["url"])


class Reddit(Scraper):
    name = "reddit"
    description = "Posts from subreddits (listing or search) via Reddit's public JSON; galleries stay grouped."
    Params = RedditParams

    async def scrape(self, params: RedditParams, ctx: ScrapeContext) -> AsyncIterator[Candidate]:
        base = ctx.base_urls["reddit"].rstrip("/")
        for sub in params.subreddits or [""]:
            prefix = f"{base}/r/{sub}" if sub else base
            url = f"{prefix}/search.json" if params.query else f"{prefix}/{params.sort}.json"
            query: dict[str, Any] = {"limit": 100, "raw_json": 1, "after": None}
            if params.query:
                query.update(q=params.query, sort=params.sort, restrict_sr=1 if sub else None)
            seen = 0
            while seen < params.max_posts:
                listing = (await ctx.http.get_json(url, query)).get("data") or {}
                children = listing.get("children") or []
                for child in children[: params.max_posts - seen]:
                    post = child.get("data") or {}
                    seen += 1
                    page = f"{base}{post.get('permalink', '')}"
                    for image in post_images(post):
                        yield Candidate(
                            url=image, page_url=page, title=post.get("title"), author=post.get("author"),
                            query=params.query or None, group_key=f"reddit:{post.get('name') or post.get('id')}",
                        )  # fmt: skip
                ctx.progress(f"r/{sub or 'all'}: {seen} posts")
                query["after"] = listing.get("after")
                if not children or not query["after"]:
                    break
