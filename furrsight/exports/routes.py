"""Dataset versions and exports: the JSON API, the pages, and the takedown of an image."""

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.exceptions import ClientException, HTTPException, NotFoundException
from litestar.params import Body
from litestar.response import Redirect, Stream, Template

from furrsight.exports import service, takedowns
from furrsight.exports.archive import stream_tar
from furrsight.exports.schemas import (
    FORMATS,
    DiffOut,
    ExportOut,
    ExportRequest,
    ItemPage,
    TakedownOut,
    TakedownRequest,
    VersionOut,
    VersionPage,
    VersionRequest,
)
from furrsight.jobs.routes import LOCATION, accepted
from furrsight.jobs.schemas import JobOut
from furrsight.web.api import Cursor, Limit, RowId, answers
from furrsight.web.deps import BrokerDep, SettingsDep, StoreDep
from furrsight.web.pages import page

Id = RowId


def _user(request: Request[Any, Any, Any]) -> str | None:
    return getattr(request.scope.get("user"), "username", None)


async def _run(coro: Any) -> Any:
    try:
        return await coro
    except service.NotFound as exc:
        raise NotFoundException(str(exc)) from exc
    except service.Conflict as exc:
        raise HTTPException(str(exc), status_code=409) from exc
    except (service.ExportError, takedowns.TakedownError) as exc:
        raise ClientException(str(exc)) from exc


# -- API ---------------------------------------------------------------------------------------
@post("/api/v1/datasets/versions", status_code=202, response_headers=LOCATION, responses=answers(409, 503))
async def api_create_version(
    request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep, data: Annotated[VersionRequest, Body()]
) -> Response[JobOut]:
    """Freeze accepted pairs (filtered, under the allowed licences) into a new version: 202 with the job."""
    return accepted(await _run(service.start_version(broker, settings, _user(request), data)))


@get("/api/v1/datasets/versions", responses=answers())
async def api_versions() -> VersionPage:
    """Versions, newest first, with their counts."""
    return await service.list_versions()


@get("/api/v1/datasets/versions/{version_id:int}", responses=answers(404))
async def api_version(version_id: Id) -> VersionOut:
    return await _run(service.get_version(version_id))  # type: ignore[no-any-return]


