"""The per-host delay shared by every scrape on the machine, through Valkey.

Each ``PoliteClient`` already spaces its own requests to a host; two scrape jobs (or two worker
processes) hitting the same host would each keep their own spacing, doubling the rate. This pacer
holds one short-lived key per host (``SET NX PX delay``): whoever sets it may send, the others wait
for it to expire. If Valkey cannot be reached the client keeps its own spacing only.
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

    async def wait(self, host: str, delay: float) -> None:
        """Return once this process may send the next request to ``host``."""
        if delay <= 0 or self.broken:
            return
        key, ms = self.prefix + host, max(1, int(delay * 1000))
        try:
            waited = False
            while not await self.client.set(key, "1", px=ms, nx=True):
                if not waited:
                    waited, self.waits = True, self.waits + 1
                left = await self.client.pttl(key)
                await asyncio.sleep(max(left, 5) / 1000)
        except (ValkeyError, OSError) as exc:
            self.broken = True
            logger.warning("shared per-host pacing off (Valkey unreachable: %s); pacing within this job only", exc)

    async def aclose(self) -> None:
        await self.client.aclose()
