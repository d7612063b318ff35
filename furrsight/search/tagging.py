"""Breed tags in the database: write (idempotent per image), list by breed, count."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from furrsight.search.breeds import BreedResult
from furrsight.search.schemas import TaggedImage, TaggedPage
from furrsight.search.tables import BreedTag
from furrsight.search.vectors import table_name


def put_tags(conn: sqlite3.Connection, model: str, ids: list[int], results: list[BreedResult]) -> None:
    """Replace the tags of ``ids`` that have the model's vector (written just before, in the
    same pass: an image removed since has neither, and its tag would break its foreign key).
    Plain SQL on the embedding job's own connection, without piccolo's per-query overhead."""
    stamp = str(datetime.now(UTC))
    marks = ",".join("?" * len(ids))
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(f"DELETE FROM breed_tags WHERE image IN ({marks})", ids)  # noqa: S608
        conn.executemany(
            "INSERT INTO breed_tags (image, model, breed, confidence, dog_probability, is_dog, tagged_at) "  # noqa: S608
            f"SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM {table_name(model)}_f WHERE id = ?)",
            [
                (i, model, r.breed, r.confidence, r.dog_probability, r.is_dog, stamp, i)
                for i, r in zip(ids, results, strict=True)
            ],
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


async def ids_without_tag(model: str, ids: list[int]) -> list[int]:
    """Those of ``ids`` with no tag from ``model`` yet, in their order."""
    tagged = {r["image"] for r in await BreedTag.select(BreedTag.image).where(BreedTag.model == model)}
    return [i for i in ids if i not in tagged]


async def tagged_images(
    breed: str | None, limit: int, before: int | None = None, dogs: bool | None = None
) -> TaggedPage:
    """Tagged images, newest first; ``breed`` filters by breed, ``dogs=False`` lists the flagged."""
    query = BreedTag.select().order_by(BreedTag.image, ascending=False).limit(limit + 1)
    if breed:
        query = query.where(BreedTag.breed == breed)
    if dogs is not None:
        query = query.where(BreedTag.is_dog == dogs)
    if before is not None:
        query = query.where(BreedTag.image < before)
    rows: list[dict[str, Any]] = await query
    items = [
        TaggedImage(id=r["image"], breed=r["breed"], confidence=r["confidence"],
                    dog_probability=r["dog_probability"], is_dog=bool(r["is_dog"]))
        for r in rows[:limit]
    ]  # fmt: skip
    return TaggedPage(items=items, next_cursor=items[-1].id if len(rows) > limit else None)


async def breed_counts() -> list[tuple[str, int]]:
    rows = await BreedTag.raw(
        "SELECT coalesce(breed, '(not a dog)') AS breed, count(*) AS n FROM breed_tags GROUP BY 1 ORDER BY n DESC"
    )
    return [(r["breed"], r["n"]) for r in rows]


NOT_A_DOG = "(not a dog)"


def breed_image_ids(breed: str) -> Any:
    """The ids of images tagged ``breed`` (or ``(not a dog)``): the gallery's breed filter."""
    if breed == NOT_A_DOG:
        return BreedTag.select(BreedTag.image).where(BreedTag.is_dog == False)  # noqa: E712
    return BreedTag.select(BreedTag.image).where(BreedTag.breed == breed)


async def tags_of(ids: list[int]) -> dict[int, tuple[str | None, float]]:
    """Each tagged image's breed (None: not a dog) and the model's confidence."""
    if not ids:
        return {}
    rows = await BreedTag.select(BreedTag.image, BreedTag.breed, BreedTag.confidence).where(BreedTag.image.is_in(ids))
    return {r["image"]: (r["breed"], r["confidence"]) for r in rows}
