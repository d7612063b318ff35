"""What the schedule tests share: a harmless action to schedule, and the jobs a schedule made."""

from __future__ import annotations

from furrsight.jobs.tables import Job

# A clean-up that removes nothing younger than ten years (a retry of failed jobs would retry other
# tests' failures).
SAFE: dict = {"action": "cleanup", "params": {"log_days": 3650, "staging_days": 3650}}  # type: ignore[type-arg]


async def jobs_of(schedule_id: int) -> list[int]:
    rows = await Job.select(Job.id).where(Job.creator == f"schedule {schedule_id}").order_by(Job.id)
    return [r["id"] for r in rows]
