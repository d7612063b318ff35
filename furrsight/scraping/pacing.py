"""The per-host delay shared by every scrape on the machine, through Valkey.

Each ``PoliteClient`` already spaces its own requests to a host; two scrape jobs (or two worker
processes) hitting the same host would each keep their own spacing, doubling the rate. This pacer
holds one short-lived key per host (``SET NX PX delay``): whoever sets it may send, the others wait
for it to expire. If Valkey cannot be reached the client keeps its own spacing only.

The claims of all the requests about to leave are sent together, one pipeline on one connection
per round trip (while one is answered, the next ones gather). One command each on the client's
pool opened a connection per request in flight (128) and cost a tenth of the fetching process's
CPU at the start of a list over many hosts.
"""

from __future__ import annotations

import asyncio
import logging

import valkey.asyncio
from valkey.exceptions import ValkeyError

logger = logging.getLogger(__name__)


class SharedPacer:
    def __init__(self, client: valkey.asyncio.Valkey, namespace: str) -> None:
        self.client = client
        self.prefix = f"{namespace}:scrape-pace:"
        self.broken = False
        self.waits = 0  # requests that found the host's key taken and waited for it
        self.round_trips = 0  # pipelines sent
        self._queue: list[tuple[str, int, asyncio.Future[bool]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def wait(self, host: str, delay: float) -> None:
        """Return once this process may send the next request to ``host``."""
        if delay <= 0 or self.broken:
            return
        key, ms = self.prefix + host, max(1, int(delay * 1000))
        try:
            waited = False
            while not await self._claim(key, ms):
                if not waited:
                    waited, self.waits = True, self.waits + 1
                left = await self.client.pttl(key)
                await asyncio.sleep(max(left, 5) / 1000)
        except (ValkeyError, OSError) as exc:
            self.broken = True
            logger.warning("shared per-host pacing off (Valkey unreachable: %s); pacing within this job only", exc)

    async def _claim(self, key: str, ms: int) -> bool:
        """``SET key NX PX ms``, sent with the other claims queued meanwhile: whether it was set."""
        claimed: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((key, ms, claimed))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send())
        return await claimed

    async def _send(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                async with self.client.pipeline(transaction=False) as pipe:
                    for key, ms, _ in batch:
                        pipe.set(key, "1", px=ms, nx=True)
                    answers = await pipe.execute()
                self.round_trips += 1
            except Exception as exc:  # each waiting request gets it (and turns the pacer off)
                for _, _, claimed in batch:
                    if not claimed.done():
                        claimed.set_exception(exc)
                continue
            except BaseException:  # cancelled (the client closing): nobody is left to answer
                for _, _, claimed in batch:
                    claimed.cancel()
                raise
            for (_, _, claimed), answer in zip(batch, answers, strict=True):
                if not claimed.done():
                    claimed.set_result(bool(answer))

    async def aclose(self) -> None:
        if self._sender is not None and not self._sender.done():
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
        await self.client.aclose()
