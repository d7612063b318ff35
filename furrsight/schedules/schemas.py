"""What the schedules API takes and gives."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Action = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Cron = Annotated[str, msgspec.Meta(min_length=9, max_length=128)]
Interval = Annotated[int, msgspec.Meta(ge=10, le=366 * 86400, description="seconds between slots")]


class ScheduleIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A recurring job: an ``action`` with its ``params``, every ``interval_s`` seconds or at the
    times of a five-field ``cron`` expression (UTC); exactly one of the two."""

    name: Name
    action: Action
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    cron: Cron | None = None
    interval_s: Interval | None = None
    enabled: bool = True


class SchedulePatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    enabled: bool


class ScheduleOut(msgspec.Struct, kw_only=True):
    id: int
    name: str
    action: str
    params: dict[str, Any]
    cron: str | None
    interval_s: int | None
    enabled: bool
    last_slot: int  # epoch seconds of the last slot fired (or skipped while paused)
    last_fired_at: datetime | None
    last_job_id: int | None
    last_note: str  # what happened last: "missed 3 slots, ran the latest at …", an error
    fires: int
    next_slot: int | None = None  # epoch seconds of the next slot (none while paused)
    next_at: str | None = None  # the same, in words ("2026-12-01 03:00 UTC")


class ActionOut(msgspec.Struct, kw_only=True):
    name: str
    description: str
