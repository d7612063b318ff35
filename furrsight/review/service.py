"""The review queue: the next pair for a reviewer (leased, so two reviewers never get the same
pair at once), decisions and label edits through the review screen, undo, bulk actions.

Leases live in Valkey, not SQLite: they are short-lived by nature (a key with a time-to-live, so
an abandoned pair comes back by itself) and taking one costs no SQLite write lock, which twenty
reviewers asking for their next pair at once would queue on. One key per leased pair names its
reviewer; one key per reviewer names the pair they hold, so asking for the next pair lets the
previous one go.
"""

from __future__ import annotations

from typing import Any

import valkey.asyncio

from furrsight.auth import audit
from furrsight.pairs import batches
from furrsight.pairs import service as pairs
from furrsight.pairs.schemas import PairOut, PairPatch

SCAN = 50  # candidate ids read per round while looking for one nobody holds


# One round trip each (a Lua script runs atomically in Valkey): under twenty reviewers every
# awaited round trip waits its turn on the event loop, so the four of a release and the two or
# three of a take were a good part of "next pair".
_TAKE = """
local ok = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2])
if not ok then
  if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[2])
return 1
"""
_RELEASE = """
local pair = ARGV[2]
if pair == '' then
  pair = redis.call('GET', KEYS[1])
  if not pair then return 0 end
end
local key = ARGV[3] .. pair
if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
redis.call('DEL', KEYS[1])
return 1
"""


class Leases:
    """Who holds which pair, in Valkey, for ``ttl`` seconds."""

    def __init__(self, client: valkey.asyncio.Valkey, namespace: str, ttl: int) -> None:
        self.client, self.prefix, self.ttl = client, f"{namespace}:review", ttl
        self._take, self._release = client.register_script(_TAKE), client.register_script(_RELEASE)

    def _pair(self, pair_id: int | str) -> str:
        return f"{self.prefix}:lease:{pair_id}"

    def _holder(self, user: str) -> str:
        return f"{self.prefix}:holder:{user}"

    async def take(self, pair_id: int, user: str) -> bool:
        """Lease ``pair_id`` to ``user`` (or renew their lease); False when someone else holds it."""
        return bool(await self._take(keys=[self._pair(pair_id), self._holder(user)], args=[user, self.ttl, pair_id]))

    async def holder(self, pair_id: int) -> str | None:
        held = await self.client.get(self._pair(pair_id))
        return held.decode() if held else None

    async def release(self, user: str, pair_id: int | None = None) -> None:
        """Let ``pair_id`` go (default: the pair ``user`` holds), if ``user`` holds it."""
        pair = "" if pair_id is None else str(pair_id)
        await self._release(keys=[self._holder(user)], args=[user, pair, self._pair("")])


class Leased(Exception):
    """The pair is on someone else's screen (409)."""

    def __init__(self, pair_id: int, holder: str) -> None:
        super().__init__(f"pair {pair_id} is being reviewed by {holder}")
        self.holder = holder


async def next_pair(
    leases: Leases, user: str, where: pairs.PairFilter, order: str, exclude: list[int]
) -> PairOut | None:
    """The first pair in ``order`` under ``where`` that nobody else holds, leased to ``user``;
    the pair ``user`` held before is let go. None: the queue is empty."""
    await leases.release(user)
    offset = 0
    while True:
        ids = await batches.queue_ids(where, order, exclude, SCAN, offset)
        for pair_id in ids:
            if await leases.take(pair_id, user):
                return await pairs.get_pair(pair_id)
        if len(ids) < SCAN:
            return None
        if order == "random":  # a random sample held by others only: walk the queue in order instead
            order, offset = "oldest", 0
        else:
            offset += SCAN


async def open_pair(leases: Leases, user: str, pair_id: int) -> PairOut:
    """A named pair on ``user``'s screen (previous / undo): leased to them, unless someone else holds it."""
    pair = await pairs.get_pair(pair_id)
    held = await leases.holder(pair_id)
    if held not in (None, user):
        raise Leased(pair_id, held)
    await leases.release(user)
    await leases.take(pair_id, user)
    return pair


async def change(leases: Leases, pair_id: int, patch: PairPatch, user: str, on_change: Any = None) -> PairOut:
    """A change from the review screen (``via`` review). A decision (accept, reject) is audited and
    lets the lease go; ``StaleVersion`` when the pair moved on since the reviewer loaded it."""
    held = await leases.holder(pair_id)
    if held not in (None, user):
        raise Leased(pair_id, held)
    decided = patch.status in ("accepted", "rejected")

    def audited(conn: Any, version: int) -> None:  # in the save's own transaction (one thread call)
        audit.record_in(conn, f"review.{str(patch.status)[:-2]}", user, target=f"pair {pair_id}", version=version,
                        reason=patch.reject_reason)  # fmt: skip

    pair = await pairs.change_pair(pair_id, patch, user, "review", then=audited if decided else None)
    if decided:
        await leases.release(user, pair_id)
    if on_change:
        await on_change()
    return pair


async def undo(leases: Leases, pair_id: int, version: int, user: str, on_change: Any = None) -> PairOut:
    """Take back the change that made ``version`` (the reviewer's last action) and put the pair
    back on their screen."""
    held = await leases.holder(pair_id)
    if held not in (None, user):
        raise Leased(pair_id, held)
    pair = await batches.revert(pair_id, version, user, "review")
    await audit.record("review.undo", user, target=f"pair {pair_id}", version=version)
    await leases.release(user)
    await leases.take(pair_id, user)
    if on_change:
        await on_change()
    return pair


async def bulk(ids: list[int], patch: PairPatch, user: str, on_change: Any = None) -> batches.BulkResult:
    result = await batches.bulk_change(ids, patch, user)
    await audit.record(
        "review.bulk", user, target=f"{result.count} pairs", batch=result.batch, count=result.count,
        change={k: v for k, v in _fields(patch).items() if k != "version"},
    )  # fmt: skip
    if on_change:
        await on_change()
    return result


async def undo_bulk(batch: str, user: str, on_change: Any = None) -> batches.BulkResult:
    result = await batches.undo_batch(batch, user)
    await audit.record(
        "review.bulk_undo", user, target=f"{result.count} pairs", batch=batch, undo_batch=result.batch,
        count=result.count, conflicts=result.conflicts,
    )  # fmt: skip
    if on_change:
        await on_change()
    return result


def _fields(patch: PairPatch) -> dict[str, Any]:
    defaults = PairPatch(version=1)
    return {f: getattr(patch, f) for f in patch.__struct_fields__ if getattr(patch, f) != getattr(defaults, f)}
