"""What the jobs API returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
ACTIVE = ("queued", "running")
FINISHED = ("succeeded", "failed", "cancelled")


class JobOut(msgspec.Struct, kw_only=True):
    id: int
    kind: str
    status: str
    params: dict[str, Any]
    progress_done: int
    progress_total: int
    counters: dict[str, int]
    error: str | None
    creator: str | None
    attempts: int
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def percent(self) -> int:
        if self.progress_total <= 0:
            return 100 if self.status == "succeeded" else 0
        return min(100, round(100 * self.progress_done / self.progress_total))

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


class JobPage(msgspec.Struct, kw_only=True):
    items: list[JobOut]
    next_cursor: int | None
