"""The parts of ``/health`` that jobs know: the database, the broker and the workers' heartbeats."""

from __future__ import annotations

from typing import Any

from furrsight.jobs.broker import workers_alive
from furrsight.jobs.status import dead, worker_states
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
    """Not ok when no worker beats, or when a worker stopped heart-beating and no live one
    serves its queues (a killed GPU worker is named, not hidden behind a live default worker)."""
    try:
        alive = await workers_alive(state.valkey, state.settings)
        stopped = [w.words() for w in dead(await worker_states(state.valkey, state.settings))]
    except Exception:
        return {"ok": False, "alive": 0, "error": "unknown: the broker is unreachable"}
    if not alive or stopped:
        errors = ([] if alive else ["no worker has sent a heartbeat recently"]) + stopped
        return {"ok": False, "alive": alive, "dead": stopped, "error": "; ".join(errors)}
    return {"ok": True, "alive": alive}


CHECKS = {"database": database, "broker": broker, "workers": workers}
