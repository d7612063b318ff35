"""``GET /health`` without a login: the answer of every check the app composes.

This module knows no feature: ``app.py`` passes in the checks (each an async function of the
app's state answering a dict with ``ok`` and, when not ok, an ``error`` in words). A check that
raises counts as down, with its exception as the error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler

Check = Callable[[Any], Awaitable[dict[str, Any]]]


async def check_health(state: Any, checks: Mapping[str, Check]) -> tuple[bool, dict[str, Any]]:
    report: dict[str, Any] = {}
    for name, check in checks.items():
        try:
            report[name] = await check(state)
        except Exception as exc:
            report[name] = {"ok": False, "error": str(exc) or type(exc).__name__}
    down = [name for name, part in report.items() if not part["ok"]]
    return not down, {"status": "ok" if not down else "down", "down": down, **report}


def health_route(checks: Mapping[str, Check]) -> HTTPRouteHandler:
    """The ``/health`` handler over ``checks``: 200 when all are ok, else 503 naming the others."""

    @get("/health", opt={"public": True})
    async def health(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        ok, report = await check_health(request.app.state, checks)
        return Response(report, status_code=200 if ok else 503)

    return health
