"""``/metrics`` itself, and the ASGI middleware that times every routed request.

The route is an admin route that a listed client address may also read without signing in
(``allow_from``: the ``metrics.allow`` CIDRs; the app's role guard checks them). It answers
401 in words, not a redirect to the sign-in page: a scraper reads it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import Metric

from furrsight.metrics.exposition import exposition
from furrsight.metrics.instruments import HTTP_SECONDS

GaugeSource = Callable[[Any], Awaitable[list[Metric]]]  # the app's state -> gauge families


def metrics_route(gauges: GaugeSource, allow: list[str]) -> HTTPRouteHandler:
    @get(
        "/metrics",
        include_in_schema=False,  # not a JSON API route
        opt={"role": "admin", "allow_from": tuple(allow), "machine": True},
    )
    async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
        families = await gauges(request.app.state)
        body = await asyncio.to_thread(exposition, request.app.state.settings.data_path, families)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return metrics


def timing_middleware(app: ASGIApp) -> ASGIApp:
    """Observe each HTTP request's latency under its route template (``/api/v1/jobs/{job_id:int}``,
    never the raw path: one series per route, not per id)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # an exception that escapes every handler ends as a 500

        async def remember(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, remember)
        except Exception as exc:  # an outer exception handler answers it: with this status
            status = getattr(exc, "status_code", 500)
            raise
        finally:
            route = scope.get("path_template") or "unrouted"
            HTTP_SECONDS.labels(scope.get("method", "GET"), route, str(status)).observe(time.perf_counter() - start)

    return middleware
