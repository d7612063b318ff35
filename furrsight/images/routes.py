"""Images: upload and import (jobs), the gallery, one image, its file and thumbnail."""

import shutil
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import Body, FromQuery, QueryParameter
from litestar.response import File, Redirect, Template

from furrsight.images import process, service
from furrsight.images.analysis import FLAGS
from furrsight.images.schemas import ImageOut, ImagePage, ImportRequest, ReprocessRequest, SplitRequest
from furrsight.jobs.routes import LOCATION, accepted
from furrsight.jobs.schemas import JobOut
from furrsight.web.api import Cursor, FileAnswer, GroupId, ParentId, RowId, answers, multipart
from furrsight.web.deps import BrokerDep, ImageLabelsDep, ImageSubsetsDep, SettingsDep, StoreDep
from furrsight.web.pages import page
from furrsight.web.routing import feature_router
from furrsight.web.uploads import save_files

# Uploads are streamed to the staging folder and capped by ``ingest.max_upload_bytes`` while they
# are read (web/uploads.py); this outer bound only covers a plain form whose CSRF check parses it.
MAX_UPLOAD = 2 * 1024**3
UPLOAD_BODY = multipart("images to ingest; several allowed", files="files")


def _creator(request: Request[Any, Any, Any]) -> str | None:
    user = request.scope.get("user")
    return getattr(user, "username", None)


async def _start_upload(request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep) -> JobOut:
    folder = service.staging_folder(settings)
    files = await save_files(request, "files", folder, settings.ingest.max_upload_bytes)
    if not files:
        shutil.rmtree(folder, ignore_errors=True)
        raise ClientException("no files: send them as multipart form field 'files'")
    params = service.upload_params(settings, folder, files)
    return await service.start_import(broker, settings, _creator(request), staged=params)


async def _start_import(request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep, path: str) -> JobOut:
    try:
        return await service.start_import(broker, settings, _creator(request), path=path)
    except service.ImportPathError as exc:
        raise ClientException(str(exc)) from exc


# -- API ---------------------------------------------------------------------------------------
@post(
    "/api/v1/images", status_code=202, request_max_body_size=MAX_UPLOAD, operation_class=UPLOAD_BODY,
    response_headers=LOCATION, responses=answers(413, 503),
)  # fmt: skip
async def api_upload(request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep) -> Response[JobOut]:
    """Upload images (multipart, field ``files``, several allowed): 202 with the import job."""
    return accepted(await _start_upload(request, settings, broker))


@post("/api/v1/imports", status_code=202, response_headers=LOCATION, responses=answers(503))
async def api_import(
    request: Request[Any, Any, Any], data: Annotated[ImportRequest, Body()], settings: SettingsDep, broker: BrokerDep
) -> Response[JobOut]:
    """Import a server-side folder below one of the import roots: 202 with the job."""
    return accepted(await _start_import(request, settings, broker, data.path))


@get("/api/v1/images", responses=answers())
async def api_list_images(
    settings: SettingsDep,
    image_subsets: ImageSubsetsDep,
    image_state: Annotated[str | None, QueryParameter(name="state", description="stored, processed, failed…")] = None,
    flag: Annotated[str | None, QueryParameter(description="small, blurry, extreme_aspect, mostly_text")] = None,
    near_dup_group: GroupId = None,
    source: Annotated[str | None, QueryParameter(description="a source kind (upload, import…) or plugin")] = None,
    parent: ParentId = None,
    breed: Annotated[str | None, QueryParameter(description="a breed tag, or '(not a dog)'")] = None,
    cursor: Cursor = None,
    limit: Annotated[int | None, QueryParameter(ge=1, le=500, description="default: setting page_size")] = None,
) -> ImagePage:
    where = service.ImageFilter(
        state=image_state, flag=flag, near_dup_group=near_dup_group, source=source, parent=parent,
        among=image_subsets["breed"](breed) if breed else None,
    )  # fmt: skip
    return await service.list_images(limit or settings.page_size, before=cursor, where=where)


@post("/api/v1/images/reprocess", status_code=202, response_headers=LOCATION, responses=answers(503))
async def api_reprocess(
    request: Request[Any, Any, Any], data: Annotated[ReprocessRequest, Body()], settings: SettingsDep, broker: BrokerDep
) -> Response[JobOut]:
    """Re-process images (all, or those in one state) after a setting changed: 202 with the job."""
    return accepted(await process.start_reprocess(broker, settings, data.state, _creator(request)))


@post("/api/v1/images/{image_id:int}/split", status_code=200, responses=answers(404))
async def api_split(
    image_id: RowId, data: Annotated[SplitRequest, Body()], settings: SettingsDep, store: StoreDep
) -> ImageOut:
    """Split a collage by hand (replacing any panels it had): the image with its new children."""
    await _split(image_id, data, settings, store)
    return await _image(image_id)


@delete("/api/v1/images/{image_id:int}/split", status_code=200, responses=answers(404))
async def api_unsplit(image_id: RowId, settings: SettingsDep, store: StoreDep) -> ImageOut:
    """Un-split: remove the panels cut from this image; automatic detection leaves it alone."""
    await _image(image_id)
    await process.unsplit(store, settings, image_id)
    return await _image(image_id)


async def _split(image_id: int, data: SplitRequest, settings: SettingsDep, store: StoreDep) -> None:
    await _image(image_id)
    try:
        await process.split_by_hand(store, settings, image_id, data)
    except process.SplitError as exc:
        raise ClientException(str(exc)) from exc
    except FileNotFoundError as exc:  # purged after a takedown, or removed meanwhile
        raise NotFoundException(f"image {image_id}'s file is not in the store (purged or removed meanwhile?)") from exc


