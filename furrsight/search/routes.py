"""Search: similar images, search by image or text, near-duplicate clusters (a job), the embedding
job, breed identification and tags -- the API and the pages. Single interactive images (search by
photo, identify a breed, a text query) run on the web process's CPU-only residency."""

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import ClientException, HTTPException, NotFoundException
from litestar.params import Body, FromQuery, QueryParameter
from litestar.response import Redirect, Template
from PIL import UnidentifiedImageError

from furrsight.images.service import image_exists
from furrsight.inference.deps import ResidencyDep
from furrsight.inference.manifest import ModelError
from furrsight.jobs import service as jobs
from furrsight.jobs.routes import LOCATION, accepted
from furrsight.jobs.schemas import JobOut
from furrsight.search import duplicates, service
from furrsight.search.breeds import BreedResult, breed_names
from furrsight.search.schemas import ClusterRequest, Clusters, EmbedRequest, HitPage, TaggedPage
from furrsight.search.tagging import breed_counts, tagged_images
from furrsight.web.api import Cursor, OptionalBody, RowId, answers, multipart
from furrsight.web.deps import BrokerDep, SettingsDep
from furrsight.web.pages import page
from furrsight.web.routing import feature_router

READ = {"role": "viewer"}  # POSTs that only read (a photo to search with or identify)
K = Annotated[int, QueryParameter(ge=1, le=200, description="how many results")]
MODEL = Annotated[str | None, QueryParameter(description="embedding model (default: setting search.model)")]
Query = Annotated[str, QueryParameter(pattern=r"\S", description="words describing the images")]
PHOTO = multipart("a photo (JPEG, PNG, WebP, …)", file="file")


def _conflict(exc: Exception) -> HTTPException:
    return HTTPException(status_code=409, detail=str(exc))


async def _upload(request: Request[Any, Any, Any], settings: SettingsDep) -> bytes:
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ClientException("no file: send the photo as multipart form field 'file'")
    data = await upload.read()
    if not data:
        raise ClientException("the file is empty")
    if len(data) > settings.ingest.max_file_bytes:
        raise HTTPException(
            status_code=413, detail=f"the file is over the limit of {settings.ingest.max_file_bytes} bytes"
        )
    return data


async def _guard(call: Any) -> Any:
    try:
        return await call
    except ModelError as exc:
        raise _conflict(exc) from exc
    except service.NotEmbedded as exc:
        raise _conflict(exc) from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise HTTPException(status_code=415, detail=f"not a readable image: {exc}") from exc


async def _image_exists(image_id: int) -> None:
    if not await image_exists(image_id):
        raise NotFoundException(f"image {image_id} does not exist")


# -- API ---------------------------------------------------------------------------------------
@get("/api/v1/images/{image_id:int}/similar", responses=answers(404, 409))
async def api_similar(image_id: RowId, settings: SettingsDep, k: K = 12, model: MODEL = None) -> HitPage:
    """The k images most like this one (cosine similarity), nearest first."""
    await _image_exists(image_id)
    return await _guard(service.similar(settings, image_id, k, model))  # type: ignore[no-any-return]


@get("/api/v1/search", responses=answers(409))
async def api_search_text(
    q: Query, settings: SettingsDep, residency: ResidencyDep, k: K = 24, model: MODEL = None
) -> HitPage:
    """Text -> image search; needs a model with a text tower (409 says which to pull)."""
    if not q.strip():
        raise ClientException("empty query: give ?q=some words")
    return await _guard(service.search_text(settings, residency, q, k, model))  # type: ignore[no-any-return]


@post("/api/v1/search/image", status_code=200, opt=READ, operation_class=PHOTO, responses=answers(409, 413, 415))
async def api_search_image(
    request: Request[Any, Any, Any], settings: SettingsDep, residency: ResidencyDep, k: K = 24, model: MODEL = None
) -> HitPage:
    """Images like an uploaded photo (multipart field ``file``); answered on the CPU in the web process."""
    data = await _upload(request, settings)
    return await _guard(service.search_by_image(settings, residency, data, k, model))  # type: ignore[no-any-return]


