"""Images: upload and import (jobs), the gallery, one image, its file and thumbnail."""

from typing import Annotated, Any
from urllib.parse import quote

import msgspec
from litestar import Request, Response, Router, delete, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import Body, FromPath, FromQuery, QueryParameter
from litestar.response import File, Redirect, Template

from furrsight.images import process, service
from furrsight.images.analysis import FLAGS
from furrsight.images.schemas import ImageOut, ImagePage, ImportRequest, ReprocessRequest, SplitRequest
from furrsight.jobs.routes import accepted
from furrsight.jobs.schemas import JobOut
from furrsight.web.deps import BrokerDep, ImageLabelsDep, ImageSubsetsDep, SettingsDep, StoreDep
from furrsight.web.pages import page

MAX_UPLOAD = 2 * 1024**3  # the per-request cap; the configured limit is checked on each request


def _creator(request: Request[Any, Any, Any]) -> str | None:
    user = request.scope.get("user")
    return getattr(user, "username", None)


async def _start_upload(request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep) -> JobOut:
    length = int(request.headers.get("content-length") or 0)
    if length > settings.ingest.max_upload_bytes:
        raise ClientException(
            f"the upload is {length} bytes, over the limit of {settings.ingest.max_upload_bytes}", status_code=413
        )
    form = await request.form()
    uploads = [f for f in form.getall("files") if isinstance(f, UploadFile)] if "files" in form else []
    if not uploads:
        raise ClientException("no files: send them as multipart form field 'files'")
    files = [(u.filename or f"upload-{i}", await u.read()) for i, u in enumerate(uploads)]
    params = await service.stage_uploads(settings, files)
    return await service.start_import(broker, settings, _creator(request), staged=params)


async def _start_import(request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep, path: str) -> JobOut:
    try:
        return await service.start_import(broker, settings, _creator(request), path=path)
    except service.ImportPathError as exc:
        raise ClientException(str(exc)) from exc


# -- API ---------------------------------------------------------------------------------------
@post("/api/v1/images", request_max_body_size=MAX_UPLOAD)
async def api_upload(request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep) -> Response[JobOut]:
    """Upload images (multipart, field ``files``, several allowed): 202 with the import job."""
    return accepted(await _start_upload(request, settings, broker))


@post("/api/v1/imports")
async def api_import(
    request: Request[Any, Any, Any], data: Annotated[ImportRequest, Body()], settings: SettingsDep, broker: BrokerDep
) -> Response[JobOut]:
    """Import a server-side folder below one of the import roots: 202 with the job."""
    return accepted(await _start_import(request, settings, broker, data.path))


@get("/api/v1/images")
async def api_list_images(
    settings: SettingsDep,
    image_subsets: ImageSubsetsDep,
    image_state: Annotated[str | None, QueryParameter(name="state", description="stored, processed, failed…")] = None,
    flag: Annotated[str | None, QueryParameter(description="small, blurry, extreme_aspect, mostly_text")] = None,
    near_dup_group: Annotated[int | None, QueryParameter(description="a near-duplicate group id")] = None,
    source: Annotated[str | None, QueryParameter(description="a source kind (upload, import…) or plugin")] = None,
    parent: Annotated[int | None, QueryParameter(description="panels cut from this collage")] = None,
    breed: Annotated[str | None, QueryParameter(description="a breed tag, or '(not a dog)'")] = None,
    cursor: Annotated[int | None, QueryParameter(description="next_cursor of the previous page")] = None,
    limit: Annotated[int | None, QueryParameter(ge=1, le=500)] = None,
) -> ImagePage:
    where = service.ImageFilter(
        state=image_state, flag=flag, near_dup_group=near_dup_group, source=source, parent=parent,
        among=image_subsets["breed"](breed) if breed else None,
    )  # fmt: skip
    return await service.list_images(limit or settings.page_size, before=cursor, where=where)


@post("/api/v1/images/reprocess")
async def api_reprocess(
    request: Request[Any, Any, Any], data: Annotated[ReprocessRequest, Body()], settings: SettingsDep, broker: BrokerDep
) -> Response[JobOut]:
    """Re-process images (all, or those in one state) after a setting changed: 202 with the job."""
    return accepted(await process.start_reprocess(broker, settings, data.state, _creator(request)))


@post("/api/v1/images/{image_id:int}/split", status_code=200)
async def api_split(
    image_id: FromPath[int], data: Annotated[SplitRequest, Body()], settings: SettingsDep, store: StoreDep
) -> ImageOut:
    """Split a collage by hand (replacing any panels it had): the image with its new children."""
    await _split(image_id, data, settings, store)
    return await _image(image_id)


@delete("/api/v1/images/{image_id:int}/split", status_code=200)
async def api_unsplit(image_id: FromPath[int], settings: SettingsDep, store: StoreDep) -> ImageOut:
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


async def _image(image_id: FromPath[int]) -> ImageOut:
    image = await service.get_image(image_id)
    if image is None:
        raise NotFoundException(f"image {image_id} does not exist")
    return image


@get("/api/v1/images/{image_id:int}")
async def api_get_image(image_id: FromPath[int]) -> ImageOut:
    return await _image(image_id)


@get("/api/v1/images/{image_id:int}/file")
async def image_file(image_id: FromPath[int], store: StoreDep) -> File:
    image = await _image(image_id)
    return File(
        store.file_path(image.sha256),
        media_type=image.mime,
        content_disposition_type="inline",
        filename=f"{image.sha256[:16]}.{image.format.lower()}",
        headers={"Cache-Control": "private, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff"},
    )


@get("/api/v1/images/{image_id:int}/thumb")
async def image_thumb(image_id: FromPath[int], store: StoreDep) -> File:
    image = await _image(image_id)
    return File(
        store.thumb_path(image.sha256),
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
    cursor: FromQuery[int | None] = None,
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
async def group_page(request: Request[Any, Any, Any], group: FromPath[int]) -> Template:
    members = await service.list_images(500, where=service.ImageFilter(near_dup_group=group))
    if not members.items:
        raise NotFoundException(f"near-duplicate group {group} does not exist")
    return page(request, "images/group.html", group=group, images=members.items)


@get("/images/{image_id:int}")
async def image_page(
    request: Request[Any, Any, Any], image_id: FromPath[int], image_labels: ImageLabelsDep
) -> Template:
    return page(request, "images/detail.html", image=await _image(image_id), labels=await image_labels([image_id]))


@post("/images/{image_id:int}/split")
async def split_form(
    request: Request[Any, Any, Any], image_id: FromPath[int], settings: SettingsDep, store: StoreDep
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
async def unsplit_form(image_id: FromPath[int], settings: SettingsDep, store: StoreDep) -> Redirect:
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


router = Router(
    path="/",
    route_handlers=[
        api_upload,
        api_import,
        api_list_images,
        api_get_image,
        api_reprocess,
        api_split,
        api_unsplit,
        group_page,
        split_form,
        unsplit_form,
        image_file,
        image_thumb,
        gallery,
        image_page,
        upload_page,
        upload_form,
        import_form,
    ],
    tags=["images"],
)
