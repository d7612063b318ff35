"""The polite client: robots.txt, Retry-After, refused addresses, timeouts, the byte cap."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from furrsight.scraping.guard import check_address, parse_networks
from furrsight.scraping.hosts import Hosts, TransferGate
from furrsight.scraping.http import ClientConfig, FetchError, PoliteClient
from furrsight.scraping.pacing import SharedPacer
from furrsight.settings import Settings
from tests.images import photo
from tests.sites import Site, drip, endless, jpeg, rate_limited, slow

UA = "FurrSight-test/1.0 (+https://example.org/bot)"


def client(pacer: SharedPacer | None = None, **overrides: object) -> PoliteClient:
    config = dict(user_agent=UA, allowed_networks=["127.0.0.0/8"], per_host_delay=0.0, connect_timeout=2.0,
                  read_timeout=1.0, retries=2, backoff=0.05)  # fmt: skip
    config.update(overrides)
    return PoliteClient(ClientConfig(**config), pacer)  # type: ignore[arg-type]


async def test_robots_txt_disallow_is_obeyed_and_cached() -> None:
    robots = (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n")
    with Site(routes={"/robots.txt": robots, "/private/a.jpg": jpeg(1), "/public/a.jpg": jpeg(2)}) as site:
        async with client() as http:
            with pytest.raises(FetchError) as refused:
                await http.get(site.url("/private/a.jpg"))
            assert refused.value.reason == "robots"
            assert (await http.get(site.url("/public/a.jpg"), accept=("image/",))).status == 200
        assert site.hits.count("/robots.txt") == 1
        assert "/private/a.jpg" not in site.hits


async def test_429_with_retry_after_is_retried_after_the_wait(caplog: pytest.LogCaptureFixture) -> None:
    with Site(routes={"/a.jpg": rate_limited(1, "1", jpeg(3))}) as site:
        async with client() as http:
            with caplog.at_level(logging.INFO, logger="furrsight.scraping.http"):
                response = await http.get(site.url("/a.jpg"))
        assert response.status == 200 and response.content[:2] == b"\xff\xd8"
        assert site.hits.count("/a.jpg") == 2
    # the wait the client chose: the server's Retry-After (1 s), not its own 0.05 s back-off
    assert [r.getMessage().rsplit(" in ", 1)[1] for r in caplog.records] == ["1.0 s (attempt 1)"]


async def test_retry_after_longer_than_allowed_gives_up_with_a_reason() -> None:
    with Site(routes={"/a.jpg": rate_limited(5, "3600", jpeg(3))}) as site:
        async with client(max_retry_after=5.0) as http:
            with pytest.raises(FetchError) as failed:
                await http.get(site.url("/a.jpg"))
    assert failed.value.reason == "retry_after_too_long"


async def test_loopback_is_refused_unless_its_network_is_allowed() -> None:
    with Site(routes={"/a.jpg": jpeg(4)}) as site:
        async with client(allowed_networks=[]) as http:
            with pytest.raises(FetchError) as refused:
                await http.get(site.url("/a.jpg"))
        assert refused.value.reason == "blocked_address"
        assert site.hits == []  # not even robots.txt was asked


async def test_a_name_resolving_to_loopback_is_refused_after_dns() -> None:
    """``localhost`` is a name, not an address: the resolver's check refuses it, and refuses it
    again from cache on the next request."""
    with Site(routes={"/a.jpg": jpeg(4)}) as site:
        url = site.url("/a.jpg").replace("127.0.0.1", "localhost")
        async with client(allowed_networks=[]) as http:
            for _ in range(2):
                with pytest.raises(FetchError) as refused:
                    await http.get(url)
                assert refused.value.reason == "blocked_address", refused.value.message
        assert site.hits == []
        async with client(allowed_networks=["127.0.0.0/8", "::1/128"]) as http:
            assert (await http.get(url, accept=("image/",))).status == 200


async def test_redirect_from_an_allowed_host_to_127_0_0_1_is_refused() -> None:
    with Site(host="127.0.0.1", routes={"/secret.jpg": jpeg(5)}) as inner:
        hop = (302, {"Location": inner.url("/secret.jpg")}, b"")
        with Site(host="127.0.0.2", routes={"/go": hop}) as outer:
            async with client(allowed_networks=["127.0.0.2/32"]) as http:
                with pytest.raises(FetchError) as refused:
                    await http.get(outer.url("/go"))
            assert refused.value.reason == "blocked_address"
            assert "/go" in outer.hits
        assert "/secret.jpg" not in inner.hits


async def test_a_slow_server_times_out() -> None:
    with Site() as site:
        site.streams["/slow.jpg"] = slow(3.0)
        async with client(read_timeout=0.5, retries=0) as http:
            with pytest.raises(FetchError) as failed:
                await http.get(site.url("/slow.jpg"))
    assert failed.value.reason == "timeout"


async def test_a_dripping_server_is_cut_at_the_request_deadline() -> None:
    with Site() as site:
        site.streams["/drip.jpg"] = drip
        async with client(read_timeout=1.0, request_deadline=1.5, retries=0) as http:
            with pytest.raises(FetchError) as failed:
                await http.get(site.url("/drip.jpg"))
    assert failed.value.reason == "timeout" and "longer than" in failed.value.message


async def test_an_endless_response_is_cut_at_the_byte_cap() -> None:
    with Site() as site:
        site.streams["/endless.jpg"] = endless
        async with client() as http:
            with pytest.raises(FetchError) as failed:
                await http.get(site.url("/endless.jpg"), max_bytes=1_000_000)
    assert failed.value.reason == "too_large"


async def test_wrong_content_type_is_refused_and_user_agent_is_sent() -> None:
    seen: dict[str, str] = {}

    def page(query: dict, site: Site) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "text/html"}, b"<html></html>"

    with Site(routes={"/page": page}) as site:
        original = site.server.RequestHandlerClass.do_GET  # type: ignore[attr-defined]

        def spy(handler) -> None:  # type: ignore[no-untyped-def]
            seen["ua"] = handler.headers.get("User-Agent")
            original(handler)

        site.server.RequestHandlerClass.do_GET = spy  # type: ignore[attr-defined]
        async with client() as http:
            with pytest.raises(FetchError) as refused:
                await http.get(site.url("/page"), accept=("image/",))
    assert refused.value.reason == "bad_content_type"
    assert seen["ua"] == UA


def test_private_link_local_and_metadata_addresses_are_blocked() -> None:
    for raw in ("10.1.2.3", "192.168.0.1", "172.16.5.5", "169.254.169.254", "fe80::1", "::1", "127.0.0.1", "0.0.0.0",
                "::ffff:127.0.0.1", "fd00:ec2::254"):  # fmt: skip
        with pytest.raises(Exception, match="loopback, private"):
            check_address(ipaddress.ip_address(raw), [])
    check_address(ipaddress.ip_address("93.184.216.34"), [])
    check_address(ipaddress.ip_address("10.1.2.3"), parse_networks(["10.0.0.0/8"]))


async def test_two_clients_share_one_per_host_delay_through_valkey(settings: Settings) -> None:
    from furrsight.jobs.broker import valkey_client

    with Site(routes={"/a.jpg": jpeg(7), "/robots.txt": (404, {}, b"")}) as site:
        pacers = [SharedPacer(valkey_client(settings), "test-pace") for _ in range(2)]
        clients = [client(per_host_delay=0.4, pacer=pacer) for pacer in pacers]
        await asyncio.gather(*(c.get(site.url("/a.jpg")) for c in clients for _ in range(2)))
        for c in clients:
            await c.aclose()
        assert site.hits.count("/a.jpg") == 4
    # one host key for both clients: both start with robots.txt at once, so at least one found the
    # other's key taken and waited (each client also spaces its own requests, so how many of the
    # later ones still find the key taken depends on scheduling, and is not asserted)
    assert sum(p.waits for p in pacers) >= 1


async def test_robots_txt_is_read_as_rfc_9309_says() -> None:
    """Wildcards, ``$``, the longest match winning and our own group: the standard library's parser
    got each of these wrong (it allowed every URL below)."""
    robots = (200, {"Content-Type": "text/plain"}, (
        b"User-agent: *\nDisallow: /\n\n"
        b"User-agent: FurrSight-test\nDisallow: /*.png$\nDisallow: /gallery/\nAllow: /gallery/public/\n"
    ))  # fmt: skip
    routes = {"/robots.txt": robots, "/a.png": jpeg(11), "/gallery/b.jpg": jpeg(12), "/gallery/public/c.jpg": jpeg(13),
              "/d.png.jpg": jpeg(14)}  # fmt: skip
    with Site(routes=routes) as site:
        async with client() as http:
            for path in ("/a.png", "/gallery/b.jpg"):
                with pytest.raises(FetchError) as refused:
                    await http.get(site.url(path))
                assert refused.value.reason == "robots", path
            for path in ("/gallery/public/c.jpg", "/d.png.jpg"):
                assert (await http.get(site.url(path))).status == 200, path
        assert sorted(site.hits) == ["/d.png.jpg", "/gallery/public/c.jpg", "/robots.txt"]


async def test_a_redirected_robots_txt_is_followed() -> None:
    """http → https style moves of robots.txt are common: the rules at the new place apply."""
    moved = (301, {"Location": "/real-robots.txt"}, b"")
    rules = (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n")
    with Site(routes={"/robots.txt": moved, "/real-robots.txt": rules, "/private/a.jpg": jpeg(15)}) as site:
        async with client() as http:
            with pytest.raises(FetchError) as refused:
                await http.get(site.url("/private/a.jpg"))
    assert refused.value.reason == "robots"


async def test_crawl_delay_is_honoured_as_a_minimum_delay() -> None:
    """``Crawl-delay: 0.4`` with our own delay at zero: robots.txt and two images leave at least
    0.4 s apart, so the three take at least 0.8 s (a lower bound the client sleeps for, on the
    client's own clock: load can only lengthen it)."""
    robots = (200, {"Content-Type": "text/plain"}, b"User-agent: *\nCrawl-delay: 0.4\n")
    with Site(routes={"/robots.txt": robots, "/a.jpg": jpeg(16), "/b.jpg": jpeg(17)}) as site:
        async with client(per_host_delay=0.0) as http:
            started = time.monotonic()
            await asyncio.gather(http.get(site.url("/a.jpg")), http.get(site.url("/b.jpg")))
            took = time.monotonic() - started
        assert sorted(site.hits) == ["/a.jpg", "/b.jpg", "/robots.txt"]
    assert took >= 0.8


async def test_a_crawl_delay_longer_than_allowed_gives_up_with_a_reason() -> None:
    robots = (200, {"Content-Type": "text/plain"}, b"User-agent: *\nCrawl-delay: 3600\n")
    with Site(routes={"/robots.txt": robots, "/a.jpg": jpeg(18)}) as site:
        async with client(max_retry_after=60.0) as http:
            with pytest.raises(FetchError) as refused:
                await http.get(site.url("/a.jpg"))
        assert "/a.jpg" not in site.hits
    assert refused.value.reason == "crawl_delay_too_long" and "3600 s" in refused.value.message


async def test_a_bogus_charset_is_read_as_utf8() -> None:
    page = (200, {"Content-Type": "text/html; charset=no-such-charset"}, "<p>caniche toiletté</p>".encode())
    sneaky = (200, {"Content-Type": "text/html; charset=rot13"}, b"<p>ok</p>")  # a codec, but not a text one
    with Site(routes={"/page": page, "/sneaky": sneaky}) as site:
        async with client() as http:
            assert (await http.get_text(site.url("/page"))).text == "<p>caniche toiletté</p>"
            assert (await http.get_text(site.url("/sneaky"))).text == "<p>ok</p>"


async def test_a_host_whose_robots_txt_hangs_does_not_hold_up_other_hosts() -> None:
    """Host A's robots.txt does not answer until the test says so; host B is fetched meanwhile.
    Two transfer slots in all: A's robots.txt holds one, B's requests go through the other (and
    A's image, waiting for its robots.txt, holds none)."""
    release = threading.Event()

    def hanging(handler: BaseHTTPRequestHandler) -> None:
        release.wait(10)
        handler.send_response(404)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    with (
        Site(host="127.0.0.1", routes={"/a.jpg": jpeg(19)}) as a,
        Site(host="127.0.0.2", routes={"/b.jpg": jpeg(20)}) as b,
    ):
        a.streams["/robots.txt"] = hanging
        async with client(concurrency=2, read_timeout=10.0) as http:
            first = asyncio.create_task(http.get(a.url("/a.jpg")))
            second = await asyncio.wait_for(http.get(b.url("/b.jpg")), 10)
            assert second.status == 200 and not first.done()
            release.set()
            assert (await first).status == 200


async def test_no_more_transfers_than_the_limit_and_none_while_paused() -> None:
    """Six hosts, two transfer slots: the servers never see more than two requests at once; a
    paused gate (ingest behind) lets no new transfer start until it is resumed."""
    lock, state, body = threading.Lock(), {"now": 0, "most": 0}, photo(21)

    def counted(handler: BaseHTTPRequestHandler) -> None:
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    with contextlib.ExitStack() as stack:
        sites = [stack.enter_context(Site(host=f"127.0.0.{i}", routes={"/robots.txt": (404, {}, b"")}))
                 for i in range(1, 7)]  # fmt: skip
        for site in sites:
            site.streams["/x.jpg"] = counted
        async with client(concurrency=2) as http:
            await asyncio.gather(*(http.get(s.url("/x.jpg")) for s in sites))
            assert state["most"] == 2
            http.gate.pause()
            paused = asyncio.create_task(http.get(sites[0].url("/x.jpg")))
            await asyncio.sleep(0.3)  # time to go out, were it free to (proving a "never" needs a wait)
            assert sites[0].hits.count("/x.jpg") == 1 and not paused.done()
            http.gate.resume()
            assert (await paused).status == 200


async def _queued(gate: TransferGate, count: int) -> None:
    """Wait until ``count`` acquirers wait on ``gate`` (each task runs up to its wait)."""
    while sum(len(queue) for queue in gate.queues) < count:
        await asyncio.sleep(0)


async def test_the_gate_serves_downloads_before_robots_lookups_each_in_order() -> None:
    """At the start of a list over many hosts, a download (work for ingest now) goes before the
    robots.txt of a host not started yet (work only after that host's delay)."""
    gate = TransferGate(1)
    await gate.acquire()  # the only slot: everyone below waits
    order: list[str] = []

    async def take(name: str, lookup: bool) -> None:
        await gate.acquire(lookup)
        order.append(name)

    tasks = [asyncio.create_task(take(name, name.startswith("robots"))) for name in
             ("robots-a", "download-1", "robots-b", "download-2")]  # fmt: skip
    await _queued(gate, 4)
    for served in range(1, 5):
        gate.release()
        while len(order) < served:
            await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert order == ["download-1", "download-2", "robots-a", "robots-b"]


async def test_a_paused_gate_holds_downloads_but_lets_robots_lookups_through() -> None:
    """Paused (ingest behind), no body may be fetched, but robots.txt look-ups go on, so the hosts
    further down the list are ready when ingest catches up."""
    gate = TransferGate(2)
    gate.pause()
    download = asyncio.create_task(gate.acquire())
    await _queued(gate, 1)
    await gate.acquire(lookup=True)  # straight through while paused
    assert not download.done() and gate.free == 1
    gate.resume()
    await download
    assert gate.free == 0
    gate.release()
    gate.release()
    assert gate.free == 2


async def test_a_host_s_robots_txt_is_read_while_downloads_are_paused() -> None:
    with Site(routes={"/robots.txt": (404, {}, b""), "/x.jpg": jpeg(3)}) as site:
        async with client() as http:
            http.gate.pause()
            paused = asyncio.create_task(http.get(site.url("/x.jpg")))
            while not http.gate.queues[0]:  # robots.txt read, the download waits for the gate
                await asyncio.sleep(0.01)
            assert site.hits == ["/robots.txt"]
            http.gate.resume()
            assert (await paused).status == 200
            assert site.hits == ["/robots.txt", "/x.jpg"]


async def test_a_cancelled_waiter_gives_its_slot_to_the_next() -> None:
    gate = TransferGate(1)
    await gate.acquire()
    first, second = asyncio.create_task(gate.acquire()), asyncio.create_task(gate.acquire())
    await _queued(gate, 2)
    first.cancel()
    gate.release()
    await second
    assert first.cancelled() and gate.free == 0


async def test_the_shared_pacer_claims_many_hosts_in_one_round_trip(settings: Settings) -> None:
    """The claims of requests leaving together go to Valkey as one pipeline on one connection, not
    a command and a connection each; a host claimed again within its delay still waits."""
    from furrsight.jobs.broker import valkey_client

    pacer = SharedPacer(valkey_client(settings), f"test-pace-batch-{time.monotonic_ns()}")
    try:
        await asyncio.gather(*(pacer.wait(f"http://host-{i}.example", 5.0) for i in range(50)))
        assert (pacer.round_trips, pacer.waits) == (1, 0)
        await pacer.wait("http://short.example", 0.2)
        await pacer.wait("http://short.example", 0.2)  # the key (0.2 s) is still set: waits it out
        assert pacer.waits == 1
    finally:
        await pacer.aclose()


def test_a_long_host_list_forgets_idle_hosts_but_not_busy_ones() -> None:
    """A list over a million hosts must not keep a million robots.txt parsers: past the table's
    size, hosts with nothing under way and their delay over are forgotten (read again later)."""
    hosts = Hosts(concurrency=2, delay=0.0)
    hosts.sweep_at = 3
    busy = hosts.get("http://a")
    with busy.used():
        for key in ("http://b", "http://c"):
            hosts.get(key)
        hosts.get("http://d")  # the fourth: the sweep forgets b and c, keeps a (busy)
        assert set(hosts.table) == {"http://a", "http://d"}
        assert hosts.get("http://a") is busy


async def test_a_host_whose_robots_txt_cannot_be_reached_fails_its_other_urls_at_once() -> None:
    """A dead host in a long list: its robots.txt is tried once (with its retry), then the
    host's other URLs fail with the same reason instead of each waiting out the same timeout."""

    def hang_up(handler: BaseHTTPRequestHandler) -> None:
        handler.close_connection = True  # no answer at all: the client sees the connection drop

    with Site() as site:
        site.streams["/robots.txt"] = hang_up
        async with client(retries=1) as http:
            tries = 0
            for path in ("/a.jpg", "/b.jpg", "/c.jpg"):
                with pytest.raises(FetchError) as failed:
                    await http.get(site.url(path))
                assert failed.value.reason == "connection", failed.value.message
                tries = tries or len(site.hits)  # what the first URL cost (aiohttp may retry a drop too)
        assert set(site.hits) == {"/robots.txt"} and len(site.hits) == tries  # nothing more after it
