"""Many image hosts on loopback, each answering after a delay, as hosts on a real network do.

    python -m bench.hosts FOLDER --hosts 1000 --latency-ms 150 --port 0

One aiohttp server (one process, one event loop) listens on ``hosts`` distinct loopback addresses
(127.20.0.1, 127.20.0.2, … — every address in 127.0.0.0/8 is this machine, and each is a
different host to a client: its own robots.txt, its own per-host limits), all on one port. Every
answer — ``/robots.txt`` (allow all but ``/private/``) and each image of FOLDER — is sent after
``latency`` ms. It prints the port once every address listens, and serves until killed.
Loopback only: it binds no other address.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
from pathlib import Path

from aiohttp import web

ROBOTS = "User-agent: *\nDisallow: /private/\n"


def address(index: int, hosts: int) -> str:
    """The loopback address of host ``index`` (127.0.0.1 when there is only one host)."""
    if hosts == 1:
        return "127.0.0.1"
    return f"127.20.{index // 250}.{index % 250 + 1}"


def app(folder: Path, latency: float) -> web.Application:
    async def robots(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(latency)
        return web.Response(text=ROBOTS)

    async def image(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(latency)
        path = folder / request.match_info["name"]
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Content-Type": "image/jpeg"})

    application = web.Application()
    application.router.add_get("/robots.txt", robots)
    application.router.add_get("/{name}", image)
    return application


def free_port(hosts: int) -> int:
    """A port free on the first address (the others are almost surely free as well)."""
    with socket.socket() as sock:
        sock.bind((address(0, hosts), 0))
        return int(sock.getsockname()[1])


async def serve(folder: Path, hosts: int, latency: float, port: int) -> None:
    runner = web.AppRunner(app(folder, latency), access_log=None)
    await runner.setup()
    port = port or free_port(hosts)
    for index in range(hosts):
        await web.TCPSite(runner, address(index, hosts), port, backlog=1024).start()
    print(port, flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=150.0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.folder, args.hosts, args.latency_ms / 1000, args.port))


if __name__ == "__main__":
    main()