@get("/api/v1/search/clusters", responses=answers(404))
async def api_clusters(settings: SettingsDep, model: MODEL = None) -> Clusters:
    """The latest near-duplicate clusters computed from the embeddings (complements the
    perceptual-hash groups); 404 until the clusters job has run for the model."""
    try:
        return await duplicates.near_duplicate_clusters(settings, model)
    except duplicates.NoClusters as exc:
        raise NotFoundException(str(exc)) from exc


@post("/api/v1/search/clusters", status_code=202, response_headers=LOCATION, responses=answers(409, 503),
      operation_class=OptionalBody)  # fmt: skip
async def api_cluster_job(
    request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep,
    data: Annotated[ClusterRequest | None, Body()] = None,
) -> Response[JobOut]:  # fmt: skip
    """Compute the near-duplicate clusters of a model's vectors: 202 with the job."""
    return accepted(await _start_clusters(request, settings, broker, data or ClusterRequest()))


async def _start_clusters(
    request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep, data: ClusterRequest
) -> JobOut:
    if data.max_distance is not None and not 0 <= data.max_distance <= 2:
        raise ClientException(f"max_distance {data.max_distance} is not a cosine distance between 0 and 2")
    try:
        service.ensure_model(settings, data.model or settings.search.model)
    except ModelError as exc:
        raise _conflict(exc) from exc
    creator = getattr(request.scope.get("user"), "username", None)
    return await duplicates.submit_clusters(broker, settings, data.model, data.max_distance, creator)  # type: ignore[no-any-return]


@post("/api/v1/embeddings", status_code=202, response_headers=LOCATION, responses=answers(409, 503),
      operation_class=OptionalBody)  # fmt: skip
async def api_embed(
    request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep,
    data: Annotated[EmbedRequest | None, Body()] = None,
) -> Response[JobOut]:  # fmt: skip
    """Embed every image that has no vector for the model: 202 with the job."""
    return accepted(await _start(request, settings, broker, service.start_embed, data))


async def _start(
    request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep, start: Any, data: EmbedRequest | None
) -> JobOut:
    creator = getattr(request.scope.get("user"), "username", None)
    try:
        return await start(broker, settings, data.model if data else None, creator)  # type: ignore[no-any-return]
    except ModelError as exc:
        raise _conflict(exc) from exc


@post("/api/v1/breeds/identify", status_code=200, opt=READ, operation_class=PHOTO, responses=answers(409, 413, 415))
async def api_identify(request: Request[Any, Any, Any], settings: SettingsDep, residency: ResidencyDep) -> BreedResult:
    """Breed, confidence, top-5 and the probability that the photo shows a dog at all."""
    return await _guard(service.identify_photo(settings, residency, await _upload(request, settings)))  # type: ignore[no-any-return]


@post("/api/v1/breeds/tag", status_code=202, response_headers=LOCATION, responses=answers(409, 503),
      operation_class=OptionalBody)  # fmt: skip
async def api_tag(
    request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep,
    data: Annotated[EmbedRequest | None, Body()] = None,
) -> Response[JobOut]:  # fmt: skip
    """Tag every untagged image with its top breed and confidence: 202 with the job."""
    return accepted(await _start(request, settings, broker, service.start_tag_breeds, data))


@get("/api/v1/breeds", responses=answers())
async def api_breeds() -> dict[str, Any]:
    """The appliance's breed list and how many images carry each tag."""
    return {"breeds": breed_names(), "tagged": dict(await breed_counts())}


@get("/api/v1/breeds/images", responses=answers())
async def api_breed_images(
    settings: SettingsDep,
    breed: FromQuery[str | None] = None,
    dogs: Annotated[bool | None, QueryParameter(description="false: the photos flagged as not a dog")] = None,
    cursor: Cursor = None,
) -> TaggedPage:
    return await tagged_images(breed, settings.page_size, cursor, dogs)


