"""Schedules on the session's database: the API and the page validate in words, "run now" makes
a job, and a worker process runs the scheduler. (The scheduler's own tests, on a data directory
of their own, are in ``test_schedules.py``: its module fixture points this process at that data
directory for as long as the module runs, so these tests live in a module of their own.)"""

from __future__ import annotations

import asyncio
import time

from litestar.testing import AsyncTestClient

from furrsight.schedules import housekeeping, service
from furrsight.schedules.schemas import ScheduleIn
from furrsight.settings import Settings
from tests.schedule_data import SAFE, jobs_of


async def test_api(curator_client: AsyncTestClient, viewer_client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    bad = [
        ({"name": "x", "action": "nope", "interval_s": 60}, "action: no schedulable action named 'nope'"),
        ({"name": "x", "action": "cleanup"}, "cron, interval_s: give exactly one of the two"),
        ({"name": "x", "action": "cleanup", "cron": "61 * * * *"}, "cron: '61 * * * *' is not a five-field"),
        ({"name": "x", "action": "cleanup", "interval_s": 60, "params": {"log_days": 0}}, "params.log_days"),
        ({"name": "x", "action": "scrape", "interval_s": 60, "params": {"plugin": "nope"}}, "params.plugin: no"),
    ]
    for body, message in bad:
        r = await curator_client.post("/api/v1/schedules", json=body)
        assert r.status_code == 400, r.text
        assert r.json()["error"].startswith(message), r.json()
    r = await curator_client.post("/api/v1/schedules", json={"name": "b", "action": "backup", "interval_s": 86400})
    assert r.status_code == 403 and r.json()["error"].endswith("scheduling backup needs the admin role"), r.text
    r = await curator_client.post("/api/v1/schedules", json=SAFE | {"name": "api", "interval_s": 3600})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    listed = (await viewer_client.get("/api/v1/schedules")).json()
    assert [s["name"] for s in listed if s["id"] == sid] == ["api"]
    assert (await viewer_client.post(f"/api/v1/schedules/{sid}/run")).status_code == 403
    r = await curator_client.patch(f"/api/v1/schedules/{sid}", json={"enabled": False})
    assert (r.status_code, r.json()["enabled"], r.json()["next_slot"]) == (200, False, None)
    r = await curator_client.post(f"/api/v1/schedules/{sid}/run")
    assert r.status_code == 202 and r.headers["location"] == f"/api/v1/jobs/{r.json()['id']}"
    assert r.json()["kind"] == housekeeping.CLEANUP_KIND
    page = await viewer_client.get("/schedules")
    assert page.status_code == 200 and "api" in page.text and "paused" in page.text
    assert (await curator_client.delete(f"/api/v1/schedules/{sid}")).status_code == 204
    assert (await curator_client.get(f"/api/v1/schedules/{sid}")).status_code == 404

    form = {"name": "from the page", "action": "cleanup", "every": "30 2 * * 1", "params": '{"log_days": 3650}'}
    r = await curator_client.post("/schedules", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    made = [s for s in (await viewer_client.get("/api/v1/schedules")).json() if s["name"] == "from the page"]
    assert [(s["cron"], s["interval_s"], s["params"], s["enabled"]) for s in made] == [
        ("30 2 * * 1", None, {"log_days": 3650}, True)
    ]
    r = await curator_client.post("/schedules", data={**form, "params": "{nope"}, follow_redirects=False)
    assert r.status_code == 400 and "params: not JSON" in r.text
    assert (await curator_client.post(f"/schedules/{made[0]['id']}/delete")).status_code == 200


async def test_worker_runs_the_scheduler(migrated: Settings, worker: object) -> None:
    """``furrsight worker`` starts the scheduler: an interval schedule's next slot makes a job."""
    made = await service.create_schedule(
        migrated, ScheduleIn(name="worker-driven", action="cleanup", params=SAFE["params"], interval_s=10)
    )
    deadline = time.monotonic() + 60
    while not await jobs_of(made.id):
        assert time.monotonic() < deadline, "the worker's scheduler made no job within 60 s"
        await asyncio.sleep(0.5)
    await service.set_enabled(made.id, False)
    after = await service.get_schedule(made.id)
    assert after.fires >= 1 and after.last_job_id == (await jobs_of(made.id))[-1]
