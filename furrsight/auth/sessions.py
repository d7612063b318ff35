"""Server-side sessions in Valkey: the cookie holds only a random id.

A session ends when unused for ``session_idle_minutes`` (the key's TTL, renewed on every
request), ``session_absolute_hours`` after sign-in (checked against its start), at logout
(the key is deleted), or when its user is disabled (checked on every request).
"""

from __future__ import annotations

import secrets
import time

import msgspec
from litestar.stores.valkey import ValkeyStore

from furrsight.settings import AuthSettings

COOKIE = "furrsight_session"


class SessionData(msgspec.Struct):
    user_id: int
    started: float


class Sessions:
    def __init__(self, store: ValkeyStore, settings: AuthSettings) -> None:
        self.store = store
        self.idle = settings.session_idle_minutes * 60
        self.absolute = settings.session_absolute_hours * 3600

    async def create(self, user_id: int) -> str:
        sid = secrets.token_urlsafe(32)
        await self.store.set(sid, msgspec.json.encode(SessionData(user_id, time.time())), expires_in=self.idle)
        return sid

    async def load(self, sid: str) -> SessionData | None:
        # Not get(renew_for=): ValkeyStore's renewal script calls `server.call`, which exists on
        # Valkey only; writing the value back renews it on Redis too.
        raw = await self.store.get(sid)
        if raw is None:
            return None
        try:
            data = msgspec.json.decode(raw, type=SessionData)
        except msgspec.DecodeError:
            return None
        if time.time() - data.started > self.absolute:
            await self.store.delete(sid)
            return None
        await self.store.set(sid, raw, expires_in=self.idle)
        return data

    async def delete(self, sid: str) -> None:
        await self.store.delete(sid)
