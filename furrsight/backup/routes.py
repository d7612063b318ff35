"""Backups: start one (admin), list the finished ones; the admin page with its button."""

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import Body
from litestar.response import Redirect, Template

from furrsight.backup import service
from furrsight.backup.schemas import BackupOut, BackupRequest
from furrsight.jobs.routes import LOCATION, accepted
from furrsight.jobs.schemas import JobOut
from furrsight.web.api import answers
from furrsight.web.deps import BrokerDep, SettingsDep
from furrsight.web.pages import page
from furrsight.web.routing import feature_router

ADMIN = {"role": "admin"}


def _user(request: Request[Any, Any, Any]) -> str | None:
    return getattr(request.scope.get("user"), "username", None)


@post("/api/v1/backups", status_code=202, opt=ADMIN, response_headers=LOCATION, responses=answers(503))
async def api_start_backup(
    request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep,
    data: Annotated[BackupRequest, Body()],
) -> Response[JobOut]:  # fmt: skip
    """Back up the database and the originals into <data>/backups/, while running (admin): 202 with the job."""
    return accepted(await service.start_backup(broker, settings, _user(request), models=data.models))


@get("/api/v1/backups", opt=ADMIN, responses=answers())
async def api_backups(settings: SettingsDep) -> list[BackupOut]:
    """Finished backups in <data>/backups/, newest first (admin)."""
    return [msgspec.convert(b, BackupOut) for b in service.finished_backups(settings)]


@get("/admin/backups", opt=ADMIN)
async def backups_page(request: Request[Any, Any, Any], settings: SettingsDep) -> Template:
    return page(request, "backups/list.html", backups=service.finished_backups(settings),
                folder=service.backups_folder(settings))  # fmt: skip


@post("/admin/backups", opt=ADMIN)
async def backup_form(request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep) -> Redirect:
    form = await request.form()
    job = await service.start_backup(broker, settings, _user(request), models=bool(form.get("models")))
    return Redirect(f"/jobs/{job.id}", status_code=303)


router = feature_router("backups", api=[api_start_backup, api_backups], pages=[backups_page, backup_form])
