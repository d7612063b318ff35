"""Loopback HTTP servers for the scraper tests.

``Site`` is a threaded server on 127.0.0.x with a table of routes (GET and POST, every request
logged with its headers). The real services the built-in plugins talk to are stood in for by
answers recorded from them (``tests/recorded/<service>/``, each with its source noted), served as
recorded; ``relocated`` moves the image URLs of such an answer onto a loopback site so the run can
fetch them offline. Misbehaving answers (a 429 with Retry-After, a slow answer, an endless body)
and a page with every lazy-load pattern serve the polite client's and ``web_page``'s tests.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.images import photo

Answer = tuple[int, dict[str, str], bytes]
Route = Callable[[dict[str, list[str]], "Site"], Answer] | Answer


def jpeg(seed: int) -> Answer:
    return 200, {"Content-Type": "image/jpeg"}, photo(seed)


def as_json(value: Any) -> Answer:
    return 200, {"Content-Type": "application/json"}, json.dumps(value).encode()


def html(text: str) -> Answer:
    return 200, {"Content-Type": "text/html; charset=utf-8"}, text.encode()


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]  # the query string, and for a POST the form fields too
    headers: dict[str, str]  # lower-case names


class Site:
    def __init__(self, host: str = "127.0.0.1", routes: dict[str, Route] | None = None) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.hits: list[str] = []
        self.requests: list[Request] = []
        self.streams: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._answer("GET", {})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._answer("POST", parse_qs(self.rfile.read(length).decode()))

            def _answer(self, method: str, form: dict[str, list[str]]) -> None:
                parts = urlsplit(self.path)
                site.hits.append(self.path)
                query = {**parse_qs(parts.query), **form}
                headers = {k.lower(): v for k, v in self.headers.items()}
                site.requests.append(Request(method, parts.path, query, headers))
                if parts.path in site.streams:
                    site.streams[parts.path](self)
                    return
                route = site.routes.get(parts.path) or site.routes.get(unquote(parts.path))
                if route is None:
                    status, headers_out, body = 404, {"Content-Type": "text/plain"}, b"not found"
                elif callable(route):
                    status, headers_out, body = route(query, site)
                else:
                    status, headers_out, body = route
                self.send_response(status)
                for key, value in headers_out.items():
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

    def requests_to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

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


# -- the real services, answering what was recorded from them (tests/recorded/) ----------------------
RECORDED = Path(__file__).resolve().parent / "recorded"


def recorded(service: str, name: str) -> Any:
    """A recorded answer of ``service`` (see tests/recorded/<service>/README.md for its source)."""
    path = RECORDED / service / name
    return json.loads(path.read_text(encoding="utf-8")) if path.suffix == ".json" else path.read_bytes()


def relocated(answer: Any, images: Site, hosts: tuple[str, ...], seed: int) -> Any:
    """``answer`` with every URL on ``hosts`` moved onto the ``images`` site (the same path under
    ``/<host>/``), each served there as a distinct JPEG: the recorded answer, fetchable offline."""
    text = json.dumps(answer)
    for host in hosts:
        text = text.replace(f"https://{host}/", f"{images.base}/{host}/")
    paths = sorted(set(re.findall(re.escape(images.base) + r"(/[^\"?\s]+)", text)))
    for i, path in enumerate(paths):
        images.routes.setdefault(unquote(path), jpeg(seed + i))  # matched unquoted: clients re-quote paths
    return json.loads(text)


def robots(text: str) -> Answer:
    return 200, {"Content-Type": "text/plain"}, text.encode()


def json_answer(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(value).encode()


def bearer(site: Site) -> str | None:
    return site.requests[-1].headers.get("authorization")


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


async def collect(
    plugin_name: str,
    params: dict[str, Any],
    *,
    settings: dict[str, Any] | None = None,
    base_urls: dict[str, str] | None = None,
) -> tuple[list[Any], dict[str, int], list[str]]:
    """Run one plugin's ``scrape`` here with a real polite client allowed onto loopback: (the
    candidates it yields, the counters it added, its progress messages)."""
    import logging

    import msgspec

    from furrsight.scraping.contract import ScrapeContext
    from furrsight.scraping.http import ClientConfig, PoliteClient

    plugin = _plugins()[plugin_name]
    counters: dict[str, int] = {}
    messages: list[str] = []
    config = ClientConfig(user_agent="FurrSight/0.1 (+https://github.com/furrsight; dataset research crawler)",
                          allowed_networks=["127.0.0.0/8"], per_host_delay=0.0, connect_timeout=2.0,
                          read_timeout=2.0, retries=1, max_retry_after=5.0)  # fmt: skip
    own = {"user_agent": config.user_agent, "contact": "", **(settings or {})}
    async with PoliteClient(config) as client:
        ctx = ScrapeContext(
            http=client, log=logging.getLogger(f"tests.plugins.{plugin_name}"), settings=own,
            progress=messages.append, count=lambda name, n: counters.__setitem__(name, counters.get(name, 0) + n),
            base_urls=base_urls or {},
        )  # fmt: skip
        typed = msgspec.convert(params, plugin.Params, strict=False)
        found = [c async for c in plugin.scrape(typed, ctx)]
    return found, counters, messages


@functools.cache
def _plugins() -> dict[str, Any]:
    """The plugins, discovered once: like the app's registry, an instance keeps its cached tokens."""
    from furrsight.scraping.discovery import discover

    return discover().scrapers
