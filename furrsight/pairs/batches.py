"""Undo, bulk actions as one batch, and what the review queue and other stages read in bulk."""

from __future__ import annotations

import msgspec
from piccolo.querystring import QueryString

from furrsight.db.engine import compiled
from furrsight.db.piccolo_conf import DATABASE
from furrsight.pairs.errors import PairError, PairNotFound, Stale, StaleVersion
from furrsight.pairs.reads import PairFilter, decode_json, filtered
from furrsight.pairs.schemas import PairOut, PairPatch
from furrsight.pairs.service import change_pair, get_pair, new_batch, update_pair
from furrsight.pairs.tables import Pair, PairHistory


async def revert(pair_id: int, version: int, user: str | None, via: str, batch: str | None = None) -> PairOut:
    """Undo the change that made ``version`` (it must still be the pair's version: else
    ``StaleVersion``), as a new version with its own history rows. A label put back is a person's
    choice now, so its source becomes ``human``."""
    rows = await PairHistory.select().where((PairHistory.pair == pair_id) & (PairHistory.version == version))
    fields = {r["field"]: decode_json(r["old"]) for r in rows if r["field"] != "created"}
    if not fields:
        raise PairError(f"pair {pair_id} has no change at version {version} to undo")
    current = await get_pair(pair_id)
    status = fields.get("status", current.status if "reject_reason" in fields else None)
    change = PairPatch(
        version=version,
        swap="order" in fields,
        status=status,
        reject_reason=fields.get("reject_reason", current.reject_reason) if status == "rejected" else None,
        breed=(str(fields["breed"]) if fields["breed"] else "") if "breed" in fields else None,
        services=[str(i) for i in fields["services"]] if "services" in fields else None,
        caption=fields["caption"] or "" if "caption" in fields else None,
        note=fields["note"] or "" if "note" in fields else None,
    )
    return await change_pair(pair_id, change, user, via, batch)


class BulkResult(msgspec.Struct, kw_only=True):
    batch: str
    count: int  # pairs changed
    unchanged: list[int] = []  # already so
    missing: list[int] = []
    conflicts: list[int] = []  # changed by someone else since (undo only)


async def bulk_change(ids: list[int], change: PairPatch, user: str | None, via: str = "bulk") -> BulkResult:
    """One change (its ``version`` ignored) to many pairs as one batch: every history row carries
    the batch id, so ``undo_batch`` takes it back as one."""
    batch = new_batch()
    result = BulkResult(batch=batch, count=0)
    for pair_id in dict.fromkeys(ids):
        for _attempt in range(3):  # someone may change the pair between our read and our write
            row = await Pair.select(Pair.version).where(Pair.id == pair_id).first()
            if row is None:
                result.missing.append(pair_id)
                break
            try:
                after = await update_pair(
                    pair_id, msgspec.structs.replace(change, version=row["version"]), user, via, batch
                )
            except Stale:
                continue
            if after.version == row["version"]:
                result.unchanged.append(pair_id)
            else:
                result.count += 1
            break
    return result


async def undo_batch(batch: str, user: str | None, via: str = "bulk") -> BulkResult:
    """Take a batch back as one new batch; a pair changed since (by anyone) is left as it is and
    named in ``conflicts``."""
    rows = await PairHistory.select(PairHistory.pair, PairHistory.version).where(PairHistory.batch == batch)
    if not rows:
        raise PairNotFound(f"batch {batch} does not exist")
    versions: dict[int, int] = {}
    for r in rows:
        versions[r["pair"]] = max(versions.get(r["pair"], 0), r["version"])
    result = BulkResult(batch=new_batch(), count=0)
    for pair_id, version in sorted(versions.items()):
        try:
            await revert(pair_id, version, user, via, result.batch)
            result.count += 1
        except StaleVersion:
            result.conflicts.append(pair_id)
        except PairNotFound:
            result.missing.append(pair_id)
    return result


ORDERS = ("confidence", "oldest", "random")
UNDECIDED = ("candidate", "analysed")


async def queue_ids(where: PairFilter, order: str, exclude: list[int], limit: int, offset: int = 0) -> list[int]:
    """Pair ids in review order under ``where`` (no status: the undecided ones), ``exclude`` left out."""
    query = await filtered(where, query=Pair.select(Pair.id))
    if not where.status:
        query = query.where(Pair.status.is_in(list(UNDECIDED)))
    if exclude:
        query = query.where(Pair.id.not_in(exclude))
    if order == "random":
        query = query.order_by(QueryString("random()"))
    elif order == "oldest":
        query = query.order_by(Pair.id)
    else:  # least confident first; unknown confidence (not analysed yet) counts as least
        query = query.order_by(Pair.confidence).order_by(Pair.id)
    sql, args = compiled(query.limit(limit).offset(offset))  # one read call, not a new piccolo connection
    return await DATABASE.read_call(lambda conn: [r[0] for r in conn.execute(sql, args)])


async def pairs_of_images(ids: list[int]) -> dict[int, list[tuple[int, str]]]:
    """The pairs (id, status) each of ``ids`` is in, as before or after."""
    out: dict[int, list[tuple[int, str]]] = {}
    if not ids:
        return out
    rows = await Pair.select(Pair.id, Pair.before, Pair.after, Pair.status).where(
        Pair.before.is_in(ids) | Pair.after.is_in(ids)
    )
    wanted = set(ids)
    for r in sorted(rows, key=lambda r: r["id"]):
        for side in ("before", "after"):
            if r[side] in wanted:
                out.setdefault(r[side], []).append((r["id"], r["status"]))
    return out


async def human_corrections(pair_ids: list[int]) -> dict[int, set[str]]:
    """Labels a person changed after something else had set them: pair id -> fields (breed,
    services, order). The dataset card's measured precision of model labels reads this."""
    out: dict[int, set[str]] = {}
    for lo in range(0, len(pair_ids), 900):
        rows = await PairHistory.select(PairHistory.pair, PairHistory.field, PairHistory.old).where(
            PairHistory.pair.is_in(pair_ids[lo : lo + 900])
            & PairHistory.user.is_not_null()
            & PairHistory.field.is_in(["breed", "services", "order"])
        )
        for r in rows:
            if decode_json(r["old"]) not in (None, []):
                out.setdefault(r["pair"], set()).add(r["field"])
    return out
