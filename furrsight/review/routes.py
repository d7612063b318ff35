"""Review: the queue page and its fragments, the JSON API the bench and scripts use, bulk, the
reviewers page and the dashboard (the home page). Handlers parse, call the service, render."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import MediaType, Request, Response, get, post
from litestar.exceptions import ClientException, HTTPException, NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Template

from furrsight.pairs import batches, stats
from furrsight.pairs import service as pairs
from furrsight.pairs.routes import parse_filter
from furrsight.pairs.schemas import ORIGINS, REJECT_REASONS, STATUSES, HistoryOut, PairOut, PairPatch
from furrsight.review import service
from furrsight.review.dashboard import Cache
from furrsight.review.schemas import BulkIn, NextIn, UndoIn
from furrsight.taxonomy import service as taxonomy
from furrsight.web.api import RowId, answers
from furrsight.web.pages import page
from furrsight.web.routing import feature_router

CURATOR = {"role": "curator"}


def _user(request: Request[Any, Any, Any]) -> str:
    return str(getattr(request.scope.get("user"), "username", ""))


def _leases(request: Request[Any, Any, Any]) -> service.Leases:
    settings = request.app.state.settings
    return service.Leases(request.app.state.valkey, settings.broker_namespace, settings.review.lease_s)


def _cache(request: Request[Any, Any, Any]) -> Cache:
    settings = request.app.state.settings
    return Cache(request.app.state.valkey, settings.broker_namespace, settings.review.dashboard_cache_s)


def _where(data: NextIn) -> pairs.PairFilter:
    return parse_filter(
        data.status, data.origin, data.breed, data.service, data.min_confidence, data.max_confidence,
        data.plugin, data.license,
    )  # fmt: skip


async def _run(coro: Any) -> Any:
    try:
        return await coro
    except pairs.PairNotFound as exc:
        raise NotFoundException(str(exc)) from exc
    except service.Leased as exc:
        raise HTTPException(str(exc), status_code=409, extra={"holder": exc.holder}) from exc
    except pairs.PairError as exc:
        raise ClientException(str(exc)) from exc


async def _screen(pair: PairOut) -> dict[str, Any]:
    """What the pair screen shows beside the pair: the services to toggle, reasons, history."""
    return {
        "pair": pair,
        "services": await taxonomy.list_entries("services"),
        "reasons": REJECT_REASONS,
        "history": await pairs.history(pair.id),
        "labels": {s.id: s for s in pair.services},
    }


def _conflict(request: Request[Any, Any, Any], exc: pairs.StaleVersion) -> Response[Any]:
    """409: the pair as it is now and what changed since the reviewer loaded it, not overwritten."""
    if request.url.path.startswith("/api/"):
        return Response({"error": str(exc), "current": exc.current, "changes": exc.changes}, status_code=409)
    return Template(  # type: ignore[return-value]
        "_partials/review_conflict.html", context={"error": str(exc), "pair": exc.current, "changes": exc.changes},
        status_code=409,
        media_type=MediaType.HTML,
    )  # fmt: skip


# -- API ---------------------------------------------------------------------------------------
class ReviewConflict(msgspec.Struct, kw_only=True):
    """409: a stale version (``current``, ``changes``) or a pair another reviewer holds."""

    error: str
    status: int | None = None
    current: PairOut | None = None
    changes: list[HistoryOut] | None = None


CONFLICT = {
    409: ResponseSpec(ReviewConflict, description="stale, or held by another reviewer", generate_examples=False)
}
EMPTY = {204: ResponseSpec(None, description="the queue is empty", generate_examples=False)}


@post("/api/v1/review/next", opt=CURATOR, status_code=200, responses={**answers(404), **EMPTY})
async def api_next(request: Request[Any, Any, Any], data: Annotated[NextIn, Body()]) -> Response[Any]:
    """The next pair of the queue under the filters, leased to you (no one else gets it until you
    decide, move on, or the lease expires); 204 when the queue is empty."""
    pair = await _run(service.next_pair(_leases(request), _user(request), _where(data), data.order, data.exclude))
    return Response(pair, status_code=200) if pair else Response(None, status_code=204)


@post("/api/v1/review/pairs/{pair_id:int}", opt=CURATOR, status_code=200, responses={**answers(404), **CONFLICT})
async def api_change(request: Request[Any, Any, Any], pair_id: RowId, data: Annotated[PairPatch, Body()]) -> PairOut:
    """A change from the review screen at the ``version`` you read (409 when stale, with what changed)."""
    try:
        return await _run(service.change(_leases(request), pair_id, data, _user(request), _cache(request).clear))
    except pairs.StaleVersion as exc:
        return _conflict(request, exc)  # type: ignore[return-value]  # the 409 documented above


@post("/api/v1/review/pairs/{pair_id:int}/undo", opt=CURATOR, status_code=200, responses={**answers(404), **CONFLICT})
async def api_undo(request: Request[Any, Any, Any], pair_id: RowId, data: Annotated[UndoIn, Body()]) -> PairOut:
    """Take back the change that made ``version`` (409 when the pair changed since)."""
    try:
        return await _run(service.undo(_leases(request), pair_id, data.version, _user(request), _cache(request).clear))
    except pairs.StaleVersion as exc:
        return _conflict(request, exc)  # type: ignore[return-value]  # the 409 documented above


@post("/api/v1/review/bulk", opt=CURATOR, status_code=200, responses=answers(404))
async def api_bulk(request: Request[Any, Any, Any], data: Annotated[BulkIn, Body()]) -> batches.BulkResult:
    """One change to many pairs, as one audited batch (undo it with its ``batch``)."""
    if data.change.status == "rejected" and not data.change.reject_reason:
        raise ClientException("a rejection needs a reason")
    return await _run(service.bulk(data.ids, data.change, _user(request), _cache(request).clear))  # type: ignore[no-any-return]


@post("/api/v1/review/bulk/{batch:str}/undo", opt=CURATOR, status_code=200, responses=answers(404))
async def api_bulk_undo(request: Request[Any, Any, Any], batch: FromPath[str]) -> batches.BulkResult:
    """Take a bulk action back as one; pairs changed since are left alone (``conflicts``)."""
    return await _run(service.undo_bulk(batch, _user(request), _cache(request).clear))  # type: ignore[no-any-return]


# -- pages and fragments -----------------------------------------------------------------------
def _page_filters(request: Request[Any, Any, Any]) -> NextIn:
    """A page's filters from its query string; bad ones are a 400 in words."""
    query = {k: v for k, v in request.query_params.items() if v and k != "pair"}
    try:
        where = msgspec.convert(query, NextIn, strict=False)
    except msgspec.ValidationError as exc:
        raise ClientException(f"bad filter: {exc}") from exc
    _where(where)
    return where


