"""The audit log: who signed in or out, failed, made or revoked a token, changed a role."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

import msgspec

from furrsight.auth.schemas import AuditOut, AuditPage
from furrsight.auth.tables import AuditEntry


async def record(
    action: str,
    actor: str | None = None,
    target: str | None = None,
    address: str | None = None,
    **detail: Any,
) -> None:
    await AuditEntry.insert(AuditEntry(actor=actor, action=action, target=target, address=address, detail=detail)).run()


def record_in(
    conn: sqlite3.Connection,
    action: str,
    actor: str | None = None,
    target: str | None = None,
    address: str | None = None,
    **detail: Any,
) -> None:
    """``record`` on a plain connection, inside the caller's transaction (a save's own write: one
    thread call, see ``Database.write_call``); ``at`` as piccolo stores a ``Timestamptz``."""  # fmt: skip
    conn.execute(
        "INSERT INTO audit_log (at, actor, action, target, address, detail) VALUES (?, ?, ?, ?, ?, ?)",
        (str(datetime.now(UTC)), actor, action, target, address, msgspec.json.encode(detail).decode()),
    )


async def list_entries(limit: int = 50, before: int | None = None, action: str | None = None) -> AuditPage:
    query = AuditEntry.select().order_by(AuditEntry.id, ascending=False).limit(limit + 1)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    if action:
        query = query.where(AuditEntry.action == action)
    rows = await query.output(load_json=True)
    items = [
        AuditOut(
            id=r["id"],
            at=r["at"].isoformat(),
            actor=r["actor"],
            action=r["action"],
            target=r["target"],
            address=r["address"],
            detail=r["detail"] or {},
        )
        for r in rows[:limit]
    ]
    return AuditPage(items=items, next_cursor=items[-1].id if len(rows) > limit else None)
