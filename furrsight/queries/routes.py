"""Queries: the list (with what each yielded), add, enable/disable, generate (a job)."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from litestar import Request, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, HTTPException, NotFoundException
from litestar.params import Body, FromQuery
from litestar.response import Redirect, Template

from furrsight.jobs.routes import LOCATION, accepted
from furrsight.jobs.schemas import JobOut
from furrsight.queries import service
from furrsight.queries.schemas import GenerateRequest, QueryIn, QueryOut, QueryPatch
from furrsight.web.api import RowId, answers
from furrsight.web.deps import BrokerDep, SettingsDep
from furrsight.web.pages import page
from furrsight.web.routing import feature_router

PairCounts = Callable[[], Awaitable[dict[str, int]]]  # accepted pairs per query, from a later stage (app.py)


async def _listed(pair_counts: PairCounts, enabled: bool | None = None) -> list[QueryOut]:
    counts = await pair_counts()
    queries = await service.list_queries(enabled)
    for q in queries:
        q.accepted_pairs = counts.get(q.text, 0)
    return queries


def _creator(request: Request[Any, Any, Any]) -> str | None:
    return getattr(request.scope.get("user"), "username", None)


def _split(value: Any) -> list[str]:
    return [v.strip() for v in str(value or "").replace("\n", ",").split(",") if v.strip()]


async def _create(data: QueryIn) -> QueryOut:
    try:
        return await service.create_query(data)
    except service.DuplicateQuery as exc:
        raise HTTPException(str(exc), status_code=409) from exc


@get("/api/v1/queries", responses=answers())
async def api_list(
    query_pair_counts: NamedDependency[PairCounts], enabled: FromQuery[bool | None] = None
) -> list[QueryOut]:
    """Queries with the images they found and the accepted pairs those images are in."""
    return await _listed(query_pair_counts, enabled)


@post("/api/v1/queries", status_code=201, responses=answers(409))
async def api_create(data: Annotated[QueryIn, Body()]) -> QueryOut:
    """Add a query by hand (origin ``manual``); 409 when a near-identical one exists."""
    return await _create(data)


@patch("/api/v1/queries/{query_id:int}", responses=answers(404))
async def api_patch(query_id: RowId, data: Annotated[QueryPatch, Body()]) -> QueryOut:
    out = await service.set_enabled(query_id, data.enabled)
    if out is None:
        raise NotFoundException(f"query {query_id} does not exist")
    return out


@post("/api/v1/queries/generate", status_code=202, response_headers=LOCATION, responses=answers(503))
async def api_generate(
    request: Request[Any, Any, Any], data: Annotated[GenerateRequest, Body()], settings: SettingsDep, broker: BrokerDep
) -> Response[JobOut]:
    """Generate queries for breeds × services × languages (LLM, or templates when none): 202 job."""
    return accepted(await service.start_generate(broker, settings, data, _creator(request)))


@get("/queries")
async def queries_page(request: Request[Any, Any, Any], query_pair_counts: NamedDependency[PairCounts]) -> Template:
    queries = await _listed(query_pair_counts)
    return page(request, "queries/list.html", "_partials/query_rows.html", queries=queries)


@post("/queries")
async def queries_form(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    if not str(form.get("text") or "").strip():
        raise ClientException("text: write the query")
    await _create(
        QueryIn(
            text=str(form["text"]),
            breed=form.get("breed") or None,
            service=form.get("service") or None,
            language=str(form.get("language") or "en"),
        )
    )
    return Redirect("/queries", status_code=303)


@post("/queries/{query_id:int}/toggle")
async def toggle_form(
    request: Request[Any, Any, Any], query_id: RowId, query_pair_counts: NamedDependency[PairCounts]
) -> Template:
    form = await request.form()
    await service.set_enabled(query_id, form.get("enabled") == "true")
    queries = await _listed(query_pair_counts)
    return page(request, "queries/list.html", "_partials/query_rows.html", queries=queries)


@post("/queries/generate")
async def generate_form(request: Request[Any, Any, Any], settings: SettingsDep, broker: BrokerDep) -> Response[Any]:
    form = await request.form()
    try:
        count = int(str(form.get("count") or "20"))
    except ValueError as exc:
        raise ClientException("count: a whole number, please") from exc
    data = GenerateRequest(
        breeds=_split(form.get("breeds")),
        services=_split(form.get("services")),
        languages=_split(form.get("languages")) or ["en"],
        count=count,
    )
    if not data.breeds or not data.services:
        raise ClientException("breeds and services: name at least one of each")
    job = await service.start_generate(broker, settings, data, _creator(request))
    if request.headers.get("hx-request") == "true":
        return Response(None, status_code=204, headers={"HX-Redirect": f"/jobs/{job.id}"})
    return Redirect(f"/jobs/{job.id}", status_code=303)


router = feature_router(
    "queries",
    api=[api_list, api_create, api_patch, api_generate],
    pages=[queries_page, queries_form, toggle_form, generate_form],
)
