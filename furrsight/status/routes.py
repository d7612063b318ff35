"""Status: ``GET /api/v1/status`` and the admin page ``/admin/status`` (both admin only)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Template

from furrsight.inference.deps import ResidencyDep
from furrsight.status import service
from furrsight.web.api import answers
from furrsight.web.deps import SettingsDep
from furrsight.web.pages import page
from furrsight.web.routing import feature_router

ADMIN = {"role": "admin"}


async def _report(
    request: Request[Any, Any, Any], settings: SettingsDep, residency: ResidencyDep
) -> service.StatusReport:
    return await service.collect(settings, request.app.state.valkey, web_models=residency.resident())


@get("/api/v1/status", opt=ADMIN, responses=answers())
async def api_status(
    request: Request[Any, Any, Any], settings: SettingsDep, residency: ResidencyDep
) -> service.StatusReport:
    """Services, broker, queues, workers (a dead one named), disk, models resident, GPU memory."""
    return await _report(request, settings, residency)


@get("/admin/status", opt=ADMIN)
async def status_page(request: Request[Any, Any, Any], settings: SettingsDep, residency: ResidencyDep) -> Template:
    return page(
        request, "status/page.html", "_partials/status_report.html", report=await _report(request, settings, residency)
    )


router = feature_router("status", api=[api_status], pages=[status_page])
