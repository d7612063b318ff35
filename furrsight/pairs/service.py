"""Pairs: make and change them (at a version, each change a history row); reading is in
``reads``, re-exported here with the errors so that callers have one service. Mining and
analysis are in their own modules and write through this one."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime
from typing import Any, Callable

from furrsight.db.piccolo_conf import DATABASE
from furrsight.images import groups
from furrsight.pairs.errors import PairError, PairExists, PairNotFound, Stale, StaleVersion
from furrsight.pairs.reads import (
    PairFilter,
    accepted_by_query,
    as_json,
    entry_id,
    get_pair,
    history,
    list_pairs,
    status_counts,
)
from furrsight.pairs.schemas import PairOut, PairPatch
from furrsight.pairs.tables import Pair, PairHistory, PairService

__all__ = [
    "VIA", "PairError", "PairExists", "PairFilter", "PairNotFound", "StaleVersion", "accepted_by_query",
    "as_json", "change_pair", "create_pair", "get_pair", "history", "list_pairs", "new_batch", "now",
    "set_services", "status_counts", "update_pair",
]  # fmt: skip

VIA = ("review", "bulk", "api", "page", "model", "mining", "undo")


def now() -> datetime:
    return datetime.now(UTC)


async def create_pair(before_id: int, after_id: int, origin: str, user: str | None, via: str, **values: Any) -> PairOut:
    """One pair; ``PairExists`` when the two images are a pair already, whichever way round."""
    if before_id == after_id:
        raise PairError("a pair needs two different images")
    if len(await groups.cards([before_id, after_id])) != 2:
        raise PairError(f"image {before_id if not await groups.cards([before_id]) else after_id} does not exist")
    async with DATABASE.write_transaction():
        existing = (
            await Pair.select(Pair.id)
            .where(
                ((Pair.before == before_id) & (Pair.after == after_id))
                | ((Pair.before == after_id) & (Pair.after == before_id))
            )
            .first()
        )
        if existing:
            raise PairExists(existing["id"])
        row = (await Pair.insert(Pair(before=before_id, after=after_id, origin=origin, **values)).returning(Pair.id))[0]
        await PairHistory.insert(
            PairHistory(
                pair=row["id"],
                user=user,
                field="created",
                new=as_json({"before": before_id, "after": after_id, "origin": origin}),
                via=via,
                version=1,
            )
        )
    return await get_pair(row["id"])


async def set_services(pair_id: int, ids: set[int], source: str, confidences: dict[int, float] | None = None) -> None:
    await PairService.delete().where(PairService.pair == pair_id)
    if ids:
        await PairService.insert(
            *[
                PairService(pair=pair_id, service_id=i, source=source, confidence=(confidences or {}).get(i, 1.0))
                for i in sorted(ids)
            ]
        )


Then = Callable[[sqlite3.Connection, int], None]


async def update_pair(
    pair_id: int, change: PairPatch, user: str | None, via: str, batch: str | None = None, then: Then | None = None
) -> PairOut:
    """Apply a person's change at the version they read; every changed field is a history row.
    ``then(conn, version)`` runs in the same transaction after the change (e.g. the audit entry)."""
    breed_id = None if not change.breed else await entry_id("breeds", change.breed)
    service_ids = None if change.services is None else {await entry_id("services", s) for s in change.services}
    adds = {await entry_id("services", s) for s in change.add_services}
    removes = {await entry_id("services", s) for s in change.remove_services}
    if change.status == "rejected" and not change.reject_reason:
        raise PairError(
            "a rejection needs a reason: "
            + ", ".join(
                (
                    "not_same_dog",
                    "not_before_after",
                    "order_unclear",
                    "poor_quality",
                    "duplicate",
                    "licence",
                    "not_a_dog",
                    "other",
                )
            )
        )
    await DATABASE.write_call(
        lambda conn: _apply(conn, pair_id, change, user, via, batch, breed_id, service_ids, adds, removes, then)
    )
    return await get_pair(pair_id)


def _apply(
    conn: sqlite3.Connection,
    pair_id: int,
    change: PairPatch,
    user: str | None,
    via: str,
    batch: str | None,
    breed_id: int | None,
    service_ids: set[int] | None,
    adds: set[int],
    removes: set[int],
    then: Then | None,
) -> None:
    """``update_pair``'s read-check-write, in plain SQL on one connection inside one transaction
    (one thread call: the write lock is held for one await, not one per query)."""  # fmt: skip
    found = conn.execute("SELECT * FROM pairs WHERE id = ?", (pair_id,)).fetchone()
    if found is None:
        raise PairNotFound(f"pair {pair_id} does not exist")
    row = dict(found)
    if row["version"] != change.version:
        raise Stale(row["version"])
    current = {r[0] for r in conn.execute("SELECT service_id FROM pair_services WHERE pair = ?", (pair_id,))}
    values: dict[str, Any] = {}
    log: list[tuple[str, Any, Any]] = []
    if change.swap:
        values.update(before=row["after"], after=row["before"], order_source="human", order_confidence=1.0)
        log.append(("order", [row["before"], row["after"]], [row["after"], row["before"]]))
    if change.breed is not None and breed_id != row["breed_id"]:
        values.update(
            breed_id=breed_id, breed_source="human" if breed_id else None, breed_confidence=1.0 if breed_id else None
        )
        log.append(("breed", row["breed_id"], breed_id))
    wanted = (service_ids if service_ids is not None else current) | adds
    wanted -= removes
    if wanted != current:
        conn.execute("DELETE FROM pair_services WHERE pair = ?", (pair_id,))
        conn.executemany(
            "INSERT INTO pair_services (pair, service_id, source, confidence) VALUES (?, ?, 'human', 1.0)",
            [(pair_id, i) for i in sorted(wanted)],
        )
        log.append(("services", sorted(current), sorted(wanted)))
    caption, note = change.caption or None, change.note or None  # "" clears
    if change.caption is not None and caption != row["caption"]:
        values.update(caption=caption, caption_source="human" if caption else None)
        log.append(("caption", row["caption"], caption))
    if change.note is not None and note != row["note"]:
        values["note"] = note
        log.append(("note", row["note"], note))
    if change.status is not None and (change.status != row["status"] or change.reject_reason != row["reject_reason"]):
        reason = change.reject_reason if change.status == "rejected" else None
        values.update(
            status=change.status,
            reject_reason=reason,
            reason=None if change.status != "rejected" else row["reason"],
            reviewed_by=user,
            reviewed_at=_stamp(),
        )
        log.append(("status", row["status"], change.status))
        if reason != row["reject_reason"]:
            log.append(("reject_reason", row["reject_reason"], reason))
    version = row["version"]
    if log:
        version += 1
        at = _stamp()
        values.update(version=version, updated_at=at)
        columns = ", ".join(f'"{k}" = ?' for k in values)  # our own column names, never input
        conn.execute(f"UPDATE pairs SET {columns} WHERE id = ?", (*values.values(), pair_id))  # noqa: S608
        conn.executemany(
            "INSERT INTO pair_history (pair, at, user, field, old, new, via, batch, version)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(pair_id, at, user, f, as_json(o), as_json(n), via, batch, version) for f, o, n in log],
        )
    if then is not None:
        then(conn, version)


def _stamp() -> str:
    """A timestamp as piccolo stores a ``Timestamptz`` in SQLite (``str`` of the UTC datetime)."""
    return str(now())


async def change_pair(
    pair_id: int, change: PairPatch, user: str | None, via: str, batch: str | None = None, then: Then | None = None
) -> PairOut:
    """``update_pair``, with a stale version turned into ``StaleVersion`` (what changed, by whom)."""
    try:
        return await update_pair(pair_id, change, user, via, batch, then)
    except Stale:
        current = await get_pair(pair_id)
        raise StaleVersion(current, await history(pair_id, since_version=change.version)) from None


def new_batch() -> str:
    return str(uuid.uuid4())