async def _image(image_id: int) -> ImageOut:
    image = await service.get_image(image_id)
    if image is None:
        raise NotFoundException(f"image {image_id} does not exist")
    return image


@get("/api/v1/images/{image_id:int}", responses=answers(404))
async def api_get_image(image_id: RowId) -> ImageOut:
    return await _image(image_id)


def _on_disk(path: Path, what: str) -> Path:
    """A 404 in words, not a 500, when the row outlived its file (removed by an un-split meanwhile)."""
    if not path.is_file():
        raise NotFoundException(f"{what} is not in the store (removed meanwhile?)")
    return path


@get("/api/v1/images/{image_id:int}/file", media_type="image/*", operation_class=FileAnswer, responses=answers(404))
async def image_file(image_id: RowId, store: StoreDep) -> File:
    image = await _image(image_id)
    return File(
        _on_disk(store.file_path(image.sha256), f"image {image_id}'s file"),
        media_type=image.mime,
        content_disposition_type="inline",
        filename=f"{image.sha256[:16]}.{image.format.lower()}",
        headers={"Cache-Control": "private, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff"},
    )


@get("/api/v1/images/{image_id:int}/thumb", media_type="image/jpeg", operation_class=FileAnswer, responses=answers(404))
async def image_thumb(image_id: RowId, store: StoreDep) -> File:
    image = await _image(image_id)
    return File(
        _on_disk(store.thumb_path(image.sha256), f"image {image_id}'s thumbnail"),
        media_type="image/jpeg",
        content_disposition_type="inline",
        headers={"Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


# -- pages -------------------------------------------------------------------------------------
@get("/images")
async def gallery(
    request: Request[Any, Any, Any],
    settings: SettingsDep,
    image_subsets: ImageSubsetsDep,
    image_labels: ImageLabelsDep,
    cursor: Cursor = None,
    flag: FromQuery[str | None] = None,
    image_state: Annotated[str | None, QueryParameter(name="state")] = None,
    breed: FromQuery[str | None] = None,
    plugin: FromQuery[str | None] = None,
    license: FromQuery[str | None] = None,
) -> Template:
    among = image_subsets["breed"](breed) if breed else None
    where = service.ImageFilter(
        flag=flag or None, state=image_state or None, among=among, source=plugin or None, license=license or None
    )
    images = await service.list_images(settings.page_size, before=cursor, where=where)
    filters = (("flag", flag), ("state", image_state), ("breed", breed), ("plugin", plugin), ("license", license))
    query = "".join(f"&{k}={quote(v)}" for k, v in filters if v)
    return page(
        request, "images/gallery.html", "_partials/gallery_grid.html", images=images, flags=FLAGS,
        flag=flag, state=image_state, breed=breed, query=query,
        labels=await image_labels([i.id for i in images.items]),
    )  # fmt: skip


@get("/images/groups/{group:int}")
async def group_page(request: Request[Any, Any, Any], group: RowId) -> Template:
    members = await service.list_images(500, where=service.ImageFilter(near_dup_group=group))
    if not members.items:
        raise NotFoundException(f"near-duplicate group {group} does not exist")
    return page(request, "images/group.html", group=group, images=members.items)


@get("/images/{image_id:int}")
async def image_page(request: Request[Any, Any, Any], image_id: RowId, image_labels: ImageLabelsDep) -> Template:
    return page(request, "images/detail.html", image=await _image(image_id), labels=await image_labels([image_id]))


@post("/images/{image_id:int}/split")
async def split_form(
    request: Request[Any, Any, Any], image_id: RowId, settings: SettingsDep, store: StoreDep
) -> Redirect:
    form = await request.form()
    try:
        data = msgspec.convert(
            {k: form.get(k) for k in ("direction", "position", "first") if form.get(k)}, SplitRequest, strict=False
        )
    except msgspec.ValidationError as exc:
        raise ClientException(f"invalid split: {exc}") from exc
    await _split(image_id, data, settings, store)
    return Redirect(f"/images/{image_id}", status_code=303)


@post("/images/{image_id:int}/unsplit")
async def unsplit_form(image_id: RowId, settings: SettingsDep, store: StoreDep) -> Redirect:
    await _image(image_id)
    await process.unsplit(store, settings, image_id)
    return Redirect(f"/images/{image_id}", status_code=303)


@get("/upload")
async def upload_page(request: Request[Any, Any, Any], settings: SettingsDep) -> Template:
    return page(request, "images/upload.html", import_roots=settings.import_roots)


def _to_job_page(request: Request[Any, Any, Any], job: JobOut) -> Response[Any]:
    url = f"/jobs/{job.id}"
    if request.headers.get("hx-request") == "true":
        return Response(None, status_code=204, headers={"HX-Redirect": url})
    return Redirect(url, status_code=303)


@post("/upload", request_max_body_size=MAX_UPLOAD)
async def upload_form(request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep) -> Response[Any]:
    return _to_job_page(request, await _start_upload(request, settings, broker))


@post("/imports")
async def import_form(request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep) -> Response[Any]:
    form = await request.form()
    return _to_job_page(request, await _start_import(request, settings, broker, str(form.get("path") or "")))


router = feature_router(
    "images",
    api=[api_upload, api_import, api_list_images, api_get_image, api_reprocess, api_split, api_unsplit, image_file,
         image_thumb],
    pages=[gallery, group_page, image_page, split_form, unsplit_form, upload_page, upload_form, import_form],
)  # fmt: skip
