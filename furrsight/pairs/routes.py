"""Pairs: the JSON API (list, make, read, change at a version, history, mine) and the pages."""

from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, get, patch, post
from litestar.exceptions import ClientException, HTTPException, NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, FromQuery, QueryParameter
from litestar.response import Redirect, Template

from furrsight.jobs.routes import LOCATION, accepted
from furrsight.jobs.schemas import JobOut
from furrsight.pairs import service
from furrsight.pairs.analysis import start_analyse
from furrsight.pairs.mining import start_mine
from furrsight.pairs.schemas import (
    ORIGINS,
    REJECT_REASONS,
    STATUSES,
    AnalyseRequest,
    HistoryOut,
    MineRequest,
    PairIn,
    PairOut,
    PairPage,
    PairPatch,
)
from furrsight.search import service as search
from furrsight.taxonomy import service as taxonomy
from furrsight.web.api import MAX_INT, Cursor, RowId, answers
from furrsight.web.deps import BrokerDep, SettingsDep
from furrsight.web.pages import page
from furrsight.web.routing import feature_router

PairId = RowId
ImageId = Annotated[int | None, QueryParameter(ge=1, le=MAX_INT, description="pairs with this image")]
# Litestar leaves a bound of 0 out of the schema: schema_extra puts it back
Confidence = Annotated[float | None, QueryParameter(ge=0.0, le=1.0, schema_extra={"minimum": 0})]
Status = Annotated[Literal[STATUSES] | None, QueryParameter(description="pairs in this status")]  # type: ignore[valid-type]
Origin = Annotated[Literal[ORIGINS] | None, QueryParameter(description="pairs from this origin")]  # type: ignore[valid-type]


class StalePair(msgspec.Struct, kw_only=True):
    """409 to a PATCH at a stale ``version``: the pair as it is now and the changes since."""

    error: str
    current: PairOut
    changes: list[HistoryOut]


def _user(request: Request[Any, Any, Any]) -> str | None:
    return getattr(request.scope.get("user"), "username", None)


def _filter(
    status: str | None,
    origin: str | None,
    breed: str | None,
    service_: str | None,
    min_confidence: float | None,
    max_confidence: float | None,
    plugin: str | None,
    license: str | None,
    image: int | None = None,
) -> service.PairFilter:
    if status and status not in STATUSES:
        raise ClientException(f"status: one of {', '.join(STATUSES)}")
    if origin and origin not in ORIGINS:
        raise ClientException(f"origin: one of {', '.join(ORIGINS)}")
    return service.PairFilter(
        status=status or None,
        origin=origin or None,
        breed=breed or None,
        service=service_ or None,
        min_confidence=min_confidence,
        max_confidence=max_confidence,
        plugin=plugin or None,
        license=license or None,
        image=image,
    )


parse_filter = _filter  # the review queue takes the same filters


async def _run(coro: Any) -> Any:
    try:
        return await coro
    except service.PairNotFound as exc:
        raise NotFoundException(str(exc)) from exc
    except service.PairExists as exc:
        raise HTTPException(str(exc), status_code=409, extra={"pair_id": exc.pair_id}) from exc
    except service.PairError as exc:
        raise ClientException(str(exc)) from exc


# -- API ---------------------------------------------------------------------------------------
@get("/api/v1/pairs", responses=answers())
async def api_list(
    settings: SettingsDep,
    status: Status = None,
    origin: Origin = None,
    breed: Annotated[str | None, QueryParameter(max_length=96, description="a breed's name, alias or id")] = None,
    service_: Annotated[str | None, QueryParameter(name="service", max_length=96, description="a service")] = None,
    min_confidence: Confidence = None,
    max_confidence: Confidence = None,
    plugin: Annotated[str | None, QueryParameter(max_length=64, description="source plugin of either image")] = None,
    license: Annotated[str | None, QueryParameter(max_length=200, description="licence of either image")] = None,
    image: ImageId = None,
    cursor: Cursor = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
) -> PairPage:
    """Pairs, newest first, with the count per status under the same filters."""
    where = _filter(status, origin, breed, service_, min_confidence, max_confidence, plugin, license, image)
    return await _run(service.list_pairs(where, limit, cursor))  # type: ignore[no-any-return]


@post("/api/v1/pairs", status_code=201, responses=answers(409))
async def api_create(request: Request[Any, Any, Any], data: Annotated[PairIn, Body()]) -> PairOut:
    """A pair made by hand (origin ``manual``, status ``candidate``); 409 when it exists either way round."""
    return await _run(service.create_pair(data.before_id, data.after_id, "manual", _user(request), "api"))  # type: ignore[no-any-return]


@get("/api/v1/pairs/{pair_id:int}", responses=answers(404))
async def api_get(pair_id: PairId) -> PairOut:
    return await _run(service.get_pair(pair_id))  # type: ignore[no-any-return]


