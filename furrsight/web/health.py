"""``GET /health``: database, broker and workers, without a login."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from furrsight.jobs.broker import workers_alive
from furrsight.jobs.tables import Job


async def check_health(state: Any) -> tuple[bool, dict[str, Any]]:
    report: dict[str, Any] = {}
    try:
        await Job.raw("select 1")
        report["database"] = {"ok": True}
    except Exception as exc:
        report["database"] = {"ok": False, "error": str(exc)}
    try:
        await state.valkey.ping()
        report["broker"] = {"ok": True}
    except Exception as exc:
        report["broker"] = {"ok": False, "error": f"broker unreachable: {exc}"}
    if report["broker"]["ok"]:
        alive = await workers_alive(state.valkey, state.settings)
        report["workers"] = {"ok": alive > 0, "alive": alive}
        if not alive:
            report["workers"]["error"] = "no worker has sent a heartbeat recently"
    else:
        report["workers"] = {"ok": False, "alive": 0, "error": "unknown: the broker is down"}
    down = [name for name, part in report.items() if not part["ok"]]
    return not down, {"status": "ok" if not down else "down", "down": down, **report}


@get("/health", opt={"public": True})
async def health(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    ok, report = await check_health(request.app.state)
    return Response(report, status_code=200 if ok else 503)
