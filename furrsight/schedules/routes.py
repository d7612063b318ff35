"""Schedules: the list with what each last did, create, pause/resume, run now, delete."""

from __future__ import annotations

import json
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, patch, post
from litestar.exceptions import PermissionDeniedException
from litestar.params import Body
from litestar.response import Redirect, Template

from furrsight.jobs.routes import LOCATION, accepted
from furrsight.jobs.schemas import JobOut
from furrsight.schedules import service
from furrsight.schedules.schemas import ActionOut, ScheduleIn, ScheduleOut, SchedulePatch
from furrsight.web.api import RowId, answers
from furrsight.web.deps import BrokerDep, SettingsDep
from furrsight.web.errors import status_error_handler
from furrsight.web.pages import page
from furrsight.web.routing import feature_router

SCHEDULE_EXCEPTION_HANDLERS: dict[Any, Any] = {service.ScheduleError: status_error_handler}  # 400, 404, 409


def _creator(request: Request[Any, Any, Any]) -> str | None:
    return getattr(request.scope.get("user"), "username", None)


def _may(request: Request[Any, Any, Any], action: str) -> None:
    """Some actions need more than a curator (a backup: admin, as ``POST /api/v1/backups``)."""
    role, user = service.role_for(action), request.scope.get("user")
    if user is not None and not user.can(role):
        raise PermissionDeniedException(f"{user.username} is a {user.role}: scheduling {action} needs the {role} role")


@get("/api/v1/schedules", responses=answers())
async def api_list() -> list[ScheduleOut]:
    """Every schedule, with its next slot and what its last firing did (missed slots, the job)."""
    return await service.list_schedules()


@get("/api/v1/schedules/actions", responses=answers())
async def api_actions() -> list[ActionOut]:
    """What a schedule can run, with the params each takes."""
    return service.actions()


@post("/api/v1/schedules", status_code=201, responses=answers())
async def api_create(
    request: Request[Any, Any, Any], data: Annotated[ScheduleIn, Body()], settings: SettingsDep
) -> ScheduleOut:
    """A recurring job by cron expression (UTC) or interval; it fires first at its next slot."""
    _may(request, data.action)
    return await service.create_schedule(settings, data)


@get("/api/v1/schedules/{schedule_id:int}", responses=answers(404))
async def api_get(schedule_id: RowId) -> ScheduleOut:
    return await service.get_schedule(schedule_id)


@patch("/api/v1/schedules/{schedule_id:int}", responses=answers(404))
async def api_patch(schedule_id: RowId, data: Annotated[SchedulePatch, Body()]) -> ScheduleOut:
    """Pause (``enabled: false``) or resume; slots that pass while paused are skipped."""
    return await service.set_enabled(schedule_id, data.enabled)


@delete("/api/v1/schedules/{schedule_id:int}", status_code=204, responses=answers(404))
async def api_delete(schedule_id: RowId) -> None:
    await service.delete_schedule(schedule_id)


@post(
    "/api/v1/schedules/{schedule_id:int}/run", status_code=202, response_headers=LOCATION,
    responses=answers(404, 409, 503),
)  # fmt: skip
async def api_run(
    request: Request[Any, Any, Any], schedule_id: RowId, settings: SettingsDep, broker: BrokerDep
) -> Response[JobOut]:
    """Run now: the schedule's job at once (202), its slots untouched."""
    _may(request, await service.action_of(schedule_id))
    return accepted(await service.run_now(broker, settings, schedule_id, _creator(request)))


# -- pages ---------------------------------------------------------------------------------------
async def _page(request: Request[Any, Any, Any]) -> Template:
    schedules = await service.list_schedules()
    return page(
        request, "schedules/list.html", "_partials/schedule_rows.html", schedules=schedules, actions=service.actions()
    )


@get("/schedules")
async def schedules_page(request: Request[Any, Any, Any]) -> Template:
    return await _page(request)


def _form_schedule(form: Any) -> ScheduleIn:
    raw_params = str(form.get("params") or "").strip() or "{}"
    try:
        params = json.loads(raw_params)
    except ValueError as exc:
        raise service.ScheduleError(f"params: not JSON ({exc})") from exc
    every = str(form.get("every") or "").strip()
    interval, cron = (None, every) if " " in every else (every or None, None)
    try:
        return msgspec.convert(
            {"name": str(form.get("name") or ""), "action": str(form.get("action") or ""), "params": params,
             "cron": cron, "interval_s": interval, "enabled": True},
            ScheduleIn, strict=False,
        )  # fmt: skip
    except msgspec.ValidationError as exc:
        raise service.ScheduleError(str(exc)) from exc


@post("/schedules")
async def create_form(request: Request[Any, Any, Any], settings: SettingsDep) -> Response[Any]:
    data = _form_schedule(await request.form())
    _may(request, data.action)
    await service.create_schedule(settings, data)
    return Redirect("/schedules", status_code=303)


@post("/schedules/{schedule_id:int}/toggle")
async def toggle_form(request: Request[Any, Any, Any], schedule_id: RowId) -> Template:
    form = await request.form()
    await service.set_enabled(schedule_id, form.get("enabled") == "true")
    return await _page(request)


@post("/schedules/{schedule_id:int}/run")
async def run_form(
    request: Request[Any, Any, Any], schedule_id: RowId, settings: SettingsDep, broker: BrokerDep
) -> Template:
    _may(request, await service.action_of(schedule_id))
    await service.run_now(broker, settings, schedule_id, _creator(request))
    return await _page(request)


@post("/schedules/{schedule_id:int}/delete")
async def delete_form(request: Request[Any, Any, Any], schedule_id: RowId) -> Template:
    await service.delete_schedule(schedule_id)
    return await _page(request)


router = feature_router(
    "schedules",
    api=[api_list, api_actions, api_create, api_get, api_patch, api_delete, api_run],
    pages=[schedules_page, create_form, toggle_form, run_form, delete_form],
)
