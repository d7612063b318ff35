"""Jobs: the JSON API and the pages (list, one job with live progress and log)."""

from typing import Annotated, Any, Literal

from litestar import Request, Response, get, post
from litestar.datastructures import ResponseHeader
from litestar.params import FromQuery, QueryParameter
from litestar.response import Template

from furrsight.jobs import service
from furrsight.jobs.schemas import STATUSES, JobOut, JobPage
from furrsight.web.api import Cursor, Limit, RowId, answers
from furrsight.web.deps import BrokerDep, SettingsDep
from furrsight.web.errors import status_error_handler
from furrsight.web.pages import page
from furrsight.web.routing import feature_router

Status = Annotated[Literal[STATUSES] | None, QueryParameter(description="only jobs in this status")]  # type: ignore[valid-type]
# what a POST that starts work answers: 202, the job, and where to follow it
LOCATION = [ResponseHeader(name="Location", description="/api/v1/jobs/{id}", documentation_only=True)]

JOB_EXCEPTION_HANDLERS: dict[Any, Any] = {service.JobError: status_error_handler}  # its own status: 404, 409, 503


def accepted(job: JobOut) -> Response[JobOut]:
    """202 with the job and where to follow it: the answer to every POST that starts work."""
    return Response(job, status_code=202, headers={"Location": f"/api/v1/jobs/{job.id}"})


# -- API ---------------------------------------------------------------------------------------
@get("/api/v1/jobs", responses=answers())
async def api_list_jobs(
    status: Status = None,
    kind: FromQuery[str | None] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> JobPage:
    return await service.list_jobs(limit=limit, before=cursor, status=status, kind=kind)


@get("/api/v1/jobs/{job_id:int}", responses=answers(404))
async def api_get_job(job_id: RowId) -> JobOut:
    return await service.get_job(job_id)


@post("/api/v1/jobs/{job_id:int}/cancel", status_code=200, responses=answers(404, 409))
async def api_cancel_job(job_id: RowId) -> JobOut:
    return await service.cancel_job(job_id)


@post("/api/v1/jobs/{job_id:int}/retry", status_code=202, response_headers=LOCATION, responses=answers(404, 409, 503))
async def api_retry_job(job_id: RowId, broker: BrokerDep) -> Response[JobOut]:
    return accepted(await service.retry_job(broker, job_id))


# -- pages -------------------------------------------------------------------------------------
@get("/jobs")
async def jobs_page(
    request: Request[Any, Any, Any], status: FromQuery[str | None] = None, cursor: Cursor = None
) -> Template:
    jobs = await service.list_jobs(limit=50, before=cursor, status=status)
    return page(request, "jobs/list.html", "_partials/job_rows.html", jobs=jobs, status=status, statuses=STATUSES)


async def _progress(request: Request[Any, Any, Any], settings: SettingsDep, job: JobOut, template: str) -> Template:
    log = service.read_log_tail(settings.data_path, job.id, settings.jobs.log_tail_lines)
    return page(request, template, "_partials/job_progress.html", job=job, log=log)


@get("/jobs/{job_id:int}")
async def job_page(request: Request[Any, Any, Any], job_id: RowId, settings: SettingsDep) -> Template:
    return await _progress(request, settings, await service.get_job(job_id), "jobs/detail.html")


@get("/jobs/{job_id:int}/progress")
async def job_progress(request: Request[Any, Any, Any], job_id: RowId, settings: SettingsDep) -> Template:
    return await _progress(request, settings, await service.get_job(job_id), "jobs/detail.html")


@post("/jobs/{job_id:int}/cancel", status_code=200)
async def job_cancel(request: Request[Any, Any, Any], job_id: RowId, settings: SettingsDep) -> Template:
    return await _progress(request, settings, await service.cancel_job(job_id), "jobs/detail.html")


@post("/jobs/{job_id:int}/retry", status_code=200)
async def job_retry(
    request: Request[Any, Any, Any], job_id: RowId, settings: SettingsDep, broker: BrokerDep
) -> Template:
    return await _progress(request, settings, await service.retry_job(broker, job_id), "jobs/detail.html")


router = feature_router(
    "jobs",
    api=[api_list_jobs, api_get_job, api_cancel_job, api_retry_job],
    pages=[jobs_page, job_page, job_progress, job_cancel, job_retry],
)
