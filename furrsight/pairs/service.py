"""Pairs: make, list, read, change (at a version), history. Mining and analysis are in their own
modules; both write through ``create_pairs`` and ``apply_labels`` here."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime
from typing import Any, Callable

import msgspec
from piccolo.query.functions.aggregate import Count

from furrsight.db.piccolo_conf import DATABASE
from furrsight.images import groups
from furrsight.pairs.schemas import STATUSES, HistoryOut, PairImage, PairOut, PairPage, PairPatch, ServiceLabel
from furrsight.pairs.tables import Pair, PairHistory, PairService
from furrsight.taxonomy import service as taxonomy

VIA = ("review", "bulk", "api", "page", "model", "mining", "undo")


class PairError(ValueError):
    """Bad pair input, in words (400)."""


class PairNotFound(LookupError):
    pass


class PairExists(PairError):
    """The two images are a pair already (either way round): 409, naming it."""

    def __init__(self, pair_id: int) -> None:
        super().__init__(f"these two images are pair {pair_id} already")
        self.pair_id = pair_id


class StaleVersion(Exception):
    """A write at a version the pair has moved past: 409 with what changed since."""

    def __init__(self, current: PairOut, changes: list[HistoryOut]) -> None:
        who = ", ".join(sorted({c.user or "the system" for c in changes})) or "someone"
        super().__init__(f"pair {current.id} changed since version you read (now version {current.version}, by {who})")
        self.current = current
        self.changes = changes


def now() -> datetime:
    return datetime.now(UTC)


# -- reading -----------------------------------------------------------------------------------
class PairFilter(msgspec.Struct, kw_only=True):
    status: str | None = None
    origin: str | None = None
    breed: str | None = None  # a taxonomy name, alias or id
    service: str | None = None
    min_confidence: float | None = None
    max_confidence: float | None = None
    plugin: str | None = None  # source plugin (or source kind) of either image
    license: str | None = None
    image: int | None = None  # pairs that include this image


async def _entry_id(kind: str, text: str) -> int:
    if text.isdigit():
        return int(text)
    found = await taxonomy.resolve(kind, text)  # type: ignore[arg-type]
    if found.id is None:
        raise PairError(f"no {kind[:-1]} matches {text!r}")
    return found.id


async def _query(where: PairFilter, with_status: bool = True, query: Any = None) -> Any:
    """``query`` (default: every column of pairs) narrowed by ``where``."""
    query = query if query is not None else Pair.select()
    if with_status and where.status:
        query = query.where(Pair.status == where.status)
    if where.origin:
        query = query.where(Pair.origin == where.origin)
    if where.breed:
        query = query.where(Pair.breed_id == await _entry_id("breeds", where.breed))
    if where.service:
        labelled = PairService.select(PairService.pair).where(
            PairService.service_id == await _entry_id("services", where.service)
        )
        query = query.where(Pair.id.is_in(labelled))
    if where.min_confidence is not None:
        query = query.where(Pair.confidence >= where.min_confidence)
    if where.max_confidence is not None:
        query = query.where(Pair.confidence <= where.max_confidence)
    if where.plugin or where.license:
        seen = groups.ids_from_sources(where.plugin, where.license)
        query = query.where(Pair.before.is_in(seen) | Pair.after.is_in(seen))
    if where.image is not None:
        query = query.where((Pair.before == where.image) | (Pair.after == where.image))
    return query


def _image(card: groups.ImageCard | None, image_id: int) -> PairImage:
    thumb, file = f"/api/v1/images/{image_id}/thumb", f"/api/v1/images/{image_id}/file"
    if card is None:
        return PairImage(id=image_id, thumb_url=thumb, file_url=file)
    return PairImage(
        id=image_id,
        thumb_url=thumb,
        file_url=file,
        width=card.width,
        height=card.height,
        title=card.title,
        author=card.author,
        license=card.license,
        source_url=card.source_url,
        page_url=card.page_url,
        plugin=card.plugin,
    )


async def _outs(rows: list[dict[str, Any]]) -> list[PairOut]:
    if not rows:
        return []
    ids = [r["id"] for r in rows]
    labels = await PairService.select().where(PairService.pair.is_in(ids)).order_by(PairService.service_id)
    names = await taxonomy.names_of(
        {r["breed_id"] for r in rows if r["breed_id"]}, {label["service_id"] for label in labels}
    )
    cards = await groups.cards(sorted({r["before"] for r in rows} | {r["after"] for r in rows}))
    return _build(rows, labels, names, cards)


def _outs_in(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> list[PairOut]:
    """``_outs`` on a plain connection, in one read (``Database.read_call``)."""
    if not rows:
        return []
    ids = [r["id"] for r in rows]
    marks = ",".join("?" for _ in ids)
    query = f"SELECT * FROM pair_services WHERE pair IN ({marks}) ORDER BY service_id"  # noqa: S608
    labels = [dict(r) for r in conn.execute(query, ids)]
    names = taxonomy.names_in(
        conn, {r["breed_id"] for r in rows if r["breed_id"]}, {label["service_id"] for label in labels}
    )
    cards = groups.cards_in(conn, sorted({r["before"] for r in rows} | {r["after"] for r in rows}))
    return _build(rows, labels, names, cards)


def _build(
    rows: list[dict[str, Any]],
    labels: list[dict[str, Any]],
    names: tuple[dict[int, str], dict[int, str]],
    cards: dict[int, groups.ImageCard],
) -> list[PairOut]:
    breed_names, service_names = names
    by_pair: dict[int, list[ServiceLabel]] = {}
    for label in labels:
        by_pair.setdefault(label["pair"], []).append(
            ServiceLabel(
                id=label["service_id"],
                name=service_names.get(label["service_id"], "?"),
                source=label["source"],
                confidence=label["confidence"],
            )
        )
    out = []
    for r in rows:
        analysis = msgspec.json.decode(r["analysis"]) if isinstance(r["analysis"], str | bytes) else r["analysis"]
        fields = {k: v for k, v in r.items() if k in PairOut.__struct_fields__}
        out.append(
            msgspec.convert(
                {
                    **fields,
                    "before_id": r["before"],
                    "after_id": r["after"],
                    "analysis": analysis,
                    "breed": breed_names.get(r["breed_id"]) if r["breed_id"] else None,
                    "services": by_pair.get(r["id"], []),
                    "before": _image(cards.get(r["before"]), r["before"]),
                    "after": _image(cards.get(r["after"]), r["after"]),
                },
                PairOut,
                from_attributes=True,
            )
        )
    return out


async def list_pairs(where: PairFilter, limit: int, cursor: int | None = None) -> PairPage:
    """Newest first, cursor-paged, with the count per status under the same filters."""
    query = (await _query(where)).order_by(Pair.id, ascending=False).limit(limit + 1)
    if cursor is not None:
        query = query.where(Pair.id < cursor)
    rows = await query
    items = await _outs(rows[:limit])
    counts = await status_counts(where)
    return PairPage(items=items, next_cursor=items[-1].id if len(rows) > limit else None, counts=counts)


async def status_counts(where: PairFilter | None = None) -> dict[str, int]:
    grouped = Pair.select(Pair.status, Count(Pair.id, alias="n")).group_by(Pair.status)
    query = await _query(where or PairFilter(), with_status=False, query=grouped)
    counts = {s: 0 for s in STATUSES}
    counts.update({r["status"]: r["n"] for r in await query})
    return counts


async def get_pair(pair_id: int) -> PairOut:
    """One pair with its labels, names and image cards: one read in one thread call (a review
    screen asks for one per decision; piccolo would open a connection, a thread, per query)."""
    return await DATABASE.read_call(lambda conn: _pair_in(conn, pair_id))


def _pair_in(conn: sqlite3.Connection, pair_id: int) -> PairOut:
    rows = [dict(r) for r in conn.execute("SELECT * FROM pairs WHERE id = ?", (pair_id,))]
    if not rows:
        raise PairNotFound(f"pair {pair_id} does not exist")
    return _outs_in(conn, rows)[0]


async def history(pair_id: int, since_version: int = 0) -> list[HistoryOut]:
    if not await Pair.exists().where(Pair.id == pair_id):
        raise PairNotFound(f"pair {pair_id} does not exist")
    rows = await (
        PairHistory.select()
        .where((PairHistory.pair == pair_id) & (PairHistory.version > since_version))
        .order_by(PairHistory.id)
    )
    for r in rows:  # JSON text: SQLite hands back a number stored as JSON as a number
        r["old"], r["new"] = _json(r["old"]), _json(r["new"])
    return [msgspec.convert(r, HistoryOut) for r in rows]


def _json(value: Any) -> Any:
    return msgspec.json.decode(value) if isinstance(value, str | bytes) else value


def as_json(value: Any) -> str:
    """piccolo stores a ``str`` given to a JSON column as it is: encode every value ourselves."""
    return msgspec.json.encode(value).decode()


# -- writing -----------------------------------------------------------------------------------
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


async def _set_services(pair_id: int, ids: set[int], source: str, confidences: dict[int, float] | None = None) -> None:
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
    breed_id = None if not change.breed else await _entry_id("breeds", change.breed)
    service_ids = None if change.services is None else {await _entry_id("services", s) for s in change.services}
    adds = {await _entry_id("services", s) for s in change.add_services}
    removes = {await _entry_id("services", s) for s in change.remove_services}
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
        raise _Stale(row["version"])
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


class _Stale(Exception):
    def __init__(self, version: int) -> None:
        self.version = version


async def change_pair(
    pair_id: int, change: PairPatch, user: str | None, via: str, batch: str | None = None, then: Then | None = None
) -> PairOut:
    """``update_pair``, with a stale version turned into ``StaleVersion`` (what changed, by whom)."""
    try:
        return await update_pair(pair_id, change, user, via, batch, then)
    except _Stale:
        current = await get_pair(pair_id)
        raise StaleVersion(current, await history(pair_id, since_version=change.version)) from None


def new_batch() -> str:
    return str(uuid.uuid4())


async def accepted_by_query() -> dict[str, int]:
    """Accepted pairs per search query that found one of their images (the queries page)."""
    rows = await Pair.select(Pair.id, Pair.before, Pair.after).where(Pair.status == "accepted")
    queries = await groups.queries_of(sorted({r["before"] for r in rows} | {r["after"] for r in rows}))
    counts: dict[str, int] = {}
    for r in rows:
        for query in queries.get(r["before"], set()) | queries.get(r["after"], set()):
            counts[query] = counts.get(query, 0) + 1
    return counts
