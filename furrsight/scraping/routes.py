"""Scraping: the plugins with their forms, starting scrapes, a run's failures, retry failed only."""

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from furrsight.jobs import service as jobs
from furrsight.jobs.routes import LOCATION, accepted
from furrsight.jobs.schemas import JobOut
from furrsight.scraping import service
from furrsight.scraping.forms import field_kind, form_params
from furrsight.scraping.schemas import FailureOut, ScrapeRequest, ScrapersOut
from furrsight.settings import Settings
from furrsight.web.api import RowId, answers
from furrsight.web.deps import BrokerDep, SettingsDep
from furrsight.web.pages import page
from furrsight.web.routing import feature_router


def _creator(request: Request[Any, Any, Any]) -> str | None:
    return getattr(request.scope.get("user"), "username", None)


async def _start(request: Request[Any, Any, Any], settings: Settings, broker: Any, data: ScrapeRequest) -> JobOut:
    try:
        return await service.start_scrape(broker, settings, _creator(request), request=data)
    except service.ScrapeRequestError as exc:
        raise ClientException(str(exc)) from exc


async def _scrape_job(job_id: int) -> JobOut:
    job = await jobs.get_job(job_id)
    if job.kind != service.SCRAPE_KIND:
        raise NotFoundException(f"job {job_id} is not a scrape")
    return job


# -- API ---------------------------------------------------------------------------------------
@get("/api/v1/scrapers", responses=answers())
async def api_scrapers(settings: SettingsDep) -> ScrapersOut:
    """Installed scraper plugins with the JSON schema of their params, and broken ones with why."""
    return service.list_scrapers(settings)


@post("/api/v1/scrapes", status_code=202, response_headers=LOCATION, responses=answers(503))
async def api_scrape(
    request: Request[Any, Any, Any], data: Annotated[ScrapeRequest, Body()], settings: SettingsDep, broker: BrokerDep
) -> Response[JobOut]:
    """Start a scrape: ``{"plugin": ..., "params": {...}}`` → 202 with the job (400 names a bad field)."""
    return accepted(await _start(request, settings, broker, data))


@get("/api/v1/scrapes/{job_id:int}/failures", responses=answers(404))
async def api_failures(job_id: RowId) -> list[FailureOut]:
    await _scrape_job(job_id)
    return await service.failures(job_id)


@post("/api/v1/scrapes/{job_id:int}/retry-failed", status_code=202, response_headers=LOCATION,
      responses=answers(404, 503))  # fmt: skip
async def api_retry_failed(request: Request[Any, Any, Any], job_id: RowId, settings: SettingsDep,
                           broker: BrokerDep) -> Response[JobOut]:  # fmt: skip
    """A new scrape job that re-fetches only the URLs that failed in job ``job_id``."""
    await _scrape_job(job_id)
    return accepted(await service.start_scrape(broker, settings, _creator(request), retry_of=job_id))


# -- pages -------------------------------------------------------------------------------------
@get("/scrape")
async def scrape_page(
    request: Request[Any, Any, Any], settings: SettingsDep, plugin: FromQuery[str | None] = None
) -> Template:
    """Pick a plugin first (each with its description), then its form alone."""
    scrapers = service.list_scrapers(settings)
    chosen = next((s for s in scrapers.items if s.name == plugin), None)
    if plugin and chosen is None:
        raise NotFoundException(f"no scraper plugin named {plugin!r}")
    return page(
        request, "scraping/plugins.html", scrapers=scrapers, chosen=chosen, field_kind=field_kind,
        contact=bool(settings.scraping.contact.strip()),
    )  # fmt: skip


@post("/scrape/{plugin:str}")
async def scrape_form(request: Request[Any, Any, Any], plugin: FromPath[str], settings: SettingsDep,
                      broker: BrokerDep) -> Response[Any]:  # fmt: skip
    scrapers = {s.name: s for s in service.list_scrapers(settings).items}
    if plugin not in scrapers:
        raise NotFoundException(f"no scraper plugin named {plugin!r}")
    form = await request.form()
    params = await form_params(settings, scrapers[plugin].params, form)
    data = ScrapeRequest(plugin=plugin, params=params, over_queries=form.get("over_queries") == "on")
    job = await _start(request, settings, broker, data)
    url = f"/scrapes/{job.id}"
    if request.headers.get("hx-request") == "true":
        return Response(None, status_code=204, headers={"HX-Redirect": url})
    return Redirect(url, status_code=303)


@get("/scrapes/{job_id:int}")
async def scrape_run_page(request: Request[Any, Any, Any], job_id: RowId) -> Template:
    job = await _scrape_job(job_id)
    return page(
        request, "scraping/run.html", "_partials/scrape_run.html", job=job, failures=await service.failures(job_id)
    )


@post("/scrapes/{job_id:int}/retry-failed")
async def retry_failed_form(request: Request[Any, Any, Any], job_id: RowId, settings: SettingsDep,
                            broker: BrokerDep) -> Response[Any]:  # fmt: skip
    await _scrape_job(job_id)
    new = await service.start_scrape(broker, settings, _creator(request), retry_of=job_id)
    if request.headers.get("hx-request") == "true":
        return Response(None, status_code=204, headers={"HX-Redirect": f"/scrapes/{new.id}"})
    return Redirect(f"/scrapes/{new.id}", status_code=303)


router = feature_router(
    "scraping",
    api=[api_scrapers, api_scrape, api_failures, api_retry_failed],
    pages=[scrape_page, scrape_form, scrape_run_page, retry_failed_form],
)
