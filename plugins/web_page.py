"""``web_page``: crawl from start URLs to a depth and collect every image a page shows.

Images come from ``img src``, the largest ``srcset`` entry, lazy-load attributes (``data-src``,
``data-lazy-src``, ``data-original``, ``data-srcset``…), ``picture/source``, ``og:image`` and
links to image files; alt text, figure captions and the page title are kept as provenance, with
licence hints (``rel="license"`` and Creative Commons links).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from urllib.parse import urldefrag, urljoin, urlsplit

import msgspec
from selectolax.lexbor import LexborHTMLParser as HTMLParser
from selectolax.lexbor import LexborNode as Node

from furrsight.scraping.contract import Candidate, FetchError, ScrapeContext, Scraper

IMAGE_EXT = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".avif", ".bmp")
LAZY = ("data-src", "data-lazy-src", "data-original", "data-lazy", "data-url", "data-full", "data-hi-res-src")
LAZY_SETS = ("srcset", "data-srcset", "data-lazy-srcset")


class WebPageParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    start_urls: list[str]
    depth: int = msgspec.field(default=0)
    same_site: bool = True
    max_pages: int = 50


def largest(srcset: str) -> str | None:
    best, best_size = None, -1.0
    for part in srcset.split(","):
        bits = part.strip().split()
        if not bits:
            continue
        size = 1.0
        if len(bits) > 1 and bits[1][-1:] in ("w", "x"):
            try:
                size = float(bits[1][:-1])
            except ValueError:
                size = 1.0
        if size > best_size:
            best, best_size = bits[0], size
    return best


def licence(tree: HTMLParser) -> str | None:
    for node in tree.css('a[rel~="license"], link[rel~="license"]'):
        href = node.attributes.get("href")
        if href:
            return href
    for node in tree.css('a[href*="creativecommons.org/licenses"], a[href*="creativecommons.org/publicdomain"]'):
        return node.attributes.get("href")
    return None


def _caption(node: Node) -> str | None:
    parent = node.parent
    while parent is not None and parent.tag not in ("figure", "body"):
        parent = parent.parent
    if parent is not None and parent.tag == "figure":
        caption = parent.css_first("figcaption")
        if caption is not None:
            return caption.text(strip=True) or None
    return None


def images(tree: HTMLParser, base: str) -> Iterator[tuple[str, str | None, str | None]]:
    """(absolute URL, alt text, caption) of each image on the page, each URL once."""
    seen: set[str] = set()

    def out(
        raw: str | None, alt: str | None = None, caption: str | None = None
    ) -> Iterator[tuple[str, str | None, str | None]]:
        if raw and not raw.startswith("data:"):
            url = urldefrag(urljoin(base, raw.strip())).url
            if url not in seen:
                seen.add(url)
                yield url, alt or None, caption

    for node in tree.css('meta[property="og:image"], meta[name="og:image"]'):
        yield from out(node.attributes.get("content"))
    for node in tree.css("img, picture source"):
        attrs = node.attributes
        raw = next((attrs[a] for a in LAZY_SETS if attrs.get(a)), None)
        chosen = largest(raw) if raw else None
        chosen = chosen or next((attrs[a] for a in LAZY if attrs.get(a)), None) or attrs.get("src")
        holder = node.parent.css_first("img") if node.tag == "source" and node.parent else node
        alt = holder.attributes.get("alt") if holder is not None else None
        yield from out(chosen, alt, _caption(node))
    for node in tree.css("a[href]"):
        href = node.attributes.get("href") or ""
        if urlsplit(href).path.lower().endswith(IMAGE_EXT):
            yield from out(href, node.text(strip=True), None)


class WebPage(Scraper):
    name = "web_page"
    description = "Crawl web pages from start URLs (to a depth, same site by default) and take their images."
    Params = WebPageParams
    rules = "Page crawling: every page and image follows its site's robots.txt (pages it disallows are skipped)."

    async def scrape(self, params: WebPageParams, ctx: ScrapeContext) -> AsyncIterator[Candidate]:
        queue = [(urldefrag(u.strip()).url, 0) for u in params.start_urls if u.strip()]
        sites = {urlsplit(u).netloc for u, _ in queue}
        visited: set[str] = set()
        while queue and len(visited) < params.max_pages:
            url, depth = queue.pop(0)
            if url in visited:
                continue
            visited.add(url)
            try:
                page = await ctx.http.get_text(url)
            except FetchError as exc:
                ctx.log.warning("page %s skipped: %s", url, exc.message)
                continue
            tree = HTMLParser(page.text)
            title_node = tree.css_first("title")
            title = title_node.text(strip=True) if title_node else None
            hint = licence(tree)
            for image, alt, caption in images(tree, page.url):
                text = " — ".join(t for t in (alt, caption) if t) or None
                yield Candidate(
                    url=image, page_url=page.url, title=title, alt_text=text, license=hint, group_key=f"page:{page.url}"
                )
            ctx.progress(f"{len(visited)} pages")
            if depth >= params.depth:
                continue
            for node in tree.css("a[href]"):
                link = urldefrag(urljoin(page.url, node.attributes.get("href") or "")).url
                parts = urlsplit(link)
                on_site = not params.same_site or parts.netloc in sites
                page_link = not parts.path.lower().endswith(IMAGE_EXT)
                if parts.scheme in ("http", "https") and on_site and page_link and link not in visited:
                    queue.append((link, depth + 1))
