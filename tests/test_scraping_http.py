"""The polite client: robots.txt, Retry-After, refused addresses, timeouts, the byte cap."""

from __future__ import annotations

import asyncio
import ipaddress
import logging

import pytest

from furrsight.scraping.guard import check_address, parse_networks
from furrsight.scraping.http import ClientConfig, FetchError, PoliteClient
from furrsight.scraping.pacing import SharedPacer
from furrsight.settings import Settings
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
