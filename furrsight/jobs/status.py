"""What the broker knows, for ``furrsight status`` and ``/health``: each queue's depth and the age
of its oldest message, and each worker process, alive or dead by its heartbeat.

Dramatiq keeps a queue as a list of message ids ``<namespace>:<queue>`` (delayed messages in
``<queue>.DQ``) with the messages in the hash ``<list>.msgs``; ids are pushed on the right and
fetched from the left, but redelivered ones are pushed on the right again, so the oldest is
looked for at both ends. Workers are the records of ``furrsight.jobs.workers`` joined with the
heartbeats zset: a record whose heartbeat is older than ``jobs.heartbeat_timeout_ms`` is dead.
A dead worker is *down* while no live worker serves one of its queues, and *replaced* otherwise
(``furrsight up`` restarted it).
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import valkey

from furrsight.jobs.broker import DEFAULT_QUEUE, GPU_QUEUE
from furrsight.settings import Settings

QUEUES = (DEFAULT_QUEUE, GPU_QUEUE)


class QueueState(msgspec.Struct, kw_only=True):
    name: str
    depth: int
    delayed: int
    oldest_age_s: float | None  # of the messages waiting (not the delayed ones); None: none waits


class WorkerState(msgspec.Struct, kw_only=True):
    broker_id: str
    queues: list[str]
    pid: int
    host: str
    started: float
    last_beat_age_s: float | None  # None: never heart-beat
    state: str  # alive / dead / replaced
    models: list[str]

    def words(self) -> str:
        what = f"{'/'.join(self.queues)} worker (pid {self.pid} on {self.host})"
        if self.state == "alive":
            return f"{what} alive"
        silent = (
            "never sent a heartbeat"
            if self.last_beat_age_s is None
            else (f"stopped heart-beating {self.last_beat_age_s:.0f} s ago")
        )
        return f"{what} {silent}" + (", replaced by a live one" if self.state == "replaced" else "")


async def _ask(client: valkey.asyncio.Valkey, *command: Any) -> Any:
    """One raw command (valkey's list and hash methods are typed sync-or-async)."""
    return await client.execute_command(*command)


async def _now_ms(client: valkey.asyncio.Valkey) -> int:
    seconds, micros = await client.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def _oldest_ms(client: valkey.asyncio.Valkey, key: str) -> int | None:
    stamps = []
    for end in (0, -1):
        message_id = await _ask(client, "LINDEX", key, end)
        data = message_id and await _ask(client, "HGET", f"{key}.msgs", message_id)
        if data:
            stamps.append(int(json.loads(data)["message_timestamp"]))
    return min(stamps) if stamps else None


async def queue_states(client: valkey.asyncio.Valkey, settings: Settings) -> list[QueueState]:
    now = await _now_ms(client)
    states = []
    for name in QUEUES:
        key = f"{settings.broker_namespace}:{name}"
        oldest = await _oldest_ms(client, key)  # waiting ones: a delayed message is not late
        states.append(
            QueueState(
                name=name,
                depth=int(await _ask(client, "LLEN", key)),
                delayed=int(await _ask(client, "LLEN", f"{key}.DQ")),
                oldest_age_s=max(0.0, (now - oldest) / 1000) if oldest else None,
            )
        )
    return states


def _text(value: Any, default: str = "") -> str:
    return value.decode() if isinstance(value, bytes) else default if value is None else str(value)


async def worker_states(client: valkey.asyncio.Valkey, settings: Settings) -> list[WorkerState]:
    """Every worker that left a record, oldest first; dead ones named as such."""
    now = await _now_ms(client)
    prefix = f"{settings.broker_namespace}:workers:"
    beats = f"{settings.broker_namespace}:__heartbeats__"
    found = []
    async for key in client.scan_iter(match=f"{prefix}*", count=500):
        broker_id = _text(key)[len(prefix) :]
        fields = {_text(k): _text(v) for k, v in (await _ask(client, "HGETALL", key)).items()}
        if not fields:  # expired between the scan and the read
            continue
        beat = await client.zscore(beats, broker_id)  # gone once maintenance swept a dead worker
        last = max(beat or 0, float(fields.get("seen_ms") or 0))
        age = max(0.0, (now - last) / 1000) if last else None
        alive = beat is not None and now - beat <= settings.jobs.heartbeat_timeout_ms
        found.append(
            WorkerState(
                broker_id=broker_id,
                queues=[q for q in fields.get("queues", "").split(",") if q],
                pid=int(fields.get("pid") or 0),
                host=fields.get("host", "?"),
                started=float(fields.get("started") or 0),
                last_beat_age_s=age,
                state="alive" if alive else "dead",
                models=json.loads(fields.get("models") or "[]"),
            )
        )
    served = {q for w in found if w.state == "alive" for q in w.queues}
    for w in found:
        if w.state == "dead" and set(w.queues) <= served:
            w.state = "replaced"
    return sorted(found, key=lambda w: w.started)


def dead(workers: list[WorkerState]) -> list[WorkerState]:
    """The dead workers no live one stands in for: what ``/health`` and ``status`` call down."""
    return [w for w in workers if w.state == "dead"]