@patch(
    "/api/v1/pairs/{pair_id:int}",
    responses={**answers(404), 409: ResponseSpec(StalePair, description="a stale version", generate_examples=False)},
)
async def api_patch(request: Request[Any, Any, Any], pair_id: PairId, data: Annotated[PairPatch, Body()]) -> Any:
    """Change labels, order (``swap``) or status at the ``version`` you read; a stale one is 409
    with the pair as it is now and the changes since your version."""
    try:
        return await _run(service.change_pair(pair_id, data, _user(request), "api"))
    except service.StaleVersion as exc:
        return Response({"error": str(exc), "current": exc.current, "changes": exc.changes}, status_code=409)


@get("/api/v1/pairs/{pair_id:int}/history", responses=answers(404))
async def api_history(pair_id: PairId) -> list[HistoryOut]:
    return await _run(service.history(pair_id))  # type: ignore[no-any-return]


@post("/api/v1/pairs/mine", status_code=202, response_headers=LOCATION, responses=answers(503))
async def api_mine(
    request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep, data: Annotated[MineRequest, Body()]
) -> Response[JobOut]:
    """Mine candidate pairs from what is new (``full``: from everything): 202 with the job."""
    return accepted(await start_mine(broker, settings, _user(request), data.full))


@post("/api/v1/pairs/analyse", status_code=202, response_headers=LOCATION, responses=answers(503))
async def api_analyse(
    request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep, data: Annotated[AnalyseRequest, Body()]
) -> Response[JobOut]:
    """Analyse pairs (default: every candidate) with the installed VLM, else the offline rules: 202."""
    params = msgspec.structs.asdict(data)
    return accepted(await start_analyse(broker, settings, _user(request), **params))


# -- pages -------------------------------------------------------------------------------------
@get("/pairs", include_in_schema=False)
async def pairs_page(
    request: Request[Any, Any, Any],
    status: FromQuery[str | None] = None,
    origin: FromQuery[str | None] = None,
    breed: FromQuery[str | None] = None,
    service_: Annotated[str | None, QueryParameter(name="service")] = None,
    plugin: FromQuery[str | None] = None,
    license: FromQuery[str | None] = None,
    min_confidence: Confidence = None,
    max_confidence: Confidence = None,
    image: ImageId = None,
    cursor: Cursor = None,
) -> Template:
    where = _filter(status, origin, breed, service_, min_confidence, max_confidence, plugin, license, image)
    result = await _run(service.list_pairs(where, 48, cursor))
    query = {k: v for k, v in request.query_params.items() if k != "cursor" and v}
    return page(
        request,
        "pairs/list.html",
        "_partials/pair_grid.html",
        pairs=result,
        where=where,
        query=query,
        statuses=STATUSES,
        origins=ORIGINS,
        breeds=await taxonomy.list_entries("breeds"),
        services=await taxonomy.list_entries("services"),
    )


@get("/pairs/{pair_id:int}", include_in_schema=False)
async def pair_page(request: Request[Any, Any, Any], pair_id: PairId) -> Template:
    pair = await _run(service.get_pair(pair_id))
    return page(request, "pairs/detail.html", pair=pair, history=await service.history(pair_id), reasons=REJECT_REASONS)


@get("/pairs/new", include_in_schema=False)
async def pair_new_page(
    request: Request[Any, Any, Any],
    settings: SettingsDep,
    image: Annotated[int, QueryParameter(ge=1, le=MAX_INT, description="the image to pair")],
) -> Template:
    """ "Make a pair with…": the image's most similar images, each one click from being its pair."""
    hits, error = None, None
    try:
        hits = await search.similar(settings, image, 24)
    except search.NotEmbedded as exc:
        error = f"{exc}: pairs can still be made by id below"
    except LookupError as exc:
        raise NotFoundException(str(exc)) from exc
    pairs = await service.list_pairs(service.PairFilter(image=image), 50)
    return page(request, "pairs/new.html", image=image, hits=hits, error=error, pairs=pairs)


@post("/pairs/mine", include_in_schema=False)
async def mine_form(request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep) -> Redirect:
    job = await start_mine(broker, settings, _user(request))
    return Redirect(f"/jobs/{job.id}", status_code=303)


@post("/pairs", include_in_schema=False)
async def pair_form(request: Request[Any, Any, Any]) -> Redirect:
    form = await request.form()
    try:
        before, after = int(str(form.get("before_id"))), int(str(form.get("after_id")))
        if not (1 <= before <= MAX_INT and 1 <= after <= MAX_INT):
            raise ValueError("out of range")
    except ValueError as exc:
        raise ClientException("before_id and after_id: image ids") from exc
    try:
        pair = await _run(service.create_pair(before, after, "manual", _user(request), "page"))
    except HTTPException as exc:
        if exc.status_code == 409 and isinstance(exc.extra, dict):
            return Redirect(f"/pairs/{exc.extra['pair_id']}", status_code=303)
        raise
    return Redirect(f"/pairs/{pair.id}", status_code=303)


router = feature_router(
    "pairs",
    api=[api_list, api_create, api_get, api_patch, api_history, api_mine, api_analyse],
    pages=[pairs_page, pair_page, pair_new_page, mine_form, pair_form],
)
