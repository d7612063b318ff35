"""Counts of pairs for the dashboard and the reviewers page, straight from SQL (group by)."""

from __future__ import annotations

from typing import Any

from furrsight.pairs.tables import Pair, PairHistory

PEOPLE = "('review', 'bulk', 'api', 'page')"  # history rows a person made (not a model, not mining)


async def _pairs(sql: str) -> list[dict[str, Any]]:
    return await Pair.raw(sql)  # type: ignore[no-any-return]


async def pair_counts() -> dict[str, Any]:
    """Pairs by status and origin; accepted pairs per breed id and per service id."""
    status = await _pairs("SELECT status AS k, count(*) AS n FROM pairs GROUP BY status")
    origin = await _pairs("SELECT origin AS k, count(*) AS n FROM pairs GROUP BY origin")
    breed = await _pairs(
        "SELECT breed_id AS k, count(*) AS n FROM pairs WHERE status = 'accepted' AND breed_id IS NOT NULL "
        "GROUP BY breed_id ORDER BY n DESC LIMIT 20"
    )
    service = await _pairs(
        "SELECT s.service_id AS k, count(*) AS n FROM pair_services s JOIN pairs p ON p.id = s.pair "
        "WHERE p.status = 'accepted' GROUP BY s.service_id ORDER BY n DESC LIMIT 20"
    )
    return {
        "status": {r["k"]: r["n"] for r in status},
        "origin": {r["k"]: r["n"] for r in origin},
        "breed": {r["k"]: r["n"] for r in breed},
        "service": {r["k"]: r["n"] for r in service},
    }


async def decisions_per_day(days: int = 30) -> list[dict[str, Any]]:
    """Accepts and rejects people made, per user and day (newest day first)."""
    rows = await PairHistory.raw(
        "SELECT substr(at, 1, 10) AS day, user, "  # noqa: S608
        "sum(new = '\"accepted\"') AS accepted, sum(new = '\"rejected\"') AS rejected "
        f"FROM pair_history WHERE field = 'status' AND via IN {PEOPLE} AND user IS NOT NULL "
        "AND (new = '\"accepted\"' OR new = '\"rejected\"') "
        "GROUP BY day, user ORDER BY day DESC, user LIMIT {}",
        days * 50,
    )
    return list(rows)


async def model_precision() -> list[dict[str, Any]]:
    """Of the accepted pairs a model analysed: how often reviewers kept its breed, services and
    order (a label a person changed has the source ``human``), per model and prompt version."""
    rows = await _pairs(
        "SELECT p.model AS model, coalesce(p.prompt_version, '') AS prompt_version, count(*) AS pairs, "
        "sum(p.breed_source IS NOT 'human') AS breed_kept, "
        "sum(p.order_source IS NOT 'human') AS order_kept, "
        "sum(NOT EXISTS (SELECT 1 FROM pair_services s WHERE s.pair = p.id AND s.source = 'human')) AS services_kept "
        "FROM pairs p WHERE p.status = 'accepted' AND p.model IS NOT NULL "
        "GROUP BY p.model, p.prompt_version ORDER BY pairs DESC"
    )
    return list(rows)
