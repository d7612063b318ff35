"""Loopback HTTP servers shaped like the services the built-in plugins talk to.

``Site`` is a threaded server on 127.0.0.x with a table of routes; each helper below fills one in
the shape of a real service's answers (Openverse, MediaWiki, Reddit, SearXNG, a web page with every
lazy-load pattern), plus misbehaving ones: a 429 with Retry-After, a slow answer, an endless body,
a redirect to another host.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.images import photo

Answer = tuple[int, dict[str, str], bytes]
Route = Callable[[dict[str, list[str]], "Site"], Answer] | Answer


def jpeg(seed: int) -> Answer:
    return 200, {"Content-Type": "image/jpeg"}, photo(seed)


def as_json(value: Any) -> Answer:
    return 200, {"Content-Type": "application/json"}, json.dumps(value).encode()


def html(text: str) -> Answer:
    return 200, {"Content-Type": "text/html; charset=utf-8"}, text.encode()


class Site:
    def __init__(self, host: str = "127.0.0.1", routes: dict[str, Route] | None = None) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.hits: list[str] = []
        self.streams: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                site.hits.append(self.path)
                if parts.path in site.streams:
                    site.streams[parts.path](self)
                    return
                route = site.routes.get(parts.path)
                if route is None:
                    status, headers, body = 404, {"Content-Type": "text/plain"}, b"not found"
                elif callable(route):
                    status, headers, body = route(parse_qs(parts.query), site)
                else:
                    status, headers, body = route
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return self.base + path

    def __enter__(self) -> Site:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- misbehaving answers -------------------------------------------------------------------------
def slow(seconds: float) -> Callable[[BaseHTTPRequestHandler], None]:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", "image/jpeg")
            handler.send_header("Content-Length", "3")
            handler.end_headers()
            handler.wfile.write(b"abc")
        except OSError:
            pass

    return answer


def drip(handler: BaseHTTPRequestHandler) -> None:
    """A byte every 0.2 s: each read is quick, the whole never ends."""
    handler.send_response(200)
    handler.send_header("Content-Type", "image/jpeg")
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    try:
        for _ in range(1000):
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(0.2)
    except OSError:
        pass


def endless(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "image/jpeg")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    chunk = b"\xff" * 65536
    try:
        for _ in range(10_000):  # 640 MB if nobody stops reading
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    except OSError:
        pass


def rate_limited(times: int, retry_after: str, then: Answer) -> Route:
    """Answer 429 with ``Retry-After`` the first ``times`` requests, then ``then``."""
    count = {"n": 0}

    def answer(query: dict[str, list[str]], site: Site) -> Answer:
        count["n"] += 1
        if count["n"] <= times:
            return 429, {"Retry-After": retry_after, "Content-Type": "text/plain"}, b"slow down"
        return then

    return answer


# -- services ------------------------------------------------------------------------------------
def openverse(site: Site, n: int, seed: int) -> None:
    def search(query: dict[str, list[str]], s: Site) -> Answer:
        page, size = int(query["page"][0]), int(query["page_size"][0])
        start = (page - 1) * size
        results = [
            {"id": f"ov{i}", "url": s.url(f"/img/ov{i}.jpg"), "foreign_landing_url": f"https://flickr.example/p/{i}",
             "title": f"Poodle {i} {query['q'][0]}", "creator": f"photographer {i}", "license": "by-sa",
             "license_version": "4.0", "tags": [{"name": "dog"}, {"name": "grooming"}]}
            for i in range(start, min(n, start + size))
        ]  # fmt: skip
        return as_json({"result_count": n, "page_count": -(-n // size), "page_size": size, "page": page,
                        "results": results})  # fmt: skip

    site.routes["/v1/images/"] = search
    for i in range(n):
        site.routes[f"/img/ov{i}.jpg"] = jpeg(seed + i)


def mediawiki(site: Site, n: int, seed: int) -> None:
    def api(query: dict[str, list[str]], s: Site) -> Answer:
        offset = int(query.get("gsroffset", ["0"])[0])
        limit = 2
        pages = {
            str(100 + i): {"pageid": 100 + i, "ns": 6, "title": f"File:Dog {i}.jpg", "index": i + 1, "imageinfo": [
                {"url": s.url(f"/wiki/dog{i}.jpg"), "descriptionurl": f"https://commons.example/wiki/File:Dog_{i}.jpg",
                 "user": "Uploader", "mime": "image/jpeg",
                 "extmetadata": {"LicenseShortName": {"value": "CC BY 4.0"},
                                 "Artist": {"value": f"<a href='//x'>Artist {i}</a>"},
                                 "ImageDescription": {"value": f"A groomed dog, <b>{i}</b>"}}}]}
            for i in range(offset, min(n, offset + limit))
        }  # fmt: skip
        answer: dict[str, Any] = {"batchcomplete": "", "query": {"pages": pages}}
        if offset + limit < n:
            answer["continue"] = {"gsroffset": offset + limit, "continue": "gsroffset||"}
        return as_json(answer)

    site.routes["/w/api.php"] = api
    for i in range(n):
        site.routes[f"/wiki/dog{i}.jpg"] = jpeg(seed + i)


def reddit(site: Site, seed: int) -> None:
    """r/doggrooming: one gallery post (3 images), one single-image post, one text post."""
    gallery = {"name": "t3_gal", "id": "gal", "title": "Before and after!", "author": "groomer1",
               "permalink": "/r/doggrooming/comments/gal/", "is_gallery": True,
               "url": "https://www.reddit.com/gallery/gal",
               "gallery_data": {"items": [{"media_id": m} for m in ("m1", "m2", "m3")]},
               "media_metadata": {m: {"s": {"u": site.url(f"/media/{m}.jpg?width=1&amp;s=x")}}
                                  for m in ("m1", "m2", "m3")}}  # fmt: skip
    single = {"name": "t3_one", "id": "one", "title": "Teddy cut", "author": "groomer2",
              "permalink": "/r/doggrooming/comments/one/", "url": site.url("/media/one.jpg")}  # fmt: skip
    text = {"name": "t3_txt", "id": "txt", "title": "Question", "author": "x", "permalink": "/r/x/", "url": ""}
    listing = {"kind": "Listing", "data": {"after": None, "children": [{"kind": "t3", "data": p}
                                                                        for p in (gallery, single, text)]}}  # fmt: skip
    site.routes["/r/doggrooming/search.json"] = as_json(listing)
    site.routes["/r/doggrooming/new.json"] = as_json(listing)
    for i, m in enumerate(("m1", "m2", "m3", "one")):
        site.routes[f"/media/{m}.jpg"] = jpeg(seed + i)


def searxng(site: Site, n: int, seed: int) -> None:
    def search(query: dict[str, list[str]], s: Site) -> Answer:
        assert query["format"] == ["json"] and query["categories"] == ["images"]
        page = int(query["pageno"][0])
        results = [{"url": f"https://blog.example/{page}/{i}", "title": f"result {page}.{i}",
                    "img_src": s.url(f"/sx/{page}-{i}.jpg"), "thumbnail_src": "", "engine": "bing images"}
                   for i in range(n)] if page == 1 else []  # fmt: skip
        return as_json({"query": query["q"][0], "results": results})

    site.routes["/search"] = search
    for i in range(n):
        site.routes[f"/sx/1-{i}.jpg"] = jpeg(seed + i)


LAZY_PAGE = """<!doctype html><html><head><title>Grooming gallery</title>
<meta property="og:image" content="/og.jpg"><link rel="license" href="https://creativecommons.org/licenses/by/4.0/">
</head><body>
<figure><img src="/plain.jpg" alt="plain img"><figcaption>Max after his bath</figcaption></figure>
<img src="/small.jpg" srcset="/w320.jpg 320w, /w1280.jpg 1280w, /w640.jpg 640w" alt="srcset">
<img src="data:image/gif;base64,R0lGOD" data-src="/lazy-data-src.jpg" alt="data-src">
<img data-lazy-src="/lazy-lazy-src.jpg"><img data-original="/lazy-original.jpg">
<img data-srcset="/ds-1x.jpg 1x, /ds-2x.jpg 2x">
<picture><source srcset="/pic-800.webp 800w, /pic-1600.webp 1600w" type="image/webp">
<img src="/pic.jpg" alt="picture"></picture>
<a href="/full-size.jpg">full size</a><a href="/page2.html">next page</a>
<a href="https://elsewhere.example/offsite.html">off site</a>
</body></html>"""
LAZY_IMAGES = ["/og.jpg", "/plain.jpg", "/w1280.jpg", "/lazy-data-src.jpg", "/lazy-lazy-src.jpg",
               "/lazy-original.jpg", "/ds-2x.jpg", "/pic-1600.webp", "/pic.jpg", "/full-size.jpg"]  # fmt: skip


def lazy_site(site: Site, seed: int) -> None:
    site.routes["/"] = html(LAZY_PAGE)
    site.routes["/page2.html"] = html("<html><head><title>Page 2</title></head><body><img src='/p2.jpg'></body></html>")
    for i, path in enumerate([*LAZY_IMAGES, "/p2.jpg"]):
        site.routes[path] = jpeg(seed + i)


# -- running scrape jobs in the test process -----------------------------------------------------
def loopback_settings(settings: Any, processes: int = 1, **scraping: Any) -> Any:
    """The session settings with loopback allowed and no politeness delay (servers are local);
    ``processes``: ingest worker processes (1: threads of the test process)."""
    import msgspec

    base = {"allowed_networks": ["127.0.0.0/8"], "per_host_delay": 0.0, "connect_timeout": 2.0, "read_timeout": 2.0,
            "retries": 1}  # fmt: skip
    return msgspec.structs.replace(
        settings, scraping=msgspec.structs.replace(settings.scraping, **{**base, **scraping}),
        ingest=msgspec.structs.replace(settings.ingest, processes=processes),
    )  # fmt: skip


async def start_inline(
    settings: Any, params: dict[str, Any], handler: Any = None, kind: str = "scraping.scrape"
) -> tuple[int, Any]:
    """Record a job and start it here through the real job runner (no broker): (job id, task)."""
    import asyncio
    import secrets

    from furrsight.jobs.runner import run_job
    from furrsight.jobs.tables import Job
    from furrsight.scraping.runner import run_scrape

    token = secrets.token_hex(8)
    row = Job(kind=kind, params=params, run_token=token)
    await row.save()
    return row.id, asyncio.create_task(run_job(row.id, token, handler or run_scrape, settings))


async def run_inline(settings: Any, params: dict[str, Any], handler: Any = None, kind: str = "scraping.scrape") -> Any:
    """Record a job and run it here through the real job runner: returns the finished job."""
    from furrsight.jobs.service import get_job

    job_id, task = await start_inline(settings, params, handler, kind)
    await task
    return await get_job(job_id)
