"""What later stages ask of search: vectors and breed tags of given images, neighbours.

Pair mining and analysis read these instead of the vector and tag tables, which search owns.
"""

from __future__ import annotations

import sqlite3

import msgspec
import numpy as np

from furrsight.search import vectors
from furrsight.search.service import in_db
from furrsight.search.tables import BreedTag
from furrsight.settings import Settings


class BreedFact(msgspec.Struct, kw_only=True):
    breed: str | None
    confidence: float
    dog_probability: float
    is_dog: bool
    model: str


def _vectors(conn: sqlite3.Connection, model: str, ids: list[int]) -> dict[int, np.ndarray]:
    if not ids or not vectors.has_table(conn, model):
        return {}
    out: dict[int, np.ndarray] = {}
    for lo in range(0, len(ids), 900):  # SQLite's bound-parameter limit
        got, data = vectors._floats(conn, vectors.table_name(model), ids[lo : lo + 900])
        if got:
            data = vectors.normalise(data)
            out.update(zip(got, data, strict=True))
    return out


async def embeddings(settings: Settings, ids: list[int], model: str | None = None) -> dict[int, np.ndarray]:
    """Unit vectors of ``ids`` by the active (or named) model; images without one are absent."""
    return await in_db(settings, _vectors, model or settings.search.model, list(ids))


async def neighbours(
    settings: Settings, vector: np.ndarray, k: int, exclude: int | None = None
) -> list[tuple[int, float]]:
    s = settings.search
    return await in_db(settings, vectors.knn, s.model, vector, k, prefilter_factor=s.prefilter_factor, exclude=exclude)


async def breed_facts(ids: list[int]) -> dict[int, BreedFact]:
    """The breed tag of each of ``ids`` that has one (top breed, its confidence, dog probability)."""
    out: dict[int, BreedFact] = {}
    for lo in range(0, len(ids), 900):
        rows = await BreedTag.select().where(BreedTag.image.is_in(ids[lo : lo + 900]))
        for r in rows:
            out[r["image"]] = BreedFact(
                breed=r["breed"],
                confidence=r["confidence"],
                is_dog=bool(r["is_dog"]),
                dog_probability=r["dog_probability"],
                model=r["model"],
            )
    return out
