"""Jobs: the JSON API and the pages (list, one job with live progress and log)."""

from typing import Annotated, Any

from litestar import Request, Response, Router, get, post
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Template

from furrsight.jobs import service
from furrsight.jobs.schemas import STATUSES, JobOut, JobPage
from furrsight.web.deps import BrokerDep, SettingsDep
from furrsight.web.errors import status_error_handler
from furrsight.web.pages import page

JOB_EXCEPTION_HANDLERS: dict[Any, Any] = {service.JobError: status_error_handler}  # its own status: 404, 409, 503


def accepted(job: JobOut) -> Response[JobOut]:
    """202 with the job and where to follow it: the answer to every POST that starts work."""
    return Response(job, status_code=202, headers={"Location": f"/api/v1/jobs/{job.id}"})


# -- API ---------------------------------------------------------------------------------------
@get("/api/v1/jobs")
async def api_list_jobs(
    status: Annotated[str | None, QueryParameter(description=f"one of {', '.join(STATUSES)}")] = None,
    kind: FromQuery[str | None] = None,
    cursor: Annotated[int | None, QueryParameter(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
) -> JobPage:
    return await service.list_jobs(limit=limit, before=cursor, status=status, kind=kind)


@get("/api/v1/jobs/{job_id:int}")
async def api_get_job(job_id: FromPath[int]) -> JobOut:
    return await service.get_job(job_id)


@post("/api/v1/jobs/{job_id:int}/cancel", status_code=200)
async def api_cancel_job(job_id: FromPath[int]) -> JobOut:
    return await service.cancel_job(job_id)


@post("/api/v1/jobs/{job_id:int}/retry")
async def api_retry_job(job_id: FromPath[int], broker: BrokerDep) -> Response[JobOut]:
    return accepted(await service.retry_job(broker, job_id))


# -- pages -------------------------------------------------------------------------------------
@get("/jobs")
async def jobs_page(
    request: Request[Any, Any, Any], status: FromQuery[str | None] = None, cursor: FromQuery[int | None] = None
) -> Template:
    jobs = await service.list_jobs(limit=50, before=cursor, status=status)
    return page(request, "jobs/list.html", "_partials/job_rows.html", jobs=jobs, status=status, statuses=STATUSES)


async def _progress(request: Request[Any, Any, Any], settings: SettingsDep, job: JobOut, template: str) -> Template:
    log = service.read_log_tail(settings.data_path, job.id, settings.jobs.log_tail_lines)
    return page(request, template, "_partials/job_progress.html", job=job, log=log)


@get("/jobs/{job_id:int}")
async def job_page(request: Request[Any, Any, Any], job_id: FromPath[int], settings: SettingsDep) -> Template:
    return await _progress(request, settings, await service.get_job(job_id), "jobs/detail.html")


@get("/jobs/{job_id:int}/progress")
async def job_progress(request: Request[Any, Any, Any], job_id: FromPath[int], settings: SettingsDep) -> Template:
    return await _progress(request, settings, await service.get_job(job_id), "jobs/detail.html")


@post("/jobs/{job_id:int}/cancel", status_code=200)
async def job_cancel(request: Request[Any, Any, Any], job_id: FromPath[int], settings: SettingsDep) -> Template:
    return await _progress(request, settings, await service.cancel_job(job_id), "jobs/detail.html")


@post("/jobs/{job_id:int}/retry", status_code=200)
async def job_retry(
    request: Request[Any, Any, Any], job_id: FromPath[int], settings: SettingsDep, broker: BrokerDep
) -> Template:
    return await _progress(request, settings, await service.retry_job(broker, job_id), "jobs/detail.html")


router = Router(
    path="/",
    route_handlers=[
        api_list_jobs,
        api_get_job,
        api_cancel_job,
        api_retry_job,
        jobs_page,
        job_page,
        job_progress,
        job_cancel,
        job_retry,
    ],
    tags=["jobs"],
)
