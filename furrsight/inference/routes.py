"""Models (admin): list, pull, import and verify (jobs), remove -- the API and the page."""

import asyncio
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.exceptions import ClientException, HTTPException, NotFoundException
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from furrsight.inference import service
from furrsight.inference.deps import ResidencyDep
from furrsight.inference.install import ModelStatus
from furrsight.inference.manifest import ModelError
from furrsight.jobs.routes import LOCATION, accepted
from furrsight.jobs.schemas import JobOut
from furrsight.web.api import OptionalBody, answers
from furrsight.web.deps import BrokerDep, SettingsDep
from furrsight.web.pages import page
from furrsight.web.routing import feature_router

ADMIN = {"role": "admin"}


class ImportModelRequest(msgspec.Struct, forbid_unknown_fields=True):
    path: str


class PullRequest(msgspec.Struct, forbid_unknown_fields=True):
    allow_unpinned: bool = False  # accept files the manifest does not pin; their hash is recorded
    accept_licence: bool = False  # pull a model whose licence forbids commercial use (non-commercial use)


def _creator(request: Request[Any, Any, Any]) -> str | None:
    return getattr(request.scope.get("user"), "username", None)


async def _pull(
    request: Request[Any, Any, Any],
    settings: SettingsDep,
    broker: BrokerDep,
    name: str,
    allow_unpinned: bool,
    accept_licence: bool = False,
) -> JobOut:
    try:
        service.check_known(settings, name)
    except ModelError as exc:
        raise NotFoundException(str(exc)) from exc
    try:
        return await service.start_pull(
            broker, settings, name, _creator(request), allow_unpinned=allow_unpinned, accept_licence=accept_licence
        )
    except ModelError as exc:
        raise ClientException(str(exc)) from exc


async def _verify(request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep, name: str) -> JobOut:
    try:
        service.check_known(settings, name)
    except ModelError as exc:
        raise NotFoundException(str(exc)) from exc
    try:
        return await service.start_verify(broker, settings, name, _creator(request))
    except ModelError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc


async def _import(
    request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep, name: str, path: str
) -> JobOut:
    try:
        return await service.start_model_import(broker, settings, name, path, _creator(request))
    except service.ImportSourceError as exc:
        raise ClientException(str(exc)) from exc
    except ModelError as exc:
        raise NotFoundException(str(exc)) from exc


# -- API ---------------------------------------------------------------------------------------
@get("/api/v1/models", opt=ADMIN, responses=answers())
async def api_list_models(settings: SettingsDep) -> list[ModelStatus]:
    return service.list_models(settings)


@get("/api/v1/devices", opt=ADMIN, responses=answers())
async def api_devices(settings: SettingsDep) -> service.DevicesOut:
    """Which device (``cuda`` / ``cpu``) each model runtime of the GPU worker uses, and why in words."""
    return await asyncio.to_thread(service.device_report, settings)


@post("/api/v1/models/{name:str}/pull", opt=ADMIN, status_code=202, response_headers=LOCATION,
      responses=answers(404, 409, 503), operation_class=OptionalBody)  # fmt: skip
async def api_pull(
    request: Request[Any, Any, Any],
    name: FromPath[str],
    settings: SettingsDep,
    broker: BrokerDep,
    data: Annotated[PullRequest | None, Body()] = None,
) -> Response[JobOut]:
    """Download the model's files (a job: resumes; refuses unpinned files unless
    ``allow_unpinned``, and bytes whose SHA-256 is not the pinned one)."""
    accept = bool(data and data.accept_licence)
    return accepted(await _pull(request, settings, broker, name, bool(data and data.allow_unpinned), accept))


@post("/api/v1/models/{name:str}/import", opt=ADMIN, status_code=202, response_headers=LOCATION,
      responses=answers(404, 409, 503))  # fmt: skip
async def api_import(
    request: Request[Any, Any, Any],
    name: FromPath[str],
    data: Annotated[ImportModelRequest, Body()],
    settings: SettingsDep,
    broker: BrokerDep,
) -> Response[JobOut]:
    """Install files brought in by hand from a server folder (a job)."""
    return accepted(await _import(request, settings, broker, name, data.path))


@post("/api/v1/models/{name:str}/verify", opt=ADMIN, status_code=202, response_headers=LOCATION,
      responses=answers(404, 409, 503))  # fmt: skip
async def api_verify(
    request: Request[Any, Any, Any], name: FromPath[str], settings: SettingsDep, broker: BrokerDep
) -> Response[JobOut]:
    """Re-hash the installed files (a job with progress in bytes; it fails naming every bad file)."""
    return accepted(await _verify(request, settings, broker, name))


@delete("/api/v1/models/{name:str}", opt=ADMIN, status_code=204, responses=answers(404, 409))
async def api_remove(name: FromPath[str], settings: SettingsDep) -> None:
    try:
        await asyncio.to_thread(service.model_store(settings).remove, name)
    except ModelError as exc:
        raise NotFoundException(str(exc)) from exc


# -- page --------------------------------------------------------------------------------------
@get("/models", opt=ADMIN)
async def models_page(request: Request[Any, Any, Any], settings: SettingsDep, residency: ResidencyDep) -> Template:
    """The models, and what this web process holds (it loads nothing to draw the page)."""
    message = request.query_params.get("message")
    return page(request, "models/list.html", models=service.list_models(settings), active=settings.search.model,
                runtime=await asyncio.to_thread(service.runtime_report, residency, settings),
                message=message)  # fmt: skip


@post("/models/{name:str}/{action:str}", opt=ADMIN)
async def models_action(
    request: Request[Any, Any, Any],
    name: FromPath[str],
    action: FromPath[str],
    settings: SettingsDep,
    broker: BrokerDep,
) -> Response[Any]:
    form = await request.form()
    if action == "pull":
        job = await _pull(
            request, settings, broker, name, bool(form.get("allow_unpinned")), bool(form.get("accept_licence"))
        )
        return Redirect(f"/jobs/{job.id}", status_code=303)
    if action == "import":
        job = await _import(request, settings, broker, name, str(form.get("path") or ""))
        return Redirect(f"/jobs/{job.id}", status_code=303)
    if action == "verify":
        return Redirect(f"/jobs/{(await _verify(request, settings, broker, name)).id}", status_code=303)
    if action == "remove":
        await api_remove.fn(name=name, settings=settings)
        text = f"{name} removed"
    else:
        raise NotFoundException(f"no action {action!r}: pull, import, verify or remove")
    return Redirect(f"/models?message={text}", status_code=303)


router = feature_router(
    "models",
    api=[api_list_models, api_devices, api_pull, api_import, api_verify, api_remove],
    pages=[models_page, models_action],
)