@get("/api/v1/datasets/versions/{version_id:int}/items", responses=answers(404))
async def api_items(
    version_id: Id,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> ItemPage:
    """The version's pairs with their frozen labels, split and provenance, by pair id."""
    return await _run(service.version_items(version_id, limit, cursor))  # type: ignore[no-any-return]


@get("/api/v1/datasets/versions/{a:int}/diff/{b:int}", responses=answers(404))
async def api_diff(a: Id, b: Id) -> DiffOut:
    """Pairs added, removed, relabelled and moved between splits from version a to version b."""
    return await _run(service.diff(a, b))  # type: ignore[no-any-return]


@post(
    "/api/v1/datasets/versions/{version_id:int}/exports",
    status_code=202,
    response_headers=LOCATION,
    responses=answers(404, 503),
)
async def api_export(
    request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep, version_id: Id,
    data: Annotated[ExportRequest, Body()],
) -> Response[JobOut]:  # fmt: skip
    """Write the version in a format (hf-parquet, imagefolder, webdataset): 202 with the job."""
    return accepted(await _run(service.start_export(broker, settings, _user(request), version_id, data.format)))


@get("/api/v1/datasets/versions/{version_id:int}/exports", responses=answers(404))
async def api_exports(version_id: Id) -> list[ExportOut]:
    return await _run(service.list_exports(version_id))  # type: ignore[no-any-return]


@post(
    "/api/v1/datasets/exports/{export_id:int}/rebuild",
    status_code=202,
    response_headers=LOCATION,
    responses=answers(404, 503),
)
async def api_rebuild(
    request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep, export_id: Id
) -> Response[JobOut]:
    """Write an export again, without the pairs of images taken down since: 202 with the job."""
    return accepted(await _run(service.start_rebuild(broker, settings, _user(request), export_id)))


@get("/api/v1/datasets/exports/{export_id:int}/download", media_type="application/x-tar", responses=answers(404))
async def api_download(settings: SettingsDep, export_id: Id) -> Stream:
    """The export as one tar archive, streamed."""
    export, folder = await _run(service.export_folder(settings, export_id))
    name = f"furrsight-v{export.version_id}-{export.format}-{export.id}"
    return Stream(
        stream_tar(folder, name),
        media_type="application/x-tar",
        headers={"Content-Disposition": f'attachment; filename="{name}.tar"'},
    )


@post("/api/v1/images/{image_id:int}/takedown", status_code=200, responses=answers(404))
async def api_takedown(
    request: Request[Any, Any, Any], image_id: Id, data: Annotated[TakedownRequest, Body()]
) -> TakedownOut:
    """Take an image down: left out of every later version with its pairs; answers which
    versions and exports on disk contain it (rebuild those). Audited."""
    return await _run(
        takedowns.take_down(image_id, data.reason, _user(request), request.client.host if request.client else None)
    )  # type: ignore[no-any-return]


@post("/api/v1/images/{image_id:int}/purge", status_code=200, opt={"role": "admin"}, responses=answers(404))
async def api_purge(request: Request[Any, Any, Any], store: StoreDep, image_id: Id) -> TakedownOut:
    """Remove a taken-down image's original and thumbnail from the store (admin). Audited."""
    return await _run(takedowns.purge(store, image_id, _user(request), request.client.host if request.client else None))  # type: ignore[no-any-return]


# -- pages -------------------------------------------------------------------------------------
@get("/datasets", include_in_schema=False)
async def versions_page(request: Request[Any, Any, Any]) -> Template:
    return page(request, "datasets/list.html", versions=await service.list_versions())


@get("/datasets/{version_id:int}", include_in_schema=False)
async def version_page(request: Request[Any, Any, Any], version_id: Id) -> Template:
    version = await _run(service.get_version(version_id))
    others = [v for v in (await service.list_versions()).items if v.id != version_id]
    return page(
        request, "datasets/detail.html", version=version, exports=await service.list_exports(version_id),
        formats=FORMATS, others=others,
    )  # fmt: skip


@get("/datasets/{a:int}/diff/{b:int}", include_in_schema=False)
async def diff_page(request: Request[Any, Any, Any], a: Id, b: Id) -> Template:
    return page(request, "datasets/diff.html", diff=await _run(service.diff(a, b)))


@post("/datasets", include_in_schema=False)
async def version_form(request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep) -> Redirect:
    form = await request.form()
    try:
        data = msgspec.convert({"name": form.get("name") or "", "notes": form.get("notes") or ""}, VersionRequest)
    except msgspec.ValidationError as exc:
        raise ClientException(f"invalid version: {exc}") from exc
    job = await _run(service.start_version(broker, settings, _user(request), data))
    return Redirect(f"/jobs/{job.id}", status_code=303)


@post("/datasets/{version_id:int}/exports", include_in_schema=False)
async def export_form(
    request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep, version_id: Id
) -> Redirect:
    form = await request.form()
    job = await _run(service.start_export(broker, settings, _user(request), version_id, str(form.get("format") or "")))
    return Redirect(f"/jobs/{job.id}", status_code=303)


@post("/datasets/exports/{export_id:int}/rebuild", include_in_schema=False)
async def rebuild_form(
    request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep, export_id: Id
) -> Redirect:
    job = await _run(service.start_rebuild(broker, settings, _user(request), export_id))
    return Redirect(f"/jobs/{job.id}", status_code=303)


@post("/images/{image_id:int}/takedown", include_in_schema=False)
async def takedown_form(request: Request[Any, Any, Any], image_id: Id) -> Template:
    form = await request.form()
    host = request.client.host if request.client else None
    result = await _run(takedowns.take_down(image_id, str(form.get("reason") or ""), _user(request), host))
    return page(request, "datasets/takedown.html", result=result)


router = Router(
    path="/",
    route_handlers=[
        api_create_version, api_versions, api_version, api_items, api_diff, api_export, api_exports,
        api_rebuild, api_download, api_takedown, api_purge, versions_page, version_page, diff_page,
        version_form, export_form, rebuild_form, takedown_form,
    ],
    tags=["datasets"],
)  # fmt: skip
