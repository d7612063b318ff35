"""Schedules: recurring jobs by cron expression or interval, and the registry of what they run.

The schedules feature knows no other feature: the composition root (``pipeline.py``) fills
``ACTIONS`` with each schedulable action's start function. A firing only ever calls one, so each
firing is an ordinary job. Slots are epoch seconds: for an interval, the multiples of it; for a
cron expression (UTC), its times, computed by ``cronsim`` rather than by hand.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from cronsim import CronSim, CronSimError
from dramatiq import Broker

from furrsight.db.piccolo_conf import DATABASE
from furrsight.jobs.schemas import JobOut
from furrsight.schedules.schemas import ActionOut, ScheduleIn, ScheduleOut
from furrsight.schedules.tables import Schedule
from furrsight.settings import Settings

Start = Callable[[Broker, Settings, dict[str, Any], str], Awaitable[JobOut]]
Check = Callable[[Settings, dict[str, Any]], None]  # raises ScheduleError naming the bad param
MISSED_COUNT_CAP = 10_000  # counting missed cron slots stops here ("more than 10000")


class ScheduleError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ScheduledAction:
    start: Start
    description: str
    check: Check | None = None
    role: str = "curator"  # the least role that may schedule or run it now (a backup: admin)


ACTIONS: dict[str, ScheduledAction] = {}


def register_action(name: str, action: ScheduledAction) -> None:
    """Called by the composition root for each schedulable action (backups add theirs here)."""
    ACTIONS[name] = action


def role_for(action: str) -> str:
    found = ACTIONS.get(action)
    return found.role if found else "curator"


async def action_of(schedule_id: int) -> str:
    return str((await _row(schedule_id))["action"])


def actions() -> list[ActionOut]:
    return [ActionOut(name=n, description=a.description) for n, a in sorted(ACTIONS.items())]


# -- slots ---------------------------------------------------------------------------------------
def _dt(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def latest_slot(cron: str | None, interval_s: int | None, now: int) -> int:
    """The latest slot at or before ``now``."""
    if interval_s:
        return now // interval_s * interval_s
    assert cron is not None
    return int(next(CronSim(cron, _dt(now + 1), reverse=True)).timestamp())


def next_slot(cron: str | None, interval_s: int | None, now: int) -> int:
    """The first slot after ``now``."""
    if interval_s:
        return (now // interval_s + 1) * interval_s
    assert cron is not None
    return int(next(CronSim(cron, _dt(now))).timestamp())


def slots_between(cron: str | None, interval_s: int | None, after: int, upto: int) -> int:
    """How many slots lie strictly between ``after`` and ``upto``."""
    if interval_s:
        return max(0, (upto - after) // interval_s - 1)
    count = 0
    for at in CronSim(cron or "", _dt(after)):
        if int(at.timestamp()) >= upto or count >= MISSED_COUNT_CAP:
            break
        count += 1
    return count


def _stamp(epoch: int) -> str:
    return _dt(epoch).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- rows ----------------------------------------------------------------------------------------
def _out(row: dict[str, Any], now: int | None = None) -> ScheduleOut:
    out = msgspec.convert(row, ScheduleOut, strict=False)
    if out.enabled:
        out.next_slot = next_slot(out.cron, out.interval_s, max(now or _now(), out.last_slot))
        out.next_at = _stamp(out.next_slot)
    return out


def _now() -> int:
    return int(datetime.now(UTC).timestamp())


async def _row(schedule_id: int) -> dict[str, Any]:
    row = await Schedule.select().where(Schedule.id == schedule_id).first().output(load_json=True)
    if row is None:
        raise ScheduleError(f"schedule {schedule_id} does not exist", status=404)
    return row


async def get_schedule(schedule_id: int) -> ScheduleOut:
    return _out(await _row(schedule_id))


async def list_schedules() -> list[ScheduleOut]:
    rows = await Schedule.select().order_by(Schedule.id).output(load_json=True)
    now = _now()
    return [_out(r, now) for r in rows]


def check(settings: Settings, data: ScheduleIn) -> None:
    """A clear error for a schedule that could never run: unknown action, bad timing, bad params."""
    if data.action not in ACTIONS:
        known = ", ".join(sorted(ACTIONS)) or "none"
        raise ScheduleError(f"action: no schedulable action named {data.action!r} (known: {known})")
    if (data.cron is None) == (data.interval_s is None):
        raise ScheduleError("cron, interval_s: give exactly one of the two")
    if data.cron is not None:
        try:
            if len(data.cron.split()) != 5:
                raise CronSimError("minute hour day-of-month month day-of-week")
            next(CronSim(data.cron, datetime.now(UTC)))
        except (CronSimError, ValueError, StopIteration) as exc:
            raise ScheduleError(f"cron: {data.cron!r} is not a five-field cron expression ({exc})") from exc
    action = ACTIONS[data.action]
    if action.check is not None:
        action.check(settings, data.params)


async def create_schedule(settings: Settings, data: ScheduleIn) -> ScheduleOut:
    """A new schedule fires first at its next slot (not at once: "run now" is for that)."""
    check(settings, data)
    row = Schedule(
        name=data.name, action=data.action, params=data.params, cron=data.cron, interval_s=data.interval_s,
        enabled=data.enabled, last_slot=latest_slot(data.cron, data.interval_s, _now()),
    )  # fmt: skip
    await row.save()
    return await get_schedule(row.id)


async def set_enabled(schedule_id: int, enabled: bool) -> ScheduleOut:
    """Pause or resume. Slots that pass while paused are skipped: resuming waits for the next."""
    async with DATABASE.write_transaction():
        row = await _row(schedule_id)
        values: dict[Any, Any] = {Schedule.enabled: enabled}
        if enabled and not row["enabled"]:
            now = _now()
            latest = latest_slot(row["cron"], row["interval_s"], now)
            skipped = slots_between(row["cron"], row["interval_s"], row["last_slot"], latest) + (
                latest > row["last_slot"]
            )
            values[Schedule.last_slot] = max(latest, row["last_slot"])
            values[Schedule.last_note] = f"resumed at {_stamp(now)}; {skipped} slot(s) skipped while paused"
        await Schedule.update(values).where(Schedule.id == schedule_id)
    return await get_schedule(schedule_id)


async def delete_schedule(schedule_id: int) -> None:
    await _row(schedule_id)
    await Schedule.delete().where(Schedule.id == schedule_id)


async def run_now(broker: Broker, settings: Settings, schedule_id: int, creator: str | None) -> JobOut:
    """Start the schedule's job at once; its slots are untouched."""
    row = await _row(schedule_id)
    action = ACTIONS.get(row["action"])
    if action is None:
        raise ScheduleError(f"schedule {schedule_id}: action {row['action']!r} is not available here", status=409)
    try:
        job = await action.start(broker, settings, row["params"], creator or f"schedule {schedule_id}")
    except ValueError as exc:  # its params no longer fit (a plugin removed): say so
        raise ScheduleError(f"schedule {schedule_id} cannot run: {exc}", status=409) from exc
    note = f"run now by {creator or 'someone'} at {_stamp(_now())}: job {job.id}"
    await Schedule.update({Schedule.last_job_id: job.id, Schedule.last_note: note}).where(Schedule.id == schedule_id)
    return job


