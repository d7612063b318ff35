"""The dashboard's numbers: where the dataset stands, cached in Valkey.

Every count is one SQL ``GROUP BY`` over indexed columns; the whole set is cached for
``review.dashboard_cache_s`` seconds, and a review, undo or bulk action clears the cache (ingest and
mining are seen when it expires).
"""

from __future__ import annotations

from typing import Any

import msgspec
import valkey.asyncio

from furrsight.images.stats import image_counts
from furrsight.pairs import stats
from furrsight.pairs.service import accepted_by_query
from furrsight.taxonomy import service as taxonomy


class Bar(msgspec.Struct, kw_only=True):
    label: str
    value: int
    href: str  # the filtered list this bar counts


class Dashboard(msgspec.Struct, kw_only=True):
    images: dict[str, list[Bar]]  # by state, plugin, license
    pairs: dict[str, list[Bar]]  # by status, origin; accepted by breed, by service
    reviews_per_day: list[tuple[str, int]]  # oldest first
    precision: list[dict[str, Any]]
    top_queries: list[Bar]


def _bars(counts: dict[Any, int], href: str, names: dict[Any, str] | None = None) -> list[Bar]:
    out = [
        Bar(label=(names or {}).get(k, str(k)), value=n, href=href.format(msgspec.json.encode(k).decode().strip('"')))
        for k, n in counts.items()
    ]
    return sorted(out, key=lambda b: -b.value)


async def compute() -> Dashboard:
    images, pairs = await image_counts(), await stats.pair_counts()
    breeds = {b.id: b.name for b in await taxonomy.list_entries("breeds", include_retired=True)}
    services = {s.id: s.name for s in await taxonomy.list_entries("services", include_retired=True)}
    days: dict[str, int] = {}
    for row in await stats.decisions_per_day():
        days[row["day"]] = days.get(row["day"], 0) + row["accepted"] + row["rejected"]
    queries = sorted((await accepted_by_query()).items(), key=lambda kv: -kv[1])[:10]
    return Dashboard(
        images={
            "state": _bars(images["state"], "/images?state={}"),
            "plugin": _bars(images["plugin"], "/images?plugin={}"),
            "license": _bars(images["license"], "/images?license={}"),
        },
        pairs={
            "status": _bars(pairs["status"], "/pairs?status={}"),
            "origin": _bars(pairs["origin"], "/pairs?origin={}"),
            "breed": _bars(pairs["breed"], "/pairs?status=accepted&breed={}", breeds),
            "service": _bars(pairs["service"], "/pairs?status=accepted&service={}", services),
        },
        reviews_per_day=sorted(days.items()),
        precision=[
            {**row, **{f"{k}_rate": row[f"{k}_kept"] / row["pairs"] for k in ("breed", "services", "order")}}
            for row in await stats.model_precision()
        ],
        top_queries=[Bar(label=q, value=n, href="/queries") for q, n in queries],
    )


class Cache:
    def __init__(self, client: valkey.asyncio.Valkey, namespace: str, ttl: int) -> None:
        self.client, self.key, self.ttl = client, f"{namespace}:dashboard", ttl

    async def get(self) -> Dashboard:
        cached = await self.client.get(self.key) if self.ttl else None
        if cached:
            return msgspec.json.decode(cached, type=Dashboard)
        board = await compute()
        if self.ttl:
            await self.client.set(self.key, msgspec.json.encode(board), ex=self.ttl)
        return board

    async def clear(self) -> None:
        await self.client.delete(self.key)
