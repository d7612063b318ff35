"""Refuse loopback, private, link-local and metadata addresses after DNS resolution.

The check sits in the connection layer (an httpcore network backend), so every connection —
the first request, each redirect, robots.txt — is checked against the address actually dialled,
and the connection goes to that checked address (no second lookup an attacker could rebind).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import anyio
import httpcore

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class BlockedAddress(httpcore.ConnectError):
    """A host resolved to an address scrapers may not reach."""

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


async def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolve, check every address, then connect to a checked one."""

    def __init__(self, allowed: list[Network]) -> None:
        self.allowed = allowed
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(  # httpcore's interface, timeout included
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve(host, port)
        for address in addresses:
            check_address(address, self.allowed)
        return await self.inner.connect_tcp(
            str(addresses[0]), port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress("unix sockets are not reachable by scrapers")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)