async def claim_slot(schedule_id: int, slot: int) -> dict[str, Any] | None:
    """Advance the schedule's ``last_slot`` to ``slot`` in a write transaction; the row (with a
    note on missed slots) when this caller won, None when the slot was already fired."""
    async with DATABASE.write_transaction():
        row = await Schedule.select().where(Schedule.id == schedule_id).first().output(load_json=True)
        if row is None or not row["enabled"] or row["last_slot"] >= slot:
            return None
        missed = slots_between(row["cron"], row["interval_s"], row["last_slot"], slot)
        note = f"ran the slot of {_stamp(slot)}"
        if missed:
            more = "more than " if missed >= MISSED_COUNT_CAP else ""
            note = f"missed {more}{missed} slot(s) while no scheduler ran; ran the latest, {_stamp(slot)}, once"
        await Schedule.update(
            {Schedule.last_slot: slot, Schedule.fires: Schedule.fires + 1, Schedule.last_note: note,
             Schedule.last_fired_at: datetime.now(UTC)}
        ).where(Schedule.id == schedule_id)  # fmt: skip
    row["last_note"] = note
    return row


async def fire(broker: Broker, settings: Settings, row: dict[str, Any], slot: int) -> JobOut | None:
    """Make the job of a claimed slot; a failure to start is recorded, not retried (the slot is
    spent: at most once per slot)."""
    action = ACTIONS.get(row["action"])
    try:
        if action is None:
            raise ScheduleError(f"action {row['action']!r} is not available in this process")
        job = await action.start(broker, settings, row["params"], f"schedule {row['id']}")
    except Exception as exc:  # the schedule lives on; the note says why this slot made no job
        note = f"{row['last_note']}: could not start the job: {exc}"
        await Schedule.update({Schedule.last_note: note}).where(Schedule.id == row["id"])
        return None
    note = f"{row['last_note']}: job {job.id}"
    await Schedule.update({Schedule.last_job_id: job.id, Schedule.last_note: note}).where(Schedule.id == row["id"])
    return job


async def enabled_schedules() -> list[dict[str, Any]]:
    return await Schedule.select().where(Schedule.enabled == True).output(load_json=True)  # noqa: E712


def cutoff(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)
