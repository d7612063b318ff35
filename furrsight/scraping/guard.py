"""Refuse loopback, private, link-local and metadata addresses after DNS resolution.

The check sits where names become addresses: an aiohttp resolver that resolves, checks every
address, and hands the connector only checked ones (so the connection goes to a checked address:
no second lookup an attacker could rebind). Every connection — the first request, each redirect,
robots.txt — goes through it; hosts written as IP literals skip resolvers in aiohttp, so the
client checks those itself with ``check_literal`` before each request.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Iterable

from aiohttp import ThreadedResolver
from aiohttp.abc import AbstractResolver, ResolveResult

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class BlockedAddress(OSError):
    """A host resolved to an address scrapers may not reach (an OSError, so that aiohttp's
    connector passes it on as the cause of its connection error)."""

    reason = "blocked_address"


def parse_networks(cidrs: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip()]


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return not (
        address in METADATA
        or address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def check_address(address: IPAddress, allowed: list[Network]) -> None:
    if any(address in net for net in allowed):
        return
    if not is_public(address):
        raise BlockedAddress(f"{address} is a loopback, private, link-local or metadata address")


def check_literal(host: str, allowed: list[Network]) -> None:
    """A host that is an IP address already: check it (resolvers never see it)."""
    address = _literal(host)
    if address is not None:
        check_address(address, allowed)


@functools.lru_cache(maxsize=4096)
def _literal(host: str) -> IPAddress | None:
    """``host`` as an IP address, None for a name (parsed once per host, not once per request)."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None


class GuardedResolver(AbstractResolver):
    """Resolve with the system resolver, then refuse the host if any address is off limits."""

    def __init__(self, allowed: list[Network]) -> None:
        self.allowed = allowed
        self.inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        for result in results:
            check_address(ipaddress.ip_address(result["host"].split("%")[0]), self.allowed)
        return results

    async def close(self) -> None:
        await self.inner.close()