# -- pages -------------------------------------------------------------------------------------
@get("/images/{image_id:int}/similar")
async def similar_fragment(request: Request[Any, Any, Any], image_id: RowId, settings: SettingsDep) -> Template:
    await _image_exists(image_id)
    try:
        hits, error = await service.similar(settings, image_id, 12), None
    except (service.NotEmbedded, ModelError) as exc:
        hits, error = None, str(exc)
    return page(request, "search/results.html", "_partials/hit_grid.html", hits=hits, error=error,
                title=f"More like image {image_id}")  # fmt: skip


@get("/search")
async def search_page(
    request: Request[Any, Any, Any], settings: SettingsDep, residency: ResidencyDep, q: FromQuery[str] = ""
) -> Template:
    hits, error = None, None
    if q.strip():
        try:
            hits = await service.search_text(settings, residency, q, 48)
        except ModelError as exc:
            error = str(exc)
    return page(request, "search/search.html", "_partials/hit_grid.html", q=q, hits=hits, error=error)


@post("/search/image", opt=READ)
async def search_image_form(
    request: Request[Any, Any, Any], settings: SettingsDep, residency: ResidencyDep
) -> Template:
    hits, error = None, None
    try:
        hits = await _guard(service.search_by_image(settings, residency, await _upload(request, settings), 48))
    except HTTPException as exc:
        error = str(exc.detail)
    return page(request, "search/search.html", "_partials/hit_grid.html", q="", hits=hits, error=error)


@get("/search/duplicates")
async def duplicates_page(request: Request[Any, Any, Any], settings: SettingsDep, model: MODEL = None) -> Template:
    """The latest near-duplicate clusters of a model as rows of thumbnails, the clusters job
    that is computing them (followed live), and a button to compute them again."""
    name = model or settings.search.model
    try:
        found, error = await duplicates.near_duplicate_clusters(settings, name), None
    except duplicates.NoClusters as exc:
        found, error = None, str(exc)
    running = [j for j in (await jobs.list_jobs(limit=20, kind=duplicates.CLUSTER_KIND)).items
               if j.active and j.params.get("model") == name]  # fmt: skip
    return page(request, "search/duplicates.html", clusters=found, error=error, model=name,
                job=running[0] if running else None, distance=settings.search.near_dup_distance)  # fmt: skip


@post("/search/duplicates")
async def duplicates_start(request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep) -> Redirect:
    """Start the clusters job, then follow it on its page."""
    form = await request.form()
    distance = str(form.get("max_distance") or "").strip()
    try:
        data = ClusterRequest(
            model=str(form.get("model") or "") or None, max_distance=float(distance) if distance else None
        )
    except ValueError as exc:
        raise ClientException(f"max_distance {distance!r} is not a number") from exc
    job = await _start_clusters(request, settings, broker, data)
    return Redirect(f"/jobs/{job.id}", status_code=303)


@get("/breeds")
async def breeds_page(
    request: Request[Any, Any, Any], settings: SettingsDep, breed: FromQuery[str | None] = None
) -> Template:
    images = await tagged_images(breed, settings.page_size) if breed else None
    return page(request, "search/breeds.html", breed=breed, images=images, counts=await breed_counts(), result=None)


@post("/breeds/identify", opt=READ)
async def identify_form(request: Request[Any, Any, Any], settings: SettingsDep, residency: ResidencyDep) -> Template:
    result, error = None, None
    try:
        result = await _guard(service.identify_photo(settings, residency, await _upload(request, settings)))
    except HTTPException as exc:
        error = str(exc.detail)
    return page(request, "search/breeds.html", "_partials/breed_result.html", breed=None, images=None,
                counts=await breed_counts(), result=result, error=error)  # fmt: skip


router = feature_router(
    "search",
    api=[api_similar, api_search_text, api_search_image, api_clusters, api_cluster_job, api_embed, api_identify,
         api_tag, api_breeds, api_breed_images],
    pages=[similar_fragment, search_page, search_image_form, duplicates_page, duplicates_start, breeds_page,
           identify_form],
)  # fmt: skip
