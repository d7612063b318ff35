"""The polite HTTP client every plugin and the scrape runner use.

robots.txt is obeyed (read once per host, RFC 9309, its ``Crawl-delay`` honoured), each host gets
a rate limit and a concurrency cap, 429/503 answers are retried honouring ``Retry-After``, bodies
are streamed under a byte cap, content types are checked, and redirects are followed by hand so
each hop is checked again (robots, scheme, and — in the connection layer — the address it
resolves to).

Hosts proceed independently: a request waiting for its host's turn (or its robots.txt) holds
nothing shared. Only a request that is about to be sent takes one of the client's ``concurrency``
transfer slots (the ``TransferGate``), so a thousand slow hosts are fetched side by side while a
busy one waits its turn.
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import email.utils
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import aiohttp
import msgspec

from furrsight.metrics.instruments import SCRAPE_FETCHES
from furrsight.scraping.guard import BlockedAddress, GuardedResolver, check_literal, parse_networks
from furrsight.scraping.hosts import Host, Hosts, TransferGate
from furrsight.scraping.pacing import SharedPacer
from furrsight.scraping.robots import Robots

logger = logging.getLogger(__name__)
RETRY_STATUSES = {429, 500, 502, 503, 504}
REDIRECTS = {301, 302, 303, 307, 308}
ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309: parse at least the first 500 KiB


class FetchError(Exception):
    """A URL that could not be fetched; ``reason`` is a short code (robots, timeout, http_404…)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class Response:
    url: str  # after redirects
    status: int
    headers: Mapping[str, str]  # case-insensitive
    content: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def text(self) -> str:
        return self.content.decode(self.encoding, "replace")

    @property
    def encoding(self) -> str:
        """The declared charset when Python knows it as a text encoding, else UTF-8 (a page
        saying ``charset=bogus`` is still read)."""
        for part in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                try:
                    codec = codecs.lookup(value.strip().strip("'\""))
                except LookupError:
                    break
                return codec.name if getattr(codec, "_is_text_encoding", True) else "utf-8"
        return "utf-8"

    def json(self) -> Any:
        try:
            return msgspec.json.decode(self.content)
        except msgspec.DecodeError as exc:
            raise FetchError("bad_json", f"{self.url} did not answer JSON: {exc}") from exc


@dataclass
class ClientConfig:
    user_agent: str
    allowed_networks: list[str] = field(default_factory=list)
    per_host_delay: float = 1.0
    per_host_concurrency: int = 2
    concurrency: int = 128  # requests being sent or received at once, all hosts
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_bytes: int = 50 * 1024 * 1024
    request_deadline: float = 300.0
    retries: int = 3
    max_retry_after: float = 120.0
    max_redirects: int = 5
    backoff: float = 1.0  # first retry waits this long, doubling

    @classmethod
    def from_settings(cls, scraping: Any) -> ClientConfig:
        names = cls.__dataclass_fields__.keys() - {"backoff"}
        return cls(**{n: getattr(scraping, n) for n in names})