@get("/review", opt=CURATOR, include_in_schema=False)
async def review_page(request: Request[Any, Any, Any]) -> Template:
    """The queue under the filters in the query; ``pair``: start with that pair."""
    where = _page_filters(request)
    start = request.query_params.get("pair", "")
    return page(
        request, "review/queue.html", where=where, start=start if start.isdigit() else "", statuses=STATUSES,
        origins=ORIGINS, orders=batches.ORDERS,
        breeds=await taxonomy.list_entries("breeds"), services=await taxonomy.list_entries("services"),
        reasons=REJECT_REASONS,
    )  # fmt: skip


@post("/review/next", opt=CURATOR, include_in_schema=False, status_code=200)
async def next_fragment(request: Request[Any, Any, Any], data: Annotated[NextIn, Body()]) -> Template:
    pair = await _run(service.next_pair(_leases(request), _user(request), _where(data), data.order, data.exclude))
    if pair is None:
        return Template("_partials/review_empty.html")
    return Template("_partials/review_pair.html", context=await _screen(pair))


@get("/review/pairs/{pair_id:int}", opt=CURATOR, include_in_schema=False)
async def pair_fragment(request: Request[Any, Any, Any], pair_id: FromPath[int]) -> Template:
    """A named pair on the screen (previous, after a conflict), leased to you."""
    pair = await _run(service.open_pair(_leases(request), _user(request), pair_id))
    return Template("_partials/review_pair.html", context=await _screen(pair))


@post("/review/pairs/{pair_id:int}", opt=CURATOR, include_in_schema=False, status_code=200, media_type=MediaType.HTML)
async def change_fragment(
    request: Request[Any, Any, Any], pair_id: FromPath[int], data: Annotated[PairPatch, Body()]
) -> Any:
    """A label change: the pair's labels and history again (the images stay, zoomed as they were)."""
    try:
        pair = await _run(service.change(_leases(request), pair_id, data, _user(request), _cache(request).clear))
    except pairs.StaleVersion as exc:
        return _conflict(request, exc)  # type: ignore[return-value]  # the 409 documented above
    return Template("_partials/review_labels.html", context=await _screen(pair))


@post(
    "/review/pairs/{pair_id:int}/undo", opt=CURATOR, include_in_schema=False, status_code=200, media_type=MediaType.HTML
)
async def undo_fragment(
    request: Request[Any, Any, Any], pair_id: FromPath[int], data: Annotated[UndoIn, Body()]
) -> Any:
    try:
        pair = await _run(service.undo(_leases(request), pair_id, data.version, _user(request), _cache(request).clear))
    except pairs.StaleVersion as exc:
        return _conflict(request, exc)  # type: ignore[return-value]  # the 409 documented above
    return Template("_partials/review_pair.html", context=await _screen(pair))


@get("/review/bulk", opt=CURATOR, include_in_schema=False)
async def bulk_page(request: Request[Any, Any, Any]) -> Template:
    where = _page_filters(request)
    result = await _run(pairs.list_pairs(_where(where), 200))
    return page(
        request, "review/bulk.html", pairs=result, where=where, statuses=STATUSES, origins=ORIGINS,
        breeds=await taxonomy.list_entries("breeds"), services=await taxonomy.list_entries("services"),
        reasons=REJECT_REASONS,
    )  # fmt: skip


@get("/review/reviewers", include_in_schema=False)
async def reviewers_page(request: Request[Any, Any, Any]) -> Template:
    rows = await stats.decisions_per_day()
    return page(request, "review/reviewers.html", rows=rows, people=sorted({r["user"] for r in rows}))


@get("/", include_in_schema=False)
async def dashboard_page(request: Request[Any, Any, Any]) -> Template:
    return page(request, "review/dashboard.html", board=await _cache(request).get())


@get("/api/v1/dashboard", summary="The dashboard's counts", responses=answers())
async def api_dashboard(request: Request[Any, Any, Any], fresh: FromQuery[bool] = False) -> Any:
    """Images and pairs by state, status, origin, breed, service; reviews per day; the model's
    measured precision; the queries with the most accepted pairs (cached; ``fresh`` recomputes)."""
    cache = _cache(request)
    if fresh:
        await cache.clear()
    return await cache.get()


router = feature_router(
    "review",
    api=[api_next, api_change, api_undo, api_bulk, api_bulk_undo, api_dashboard],
    pages=[review_page, next_fragment, pair_fragment, change_fragment, undo_fragment, bulk_page, reviewers_page,
           dashboard_page],
)  # fmt: skip
