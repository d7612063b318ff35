"""Failed sign-ins counted in Valkey per client address and per account name."""

from __future__ import annotations

import hashlib

from valkey.asyncio import Valkey

from furrsight.settings import AuthSettings


class Throttle:
    def __init__(self, valkey: Valkey, settings: AuthSettings, prefix: str = "furrsight:auth:fail") -> None:
        self.valkey = valkey
        self.window = settings.failure_window_seconds
        self.limits = {"addr": settings.max_failures_per_address, "user": settings.max_failures_per_account}
        self.prefix = prefix

    def _keys(self, address: str, username: str) -> dict[str, str]:
        name = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
        return {"addr": f"{self.prefix}:addr:{address}", "user": f"{self.prefix}:user:{name}"}

    async def retry_after(self, address: str, username: str) -> int:
        """Seconds to wait when the address or the account is over its limit, else 0."""
        wait = 0
        for kind, key in self._keys(address, username).items():
            count = int(await self.valkey.get(key) or 0)
            if count >= self.limits[kind]:
                wait = max(wait, int(await self.valkey.ttl(key)), 1)
        return wait

    async def failed(self, address: str, username: str) -> None:
        for key in self._keys(address, username).values():
            async with self.valkey.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, self.window, nx=True)
                await pipe.execute()

    async def succeeded(self, username: str) -> None:
        await self.valkey.delete(self._keys("-", username)["user"])
