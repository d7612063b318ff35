"""The parts of ``/health`` that jobs know: the database, the broker and the workers' heartbeats."""

from __future__ import annotations

from typing import Any

from furrsight.jobs.broker import workers_alive
from furrsight.jobs.tables import Job


async def database(state: Any) -> dict[str, Any]:
    await Job.raw("select 1")
    return {"ok": True}


async def broker(state: Any) -> dict[str, Any]:
    try:
        await state.valkey.ping()
    except Exception as exc:
        return {"ok": False, "error": f"broker unreachable: {exc}"}
    return {"ok": True}


async def workers(state: Any) -> dict[str, Any]:
    try:
        alive = await workers_alive(state.valkey, state.settings)
    except Exception:
        return {"ok": False, "alive": 0, "error": "unknown: the broker is unreachable"}
    if not alive:
        return {"ok": False, "alive": 0, "error": "no worker has sent a heartbeat recently"}
    return {"ok": True, "alive": alive}


CHECKS = {"database": database, "broker": broker, "workers": workers}
