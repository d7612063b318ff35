"""Pairs as read: the filters, a page of pairs with their labels and image cards, one pair, its
history, the counts; and the JSON helpers both halves use. Writing is in ``service``."""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec
from piccolo.query.functions.aggregate import Count

from furrsight.db.piccolo_conf import DATABASE
from furrsight.images import groups
from furrsight.pairs.errors import PairError, PairNotFound
from furrsight.pairs.schemas import STATUSES, HistoryOut, PairImage, PairOut, PairPage, ServiceLabel
from furrsight.pairs.tables import Pair, PairHistory, PairService
from furrsight.taxonomy import service as taxonomy


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


async def entry_id(kind: str, text: str) -> int:
    if text.isdigit():
        return int(text)
    found = await taxonomy.resolve(kind, text)  # type: ignore[arg-type]
    if found.id is None:
        raise PairError(f"no {kind[:-1]} matches {text!r}")
    return found.id


async def filtered(where: PairFilter, with_status: bool = True, query: Any = None) -> Any:
    """``query`` (default: every column of pairs) narrowed by ``where``."""
    query = query if query is not None else Pair.select()
    if with_status and where.status:
        query = query.where(Pair.status == where.status)
    if where.origin:
        query = query.where(Pair.origin == where.origin)
    if where.breed:
        query = query.where(Pair.breed_id == await entry_id("breeds", where.breed))
    if where.service:
        labelled = PairService.select(PairService.pair).where(
            PairService.service_id == await entry_id("services", where.service)
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
    query = (await filtered(where)).order_by(Pair.id, ascending=False).limit(limit + 1)
    if cursor is not None:
        query = query.where(Pair.id < cursor)
    rows = await query
    items = await _outs(rows[:limit])
    counts = await status_counts(where)
    return PairPage(items=items, next_cursor=items[-1].id if len(rows) > limit else None, counts=counts)


async def status_counts(where: PairFilter | None = None) -> dict[str, int]:
    grouped = Pair.select(Pair.status, Count(Pair.id, alias="n")).group_by(Pair.status)
    query = await filtered(where or PairFilter(), with_status=False, query=grouped)
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
        r["old"], r["new"] = decode_json(r["old"]), decode_json(r["new"])
    return [msgspec.convert(r, HistoryOut) for r in rows]


def decode_json(value: Any) -> Any:
    return msgspec.json.decode(value) if isinstance(value, str | bytes) else value


def as_json(value: Any) -> str:
    """piccolo stores a ``str`` given to a JSON column as it is: encode every value ourselves."""
    return msgspec.json.encode(value).decode()


async def accepted_by_query() -> dict[str, int]:
    """Accepted pairs per search query that found one of their images (the queries page)."""
    rows = await Pair.select(Pair.id, Pair.before, Pair.after).where(Pair.status == "accepted")
    queries = await groups.queries_of(sorted({r["before"] for r in rows} | {r["after"] for r in rows}))
    counts: dict[str, int] = {}
    for r in rows:
        for query in queries.get(r["before"], set()) | queries.get(r["after"], set()):
            counts[query] = counts.get(query, 0) + 1
    return counts