class PoliteClient:
    """On aiohttp: its C HTTP parser costs 0.4 ms of CPU per 200 KiB image where httpx took 1.9
    (measured on loopback, 16 in flight), which is a tenth of a scrape's CPU per image."""

    def __init__(self, config: ClientConfig, pacer: SharedPacer | None = None) -> None:
        self.config = config
        self.pacer = pacer  # spaces requests to a host across jobs and processes
        self.networks = parse_networks(config.allowed_networks)  # private ones scrapers may reach
        self._session: aiohttp.ClientSession | None = None  # made in the event loop, on first use
        self.hosts = Hosts(config.per_host_concurrency, config.per_host_delay)
        self.gate = TransferGate(config.concurrency)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(self.networks), limit=max(256, 2 * self.config.concurrency), ttl_dns_cache=60
            )
            timeout = aiohttp.ClientTimeout(
                sock_connect=self.config.connect_timeout, sock_read=self.config.read_timeout
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=timeout, headers={"User-Agent": self.config.user_agent}
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self.pacer is not None:
            await self.pacer.aclose()

    async def __aenter__(self) -> PoliteClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- public ---------------------------------------------------------------------------------
    async def get(
        self, url: str, *, params: dict[str, Any] | None = None, accept: tuple[str, ...] = (),
        max_bytes: int | None = None, headers: dict[str, str] | None = None, api: bool = False,
    ) -> Response:  # fmt: skip
        """GET ``url`` politely; ``accept`` lists allowed content-type prefixes (empty: any).

        ``api=True`` marks a request to a documented API (MediaWiki's, Reddit's, Openverse's, a
        SearXNG instance's JSON): it is governed by that API's own rules — the plugin's
        User-Agent, authentication, rate limits, ``Retry-After`` — not robots.txt, which keeps
        governing page crawling and image downloads. Per-host pacing, concurrency, retries, size
        caps and the private-address guard apply to every request alike.
        """
        if params:
            url = with_query(url, params)
        try:
            response = await self._follow(url, accept, max_bytes, headers, api)
        except FetchError as exc:
            SCRAPE_FETCHES.labels(exc.reason).inc()
            raise
        except Exception:
            SCRAPE_FETCHES.labels("error").inc()
            raise
        SCRAPE_FETCHES.labels("ok").inc()
        return response

    async def _follow(
        self, url: str, accept: tuple[str, ...], max_bytes: int | None, headers: dict[str, str] | None, api: bool
    ) -> Response:
        for _hop in range(self.config.max_redirects + 1):
            response = await self._get_once(url, max_bytes or self.config.max_bytes, headers=headers, api=api)
            location = response.headers.get("location")
            if response.status in REDIRECTS and location:
                url = urljoin(url, location)
                continue
            if response.status >= 400:
                raise FetchError(f"http_{response.status}", f"{url} answered {response.status}")
            if accept and not response.content_type.startswith(accept):
                raise FetchError(
                    "bad_content_type", f"{url} is {response.content_type or 'untyped'}, not {'/'.join(accept)}"
                )
            return response
        raise FetchError("too_many_redirects", f"more than {self.config.max_redirects} redirects from {url}")

    async def get_json(
        self, url: str, params: dict[str, Any] | None = None, *, headers: dict[str, str] | None = None,
        api: bool = False,
    ) -> Any:  # fmt: skip
        accept = ("application/json", "text/json")
        return (await self.get(url, params=params, accept=accept, headers=headers, api=api)).json()

    async def post_form(
        self, url: str, data: dict[str, str], *, headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> Response:  # fmt: skip
        """POST a form to a documented API (an OAuth token endpoint): no robots.txt, no redirects
        followed, no retries (a token request is not idempotent for every provider); paced and
        guarded like any request. ``auth`` is HTTP Basic (client id, secret). A 4xx/5xx raises."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchError("bad_url", f"{url!r} is not an http(s) URL")
        extra = dict(headers or {})
        if auth is not None:
            # RFC 7617 by hand: aiohttp deprecates BasicAuth, and encode_basic_auth() is missing in
            # the 3.10 that pyproject allows.
            extra["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
        delay = self.config.per_host_delay
        response = await self._request(url, self.config.max_bytes, 0, delay, headers=extra, form=data)
        if response.status >= 400:
            raise FetchError(f"http_{response.status}", f"{url} answered {response.status}")
        return response

    async def get_text(self, url: str) -> Response:
        return await self.get(url, accept=("text/html", "application/xhtml", "text/plain"))

    async def allowed(self, url: str) -> bool:
        """Whether robots.txt lets our User-Agent fetch ``url``."""
        host = await self._robots(urlsplit(url))
        assert host.robots is not None
        return host.robots.allows(url, self.config.user_agent)

    # -- internals ------------------------------------------------------------------------------
    def _host(self, parts: Any) -> Host:
        return self.hosts.get(f"{parts.scheme}://{parts.netloc}".lower())

    async def _robots(self, parts: Any) -> Host:
        """The host of ``parts`` with its robots.txt read (once; other hosts do not wait)."""
        with self._host(parts).used() as host:
            async with host.robots_lock:
                if (down := host.still_down()) is not None:
                    raise FetchError(*down)  # its other URLs fail at once, not each after the same timeout
                if host.robots is None:
                    try:
                        host.robots = await self._load_robots(f"{parts.scheme}://{parts.netloc}/robots.txt")
                    except FetchError as exc:
                        host.mark_down(exc.reason, exc.message)
                        raise
                    host.crawl_delay = host.robots.crawl_delay(self.config.user_agent)
            return host

    async def _load_robots(self, url: str) -> Robots:
        for _hop in range(self.config.max_redirects + 1):  # RFC 9309: follow at least five
            try:
                response = await self._request(url, ROBOTS_MAX_BYTES, 1, self.config.per_host_delay, lookup=True)
            except FetchError as exc:
                if exc.reason in ("blocked_address", "connection", "timeout"):
                    raise  # the host itself is unreachable: the page fails for that reason (not cached)
                return Robots.from_answer(None)
            location = response.headers.get("location")
            if response.status in REDIRECTS and location:
                url = urljoin(url, location)
                continue
            return Robots.from_answer(response.status, response.content.decode("utf-8", "replace"))
        return Robots.from_answer(404)  # RFC 9309: past the redirects followed, "unavailable"

    async def _get_once(
        self, url: str, max_bytes: int, *, headers: dict[str, str] | None = None, api: bool = False
    ) -> Response:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchError("bad_url", f"{url!r} is not an http(s) URL")
        delay = self.config.per_host_delay
        if not api:
            host = await self._robots(parts)
            assert host.robots is not None
            if not host.robots.allows(url, self.config.user_agent):
                raise FetchError("robots", f"robots.txt of {parts.netloc} disallows {url}")
            if host.crawl_delay > self.config.max_retry_after:
                raise FetchError(
                    "crawl_delay_too_long",
                    f"robots.txt of {parts.netloc} asks {host.crawl_delay:.0f} s between requests "
                    f"(more than max_retry_after, {self.config.max_retry_after:.0f} s)",
                )
            delay = max(delay, host.crawl_delay)  # Crawl-delay: a minimum, never a speed-up
        return await self._request(url, max_bytes, self.config.retries, delay, headers=headers)

    async def _request(
        self, url: str, max_bytes: int, retries: int, delay: float, headers: dict[str, str] | None = None,
        form: dict[str, str] | None = None, lookup: bool = False,
    ) -> Response:  # fmt: skip
        with self._host(urlsplit(url)).used() as host:
            attempt = 0
            while True:
                async with host.slots:
                    await host.take_turn(delay, self.gate, self.pacer, lookup)
                    try:
                        response = await self._stream(url, max_bytes, headers, form)
                    except FetchError as exc:
                        if exc.reason not in ("timeout", "connection") or attempt >= retries:
                            raise
                        response = None
                    finally:
                        self.gate.release()
                if response is not None and (response.status not in RETRY_STATUSES or attempt >= retries):
                    return response
                wait = self._retry_delay(response, attempt)
                if wait > self.config.max_retry_after:
                    raise FetchError("retry_after_too_long", f"{url} asked to wait {wait:.0f} s")
                attempt += 1
                logger.info("retrying %s in %.1f s (attempt %d)", url, wait, attempt)
                await asyncio.sleep(wait)

    def _retry_delay(self, response: Response | None, attempt: int) -> float:
        backoff = self.config.backoff * (2**attempt)
        value = response.headers.get("retry-after") if response is not None else None
        if not value:
            return backoff
        if value.strip().isdigit():
            return float(value.strip())
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return backoff
        return max(0.0, when.timestamp() - time.time())

    async def _stream(
        self, url: str, max_bytes: int, headers: dict[str, str] | None = None, form: dict[str, str] | None = None
    ) -> Response:
        try:
            async with asyncio.timeout(self.config.request_deadline):
                return await self._stream_body(url, max_bytes, headers, form)
        except TimeoutError as exc:
            raise FetchError("timeout", f"{url}: took longer than {self.config.request_deadline:.0f} s") from exc

    async def _stream_body(
        self, url: str, max_bytes: int, headers: dict[str, str] | None, form: dict[str, str] | None
    ) -> Response:
        try:
            check_literal(urlsplit(url).hostname or "", self.networks)
            method = "POST" if form is not None else "GET"
            request = self._client().request(method, url, allow_redirects=False, headers=headers, data=form)
            async with request as raw:
                declared = raw.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise FetchError("too_large", f"{url} is {declared} bytes, over the cap of {max_bytes}")
                chunks: list[bytes] = []
                size = 0
                async for chunk in raw.content.iter_chunked(1 << 16):
                    size += len(chunk)
                    if size > max_bytes:
                        raise FetchError("too_large", f"{url} went past the cap of {max_bytes} bytes")
                    chunks.append(chunk)
                return Response(str(raw.url), raw.status, raw.headers, b"".join(chunks))
        except BlockedAddress as exc:
            raise FetchError("blocked_address", f"{url}: {exc}") from exc
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, BlockedAddress):
                raise FetchError("blocked_address", f"{url}: {exc.os_error}") from exc
            raise FetchError("connection", f"{url}: cannot connect: {exc}") from exc
        except (aiohttp.ServerTimeoutError, TimeoutError) as exc:  # aiohttp's connect and read timeouts
            raise FetchError("timeout", f"{url}: timed out ({type(exc).__name__})") from exc
        except (aiohttp.ClientError, ValueError) as exc:  # a broken answer, an invalid URL
            raise FetchError("connection", f"{url}: {exc}") from exc


def with_query(url: str, params: dict[str, Any]) -> str:
    """``url`` with ``params`` added to its query (None values left out, lists repeated)."""
    parts = urlsplit(url)
    extra = urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)
    return urlunsplit(parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra))
